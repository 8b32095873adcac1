// Package apitest is the conformance suite of the bootstrap service: every
// Store backend runs it (like testing/fstest for file systems), through the
// shared HTTP handler and the Go client, so that the backends cannot drift.
package apitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// Options tune the suite to a backend.
type Options struct {
	// Concurrency is the number of concurrent joins in the no-lost-update
	// test; 0 means 200. Slow backends (the Firestore emulator serializes
	// contended transactions slowly) may lower it.
	Concurrency int
}

// Clock is a settable clock for lease tests. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// Env is one running service for a test: the store behind the shared
// handler, an httptest server, and a client.
type Env struct {
	Store  bootstrapapi.Store
	Clock  *Clock
	Server *httptest.Server
	Client *bootstrapapi.Client
}

// NewEnv serves store through the shared handler on 127.0.0.1.
func NewEnv(t testing.TB, store bootstrapapi.Store, cfg bootstrapapi.HandlerConfig) *Env {
	t.Helper()
	clock := NewClock()
	if cfg.Now == nil {
		cfg.Now = clock.Now
	}
	srv := httptest.NewServer(bootstrapapi.NewHandler(store, cfg))
	t.Cleanup(srv.Close)
	client, err := bootstrapapi.NewClient([]string{srv.URL},
		bootstrapapi.WithHTTPClient(srv.Client()), bootstrapapi.WithAdminToken(cfg.AdminToken))
	if err != nil {
		t.Fatal(err)
	}
	return &Env{Store: store, Clock: clock, Server: srv, Client: client}
}

// Post sends a raw request and returns the status and body.
func (e *Env) Post(t testing.TB, path, contentType, body string) (int, string) {
	t.Helper()
	return e.Do(t, http.MethodPost, path, contentType, body, nil)
}

// Do sends a raw request with optional headers and returns status and body.
func (e *Env) Do(t testing.TB, method, path, contentType, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.Server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// Legacy posts a legacy request, requires 200 and decodes the state.
func (e *Env) Legacy(t testing.TB, op, body string) bootstrapapi.LegacyResponse {
	t.Helper()
	code, out := e.Post(t, "/"+op, "text/plain", body)
	if code != http.StatusOK {
		t.Fatalf("POST /%s %q: status %d, body %s", op, body, code, out)
	}
	var r bootstrapapi.LegacyResponse
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("POST /%s: decode %q: %v", op, out, err)
	}
	if r.Config.NumPeers != len(r.Peers) {
		t.Fatalf("POST /%s: numpeers %d but %d peers", op, r.Config.NumPeers, len(r.Peers))
	}
	return r
}

// Snapshot returns the raw state of the store.
func (e *Env) Snapshot(t testing.TB) *bootstrapapi.State {
	t.Helper()
	var s *bootstrapapi.State
	if err := e.Store.View(context.Background(), func(st *bootstrapapi.State) error {
		s = st.Clone()
		return nil
	}); err != nil {
		t.Fatalf("view: %v", err)
	}
	return s
}

