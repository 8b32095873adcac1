package main

// Finding 7 of issue 11 at the level of the peer: its bootstrap requests
// are signed with its identity, and the embedded service is not open to
// whoever reaches its port.

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
	"github.com/hearsay-chat/hearsay/chat"
)

// TestPeerIDDerivationMatchesChat: bootstrap-api duplicates the peer ID
// derivation (it must not import chat); both must agree, and a signature
// by the chat identity must verify as the bootstrap service checks it.
func TestPeerIDDerivationMatchesChat(t *testing.T) {
	for range 20 {
		id, err := chat.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if got := bootstrapapi.PeerIDFromKey(id.Pub); got != id.ID || got != chat.PeerIDFromKey(id.Pub) {
			t.Fatalf("bootstrap-api derives %s, chat %s", got, id.ID)
		}
		req := bootstrapapi.JoinRequest{ID: id.ID, Addr: "127.0.0.1:7000"}
		now := time.Now()
		bootstrapapi.SignJoin(identitySigner{id}, "join", &req, now.UnixMilli())
		if err := bootstrapapi.VerifyAuth(req.Auth, "join", req.ID, req.Nick, req.Addr, req.Protocol, now); err != nil {
			t.Fatalf("a join signed by the chat identity does not verify: %v", err)
		}
	}
}

// TestDiscoverySignsItsEntry: a peer's registration is signed, so an
// unsigned leave of its ID (anyone's curl) is refused, and its own leave
// on exit still removes it.
func TestDiscoverySignsItsEntry(t *testing.T) {
	ctx := context.Background()
	id, err := chat.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testDiscoveryConfig(t, freeAddr(t))
	cfg.Signer = identitySigner{id}
	d, err := openDiscovery(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	n := &fakeNode{id: id.ID, addr: "127.0.0.1:7001"}
	r, err := d.Register(ctx, n, func(string) bool { return true })
	if err != nil || !r.Stored || !r.Contact.Signed {
		t.Fatalf("register = %+v, %v; want a signed entry", r, err)
	}
	resp, err := http.Post(cfg.LocalURL+"/v1/leave", "application/json", strings.NewReader(`{"id":"`+id.ID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned leave of the peer's id: %d, want 403", resp.StatusCode)
	}
	other, err := bootstrapapi.NewClient([]string{cfg.LocalURL})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := other.List(ctx, 0); err != nil || len(l.Peers) != 1 || l.Peers[0].ID != id.ID {
		t.Fatalf("after the forged leave: %+v, %v", l, err)
	}
	// Close leaves with a signed request, then stops the embedded
	// service; start another on the same database to look.
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := bootstrapserver.Start(bootstrapserver.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(cfg.DataDir, "bootstrap.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	c, _ := bootstrapapi.NewClient([]string{srv.URL()})
	if l, err := c.List(ctx, 0); err != nil || len(l.Peers) != 0 {
		t.Fatalf("after the peer's own signed leave: %+v, %v", l, err)
	}
}

// TestEmbeddedResetNeedsToken: the embedded service generates an admin
// token into the data directory (0600); reset without it is refused, and
// `hearsay bootstrap reset` finds it there.
func TestEmbeddedResetNeedsToken(t *testing.T) {
	ctx := context.Background()
	xdg := t.TempDir()
	cfg := testDiscoveryConfig(t, freeAddr(t))
	cfg.AdminTokenFile = localAdminTokenFile(func(k string) string { return map[string]string{"XDG_DATA_HOME": xdg}[k] })
	d := openTestDiscovery(t, cfg)
	if !strings.Contains(d.Describe(), "embedded") {
		t.Fatalf("want the embedded service: %q", d.Describe())
	}
	if _, err := d.Client().Join(ctx, bootstrapapi.JoinRequest{ID: "p1", Addr: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(cfg.AdminTokenFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, %v; want mode 0600", st, err)
	}

	resp, err := http.Post(cfg.LocalURL+"/v1/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reset without a token: %d, want 401", resp.StatusCode)
	}
	code, out, errOut := runCLI(t, map[string]string{"XDG_DATA_HOME": t.TempDir(), "HEARSAY_BOOTSTRAP": cfg.LocalURL}, "bootstrap", "reset")
	if code == 0 || !strings.Contains(errOut, "unauthorized") {
		t.Fatalf("reset with another data directory: code %d, out %q, err %q; want unauthorized", code, out, errOut)
	}
	code, out, errOut = runCLI(t, map[string]string{"XDG_DATA_HOME": xdg, "HEARSAY_BOOTSTRAP": cfg.LocalURL}, "bootstrap", "reset")
	if code != 0 || !strings.Contains(out, "removed 1 contacts") {
		t.Fatalf("reset with the data directory's token: code %d, out %q, err %q", code, out, errOut)
	}
}

func TestAllLoopback(t *testing.T) {
	for _, tt := range []struct {
		urls []string
		want bool
	}{
		{[]string{"http://127.0.0.1:8080"}, true},
		{[]string{"http://[::1]:8080", "http://localhost:1"}, true},
		{[]string{"http://127.0.0.1:8080", "https://x.cloudfunctions.net/b"}, false},
		{[]string{"http://10.0.0.1:8080"}, false},
		{nil, false},
	} {
		if got := allLoopback(tt.urls); got != tt.want {
			t.Errorf("allLoopback(%v) = %v, want %v", tt.urls, got, tt.want)
		}
	}
}
