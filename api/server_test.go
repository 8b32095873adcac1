package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

const testToken = "test-token-0123456789"

// startServer serves a fake peer on 127.0.0.1 with its own data
// directory; the server stops at the end of the test.
func startServer(t *testing.T, p api.Peer, tune func(*api.Config)) (*api.Server, *api.Ring) {
	t.Helper()
	ring := api.NewRing(64)
	cfg := api.Config{DataDir: t.TempDir(), Ring: ring, Metrics: api.NewMetrics()}
	if tune != nil {
		tune(&cfg)
	}
	cfg.Metrics.Attach(p, ring)
	srv, err := api.Start(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv, ring
}

// call sends one request; body is sent as is (a string) with the given
// content type.
func call(t *testing.T, srv *api.Server, token, method, path, ctype, body string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

func errCode(t *testing.T, b []byte) string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(b, &e); err != nil || e.Message == "" {
		t.Fatalf("not a JSON error: %q", b)
	}
	return e.Code
}

// TestEndpoints calls every endpoint with good and bad requests and checks
// the status, the error code and the effect on the peer.
func TestEndpoints(t *testing.T) {
	p := newFakePeer()
	srv, _ := startServer(t, p, func(c *api.Config) { c.Token = testToken; c.MaxBodyBytes = 4096; c.MaxMessageBytes = 1000 })
	const js = "application/json"
	big := `{"room":"lobby","text":"` + strings.Repeat("x", 5000) + `"}`
	for _, tc := range []struct {
		name         string
		method, path string
		ctype, body  string
		status       int
		code         string // error code, "" for success
		check        func(t *testing.T, b []byte)
	}{
		{name: "self", method: "GET", path: "/v1/self", status: 200, check: func(t *testing.T, b []byte) {
			var s api.Self
			json.Unmarshal(b, &s)
			if s.ID != fakeID || s.Nick != "alice" || s.Addr != "127.0.0.1:7946" || s.Direct {
				t.Errorf("got %+v", s)
			}
		}},
		{name: "send to lobby", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"#lobby","text":"hi <b>"}`, status: 201, check: func(t *testing.T, b []byte) {
			var r api.SendResponse
			json.Unmarshal(b, &r)
			if r.ID != fakeID+"/1" || r.Room != "lobby" {
				t.Errorf("got %+v", r)
			}
			if h, _ := p.History("lobby", 10); len(h) != 1 || h[0].Text != "hi <b>" {
				t.Errorf("history %+v", h)
			}
		}},
		{name: "send default room", method: "POST", path: "/v1/messages", ctype: "application/json; charset=utf-8", body: `{"text":"two"}`, status: 201},
		{name: "send unknown room", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"nowhere","text":"x"}`, status: 404, code: api.ECodeNotFound},
		{name: "send bad room name", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"Bad Room!","text":"x"}`, status: 400, code: api.ECodeInvalid},
		{name: "send to a person", method: "POST", path: "/v1/messages", ctype: js, body: `{"to":"bob","text":"x"}`, status: 501, code: api.ECodeNotImplemented},
		{name: "send room and to", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"lobby","to":"bob","text":"x"}`, status: 400, code: api.ECodeInvalid},
		{name: "send empty", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"lobby","text":""}`, status: 400, code: api.ECodeInvalid},
		{name: "send bad JSON", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":`, status: 400, code: api.ECodeInvalid},
		{name: "send unknown field", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"lobby","text":"x","html":true}`, status: 400, code: api.ECodeInvalid},
		{name: "send two objects", method: "POST", path: "/v1/messages", ctype: js, body: `{"text":"x"}{"text":"y"}`, status: 400, code: api.ECodeInvalid},
		{name: "send not JSON", method: "POST", path: "/v1/messages", ctype: "text/plain", body: `hi`, status: 415, code: api.ECodeUnsupportedMedia},
		{name: "send no content type", method: "POST", path: "/v1/messages", body: `{"text":"x"}`, status: 415, code: api.ECodeUnsupportedMedia},
		{name: "send oversized body", method: "POST", path: "/v1/messages", ctype: js, body: big, status: 413, code: api.ECodeTooLarge},
		{name: "send oversized text", method: "POST", path: "/v1/messages", ctype: js, body: `{"text":"` + strings.Repeat("y", 1001) + `"}`, status: 413, code: api.ECodeTooLarge},
		{name: "send wrong method", method: "GET", path: "/v1/messages", status: 405, code: api.ECodeMethod},
		{name: "nick", method: "PUT", path: "/v1/nick", ctype: js, body: `{"nick":"alicia"}`, status: 200, check: func(t *testing.T, b []byte) {
			if p.Nick() != "alicia" {
				t.Errorf("nick is %q", p.Nick())
			}
		}},
		{name: "nick invalid", method: "PUT", path: "/v1/nick", ctype: js, body: `{"nick":"<script>"}`, status: 400, code: api.ECodeInvalid},
		{name: "nick bad JSON", method: "PUT", path: "/v1/nick", ctype: js, body: `nick`, status: 400, code: api.ECodeInvalid},
		{name: "rooms", method: "GET", path: "/v1/rooms", status: 200, check: func(t *testing.T, b []byte) {
			var rs []hearsay.RoomInfo
			json.Unmarshal(b, &rs)
			if len(rs) != 1 || rs[0].Name != "lobby" || !rs[0].Joined {
				t.Errorf("got %+v", rs)
			}
		}},
		{name: "join", method: "POST", path: "/v1/rooms", ctype: js, body: `{"room":"#Dev","mode":"total"}`, status: 201, check: func(t *testing.T, b []byte) {
			var ri hearsay.RoomInfo
			json.Unmarshal(b, &ri)
			if ri.Name != "dev" || ri.Mode != hearsay.OrderTotal || !ri.Joined {
				t.Errorf("got %+v", ri)
			}
		}},
		{name: "join again", method: "POST", path: "/v1/rooms", ctype: js, body: `{"room":"dev"}`, status: 200},
		{name: "join other mode", method: "POST", path: "/v1/rooms", ctype: js, body: `{"room":"dev","mode":"fifo"}`, status: 409, code: api.ECodeConflict},
		{name: "join bad mode", method: "POST", path: "/v1/rooms", ctype: js, body: `{"room":"x","mode":"chaos"}`, status: 400, code: api.ECodeInvalid},
		{name: "join bad name", method: "POST", path: "/v1/rooms", ctype: js, body: `{"room":"` + strings.Repeat("a", 65) + `"}`, status: 400, code: api.ECodeInvalid},
		{name: "send to dev", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"dev","text":"in dev"}`, status: 201},
		{name: "history", method: "GET", path: "/v1/rooms/dev/history?limit=5", status: 200, check: func(t *testing.T, b []byte) {
			var evs []hearsay.Event
			if err := json.Unmarshal(b, &evs); err != nil || len(evs) != 1 || evs[0].Text != "in dev" {
				t.Errorf("got %s (%v)", b, err)
			}
		}},
		{name: "history of #dev escaped", method: "GET", path: "/v1/rooms/%23dev/history", status: 200},
		{name: "history unknown room", method: "GET", path: "/v1/rooms/nowhere/history", status: 404, code: api.ECodeNotFound},
		{name: "history bad limit", method: "GET", path: "/v1/rooms/dev/history?limit=0", status: 400, code: api.ECodeInvalid},
		{name: "history huge limit", method: "GET", path: "/v1/rooms/dev/history?limit=100000", status: 400, code: api.ECodeInvalid},
		{name: "part", method: "DELETE", path: "/v1/rooms/dev", status: 204},
		{name: "part again", method: "DELETE", path: "/v1/rooms/dev", status: 404, code: api.ECodeNotFound},
		{name: "history of parted room", method: "GET", path: "/v1/rooms/dev/history", status: 200},
		{name: "send to parted room", method: "POST", path: "/v1/messages", ctype: js, body: `{"room":"dev","text":"x"}`, status: 404, code: api.ECodeNotFound},
		{name: "members", method: "GET", path: "/v1/members", status: 200, check: func(t *testing.T, b []byte) {
			var ms []hearsay.Member
			json.Unmarshal(b, &ms)
			if len(ms) != 1 || ms[0].Nick != "alicia" || ms[0].State != hearsay.StateAlive {
				t.Errorf("got %+v", ms)
			}
		}},
		{name: "contact", method: "POST", path: "/v1/contacts", ctype: js, body: `{"addr":"127.0.0.1:7947"}`, status: 200, check: func(t *testing.T, b []byte) {
			if len(p.joined) != 1 || p.joined[0] != "127.0.0.1:7947" {
				t.Errorf("joined %v", p.joined)
			}
		}},
		{name: "contact bad address", method: "POST", path: "/v1/contacts", ctype: js, body: `{"addr":"nowhere"}`, status: 400, code: api.ECodeInvalid},
		{name: "contact bad port", method: "POST", path: "/v1/contacts", ctype: js, body: `{"addr":"host:99999"}`, status: 400, code: api.ECodeInvalid},
		{name: "stats", method: "GET", path: "/v1/stats", status: 200, check: func(t *testing.T, b []byte) {
			var s api.StatsResponse
			json.Unmarshal(b, &s)
			if s.Sent != 3 || s.Members != 1 {
				t.Errorf("got %+v", s)
			}
		}},
		{name: "unknown endpoint", method: "GET", path: "/v1/nosuch", status: 404, code: api.ECodeNotFound},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, check: func(t *testing.T, b []byte) {
			if !bytes.Contains(b, []byte("hearsay_sent_total 3")) {
				t.Errorf("metrics lack hearsay_sent_total 3:\n%s", b)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b, _ := call(t, srv, testToken, tc.method, tc.path, tc.ctype, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			if tc.code != "" {
				if got := errCode(t, b); got != tc.code {
					t.Errorf("code %q, want %q", got, tc.code)
				}
			}
			if tc.check != nil {
				tc.check(t, b)
			}
		})
	}
}

