package apitest

// The ownership half of the suite: signed requests, replays, legacy
// entries that must not crowd out signed ones, and the per-client rate
// limit. Each subtest is an attack that worked before requests were
// signed, played over a real HTTP connection against the backend.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// Key returns the deterministic test identity number n.
func Key(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

// ID returns the peer ID of a test identity.
func ID(priv ed25519.PrivateKey) string {
	return bootstrapapi.PeerIDFromKey(priv.Public().(ed25519.PublicKey))
}

// SignedClient returns a client of the service that signs with priv and
// stamps requests with the environment's clock.
func (e *Env) SignedClient(t testing.TB, priv ed25519.PrivateKey) *bootstrapapi.Client {
	t.Helper()
	c, err := bootstrapapi.NewClient([]string{e.Server.URL}, bootstrapapi.WithHTTPClient(e.Server.Client()),
		bootstrapapi.WithSigner(bootstrapapi.NewKeySigner(priv)), bootstrapapi.WithClock(e.Clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// PostJSON posts v as JSON to path and returns the status and body.
func (e *Env) PostJSON(t testing.TB, path string, v any) (int, string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.Post(t, path, "application/json", string(b))
}

// wantError checks an error answer's status and code.
func wantError(t testing.TB, what string, code int, body string, status int, ecode string) {
	t.Helper()
	var e bootstrapapi.Error
	if err := json.Unmarshal([]byte(body), &e); code != status || err != nil || e.Code != ecode {
		t.Errorf("%s: %d %s, want %d with code %q", what, code, strings.TrimSpace(body), status, ecode)
	}
	if bootstrapapi.ErrorStatus(ecode) != status {
		t.Errorf("%s: code %q maps to %d in the error table, want %d", what, ecode, bootstrapapi.ErrorStatus(ecode), status)
	}
}

// signedJoin builds a join for priv's ID signed at ts.
func signedJoin(priv ed25519.PrivateKey, op, addr string, ts int64) bootstrapapi.JoinRequest {
	req := bootstrapapi.JoinRequest{ID: ID(priv), Nick: "n", Addr: addr, Protocol: "hearsay/1"}
	bootstrapapi.SignJoin(bootstrapapi.NewKeySigner(priv), op, &req, ts)
	return req
}

func signedLeave(priv ed25519.PrivateKey, id string, ts int64) bootstrapapi.LeaveRequest {
	req := bootstrapapi.LeaveRequest{ID: id}
	bootstrapapi.SignLeave(bootstrapapi.NewKeySigner(priv), &req, ts)
	return req
}

func runSigned(t *testing.T, env func(*testing.T, bootstrapapi.HandlerConfig) *Env, newStore func(testing.TB) bootstrapapi.Store) {
	t.Run("SignedLeaveOfAnotherRefused", func(t *testing.T) { testForgedLeave(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("SignedEntryNotOverwritten", func(t *testing.T) { testOverwrite(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("SignedReplayRefused", func(t *testing.T) { testReplay(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("SignedBadAuth", func(t *testing.T) { testBadAuth(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("LegacyCannotCrowdOutSigned", func(t *testing.T) { testCrowdOut(t, env(t, bootstrapapi.HandlerConfig{})) })
	t.Run("RateLimit", func(t *testing.T) {
		testRateLimit(t, NewEnv(t, newStore(t), bootstrapapi.HandlerConfig{
			RateLimit: bootstrapapi.RateLimit{PerSecond: 1, Burst: 3}}))
	})
}

func mustStored(t *testing.T, what string, r bootstrapapi.JoinResponse, err error) {
	t.Helper()
	if err != nil || !r.Stored || r.Contact == nil || !r.Contact.Signed {
		t.Fatalf("%s = %+v, %v; want stored and signed", what, r, err)
	}
}

func testForgedLeave(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, mallory := Key(1), Key(2)
	aliceID := ID(alice)
	// One client for alice: it stamps each request later than the last,
	// even on the frozen test clock.
	ca := e.SignedClient(t, alice)
	r, err := ca.Join(ctx, bootstrapapi.JoinRequest{ID: aliceID, Addr: "127.0.0.1:7001"})
	mustStored(t, "alice's signed join", r, err)

	code, body := e.PostJSON(t, "/v1/leave", bootstrapapi.LeaveRequest{ID: aliceID})
	wantError(t, "unsigned v1 leave of alice", code, body, http.StatusForbidden, bootstrapapi.ECodeForbidden)
	code, body = e.Post(t, "/leave", "text/plain", aliceID)
	wantError(t, "legacy leave of alice", code, body, http.StatusForbidden, bootstrapapi.ECodeForbidden)
	code, body = e.PostJSON(t, "/v1/leave", signedLeave(mallory, aliceID, e.Clock.Now().UnixMilli()))
	wantError(t, "leave of alice signed by mallory", code, body, http.StatusUnauthorized, bootstrapapi.ECodeBadSignature)
	// Alice's public key with mallory's signature.
	forged := signedLeave(mallory, aliceID, e.Clock.Now().UnixMilli())
	forged.Auth.Key = alice.Public().(ed25519.PublicKey)
	code, body = e.PostJSON(t, "/v1/leave", forged)
	wantError(t, "leave with alice's key and mallory's signature", code, body, http.StatusUnauthorized, bootstrapapi.ECodeBadSignature)
	if _, err := e.SignedClient(t, mallory).Leave(ctx, aliceID); err == nil {
		t.Errorf("a signing client sent a leave for an id that is not its own")
	}

	if s := e.Snapshot(t); s.Peers[aliceID].IP != "127.0.0.1" || !s.Peers[aliceID].Signed() {
		t.Fatalf("forged leaves changed alice's entry: %+v", s.Peers)
	}
	lr, err := ca.Leave(ctx, aliceID)
	if err != nil || !lr.Removed {
		t.Fatalf("alice's own signed leave = %+v, %v", lr, err)
	}
}

func testOverwrite(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, mallory, bob := Key(1), Key(2), Key(3)
	aliceID, bobID := ID(alice), ID(bob)
	r, err := e.SignedClient(t, alice).Join(ctx, bootstrapapi.JoinRequest{ID: aliceID, Addr: "127.0.0.1:7001"})
	mustStored(t, "alice's signed join", r, err)

	for _, op := range []string{"join", "refill"} {
		code, body := e.PostJSON(t, "/v1/"+op, bootstrapapi.JoinRequest{ID: aliceID, Addr: "203.0.113.66:666"})
		wantError(t, "unsigned v1 "+op+" over alice", code, body, http.StatusForbidden, bootstrapapi.ECodeForbidden)
		code, body = e.Post(t, "/"+op, "text/plain", aliceID+" evil 203.0.113.66 666 tcp online 0")
		wantError(t, "legacy "+op+" over alice", code, body, http.StatusForbidden, bootstrapapi.ECodeForbidden)
		forged := signedJoin(mallory, op, "203.0.113.66:666", e.Clock.Now().UnixMilli())
		forged.ID = aliceID
		code, body = e.PostJSON(t, "/v1/"+op, forged)
		wantError(t, "mallory-signed "+op+" as alice", code, body, http.StatusUnauthorized, bootstrapapi.ECodeBadSignature)
	}
	if s := e.Snapshot(t); s.Peers[aliceID].IP != "127.0.0.1" || s.Peers[aliceID].Port != "7001" {
		t.Fatalf("alice's entry was overwritten: %+v", s.Peers[aliceID])
	}

	// An unsigned squatter on bob's ID gives way to bob's signed join,
	// which does not inherit the squatter's (chosen) timestamp.
	e.Legacy(t, "join", bobID+" squatter 203.0.113.66 666 tcp online 0")
	r, err = e.SignedClient(t, bob).Join(ctx, bootstrapapi.JoinRequest{ID: bobID, Addr: "127.0.0.1:7003"})
	mustStored(t, "bob's signed join over a squatter", r, err)
	if r.Contact.Addr != "127.0.0.1:7003" || r.Contact.Since.Unix() == 0 {
		t.Errorf("bob's entry after taking over = %+v", r.Contact)
	}
	code, body := e.Post(t, "/join", "text/plain", bobID+" squatter 203.0.113.66 666 tcp online 0")
	wantError(t, "squatter back over bob", code, body, http.StatusForbidden, bootstrapapi.ECodeForbidden)
}

func testReplay(t *testing.T, e *Env) {
	ctx := context.Background()
	alice, bob := Key(1), Key(2)
	aliceID := ID(alice)
	join := signedJoin(alice, "join", "127.0.0.1:7001", e.Clock.Now().UnixMilli())
	if code, body := e.PostJSON(t, "/v1/join", join); code != http.StatusOK {
		t.Fatalf("signed join: %d %s", code, body)
	}
	code, body := e.PostJSON(t, "/v1/join", join)
	wantError(t, "replayed join", code, body, http.StatusConflict, bootstrapapi.ECodeReplayed)

	// A renewal with a later timestamp is accepted; an earlier one is not.
	e.Clock.Advance(time.Second)
	renew := signedJoin(alice, "join", "127.0.0.1:7001", e.Clock.Now().UnixMilli())
	if code, body := e.PostJSON(t, "/v1/join", renew); code != http.StatusOK {
		t.Fatalf("renewal: %d %s", code, body)
	}
	older := signedJoin(alice, "join", "127.0.0.1:7001", join.Auth.TS+1)
	code, body = e.PostJSON(t, "/v1/join", older)
	wantError(t, "join older than the last accepted", code, body, http.StatusConflict, bootstrapapi.ECodeReplayed)

	// After alice leaves, neither her leave nor her last join replays.
	e.Clock.Advance(time.Second)
	leave := signedLeave(alice, aliceID, e.Clock.Now().UnixMilli())
	if code, body := e.PostJSON(t, "/v1/leave", leave); code != http.StatusOK || !strings.Contains(body, `"removed":true`) {
		t.Fatalf("signed leave: %d %s", code, body)
	}
	code, body = e.PostJSON(t, "/v1/leave", leave)
	wantError(t, "replayed leave", code, body, http.StatusConflict, bootstrapapi.ECodeReplayed)
	code, body = e.PostJSON(t, "/v1/join", renew)
	wantError(t, "join replayed after leave", code, body, http.StatusConflict, bootstrapapi.ECodeReplayed)

	// After bob's lease expires, his join does not bring him back; once
	// the clock-skew window has passed it is stale, and the tombstone is
	// gone.
	bobJoin := signedJoin(bob, "join", "127.0.0.1:7002", e.Clock.Now().UnixMilli())
	if code, body := e.PostJSON(t, "/v1/join", bobJoin); code != http.StatusOK {
		t.Fatalf("bob's join: %d %s", code, body)
	}
	e.Clock.Advance(bootstrapapi.DefaultLeaseTTL + time.Second)
	code, body = e.PostJSON(t, "/v1/join", bobJoin)
	wantError(t, "join replayed after the lease expired", code, body, http.StatusConflict, bootstrapapi.ECodeReplayed)
	e.Clock.Advance(bootstrapapi.MaxClockSkew)
	code, body = e.PostJSON(t, "/v1/join", bobJoin)
	wantError(t, "join replayed after the window", code, body, http.StatusUnauthorized, bootstrapapi.ECodeStale)
	if l, err := e.Client.List(ctx, 0); err != nil || len(l.Peers) != 0 {
		t.Fatalf("replays brought entries back: %+v, %v", l, err)
	}
	// The peers themselves can come back with fresh requests, and the
	// update that stores bob drops the tombstones that protect nothing.
	r, err := e.SignedClient(t, bob).Join(ctx, bootstrapapi.JoinRequest{ID: ID(bob), Addr: "127.0.0.1:7002"})
	mustStored(t, "bob's fresh join", r, err)
	if s := e.Snapshot(t); len(s.Tombstones) != 0 {
		t.Errorf("tombstones older than the window are kept: %v", s.Tombstones)
	}
}

func testBadAuth(t *testing.T, e *Env) {
	alice := Key(1)
	now := e.Clock.Now()
	skew := bootstrapapi.MaxClockSkew
	tampered := signedJoin(alice, "join", "127.0.0.1:7001", now.UnixMilli())
	tampered.Addr = "203.0.113.66:666"
	shortKey := signedJoin(alice, "join", "127.0.0.1:7001", now.UnixMilli())
	shortKey.Auth.Key = shortKey.Auth.Key[:31]
	shortSig := signedJoin(alice, "join", "127.0.0.1:7001", now.UnixMilli())
	shortSig.Auth.Sig = shortSig.Auth.Sig[:10]
	cases := []struct {
		name, path string
		req        any
		status     int
		code       string
	}{
		{"past the window", "/v1/join", signedJoin(alice, "join", "127.0.0.1:7001", now.Add(-skew-time.Millisecond).UnixMilli()), 401, bootstrapapi.ECodeStale},
		{"ahead of the window", "/v1/join", signedJoin(alice, "join", "127.0.0.1:7001", now.Add(skew+time.Millisecond).UnixMilli()), 401, bootstrapapi.ECodeStale},
		{"timestamp zero", "/v1/join", signedJoin(alice, "join", "127.0.0.1:7001", 0), 401, bootstrapapi.ECodeStale},
		{"tampered addr", "/v1/join", tampered, 401, bootstrapapi.ECodeBadSignature},
		{"join signature on refill", "/v1/refill", signedJoin(alice, "join", "127.0.0.1:7001", now.UnixMilli()), 401, bootstrapapi.ECodeBadSignature},
		{"join signature on leave", "/v1/leave", signedJoin(alice, "join", "127.0.0.1:7001", now.UnixMilli()), 400, bootstrapapi.ECodeInvalid},
		{"short key", "/v1/join", shortKey, 401, bootstrapapi.ECodeBadSignature},
		{"short signature", "/v1/join", shortSig, 401, bootstrapapi.ECodeBadSignature},
		{"auth not an object", "/v1/join", json.RawMessage(`{"id":"a","addr":"127.0.0.1:1","auth":5}`), 400, bootstrapapi.ECodeInvalid},
		{"key not base64", "/v1/join", json.RawMessage(`{"id":"a","addr":"127.0.0.1:1","auth":{"key":"!!","ts":1,"sig":""}}`), 400, bootstrapapi.ECodeInvalid},
		{"unknown auth field", "/v1/leave", json.RawMessage(`{"id":"a","auth":{"key":"","ts":1,"sig":"","alg":"none"}}`), 400, bootstrapapi.ECodeInvalid},
	}
	for _, c := range cases {
		code, body := e.PostJSON(t, c.path, c.req)
		wantError(t, c.name, code, body, c.status, c.code)
	}
	// At the edge of the window the request is accepted.
	edge := signedJoin(alice, "join", "127.0.0.1:7001", now.Add(-skew).UnixMilli())
	if code, body := e.PostJSON(t, "/v1/join", edge); code != http.StatusOK {
		t.Errorf("join at exactly -%s: %d %s", skew, code, body)
	}
	if s := e.Snapshot(t); len(s.Peers) != 1 {
		t.Errorf("refused requests changed the state: %+v", s.Peers)
	}
}

// testCrowdOut is finding 7's second attack: three legacy joins with
// timestamp 0 fill the default max_peers=3, and refill cannot displace
// them, so no new peer could register.
func testCrowdOut(t *testing.T, e *Env) {
	ctx := context.Background()
	for i := range bootstrapapi.DefaultMaxPeers {
		e.Legacy(t, "join", fmt.Sprintf("squat%d s 203.0.113.66 %d tcp online 0", i, 600+i))
	}
	if r, err := e.Client.Join(ctx, bootstrapapi.JoinRequest{ID: "unsigned", Addr: "127.0.0.1:7000"}); err != nil || r.Stored {
		t.Fatalf("unsigned join into a full service = %+v, %v; want not stored", r, err)
	}
	for i := range bootstrapapi.DefaultMaxPeers {
		k := Key(byte(10 + i))
		r, err := e.SignedClient(t, k).Join(ctx, bootstrapapi.JoinRequest{ID: ID(k), Addr: fmt.Sprintf("127.0.0.1:%d", 7001+i)})
		mustStored(t, fmt.Sprintf("signed join %d into a service full of legacy entries", i), r, err)
		if !strings.HasPrefix(r.Replaced, "squat") {
			t.Errorf("signed join %d replaced %q, want a legacy entry", i, r.Replaced)
		}
	}
	// Now every slot is signed: unsigned requests of either format, and
	// the timestamp-0 refill, change nothing.
	r := e.Legacy(t, "refill", "squat9 s 203.0.113.66 609 tcp online 0")
	if _, ok := r.Peers["squat9"]; ok {
		t.Errorf("a legacy refill displaced a signed entry: %v", r.Peers)
	}
	e.Legacy(t, "join", "squat8 s 203.0.113.66 608 tcp online 0")
	// cli-chat's shapes (empty status, empty timestamp: the oldest under
	// the string order) displace no signed entry either, and cannot
	// overwrite one under its own id.
	r = e.Legacy(t, "refill", "squat7 s 203.0.113.66 607 tcp  ")
	if _, ok := r.Peers["squat7"]; ok {
		t.Errorf("a legacy refill with an empty timestamp displaced a signed entry: %v", r.Peers)
	}
	signedID := ID(Key(10))
	if code, body := e.Post(t, "/join", "text/plain", signedID+"  203.0.113.66 607 tcp  "); code != http.StatusForbidden {
		t.Errorf("legacy join with empty fields over signed %s: %d %s, want 403", signedID, code, body)
	}
	if res, err := e.Client.Refill(ctx, bootstrapapi.JoinRequest{ID: "unsigned", Addr: "127.0.0.1:7000"}); err != nil || res.Stored {
		t.Errorf("unsigned v1 refill into a signed-full service = %+v, %v", res, err)
	}
	// A further signed peer waits for a slot like everyone else.
	late := Key(20)
	if res, err := e.SignedClient(t, late).Refill(ctx, bootstrapapi.JoinRequest{ID: ID(late), Addr: "127.0.0.1:7009"}); err != nil || res.Stored {
		t.Errorf("signed refill into a signed-full service = %+v, %v; want not stored", res, err)
	}
	s := e.Snapshot(t)
	if len(s.Peers) != bootstrapapi.DefaultMaxPeers {
		t.Fatalf("%d entries, want %d", len(s.Peers), bootstrapapi.DefaultMaxPeers)
	}
	for id, p := range s.Peers {
		if !p.Signed() {
			t.Errorf("unsigned entry %s survived in a service full of signed ones", id)
		}
	}
}

// clientFrom returns an HTTP client whose connections come from the
// local address ip (another 127.0.0.0/8 address is another client).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func testRateLimit(t *testing.T, e *Env) {
	get := func(hc *http.Client, path string) (int, string, string) {
		t.Helper()
		resp, err := hc.Get(e.Server.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Retry-After")
	}
	one := clientFrom("127.0.0.1")
	t.Cleanup(one.CloseIdleConnections)
	// Burst 3: three requests pass, whatever they are.
	for _, p := range []string{"/v1/ping", "/v1/nope", "/v1/list"} {
		if code, body, _ := get(one, p); code == http.StatusTooManyRequests {
			t.Fatalf("GET %s within the burst: %d %s", p, code, body)
		}
	}
	code, body, retry := get(one, "/v1/ping")
	wantError(t, "fourth request", code, body, http.StatusTooManyRequests, bootstrapapi.ECodeRateLimited)
	if retry != "1" {
		t.Errorf("Retry-After %q, want 1 (one token per second)", retry)
	}
	if _, err := e.Client.Ping(context.Background()); bootstrapapi.ErrorCode(err) != bootstrapapi.ECodeRateLimited {
		t.Errorf("client ping over the limit = %v, want code rate_limited", err)
	}
	// Another address has its own bucket.
	other := clientFrom("127.0.0.2")
	t.Cleanup(other.CloseIdleConnections)
	if code, body, _ := get(other, "/v1/ping"); code != http.StatusOK {
		t.Errorf("ping from 127.0.0.2 while 127.0.0.1 is limited: %d %s", code, body)
	}
	// The bucket refills with time.
	e.Clock.Advance(time.Second)
	if code, body, _ := get(one, "/v1/ping"); code != http.StatusOK {
		t.Errorf("ping after a second: %d %s", code, body)
	}
}
