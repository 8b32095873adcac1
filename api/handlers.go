package api

// The JSON endpoints. Every request passes the bearer-token check first
// (except the web UI's static files, which hold no data); bodies are read
// whole under a size limit and decoded strictly (unknown fields are
// errors) before the peer is touched.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearsay-chat/hearsay"
)

// Version is the API version, the prefix of every JSON path.
const Version = "v1"

// roomPattern is the chat protocol's rule for room names (without '#').
var roomPattern = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// ParseRoom turns "#Dev" or "dev" into a room name; "" is the lobby.
func ParseRoom(s string) (string, error) {
	name := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "#"))
	if name == "" {
		name = "lobby"
	}
	if !roomPattern.MatchString(name) {
		return "", Errorf(ECodeInvalid, "bad room name %q: 1-64 characters from a-z, 0-9, '.', '_', '-'", s)
	}
	return name, nil
}

// Request and answer bodies (documented in openapi.yaml).
type (
	// SendRequest is the body of POST /v1/messages: Room or To, not both.
	SendRequest struct {
		Room string `json:"room,omitempty"`
		To   string `json:"to,omitempty"`
		Text string `json:"text"`
	}
	// SendResponse answers it.
	SendResponse struct {
		ID   string `json:"id"`
		Room string `json:"room,omitempty"`
		To   string `json:"to,omitempty"`
	}
	// Self is GET /v1/self: the ID box.
	Self struct {
		ID       string `json:"id"`
		Nick     string `json:"nick"`
		Addr     string `json:"addr"`
		Direct   bool   `json:"direct"`
		EventsID string `json:"last_event_id"`
	}
	// NickRequest is the body of PUT /v1/nick.
	NickRequest struct {
		Nick string `json:"nick"`
	}
	// JoinRoomRequest is the body of POST /v1/rooms.
	JoinRoomRequest struct {
		Room string `json:"room"`
		Mode string `json:"mode,omitempty"`
	}
	// ContactRequest is the body of POST /v1/contacts.
	ContactRequest struct {
		Addr string `json:"addr"`
	}
	// ContactResponse answers it.
	ContactResponse struct {
		Joined int `json:"joined"`
	}
	// StatsResponse is GET /v1/stats.
	StatsResponse struct {
		hearsay.Stats
		Members int `json:"members"`
		Health  int `json:"health"`
	}
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(path string, methods map[string]http.HandlerFunc) {
		mux.Handle(path, s.auth(byMethod(methods)))
	}
	api("/v1/self", map[string]http.HandlerFunc{"GET": s.getSelf})
	api("/v1/nick", map[string]http.HandlerFunc{"PUT": s.putNick, "POST": s.putNick})
	api("/v1/messages", map[string]http.HandlerFunc{"POST": s.postMessage})
	api("/v1/events", map[string]http.HandlerFunc{"GET": s.getEvents})
	api("/v1/rooms", map[string]http.HandlerFunc{"GET": s.getRooms, "POST": s.postRoom})
	api("/v1/rooms/{room}", map[string]http.HandlerFunc{"DELETE": s.deleteRoom})
	api("/v1/rooms/{room}/history", map[string]http.HandlerFunc{"GET": s.getHistory})
	api("/v1/members", map[string]http.HandlerFunc{"GET": s.getMembers})
	api("/v1/contacts", map[string]http.HandlerFunc{"POST": s.postContact})
	api("/v1/stats", map[string]http.HandlerFunc{"GET": s.getStats})
	api("/v1/", map[string]http.HandlerFunc{"": s.notFound})
	if s.cfg.Metrics != nil {
		mux.Handle("/metrics", s.auth(byMethod(map[string]http.HandlerFunc{"GET": s.cfg.Metrics.handler().ServeHTTP})))
	}
	mux.Handle("/", webHandler())
	return secureHeaders(mux)
}

// secureHeaders sets the headers every answer carries: a
// Content-Security-Policy that allows only the server's own script and
// style (no inline script, no other origin), no sniffing, no referrer
// (the URL's fragment holds the token), no framing.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// byMethod dispatches on the method; "" matches any. Other methods get a
// JSON 405 with Allow.
func byMethod(m map[string]http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := m[r.Method]; ok {
			h(w, r)
			return
		}
		if h, ok := m[""]; ok {
			h(w, r)
			return
		}
		if r.Method == http.MethodHead {
			if h, ok := m["GET"]; ok {
				h(w, r)
				return
			}
		}
		allow := make([]string, 0, len(m))
		for k := range m {
			allow = append(allow, k)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, Errorf(ECodeMethod, "%s is not allowed on %s", r.Method, r.URL.Path))
	})
}

