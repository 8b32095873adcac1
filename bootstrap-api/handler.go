package bootstrapapi

// The HTTP handler serves API v1 (/v1/<op>, JSON) and the legacy cli-chat
// format (/<op>, space-separated bodies) over any Store. Requests are read
// whole (bounded by MaxBodyBytes), decoded and validated before the store
// is touched, so malformed input never changes the state.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBodyBytes bounds request bodies; a join is well under 1 KiB.
const DefaultMaxBodyBytes = 64 << 10

// HandlerConfig configures NewHandler.
type HandlerConfig struct {
	// AdminToken, when set, is required as "Authorization: Bearer TOKEN"
	// for reset and config changes. Empty means open (local development).
	AdminToken string
	// Now returns the current time; nil means time.Now. Tests move it to
	// expire leases without waiting.
	Now func() time.Time
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// AnyPrefix routes on the last path elements only, so /fn/v1/join and
	// /fn/join reach the same rules as /v1/join and /join. Cloud Functions
	// need it (the function name may prefix the path).
	AnyPrefix bool
	// Logf reports internal errors (never shown to clients); nil discards.
	Logf func(format string, args ...any)
	// RateLimit limits requests per client; the zero value is the
	// default limit (see RateLimit), not "unlimited".
	RateLimit RateLimit
	// ClientIP returns the address a request is counted against; nil
	// means ClientIPFromRemoteAddr. A service behind a proxy that it
	// trusts reads the proxy's header here.
	ClientIP func(*http.Request) string
}

type handler struct {
	store Store
	cfg   HandlerConfig
	limit *limiter // nil when rate limiting is disabled
}

// NewHandler returns the service's HTTP handler over store. It is safe for
// concurrent use.
func NewHandler(store Store, cfg HandlerConfig) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = ClientIPFromRemoteAddr
	}
	return &handler{store: store, cfg: cfg, limit: newLimiter(cfg.RateLimit)}
}

// Ops are the operations both formats share.
var Ops = []string{"ping", "join", "leave", "refill", "list", "reset", "config"}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The limit comes first, before the body is read or a signature
	// checked, so a flood costs as little as possible.
	if h.limit != nil {
		if wait := h.limit.allow(h.cfg.ClientIP(r), h.cfg.Now()); wait > 0 {
			w.Header().Set("Retry-After", retryAfterSeconds(wait))
			h.fail(w, Errorf(ECodeRateLimited, "too many requests from this address; retry in %s", retryAfterSeconds(wait)+"s"))
			return
		}
	}
	op, v1, ok := h.route(r.URL.Path)
	if !ok {
		h.fail(w, Errorf(ECodeNotFound, "no such endpoint %q; try /v1/ping or /ping", clip(r.URL.Path)))
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		h.fail(w, err)
		return
	}
	if v1 {
		h.serveV1(w, r, op, body)
	} else {
		h.serveLegacy(w, r, op, body)
	}
}

// route splits a path into its operation and format.
func (h *handler) route(path string) (op string, v1, ok bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	n := len(segs)
	op = segs[n-1]
	known := false
	for _, o := range Ops {
		known = known || o == op
	}
	if !known {
		return "", false, false
	}
	v1 = n >= 2 && segs[n-2] == "v1"
	prefix := n - 1
	if v1 {
		prefix--
	}
	if prefix > 0 && !h.cfg.AnyPrefix {
		return "", false, false
	}
	return op, v1, true
}

func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, Errorf(ECodeTooLarge, "body over %d bytes", h.cfg.MaxBodyBytes)
		}
		return nil, Errorf(ECodeInvalid, "read body: %v", err)
	}
	return b, nil
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) error {
	for _, m := range methods {
		if r.Method == m {
			return nil
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return Errorf(ECodeMethod, "%s not allowed here; use %s", clip(r.Method), strings.Join(methods, " or "))
}

func (h *handler) authorize(r *http.Request) error {
	if h.cfg.AdminToken == "" {
		return nil
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.AdminToken)) != 1 {
		return Errorf(ECodeUnauthorized, "this operation needs the admin token (Authorization: Bearer TOKEN)")
	}
	return nil
}

// decodeJSON decodes a v1 body strictly: JSON content type, known fields
// only, one value. An empty body leaves v at its zero value when
// emptyOK.
func decodeJSON(r *http.Request, body []byte, v any, emptyOK bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return Errorf(ECodeInvalid, "empty body; expected a JSON object")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return Errorf(ECodeUnsupportedMedia, "Content-Type %q; send application/json", clip(ct))
		}
	}
	return DecodeStrict(body, v)
}