// Run runs the conformance suite. newStore must return an empty store
// each time it is called; the suite calls it once per subtest.
func Run(t *testing.T, newStore func(t testing.TB) bootstrapapi.Store, opts Options) {
	if opts.Concurrency == 0 {
		opts.Concurrency = 200
	}
	env := func(t *testing.T, cfg bootstrapapi.HandlerConfig) *Env {
		// These subtests drive hundreds of requests from one address on
		// a frozen clock; RateLimit below tests the limit itself.
		cfg.RateLimit.Disabled = true
		return NewEnv(t, newStore(t), cfg)
	}
	t.Run("Defaults", func(t *testing.T) { testDefaults(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("LegacyFormat", func(t *testing.T) { testLegacyFormat(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("LegacyMaxPeers", func(t *testing.T) { testLegacyMaxPeers(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("LegacyRefill", func(t *testing.T) { testLegacyRefill(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("LegacyMalformed", func(t *testing.T) { testLegacyMalformed(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("LegacyCliChatShapes", func(t *testing.T) { testLegacyCliChatShapes(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("V1JoinListLeave", func(t *testing.T) { testV1(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("V1BadInput", func(t *testing.T) { testV1BadInput(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("AdminToken", func(t *testing.T) {
		testAdminToken(t, env(t, bootstrapapi.HandlerConfig{AdminToken: "s3cret"}))
	})
	t.Run("UpdateErrorCommitsNothing", func(t *testing.T) { testUpdateError(t, newStore(t)) })
	t.Run("ConcurrentJoinsLoseNothing", func(t *testing.T) {
		testConcurrentJoins(t, env(t, bootstrapapi.HandlerConfig{}), opts.Concurrency)
	})
	t.Run("ConcurrentJoinsNeverExceedMax", func(t *testing.T) {
		testConcurrentMax(t, env(t, bootstrapapi.HandlerConfig{}), opts.Concurrency)
	})
	runSigned(t, env, newStore)
}

func legacyBody(id, ts string) string {
	return fmt.Sprintf("%s nick-%s 127.0.0.1 %d tcp online %s", id, id, 7000+len(id), ts)
}

func testDefaults(t *testing.T, e *Env) {
	ctx := context.Background()
	cfg, err := e.Client.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg, bootstrapapi.DefaultConfig(); got != want {
		t.Errorf("config = %+v, want %+v", got, want)
	}
	l, err := e.Client.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Peers) != 0 || l.NumPeers != 0 {
		t.Errorf("fresh list = %+v, want empty", l)
	}
	if p, err := e.Client.Ping(ctx); err != nil || !p.OK {
		t.Errorf("ping = %+v, %v", p, err)
	}
	if code, body := e.Post(t, "/ping", "", ""); code != http.StatusOK {
		t.Errorf("legacy ping: %d %s", code, body)
	}
}

func testLegacyFormat(t *testing.T, e *Env) {
	code, body := e.Post(t, "/join", "text/plain", "a1 alice 127.0.0.1 7001 tcp online 1700000000")
	if code != http.StatusOK {
		t.Fatalf("join: %d %s", code, body)
	}
	want := `{"Config":{"maxpeers":3,"minrefillcandidates":10,"numpeers":1},"Peers":{"a1":{"id":"a1","name":"alice","ip":"127.0.0.1","port":"7001","protocol":"tcp","status":"online","timestamp":"1700000000"}}}`
	if strings.TrimSpace(body) != want {
		t.Errorf("join answer\n got %s\nwant %s", strings.TrimSpace(body), want)
	}
	r := e.Legacy(t, "list", "")
	if len(r.Peers) != 1 || r.Peers["a1"].Name != "alice" {
		t.Errorf("list = %+v", r)
	}
	r = e.Legacy(t, "config", "5 20")
	if r.Config.MaxPeers != 5 || r.Config.MinRefillCandidates != 20 || r.Config.NumPeers != 1 {
		t.Errorf("config answer = %+v", r.Config)
	}
	r = e.Legacy(t, "leave", "a1")
	if len(r.Peers) != 0 {
		t.Errorf("after leave = %+v", r)
	}
	e.Legacy(t, "join", legacyBody("b1", "1"))
	r = e.Legacy(t, "reset", "")
	if len(r.Peers) != 0 || r.Config.MaxPeers != 5 {
		t.Errorf("reset must drop peers and keep config: %+v", r)
	}
	code, body = e.Post(t, "/reset", "", "")
	if code != http.StatusOK || strings.TrimSpace(body) != `{"Config":{"maxpeers":5,"minrefillcandidates":20,"numpeers":0},"Peers":{}}` {
		t.Errorf("empty state answer: %d %s", code, body)
	}
}

func testLegacyMaxPeers(t *testing.T, e *Env) {
	for i := range 5 {
		e.Legacy(t, "join", legacyBody(fmt.Sprintf("p%d", i), fmt.Sprint(100+i)))
	}
	r := e.Legacy(t, "list", "")
	if len(r.Peers) != bootstrapapi.DefaultMaxPeers {
		t.Fatalf("stored %d peers, want maxpeers %d", len(r.Peers), bootstrapapi.DefaultMaxPeers)
	}
	for _, id := range []string{"p0", "p1", "p2"} {
		if _, ok := r.Peers[id]; !ok {
			t.Errorf("first three joins must be kept; %s missing from %v", id, r.Peers)
		}
	}
	// A stored id re-joining is a renewal, not a new entry.
	r = e.Legacy(t, "join", "p0 renamed 127.0.0.1 7000 tcp away 100")
	if len(r.Peers) != 3 || r.Peers["p0"].Name != "renamed" || r.Peers["p0"].Status != "away" {
		t.Errorf("rejoin of p0 = %+v", r.Peers["p0"])
	}
}

func testLegacyRefill(t *testing.T, e *Env) {
	for i, ts := range []string{"100", "300", "200"} {
		e.Legacy(t, "join", legacyBody(fmt.Sprintf("p%d", i), ts))
	}
	// Older than the newest (300): replaces p1.
	r := e.Legacy(t, "refill", legacyBody("c1", "250"))
	if _, ok := r.Peers["p1"]; ok {
		t.Errorf("p1 (newest) should be replaced: %v", r.Peers)
	}
	if r.Peers["c1"].Timestamp != "250" || len(r.Peers) != 3 {
		t.Errorf("c1 should be stored: %v", r.Peers)
	}
	// Newer than every stored entry: nothing changes.
	r = e.Legacy(t, "refill", legacyBody("c2", "999"))
	if _, ok := r.Peers["c2"]; ok || len(r.Peers) != 3 {
		t.Errorf("c2 is newer than all and must not be stored: %v", r.Peers)
	}
	// Equal to the newest: the stored entry wins ties.
	r = e.Legacy(t, "refill", legacyBody("c3", "250"))
	if _, ok := r.Peers["c3"]; ok {
		t.Errorf("tie must keep the stored entry: %v", r.Peers)
	}
	// Below maxpeers refill adds.
	e.Legacy(t, "leave", "p0")
	r = e.Legacy(t, "refill", legacyBody("c4", "5000"))
	if _, ok := r.Peers["c4"]; !ok {
		t.Errorf("refill below maxpeers must add: %v", r.Peers)
	}
}

func testLegacyMalformed(t *testing.T, e *Env) {
	e.Legacy(t, "join", legacyBody("keep", "1"))
	before := e.Snapshot(t)
	cases := []struct{ op, body string }{
		{"join", ""},
		{"join", "a b c"},
		{"join", " name 127.0.0.1 7000 tcp online 1"},
		{"join", "id name 127.0.0.1 7000 tcp online 1\x00"},
		{"join", "id name 127.0.0.1 7000 tcp online " + strings.Repeat("9", bootstrapapi.MaxLegacyTimestampLen+1)},
		{"join", "id name 127.0.0.1 70000 tcp online 1"},
		{"join", "id name 127.0.0.1 port tcp online 1"},
		{"join", "id  name 127.0.0.1 7000 tcp online 1 "},
		{"join", "id name 127.0.0.1 7000 tcp online 1 extra"},
		{"join", "id name not_a_host! 7000 tcp online 1"},
		{"join", "id\x1b[31m name 127.0.0.1 7000 tcp online 1"},
		{"refill", "x y"},
		{"leave", ""},
		{"leave", "a b"},
		{"config", "3"},
		{"config", "x 10"},
		{"config", "3 y"},
		{"config", "0 10"},
		{"config", "99999999 10"},
		{"config", "-1 10"},
	}
	for _, c := range cases {
		code, body := e.Post(t, "/"+c.op, "text/plain", c.body)
		if code != http.StatusBadRequest {
			t.Errorf("POST /%s %q: status %d, want 400 (%s)", c.op, c.body, code, body)
			continue
		}
		var apiErr bootstrapapi.Error
		if err := json.Unmarshal([]byte(body), &apiErr); err != nil || apiErr.Code != bootstrapapi.ECodeInvalid || apiErr.Message == "" {
			t.Errorf("POST /%s %q: error body %q, want {code:invalid,message}", c.op, c.body, body)
		}
	}
	after := e.Snapshot(t)
	if len(after.Peers) != len(before.Peers) || after.Config != before.Config {
		t.Errorf("malformed input changed state: before %+v after %+v", before, after)
	}
}

// testLegacyCliChatShapes sends the bodies real cli-chat clients send: an
// empty status (its Refill sends the Status field its peers never set), an
// empty timestamp (peers created without one), and timestamps that only
// compare correctly as strings, which is how the original server ordered
// them. Each must be accepted by join and refill and behave as there.
func testLegacyCliChatShapes(t *testing.T, e *Env) {
	// Empty status: "id name ip port tcp  TIMESTAMP".
	r := e.Legacy(t, "join", "s1 sam 127.0.0.1 7001 tcp  1700000000")
	if p := r.Peers["s1"]; p.Status != "" || p.Timestamp != "1700000000" || p.Name != "sam" {
		t.Errorf("empty-status join stored %+v", p)
	}
	// Empty timestamp: a trailing empty field.
	r = e.Legacy(t, "join", "s2 tom 127.0.0.1 7002 tcp online ")
	if p, ok := r.Peers["s2"]; !ok || p.Timestamp != "" || p.Status != "online" {
		t.Errorf("empty-timestamp join stored %+v (present %v)", p, ok)
	}
	// Both empty, as a fresh cli-chat peer's Refill sends it.
	r = e.Legacy(t, "refill", "s3 una 127.0.0.1 7003 tcp  ")
	if _, ok := r.Peers["s3"]; !ok || len(r.Peers) != 3 {
		t.Errorf("refill below maxpeers with empty fields must add: %v", r.Peers)
	}
	// The v1 view of an entry without a timestamp is still well formed.
	l, err := e.Client.List(context.Background(), 0)
	if err != nil || l.NumPeers != 3 {
		t.Fatalf("v1 list after legacy joins: %+v, %v", l, err)
	}

	// String order: "9" > "10000" as strings, so the entry with "9" is
	// the newest and a refill with "10000" replaces it; as numbers it
	// would not.
	e.Legacy(t, "reset", "")
	e.Legacy(t, "join", legacyBody("a", "9"))
	e.Legacy(t, "join", legacyBody("b", "100"))
	e.Legacy(t, "join", legacyBody("c", ""))
	r = e.Legacy(t, "refill", legacyBody("d", "10000"))
	if _, ok := r.Peers["a"]; ok {
		t.Errorf(`"9" is the newest as a string and must be replaced: %v`, r.Peers)
	}
	if r.Peers["d"].Timestamp != "10000" {
		t.Errorf("d must be stored: %v", r.Peers)
	}
	// An empty timestamp sorts before every other: a refill with one
	// replaces the newest ("100" < "10000": d is the newest now).
	r = e.Legacy(t, "refill", "e eve 127.0.0.1 7005 tcp  ")
	if _, ok := r.Peers["d"]; ok {
		t.Errorf("empty-timestamp refill must replace the newest, d: %v", r.Peers)
	}
	if _, ok := r.Peers["e"]; !ok {
		t.Errorf("e must be stored: %v", r.Peers)
	}
	// A non-numeric timestamp is a string like any other: "x" > "100".
	r = e.Legacy(t, "refill", legacyBody("f", "x"))
	if _, ok := r.Peers["f"]; ok {
		t.Errorf(`"x" is newer than every stored stamp and must not be stored: %v`, r.Peers)
	}
	// Renewal with empty fields keeps the entry and its new fields.
	r = e.Legacy(t, "join", "b  127.0.0.1 7000 tcp  ")
	if p := r.Peers["b"]; p.Name != "" || p.Timestamp != "" {
		t.Errorf("renewal must take the new (empty) fields: %+v", p)
	}
	// An entry without an address shows none in v1.
	e.Legacy(t, "leave", "b")
	e.Legacy(t, "join", "g gil   tcp online 5")
	l, err = e.Client.List(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l.Peers {
		if c.ID == "g" && c.Addr != "" {
			t.Errorf("entry without ip and port has v1 addr %q", c.Addr)
		}
	}
	// leave and list take their bodies as before.
	if r = e.Legacy(t, "leave", "g"); len(r.Peers) != 2 {
		t.Errorf("after leave: %v", r.Peers)
	}
}

func testV1(t *testing.T, e *Env) {
	ctx := context.Background()
	max := 50
	if _, err := e.Client.SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &max}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{
			ID: fmt.Sprintf("peer%02d", i), Nick: "n", Addr: fmt.Sprintf("127.0.0.1:%d", 7000+i), Protocol: "hearsay/1"})
		if err != nil {
			t.Fatal(err)
		}
		if !r.Stored || r.Renewed || r.Contact == nil || r.NumPeers != i+1 {
			t.Fatalf("join %d = %+v", i, r)
		}
	}
	r, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: "peer00", Nick: "renamed", Addr: "[::1]:9000"})
	if err != nil || !r.Renewed || r.Contact.Nick != "renamed" || r.Contact.Addr != "[::1]:9000" {
		t.Fatalf("renew = %+v, %v", r, err)
	}
	all, err := e.Client.List(ctx, 0)
	if err != nil || len(all.Peers) != 10 || all.NumPeers != 10 {
		t.Fatalf("list all = %d peers, %v", len(all.Peers), err)
	}
	seen := map[string]bool{}
	for range 20 {
		some, err := e.Client.List(ctx, 3)
		if err != nil || len(some.Peers) != 3 || some.NumPeers != 10 {
			t.Fatalf("list 3 = %+v, %v", some, err)
		}
		for _, p := range some.Peers {
			seen[p.ID] = true
		}
	}
	if len(seen) < 5 {
		t.Errorf("list n=3 twenty times returned only %d distinct peers; want a random subset", len(seen))
	}
	lr, err := e.Client.Leave(ctx, "peer03")
	if err != nil || !lr.Removed || lr.NumPeers != 9 {
		t.Fatalf("leave = %+v, %v", lr, err)
	}
	lr, err = e.Client.Leave(ctx, "peer03")
	if err != nil || lr.Removed {
		t.Fatalf("second leave = %+v, %v", lr, err)
	}
	rr, err := e.Client.Reset(ctx)
	if err != nil || rr.Removed != 9 || rr.Config.MaxPeers != 50 {
		t.Fatalf("reset = %+v, %v", rr, err)
	}
}

func testV1BadInput(t *testing.T, e *Env) {
	ctx := context.Background()
	if _, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: "keep", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	before := e.Snapshot(t)
	huge := strings.Repeat("x", bootstrapapi.DefaultMaxBodyBytes+10)
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
	}{
		{"wrong method", http.MethodGet, "/v1/join", "", "", 405},
		{"delete", http.MethodDelete, "/v1/reset", "", "", 405},
		{"legacy GET", http.MethodGet, "/join", "", "", 405},
		{"wrong content", http.MethodPost, "/v1/join", "text/plain", `{"id":"x","addr":"127.0.0.1:1"}`, 415},
		{"form content", http.MethodPost, "/v1/join", "application/x-www-form-urlencoded", "id=x", 415},
		{"too large", http.MethodPost, "/v1/join", "application/json", `{"id":"` + huge + `"}`, 413},
		{"too large legacy", http.MethodPost, "/join", "text/plain", huge, 413},
		{"unknown field", http.MethodPost, "/v1/join", "application/json", `{"id":"x","addr":"127.0.0.1:1","admin":true}`, 400},
		{"not json", http.MethodPost, "/v1/join", "application/json", `id=x`, 400},
		{"trailing data", http.MethodPost, "/v1/join", "application/json", `{"id":"x","addr":"127.0.0.1:1"} {}`, 400},
		{"empty", http.MethodPost, "/v1/join", "application/json", ``, 400},
		{"no id", http.MethodPost, "/v1/join", "application/json", `{"addr":"127.0.0.1:1"}`, 400},
		{"bad id", http.MethodPost, "/v1/join", "application/json", `{"id":"a b","addr":"127.0.0.1:1"}`, 400},
		{"long id", http.MethodPost, "/v1/join", "application/json", `{"id":"` + strings.Repeat("a", 200) + `","addr":"127.0.0.1:1"}`, 400},
		{"no port", http.MethodPost, "/v1/join", "application/json", `{"id":"x","addr":"127.0.0.1"}`, 400},
		{"port 0", http.MethodPost, "/v1/join", "application/json", `{"id":"x","addr":"127.0.0.1:0"}`, 400},
		{"bad host", http.MethodPost, "/v1/join", "application/json", `{"id":"x","addr":"ex ample:80"}`, 400},
		{"control nick", http.MethodPost, "/v1/join", "application/json", `{"id":"x","nick":"a\u001b[2J","addr":"127.0.0.1:1"}`, 400},
		{"wrong type", http.MethodPost, "/v1/join", "application/json", `{"id":5,"addr":"127.0.0.1:1"}`, 400},
		{"huge count", http.MethodGet, "/v1/list?n=99999999999", "", "", 400},
		{"negative count", http.MethodGet, "/v1/list?n=-1", "", "", 400},
		{"huge count body", http.MethodPost, "/v1/list", "application/json", `{"n":100000000}`, 400},
		{"huge maxpeers", http.MethodPost, "/v1/config", "application/json", `{"max_peers":100000000}`, 400},
		{"zero ttl", http.MethodPost, "/v1/config", "application/json", `{"lease_ttl_seconds":0}`, 400},
		{"unknown path", http.MethodPost, "/v1/nope", "", "", 404},
		{"deep path", http.MethodPost, "/a/b/v1/join", "", "", 404},
		{"leave bad id", http.MethodPost, "/v1/leave", "application/json", `{"id":""}`, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.Do(t, c.method, c.path, c.ctype, c.body, nil)
			if code != c.status {
				t.Fatalf("%s %s: status %d, want %d (%s)", c.method, c.path, code, c.status, body)
			}
			var apiErr bootstrapapi.Error
			if err := json.Unmarshal([]byte(body), &apiErr); err != nil || apiErr.Code == "" || apiErr.Message == "" {
				t.Errorf("error body %q is not {code,message}", body)
			}
			if bootstrapapi.ErrorStatus(apiErr.Code) != code {
				t.Errorf("code %q maps to %d, answered %d", apiErr.Code, bootstrapapi.ErrorStatus(apiErr.Code), code)
			}
		})
	}
	after := e.Snapshot(t)
	if len(after.Peers) != len(before.Peers) || after.Config != before.Config {
		t.Errorf("bad input changed state: before %+v after %+v", before, after)
	}
	if _, err := e.Client.Ping(ctx); err != nil {
		t.Errorf("server down after bad input: %v", err)
	}
}

func testLeases(t *testing.T, e *Env) {
	ctx := context.Background()
	ttl := int64(30)
	if _, err := e.Client.SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	mustJoin := func(id string) {
		t.Helper()
		if r, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: id, Addr: "127.0.0.1:1"}); err != nil || !r.Stored {
			t.Fatalf("join %s = %+v, %v", id, r, err)
		}
	}
	mustJoin("old")
	e.Clock.Advance(20 * time.Second)
	mustJoin("young")
	e.Clock.Advance(15 * time.Second) // old expired at 30 s, young lives to 50 s
	l, err := e.Client.List(ctx, 0)
	if err != nil || len(l.Peers) != 1 || l.Peers[0].ID != "young" || l.NumPeers != 1 {
		t.Fatalf("after expiry list = %+v, %v", l, err)
	}
	if r := e.Legacy(t, "list", ""); len(r.Peers) != 1 {
		t.Errorf("legacy list shows expired entries: %+v", r.Peers)
	}
	// An expired entry frees its slot: fill to max with live ones.
	mustJoin("a")
	mustJoin("b")
	if r, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: "c", Addr: "127.0.0.1:1"}); err != nil || r.Stored {
		t.Fatalf("join over max = %+v, %v; want not stored", r, err)
	}
	// Renewal keeps a peer alive past its first TTL.
	for range 3 {
		e.Clock.Advance(25 * time.Second)
		mustJoin("young")
	}
	l, err = e.Client.List(ctx, 0)
	if err != nil || len(l.Peers) != 1 || l.Peers[0].ID != "young" {
		t.Fatalf("renewed list = %+v, %v", l, err)
	}
	if l.Peers[0].Expires.Sub(e.Clock.Now()) != 30*time.Second {
		t.Errorf("lease ends %v after now, want 30s", l.Peers[0].Expires.Sub(e.Clock.Now()))
	}
}

func testAdminToken(t *testing.T, e *Env) {
	ctx := context.Background()
	if _, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: "p", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, ctype, body string }{
		{http.MethodPost, "/v1/reset", "", ""},
		{http.MethodPost, "/v1/config", "application/json", `{"max_peers":9}`},
		{http.MethodPost, "/reset", "", ""},
		{http.MethodPost, "/config", "", "9 9"},
	} {
		for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}} {
			code, body := e.Do(t, c.method, c.path, c.ctype, c.body, hdr)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with %v: %d %s, want 401", c.method, c.path, hdr, code, body)
			}
		}
	}
	if s := e.Snapshot(t); len(s.Peers) != 1 || s.Config != bootstrapapi.DefaultConfig() {
		t.Fatalf("refused admin calls changed state: %+v", s)
	}
	// Reads stay open; the right token works.
	if _, err := e.Client.Config(ctx); err != nil {
		t.Errorf("config read needs no token: %v", err)
	}
	code, _ := e.Do(t, http.MethodPost, "/config", "", "9 9", map[string]string{"Authorization": "Bearer s3cret"})
	if code != http.StatusOK {
		t.Errorf("legacy config with token: %d", code)
	}
	if r, err := e.Client.Reset(ctx); err != nil || r.Removed != 1 {
		t.Errorf("reset with token = %+v, %v", r, err)
	}
}

func testUpdateError(t *testing.T, s bootstrapapi.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Update(ctx, func(st *bootstrapapi.State) error {
		st.Peers["ghost"] = bootstrapapi.Record{ID: "ghost", ExpiresUnixMilli: 1 << 60}
		st.Config.MaxPeers = 99
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the function's error", err)
	}
	if err := s.View(ctx, func(st *bootstrapapi.State) error {
		if len(st.Peers) != 0 || st.Config.MaxPeers == 99 {
			return fmt.Errorf("failed update committed: %+v", st)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func runConcurrent(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i); err != nil {
				failed.Add(1)
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent call: %v", err)
	}
}

func testConcurrentJoins(t *testing.T, e *Env, n int) {
	ctx := context.Background()
	max := 1000
	if _, err := e.Client.SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &max}); err != nil {
		t.Fatal(err)
	}
	runConcurrent(t, n, func(i int) error {
		r, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: fmt.Sprintf("c%04d", i), Addr: "127.0.0.1:9"})
		if err == nil && !r.Stored {
			err = fmt.Errorf("join c%04d not stored below max", i)
		}
		return err
	})
	l, err := e.Client.List(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Peers) != n || l.NumPeers != n {
		t.Errorf("after %d concurrent joins: %d peers listed, numpeers %d", n, len(l.Peers), l.NumPeers)
	}
	if r := e.Legacy(t, "list", ""); r.Config.NumPeers != n {
		t.Errorf("legacy numpeers %d, want %d", r.Config.NumPeers, n)
	}
}

func testConcurrentMax(t *testing.T, e *Env, n int) {
	ctx := context.Background()
	max := 7
	if _, err := e.Client.SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &max}); err != nil {
		t.Fatal(err)
	}
	n = min(n, 60)
	var stored atomic.Int64
	runConcurrent(t, n, func(i int) error {
		var (
			r   bootstrapapi.JoinResponse
			err error
		)
		if i%2 == 0 {
			r, err = e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: fmt.Sprintf("m%03d", i), Addr: "127.0.0.1:9"})
		} else {
			var code int
			var body string
			code, body = e.Post(t, "/join", "", legacyBody(fmt.Sprintf("m%03d", i), "100"))
			if code != http.StatusOK {
				return fmt.Errorf("legacy join: %d %s", code, body)
			}
			var lr bootstrapapi.LegacyResponse
			if err := json.Unmarshal([]byte(body), &lr); err != nil {
				return err
			}
			_, r.Stored = lr.Peers[fmt.Sprintf("m%03d", i)]
		}
		if r.Stored {
			stored.Add(1)
		}
		return err
	})
	s := e.Snapshot(t)
	if len(s.Peers) != max || stored.Load() != int64(max) {
		t.Errorf("%d concurrent joins with maxpeers %d: %d stored, %d told stored", n, max, len(s.Peers), stored.Load())
	}
}