// TestTokenRequired: every endpoint answers 401 without the token or
// with a wrong one, before it reads the body or touches the peer.
func TestTokenRequired(t *testing.T) {
	p := newFakePeer()
	srv, _ := startServer(t, p, func(c *api.Config) { c.Token = testToken })
	for _, ep := range []struct{ method, path string }{
		{"GET", "/v1/self"}, {"PUT", "/v1/nick"}, {"POST", "/v1/messages"}, {"GET", "/v1/events"},
		{"GET", "/v1/rooms"}, {"POST", "/v1/rooms"}, {"DELETE", "/v1/rooms/lobby"}, {"GET", "/v1/rooms/lobby/history"},
		{"GET", "/v1/members"}, {"POST", "/v1/contacts"}, {"GET", "/v1/stats"}, {"GET", "/v1/nosuch"}, {"GET", "/metrics"},
	} {
		for _, tok := range []string{"", "wrong", testToken + "x"} {
			status, b, h := call(t, srv, tok, ep.method, ep.path, "application/json", `{"room":"x","text":"x","nick":"mallory"}`)
			if status != http.StatusUnauthorized || errCode(t, b) != api.ECodeUnauthorized {
				t.Errorf("%s %s with token %q: %d %s, want 401 unauthorized", ep.method, ep.path, tok, status, b)
			}
			if h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: no WWW-Authenticate", ep.method, ep.path)
			}
		}
	}
	if p.Nick() != "alice" || len(p.joined) != 0 {
		t.Errorf("unauthorised requests changed the peer: nick %q, joined %v", p.Nick(), p.joined)
	}
	if h, _ := p.History("lobby", 10); len(h) != 0 {
		t.Errorf("unauthorised send stored %v", h)
	}
	// A query parameter is not a token (it would end up in logs).
	status, _, _ := call(t, srv, "", "GET", "/v1/self?token="+testToken, "", "")
	if status != http.StatusUnauthorized {
		t.Errorf("token in the query: status %d, want 401", status)
	}
}

