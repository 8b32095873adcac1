package bootstrapapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func testKey(n byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

func testID(k ed25519.PrivateKey) string { return PeerIDFromKey(k.Public().(ed25519.PublicKey)) }

// TestPeerIDFromKeyVector pins the derivation: it must stay the chat
// package's (cmd/hearsay checks the two agree on random keys).
func TestPeerIDFromKeyVector(t *testing.T) {
	pub := make([]byte, ed25519.PublicKeySize)
	// SHA-256 of 32 zero bytes starts 66687aadf862bd77.
	if got, want := PeerIDFromKey(pub), "66687aadf862bd77"; got != want {
		t.Errorf("PeerIDFromKey(zero key) = %s, want %s", got, want)
	}
}

func TestSigningBytesUnambiguous(t *testing.T) {
	key := []byte("k")
	a := SigningBytes("join", "ab", "c", "h:1", "p", key, 1)
	b := SigningBytes("join", "a", "bc", "h:1", "p", key, 1)
	if bytes.Equal(a, b) {
		t.Fatal("moving a byte between fields gives the same signing bytes")
	}
	if bytes.Equal(SigningBytes("join", "a", "", "", "", key, 1), SigningBytes("leave", "a", "", "", "", key, 1)) {
		t.Fatal("join and leave sign the same bytes")
	}
	if bytes.Equal(SigningBytes("join", "a", "", "", "", key, 1), SigningBytes("join", "a", "", "", "", key, 2)) {
		t.Fatal("the timestamp is not covered")
	}
}

func TestVerifyAuth(t *testing.T) {
	k := testKey(1)
	now := time.UnixMilli(1_800_000_000_000)
	req := JoinRequest{ID: testID(k), Addr: "127.0.0.1:1"}
	SignJoin(NewKeySigner(k), "join", &req, now.UnixMilli())
	if err := VerifyAuth(req.Auth, "join", req.ID, req.Nick, req.Addr, req.Protocol, now); err != nil {
		t.Fatalf("valid auth refused: %v", err)
	}
	tests := []struct {
		name string
		mod  func(a *Auth, id *string)
		code string
	}{
		{"other id", func(a *Auth, id *string) { *id = testID(testKey(2)) }, ECodeBadSignature},
		{"flipped signature bit", func(a *Auth, _ *string) { a.Sig[0] ^= 1 }, ECodeBadSignature},
		{"nil key", func(a *Auth, _ *string) { a.Key = nil }, ECodeBadSignature},
		{"long signature", func(a *Auth, _ *string) { a.Sig = append(a.Sig, 0) }, ECodeBadSignature},
		{"min int64", func(a *Auth, _ *string) { a.TS = -1 << 63 }, ECodeStale},
		{"max int64", func(a *Auth, _ *string) { a.TS = 1<<63 - 1 }, ECodeStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := *req.Auth
			a.Key = bytes.Clone(a.Key)
			a.Sig = bytes.Clone(a.Sig)
			id := req.ID
			tt.mod(&a, &id)
			err := VerifyAuth(&a, "join", id, req.Nick, req.Addr, req.Protocol, now)
			if ErrorCode(err) != tt.code {
				t.Errorf("got %v, want code %s", err, tt.code)
			}
		})
	}
}

func TestTombstonesBounded(t *testing.T) {
	s := NewState()
	now := time.UnixMilli(1_800_000_000_000)
	for i := range MaxTombstones + 10 {
		tombstone(s, fmt.Sprintf("id%05d", i), now.UnixMilli()+int64(i), now)
	}
	if len(s.Tombstones) != MaxTombstones {
		t.Fatalf("%d tombstones, want at most %d", len(s.Tombstones), MaxTombstones)
	}
	// The oldest went first.
	if _, ok := s.Tombstones["id00000"]; ok {
		t.Error("the oldest tombstone was kept over newer ones")
	}
	if _, ok := s.Tombstones[fmt.Sprintf("id%05d", MaxTombstones+9)]; !ok {
		t.Error("the newest tombstone was dropped")
	}
	// A stale one is not even stored.
	s = NewState()
	tombstone(s, "old", now.Add(-MaxClockSkew-time.Millisecond).UnixMilli(), now)
	if len(s.Tombstones) != 0 {
		t.Errorf("stale tombstone stored: %v", s.Tombstones)
	}
}

