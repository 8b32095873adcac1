package main

// Finding 7 of issue 11 at the level of the command: the chat identity
// signs the peer's bootstrap requests (the agent's side is discovery's
// TestAgentSignsItsEntry; TestGroupOfThreeChats checks the wiring), and
// the bootstrap commands find the embedded service's admin token.

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/discovery"
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

// TestEmbeddedResetNeedsToken: the embedded service of a peer's agent,
// configured as runPeer configures it, keeps its admin token in the data
// root, so a reset without it is refused and `hearsay bootstrap reset`
// finds it there. (The agent's side, token file mode and takeover, is
// discovery's TestEmbeddedAdminToken.)
func TestEmbeddedResetNeedsToken(t *testing.T) {
	ctx := context.Background()
	xdg := t.TempDir()
	listen := freeLocalAddr(t)
	cfg := discovery.DefaultConfig()
	cfg.DataDir = filepath.Join(xdg, "hearsay", "alice")
	cfg.LocalListen, cfg.LocalURL = listen, "http://"+listen
	cfg.RejoinInterval = 0
	cfg.AdminTokenFile = localAdminTokenFile(func(k string) string { return map[string]string{"XDG_DATA_HOME": xdg}[k] })
	d, err := discovery.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	if !strings.Contains(d.Describe(), "embedded") {
		t.Fatalf("want the embedded service: %q", d.Describe())
	}
	if _, err := d.Client().Join(ctx, bootstrapapi.JoinRequest{ID: "p1", Addr: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.AdminTokenFile); err != nil {
		t.Fatalf("admin token file: %v", err)
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
	if code != 0 || !strings.Contains(out, "removed 1 contact\n") {
		t.Fatalf("reset with the data directory's token: code %d, out %q, err %q", code, out, errOut)
	}
}

// freeLocalAddr returns a loopback address nothing listens on (for the
// embedded default of a test agent).
func freeLocalAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
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