// auth requires "Authorization: Bearer TOKEN", compared in constant time.
func (s *Server) auth(h http.Handler) http.Handler {
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hearsay"`)
			writeError(w, Errorf(ECodeUnauthorized, "missing or wrong bearer token: send \"Authorization: Bearer TOKEN\" with the token from the peer's %s", TokenFile))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: ECodeInternal, Message: err.Error()}
	}
	writeJSON(w, ErrorStatus(e.Code), e)
}

// peerError maps an error of the peer to an API error: the peer's own
// messages are written for users, so they are passed on; the code comes
// from Config.ErrorCode, or is the endpoint's default.
func (s *Server) peerError(code string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if s.cfg.ErrorCode != nil {
		if c := s.cfg.ErrorCode(err); c != "" {
			code = c
		}
	}
	return &Error{Code: code, Message: err.Error()}
}

// decode reads a JSON body of at most MaxBodyBytes into v: the media type
// must be JSON, unknown fields and trailing data are errors.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return Errorf(ECodeUnsupportedMedia, "the body must be application/json, not %q", ct)
		}
	} else {
		return Errorf(ECodeUnsupportedMedia, "the body must be application/json (Content-Type is missing)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return Errorf(ECodeTooLarge, "the body is over the limit of %d bytes", s.cfg.MaxBodyBytes)
	}
	if err != nil {
		return Errorf(ECodeInvalid, "read body: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(ECodeInvalid, "bad JSON body: %v", err)
	}
	if dec.More() {
		return Errorf(ECodeInvalid, "bad JSON body: data after the object")
	}
	return nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, Errorf(ECodeNotFound, "no such endpoint: %s %s (see openapi.yaml)", r.Method, r.URL.Path))
}

func (s *Server) getSelf(w http.ResponseWriter, r *http.Request) {
	_, direct := s.peer.(DirectPeer)
	last := s.cfg.Ring.Last()
	writeJSON(w, http.StatusOK, Self{ID: s.peer.ID(), Nick: s.peer.Nick(), Addr: s.peer.AdvertiseAddr(), Direct: direct,
		EventsID: s.cfg.Ring.Epoch() + "-" + strconv.FormatUint(last, 10)})
}

func (s *Server) putNick(w http.ResponseWriter, r *http.Request) {
	var req NickRequest
	if err := s.decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.peer.SetNick(req.Nick); err != nil {
		writeError(w, s.peerError(ECodeInvalid, fmt.Errorf("nick not changed: %w", err)))
		return
	}
	writeJSON(w, http.StatusOK, NickRequest{Nick: s.peer.Nick()})
}