// TestSignedLeaveOfNothingLeavesNoTombstone: signed leaves for IDs that
// hold nothing (fresh keys cost nothing) must not fill the table.
func TestSignedLeaveOfNothingLeavesNoTombstone(t *testing.T) {
	s := NewState()
	now := time.UnixMilli(1_800_000_000_000)
	for i := range 100 {
		if _, err := Leave(s, fmt.Sprintf("x%d", i), now.UnixMilli(), now); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Tombstones) != 0 {
		t.Errorf("%d tombstones after leaves of unknown ids", len(s.Tombstones))
	}
}

func TestClientSigns(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	srv := httptest.NewServer(NewHandler(NewMemStore(), HandlerConfig{Now: func() time.Time { return now }}))
	defer srv.Close()
	k := testKey(1)
	c, err := NewClient([]string{srv.URL}, WithSigner(NewKeySigner(k)), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Join, renew, refill and leave within one millisecond of the clock:
	// the client still stamps each later than the last.
	for i, call := range []func() (JoinResponse, error){
		func() (JoinResponse, error) { return c.Join(ctx, JoinRequest{ID: testID(k), Addr: "127.0.0.1:1"}) },
		func() (JoinResponse, error) { return c.Join(ctx, JoinRequest{ID: testID(k), Addr: "127.0.0.1:2"}) },
		func() (JoinResponse, error) { return c.Refill(ctx, JoinRequest{ID: testID(k), Addr: "127.0.0.1:3"}) },
	} {
		r, err := call()
		if err != nil || !r.Stored || !r.Contact.Signed {
			t.Fatalf("call %d = %+v, %v", i, r, err)
		}
	}
	if lr, err := c.Leave(ctx, testID(k)); err != nil || !lr.Removed {
		t.Fatalf("signed leave = %+v, %v", lr, err)
	}
	if _, err := c.Join(ctx, JoinRequest{ID: "someone-else", Addr: "127.0.0.1:1"}); err == nil ||
		!strings.Contains(err.Error(), "signs for peer "+testID(k)) {
		t.Errorf("join for another id = %v, want a local refusal", err)
	}
}

// TestClientFailsOverOnRateLimit: a 429 is one service's state, so the
// next URL is tried.
func TestClientFailsOverOnRateLimit(t *testing.T) {
	limited := httptest.NewServer(NewHandler(NewMemStore(), HandlerConfig{RateLimit: RateLimit{PerSecond: 0.001, Burst: 1}}))
	defer limited.Close()
	good := httptest.NewServer(NewHandler(NewMemStore(), HandlerConfig{}))
	defer good.Close()
	c, _ := NewClient([]string{limited.URL, good.URL})
	ctx := context.Background()
	for range 3 {
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("ping with one limited URL of two: %v", err)
		}
	}
}

func TestLimiterTableBounded(t *testing.T) {
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 2, MaxClients: 4})
	now := time.Unix(1_800_000_000, 0)
	// Four clients exhaust their buckets and fill the table.
	for i := range 4 {
		ip := fmt.Sprintf("192.0.2.%d", i)
		for range 2 {
			if d := l.allow(ip, now); d != 0 {
				t.Fatalf("%s within its burst delayed %v", ip, d)
			}
		}
	}
	// New addresses share the overflow bucket instead of growing the table.
	for i := range 100 {
		l.allow(fmt.Sprintf("198.51.100.%d", i), now)
	}
	if len(l.clients) != 4 {
		t.Fatalf("table holds %d clients, bound 4", len(l.clients))
	}
	if d := l.allow("198.51.100.200", now); d == 0 {
		t.Error("the overflow bucket is not limited")
	}
	// Known clients keep their own bucket.
	if d := l.allow("192.0.2.0", now.Add(time.Second)); d != 0 {
		t.Errorf("known client refused after its bucket refilled: %v", d)
	}
	// Once buckets are full again they are dropped for new clients.
	later := now.Add(time.Minute)
	if d := l.allow("203.0.113.1", later); d != 0 {
		t.Errorf("new client refused after the table drained: %v", d)
	}
	if _, ok := l.clients["203.0.113.1"]; !ok {
		t.Error("new client did not get its own bucket after the sweep")
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not-an-ip", "not-an-ip"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.in); got != tt.want {
			t.Errorf("clientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{time.Millisecond, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {0, "1"}, {100 * time.Hour, "3600"}} {
		if got := retryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %s, want %s", tt.d, got, tt.want)
		}
	}
}