// TestWebFilesAndHeaders: the UI is served without a token, with a CSP
// that allows no inline script, and holds no peer data.
func TestWebFilesAndHeaders(t *testing.T) {
	srv, _ := startServer(t, newFakePeer(), nil)
	for _, path := range []string{"/", "/app.js", "/style.css"} {
		status, b, h := call(t, srv, "", "GET", path, "", "")
		if status != 200 || len(b) == 0 {
			t.Fatalf("GET %s: %d", path, status)
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, h)
		}
		if bytes.Contains(b, []byte(fakeID)) {
			t.Errorf("GET %s without a token shows the peer ID", path)
		}
	}
	_, index, _ := call(t, srv, "", "GET", "/", "", "")
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|\son[a-z]+=`).Match(index) {
		t.Errorf("index.html has inline script:\n%s", index)
	}
	_, js, _ := call(t, srv, "", "GET", "/app.js", "", "")
	if bytes.Contains(js, []byte("innerHTML")) || bytes.Contains(js, []byte("insertAdjacentHTML")) || bytes.Contains(js, []byte("document.write")) {
		t.Errorf("app.js inserts HTML")
	}
	if status, b, _ := call(t, srv, "", "POST", "/", "application/json", "{}"); status != 405 || errCode(t, b) != api.ECodeMethod {
		t.Errorf("POST /: %d %s", status, b)
	}
}

// TestFilesAndDial: the token and address files are 0600, a client finds
// the peer through them, and after Close they are gone and Dial says no
// peer runs.
func TestFilesAndDial(t *testing.T) {
	dir := t.TempDir()
	p := newFakePeer()
	srv, err := api.Start(p, api.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{api.AddrFile, api.TokenFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if len(srv.Token()) < 32 {
		t.Errorf("token %q is short", srv.Token())
	}
	ctx := context.Background()
	c, err := api.Dial(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, api.SendRequest{Room: "lobby", Text: "via client"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(ctx, api.SendRequest{Room: "nowhere", Text: "x"})
	if api.ErrorCode(err) != api.ECodeNotFound {
		t.Errorf("send to unknown room: %v, want not_found", err)
	}
	// A stale address file (the peer crashed): Dial says no peer runs.
	addr, _ := os.ReadFile(filepath.Join(dir, api.AddrFile))
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, api.AddrFile)); !os.IsNotExist(err) {
		t.Errorf("address file left after Close: %v", err)
	}
	if _, err := api.Dial(ctx, dir); !errors.Is(err, api.ErrNoPeer) {
		t.Errorf("Dial after Close: %v, want ErrNoPeer", err)
	}
	os.WriteFile(filepath.Join(dir, api.AddrFile), addr, 0o600)
	os.WriteFile(filepath.Join(dir, api.TokenFile), []byte("x\n"), 0o600)
	if _, err := api.Dial(ctx, dir); !errors.Is(err, api.ErrNoPeer) || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("Dial with a stale address: %v, want ErrNoPeer", err)
	}
}

// collect reads an event stream until n events arrived, then drops the
// connection.
func collect(t *testing.T, c *api.Client, room, last string, n int) []api.Streamed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
	defer cancel()
	var got []api.Streamed
	done := errors.New("done")
	err := c.StreamEvents(ctx, room, last, func(s api.Streamed) error {
		got = append(got, s)
		if len(got) == n {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		t.Fatalf("stream: %v after %d events", err, len(got))
	}
	return got
}

// TestPeerErrorsClassified: the peer's errors reach the client with the
// code Config.ErrorCode gives them, and their message; without a code,
// the endpoint's default.
func TestPeerErrorsClassified(t *testing.T) {
	errConflict := errors.New("room exists with another ordering mode")
	errDown := errors.New("node has left the group")
	p := newFakePeer()
	srv, _ := startServer(t, p, func(c *api.Config) {
		c.Token = testToken
		c.ErrorCode = func(err error) string {
			if errors.Is(err, errConflict) {
				return api.ECodeConflict
			}
			return ""
		}
	})
	for _, tc := range []struct {
		err    error
		path   string
		body   string
		status int
	}{
		{fmt.Errorf("join #x: %w", errConflict), "/v1/rooms", `{"room":"x"}`, 409},
		{errDown, "/v1/rooms", `{"room":"x"}`, 503},
		{errDown, "/v1/contacts", `{"addr":"127.0.0.1:1"}`, 503},
	} {
		p.mu.Lock()
		p.joinErr = tc.err
		p.mu.Unlock()
		status, b, _ := call(t, srv, testToken, "POST", tc.path, "application/json", tc.body)
		var e api.Error
		json.Unmarshal(b, &e)
		if status != tc.status || !strings.Contains(e.Message, tc.err.Error()) {
			t.Errorf("POST %s with %v: %d %s, want %d and the peer's message", tc.path, tc.err, status, b, tc.status)
		}
	}
}