// joinedRoom returns the room's info if the peer knows it (joined only
// when joined is set), else a not_found error.
func (s *Server) knownRoom(name string, joined bool) (hearsay.RoomInfo, error) {
	for _, ri := range s.peer.Rooms() {
		if ri.Name == name && (ri.Joined || !joined) {
			return ri, nil
		}
	}
	if joined {
		return hearsay.RoomInfo{}, Errorf(ECodeNotFound, "room #%s is not joined (join it with POST /v1/rooms)", name)
	}
	return hearsay.RoomInfo{}, Errorf(ECodeNotFound, "room #%s is unknown to this peer", name)
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if err := s.decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch {
	case req.Text == "":
		writeError(w, Errorf(ECodeInvalid, "text is empty"))
		return
	case !utf8.ValidString(req.Text):
		writeError(w, Errorf(ECodeInvalid, "text is not valid UTF-8"))
		return
	case len(req.Text) > s.cfg.MaxMessageBytes:
		writeError(w, Errorf(ECodeTooLarge, "the message is %d bytes, the limit is %d", len(req.Text), s.cfg.MaxMessageBytes))
		return
	case req.To != "" && req.Room != "":
		writeError(w, Errorf(ECodeInvalid, "give room or to, not both"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if req.To != "" {
		dp, ok := s.peer.(DirectPeer)
		if !ok {
			writeError(w, errNoDirect)
			return
		}
		id, err := dp.SendDirect(ctx, req.To, req.Text)
		if err != nil {
			writeError(w, s.peerError(ECodeInvalid, err))
			return
		}
		writeJSON(w, http.StatusCreated, SendResponse{ID: id, To: req.To})
		return
	}
	room, err := ParseRoom(req.Room)
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.knownRoom(room, true); err != nil {
		writeError(w, err)
		return
	}
	id, err := s.peer.Send(ctx, room, req.Text)
	if err != nil {
		writeError(w, s.peerError(ECodeUnavailable, err))
		return
	}
	writeJSON(w, http.StatusCreated, SendResponse{ID: id.String(), Room: room})
}

func (s *Server) getRooms(w http.ResponseWriter, r *http.Request) {
	rooms := s.peer.Rooms()
	if rooms == nil {
		rooms = []hearsay.RoomInfo{}
	}
	writeJSON(w, http.StatusOK, rooms)
}

func (s *Server) postRoom(w http.ResponseWriter, r *http.Request) {
	var req JoinRoomRequest
	if err := s.decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	room, err := ParseRoom(req.Room)
	if err != nil {
		writeError(w, err)
		return
	}
	var mode hearsay.OrderMode
	if req.Mode != "" {
		if mode, err = hearsay.ParseOrderMode(req.Mode); err != nil {
			writeError(w, Errorf(ECodeInvalid, "%v", err))
			return
		}
	}
	if ri, err := s.knownRoom(room, true); err == nil {
		if mode != 0 && ri.Mode != 0 && mode != ri.Mode {
			writeError(w, Errorf(ECodeConflict, "room #%s is joined with ordering mode %s, not %s", room, ri.Mode, mode))
			return
		}
		writeJSON(w, http.StatusOK, ri)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if ri, err := s.knownRoom(room, false); err == nil && mode != 0 && ri.Mode != 0 && mode != ri.Mode {
		writeError(w, Errorf(ECodeConflict, "room #%s exists with ordering mode %s, not %s", room, ri.Mode, mode))
		return
	}
	ri, err := s.peer.JoinRoom(ctx, room, mode)
	if err != nil {
		writeError(w, s.peerError(ECodeUnavailable, err))
		return
	}
	writeJSON(w, http.StatusCreated, ri)
}

func (s *Server) deleteRoom(w http.ResponseWriter, r *http.Request) {
	room, err := ParseRoom(r.PathValue("room"))
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.knownRoom(room, true); err != nil {
		writeError(w, err)
		return
	}
	if err := s.peer.PartRoom(r.Context(), room); err != nil {
		writeError(w, s.peerError(ECodeInvalid, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	room, err := ParseRoom(r.PathValue("room"))
	if err != nil {
		writeError(w, err)
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxHistory {
			writeError(w, Errorf(ECodeInvalid, "limit %q: want a number from 1 to %d", v, MaxHistory))
			return
		}
		limit = n
	}
	if _, err := s.knownRoom(room, false); err != nil {
		writeError(w, err)
		return
	}
	evs, err := s.peer.History(room, limit)
	if err != nil {
		writeError(w, s.peerError(ECodeUnavailable, err))
		return
	}
	if evs == nil {
		evs = []hearsay.Event{}
	}
	writeJSON(w, http.StatusOK, evs)
}

func (s *Server) getMembers(w http.ResponseWriter, r *http.Request) {
	ms := s.peer.Members()
	if ms == nil {
		ms = []hearsay.Member{}
	}
	writeJSON(w, http.StatusOK, ms)
}

func (s *Server) postContact(w http.ResponseWriter, r *http.Request) {
	var req ContactRequest
	if err := s.decode(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	host, port, err := net.SplitHostPort(strings.TrimSpace(req.Addr))
	if p, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || p < 1 || p > 65535 || len(req.Addr) > 256 {
		writeError(w, Errorf(ECodeInvalid, "contact address %q: want host:port", req.Addr))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	n, err := s.peer.Join(ctx, []string{strings.TrimSpace(req.Addr)})
	if err != nil {
		writeError(w, s.peerError(ECodeUnavailable, fmt.Errorf("join %s: %w", req.Addr, err)))
		return
	}
	writeJSON(w, http.StatusOK, ContactResponse{Joined: n})
}

func (s *Server) getStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, StatsResponse{Stats: s.peer.Stats(), Members: len(s.peer.Members()), Health: s.peer.Health()})
}