// FuzzSignedRequest decodes arbitrary bodies as signed v1 join and leave
// requests and verifies them: no panic, every refusal is an *Error with a
// status in the table, nothing that is not signed by the key behind the id
// is accepted as signed, and a request signed over the decoded fields
// always verifies.
func FuzzSignedRequest(f *testing.F) {
	k := testKey(1)
	now := time.UnixMilli(1_800_000_000_000)
	good := JoinRequest{ID: testID(k), Nick: "a", Addr: "127.0.0.1:7001", Protocol: "hearsay/1"}
	SignJoin(NewKeySigner(k), "join", &good, now.UnixMilli())
	b, _ := json.Marshal(good)
	f.Add(string(b), "join")
	leave := LeaveRequest{ID: testID(k)}
	SignLeave(NewKeySigner(k), &leave, now.UnixMilli())
	b, _ = json.Marshal(leave)
	f.Add(string(b), "leave")
	f.Add(`{"id":"a","addr":"127.0.0.1:1","auth":{"key":"AAAA","ts":1,"sig":"AAAA"}}`, "refill")
	f.Add(`{"id":"a","auth":null}`, "leave")
	f.Add(`{"id":"a","addr":"127.0.0.1:1","auth":{"ts":-9223372036854775808}}`, "join")
	f.Fuzz(func(t *testing.T, body, op string) {
		check := func(err error) {
			var e *Error
			if err != nil && (!errors.As(err, &e) || ErrorStatus(e.Code)/100 != 4) {
				t.Fatalf("%s %q: error %v is not a 4xx API error", op, body, err)
			}
		}
		switch op {
		case "join", "refill":
			var req JoinRequest
			if err := DecodeStrict([]byte(body), &req); err != nil {
				check(err)
				return
			}
			rec, err := RecordFromJoin(op, req, now)
			check(err)
			if err == nil && rec.Signed() {
				if req.Auth == nil || PeerIDFromKey(req.Auth.Key) != req.ID ||
					!ed25519.Verify(req.Auth.Key, SigningBytes(op, req.ID, req.Nick, req.Addr, req.Protocol, req.Auth.Key, req.Auth.TS), req.Auth.Sig) {
					t.Fatalf("accepted as signed without a valid signature: %q", body)
				}
			}
			if err == nil && req.ID == testID(k) {
				// Re-signing the decoded fields must verify.
				SignJoin(NewKeySigner(k), op, &req, now.UnixMilli())
				if _, err := RecordFromJoin(op, req, now); err != nil {
					t.Fatalf("re-signed %q refused: %v", body, err)
				}
			}
		case "leave":
			var req LeaveRequest
			if err := DecodeStrict([]byte(body), &req); err != nil {
				check(err)
				return
			}
			ts, err := LeaveFromRequest(req, now)
			check(err)
			if err == nil && ts != 0 && (req.Auth == nil || PeerIDFromKey(req.Auth.Key) != req.ID) {
				t.Fatalf("leave accepted as signed for another key: %q", body)
			}
		}
	})
}

func TestClientIPFromForwardedFor(t *testing.T) {
	tests := []struct {
		hops   int
		header []string
		want   string
	}{
		{1, nil, "192.0.2.9"},
		{1, []string{"203.0.113.5"}, "203.0.113.5"},
		{1, []string{"6.6.6.6, 203.0.113.5"}, "203.0.113.5"}, // the client's own entry is ignored
		{1, []string{"6.6.6.6", "203.0.113.5"}, "203.0.113.5"},
		{2, []string{"6.6.6.6, 203.0.113.5, 10.0.0.1"}, "203.0.113.5"},
		{3, []string{"203.0.113.5, 10.0.0.1"}, "192.0.2.9"},
		{1, []string{"6.6.6.6, not-an-ip"}, "192.0.2.9"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/v1/ping", nil)
		r.RemoteAddr = "192.0.2.9:4444"
		for _, v := range tt.header {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := ClientIPFromForwardedFor(tt.hops)(r); got != tt.want {
			t.Errorf("hops %d, X-Forwarded-For %q: %s, want %s", tt.hops, tt.header, got, tt.want)
		}
	}
}

// BenchmarkVerifyAuth is the service's cost per signed request before the
// store is touched.
func BenchmarkVerifyAuth(b *testing.B) {
	k := testKey(1)
	now := time.UnixMilli(1_800_000_000_000)
	req := JoinRequest{ID: testID(k), Nick: "alice", Addr: "127.0.0.1:7946", Protocol: "hearsay/1"}
	SignJoin(NewKeySigner(k), "join", &req, now.UnixMilli())
	for b.Loop() {
		if err := VerifyAuth(req.Auth, "join", req.ID, req.Nick, req.Addr, req.Protocol, now); err != nil {
			b.Fatal(err)
		}
	}
}
