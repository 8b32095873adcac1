package peerster

// The part 3 GUI: a page with the chat, node and ID boxes and the Send,
// Add and Change buttons, and its JSON API on the UIPort:
//
//	GET  /message  {"messages":[{"origin":…,"id":…,"text":…},…]}
//	POST /message  {"text":"…"}   → {"id":N}      (a client message)
//	GET  /node     {"peers":["ip:port",…]}
//	POST /node     {"addr":"ip:port"}
//	GET  /id       {"name":"…"}
//	POST /id       {"name":"…"}
//
// The page polls the GETs once a second. Peer text is untrusted: the
// script inserts it with textContent only, and the Content-Security-Policy
// allows no inline script, so a message cannot run code in the page. The
// server answers only requests whose Host is the loopback address it
// listens on (a web page elsewhere cannot reach it through DNS
// rebinding), and a POST must be JSON (a cross-site form cannot send
// that without the browser's preflight, which the server does not allow).

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"time"
)

//go:embed gui
var guiFiles embed.FS

// maxRequestBytes bounds a POST body.
const maxRequestBytes = 16 << 10

// csp forbids inline script and style and every origin but the page's own.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (g *Gossiper) newGUIServer() *http.Server {
	static, err := fs.Sub(guiFiles, "gui")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /message", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"messages": g.Messages()})
	})
	mux.HandleFunc("POST /message", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Text string `json:"text"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		id, err := g.SendClient(req.Text)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id})
	})
	mux.HandleFunc("GET /node", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"peers": g.Peers()})
	})
	mux.HandleFunc("POST /node", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Addr string `json:"addr"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if err := g.AddPeer(req.Addr); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"peers": g.Peers()})
	})
	mux.HandleFunc("GET /id", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"name": g.Name()})
	})
	mux.HandleFunc("POST /id", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		if err := g.SetName(req.Name); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"name": g.Name()})
	})
	return &http.Server{
		Handler:           g.guard(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// guard sets the security headers and refuses requests for another host.
func (g *Gossiper) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if !g.allowedHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q is not this gossiper's address", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost accepts the listener's own address, or localhost with its
// port.
func (g *Gossiper) allowedHost(host string) bool {
	la := g.ln.Addr().(*net.TCPAddr)
	h, p, err := net.SplitHostPort(host)
	if err != nil || p != fmt.Sprint(la.Port) {
		return false
	}
	if h == "localhost" {
		return la.IP.IsLoopback()
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(la.IP) || (la.IP.IsUnspecified() && ip.IsLoopback()))
}

func (g *Gossiper) serveGUI() {
	defer g.wg.Done()
	if err := g.srv.Serve(g.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.logf("GUI: %v", err)
	}
}

// readJSON decodes a bounded JSON body into v, or answers the error and
// returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, errors.New("want Content-Type application/json"))
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