// DecodeStrict decodes exactly one JSON value with no unknown fields.
func DecodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(ECodeInvalid, "decode JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(ECodeInvalid, "decode JSON: unexpected data after the object")
	}
	return nil
}

func (h *handler) serveV1(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	ctx := r.Context()
	var (
		resp any
		err  error
	)
	switch op {
	case "ping":
		if err = allow(w, r, http.MethodGet, http.MethodPost); err == nil {
			resp, err = h.ping(ctx)
		}
	case "join", "refill":
		var req JoinRequest
		if err = allow(w, r, http.MethodPost); err == nil {
			if err = decodeJSON(r, body, &req, false); err == nil {
				resp, err = h.join(ctx, req, op == "refill")
			}
		}
	case "leave":
		var req LeaveRequest
		if err = allow(w, r, http.MethodPost); err == nil {
			if err = decodeJSON(r, body, &req, false); err == nil {
				resp, err = h.leave(ctx, req)
			}
		}
	case "list":
		var req ListRequest
		if err = allow(w, r, http.MethodGet, http.MethodPost); err == nil {
			if r.Method == http.MethodGet {
				req.N, err = parseCount(r.URL.Query().Get("n"))
			} else {
				err = decodeJSON(r, body, &req, true)
			}
			if err == nil {
				resp, err = h.list(ctx, req.N)
			}
		}
	case "reset":
		if err = allow(w, r, http.MethodPost); err == nil {
			if err = h.authorize(r); err == nil {
				resp, err = h.reset(ctx)
			}
		}
	case "config":
		if err = allow(w, r, http.MethodGet, http.MethodPost); err == nil {
			if r.Method == http.MethodGet {
				resp, err = h.config(ctx)
			} else {
				var u ConfigUpdate
				if err = h.authorize(r); err == nil {
					if err = decodeJSON(r, body, &u, false); err == nil {
						resp, err = h.setConfig(ctx, u)
					}
				}
			}
		}
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func parseCount(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, Errorf(ECodeInvalid, "n %q is not a non-negative number", clip(s))
	}
	if n > MaxListCount {
		return 0, Errorf(ECodeInvalid, "n %d over the limit %d", n, MaxListCount)
	}
	return n, nil
}

func (h *handler) ping(ctx context.Context) (PingResponse, error) {
	// A ping reads the store so it reports a backend that cannot serve.
	err := h.store.View(ctx, func(*State) error { return nil })
	return PingResponse{OK: err == nil, Time: h.cfg.Now().UTC()}, err
}

func (h *handler) join(ctx context.Context, req JoinRequest, refill bool) (JoinResponse, error) {
	now := h.cfg.Now()
	op := "join"
	if refill {
		op = "refill"
	}
	rec, err := RecordFromJoin(op, req, now)
	if err != nil {
		return JoinResponse{}, err
	}
	var resp JoinResponse
	err = h.store.Update(ctx, func(s *State) error {
		resp = JoinResponse{}
		var (
			o   Outcome
			err error
		)
		if refill {
			o, err = Refill(s, rec, now, true)
		} else {
			o, err = Join(s, rec, now, true)
		}
		if err != nil {
			return err
		}
		resp.Stored, resp.Renewed, resp.Replaced = o.Stored, o.Renewed, o.Replaced
		if resp.Stored {
			c := s.Peers[rec.ID].Contact()
			resp.Contact = &c
		}
		resp.NumPeers = len(s.Peers)
		resp.Config = s.Config
		return nil
	})
	return resp, err
}

func (h *handler) leave(ctx context.Context, req LeaveRequest) (LeaveResponse, error) {
	now := h.cfg.Now()
	signedMilli, err := LeaveFromRequest(req, now)
	if err != nil {
		return LeaveResponse{}, err
	}
	var resp LeaveResponse
	err = h.store.Update(ctx, func(s *State) error {
		removed, err := Leave(s, req.ID, signedMilli, now)
		if err != nil {
			return err
		}
		resp = LeaveResponse{Removed: removed, NumPeers: len(s.Peers)}
		return nil
	})
	return resp, err
}

func (h *handler) list(ctx context.Context, n int) (ListResponse, error) {
	if n < 0 || n > MaxListCount {
		return ListResponse{}, Errorf(ECodeInvalid, "n %d out of range [0, %d]", n, MaxListCount)
	}
	now := h.cfg.Now()
	var resp ListResponse
	err := h.store.View(ctx, func(s *State) error {
		recs := List(s, n, now, nil)
		resp = ListResponse{Peers: make([]Contact, len(recs)), NumPeers: LiveCount(s, now), Config: s.Config}
		for i, rec := range recs {
			resp.Peers[i] = rec.Contact()
		}
		return nil
	})
	return resp, err
}

func (h *handler) reset(ctx context.Context) (ResetResponse, error) {
	now := h.cfg.Now()
	var resp ResetResponse
	err := h.store.Update(ctx, func(s *State) error {
		resp = ResetResponse{Removed: Reset(s, now), Config: s.Config}
		return nil
	})
	return resp, err
}

func (h *handler) config(ctx context.Context) (Config, error) {
	var c Config
	err := h.store.View(ctx, func(s *State) error { c = s.Config; return nil })
	return c, err
}

func (h *handler) setConfig(ctx context.Context, u ConfigUpdate) (Config, error) {
	// Validate before the transaction so bad input never reaches the store.
	probe := NewState()
	if err := h.store.View(ctx, func(s *State) error { probe.Config = s.Config; return nil }); err != nil {
		return Config{}, err
	}
	if err := ApplyConfig(probe, u); err != nil {
		return Config{}, err
	}
	var c Config
	err := h.store.Update(ctx, func(s *State) error {
		if err := ApplyConfig(s, u); err != nil {
			return err
		}
		c = s.Config
		return nil
	})
	return c, err
}

func (h *handler) serveLegacy(w http.ResponseWriter, r *http.Request, op string, body []byte) {
	if err := allow(w, r, http.MethodPost); err != nil {
		h.fail(w, err)
		return
	}
	now := h.cfg.Now()
	text := string(body)
	var fn func(*State) error
	switch op {
	case "ping":
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return
	case "join", "refill":
		rec, err := ParseLegacyPeer(text)
		if err != nil {
			h.fail(w, err)
			return
		}
		refill := op == "refill"
		fn = func(s *State) error {
			var err error
			if refill {
				_, err = Refill(s, rec, now, false)
			} else {
				_, err = Join(s, rec, now, false)
			}
			return err
		}
	case "leave":
		id, err := ParseLegacyLeave(text)
		if err != nil {
			h.fail(w, err)
			return
		}
		fn = func(s *State) error { _, err := Leave(s, id, 0, now); return err }
	case "list":
		fn = nil
	case "reset":
		if err := h.authorize(r); err != nil {
			h.fail(w, err)
			return
		}
		fn = func(s *State) error { Reset(s, now); return nil }
	case "config":
		if err := h.authorize(r); err != nil {
			h.fail(w, err)
			return
		}
		u, err := ParseLegacyConfig(text)
		if err != nil {
			h.fail(w, err)
			return
		}
		probe := NewState()
		if err := ApplyConfig(probe, u); err != nil {
			h.fail(w, err)
			return
		}
		fn = func(s *State) error { return ApplyConfig(s, u) }
	}
	var resp LegacyResponse
	var err error
	if fn == nil {
		err = h.store.View(r.Context(), func(s *State) error {
			live := s.Clone()
			Expire(live, now)
			resp = legacyView(live)
			return nil
		})
	} else {
		err = h.store.Update(r.Context(), func(s *State) error {
			if err := fn(s); err != nil {
				return err
			}
			Expire(s, now)
			resp = legacyView(s)
			return nil
		})
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) fail(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			e = Errorf(ECodeUnavailable, "request cancelled or timed out: %v", err)
		default:
			h.cfg.Logf("bootstrap: internal error: %v", err)
			e = Errorf(ECodeInternal, "internal error; see the server log")
		}
	}
	if e.Code == ECodeUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ErrorStatus(e.Code), e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(fmt.Sprintf(`{"code":%q,"message":"encode response"}`, ECodeInternal))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
