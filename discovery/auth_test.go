package discovery

// The agent's side of signed registration and of the embedded service's
// admin token (bootstrap-api's auth.go and bootstrap-server's token.go).

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

func newSigner(t *testing.T) (bootstrapapi.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := bootstrapapi.NewKeySigner(priv)
	return s, bootstrapapi.PeerIDFromKey(s.PublicKey())
}

// TestAgentSignsItsEntry: with a Signer, the registration and every
// renewal are signed (renewals keep being accepted, each with a later
// timestamp than the last), an unsigned leave of the peer's ID (anyone's
// curl) is refused, and the agent's own leave on Close still removes it.
func TestAgentSignsItsEntry(t *testing.T) {
	ctx := context.Background()
	signer, id := newSigner(t)
	cfg := testConfig(t, freeAddr(t))
	cfg.Signer = signer
	d := openTestAgent(t, cfg)
	ttl := int64(1)
	if _, err := d.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{id: id, addr: "127.0.0.1:7001"}
	r, err := d.Register(ctx, n)
	if err != nil || !r.Stored || r.Contact == nil || !r.Contact.Signed {
		t.Fatalf("register = %+v, %v; want a signed entry", r, err)
	}
	waitFor(t, "two signed renewals", func() bool { return d.Stats().Renewals >= 2 })

	resp, err := http.Post(cfg.LocalURL+"/v1/leave", "application/json", strings.NewReader(`{"id":"`+id+`"}`))
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
	if l, err := other.List(ctx, 0); err != nil || len(l.Peers) != 1 || l.Peers[0].ID != id || !l.Peers[0].Signed {
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
	c, err := bootstrapapi.NewClient([]string{srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := c.List(ctx, 0); err != nil || len(l.Peers) != 0 {
		t.Fatalf("after the peer's own signed leave: %+v, %v", l, err)
	}
}

// TestEmbeddedAdminToken: the embedded default generates its admin token
// into DataDir (mode 0600) unless AdminTokenFile says elsewhere; a reset
// without it is refused, the agent's own client carries it, and a peer
// that takes the service over serves it with the same token, not open.
func TestEmbeddedAdminToken(t *testing.T) {
	ctx := context.Background()
	listen := freeAddr(t)
	cfg := testConfig(t, listen)
	alice := openTestAgent(t, cfg)
	if !strings.Contains(alice.Describe(), "embedded") {
		t.Fatalf("want the embedded service: %q", alice.Describe())
	}
	tokenFile := filepath.Join(cfg.DataDir, bootstrapserver.AdminTokenFile)
	st, err := os.Stat(tokenFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v, %v; want mode 0600", st, err)
	}
	anon, err := bootstrapapi.NewClient([]string{cfg.LocalURL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Reset(ctx); !isCode(err, bootstrapapi.ECodeUnauthorized) {
		t.Fatalf("reset without the token: %v, want unauthorized", err)
	}
	if _, err := alice.Client().Reset(ctx); err != nil {
		t.Fatalf("reset by the agent's own client: %v", err)
	}

	// Bob shares the token file (as peers on one machine do through the
	// data root) and takes the service over when alice quits.
	bcfg := testConfig(t, listen)
	bcfg.AdminTokenFile = tokenFile
	bob := openTestAgent(t, bcfg)
	ttl := int64(1)
	if _, err := bob.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatalf("config change by a peer sharing the token file: %v", err)
	}
	if _, err := bob.Register(ctx, &fakeNode{id: "bob", addr: "127.0.0.1:7002"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob to serve the bootstrap service", func() bool {
		l, err := bob.Client().List(ctx, 0)
		return err == nil && l.NumPeers == 1 && l.Peers[0].ID == "bob"
	})
	if _, err := anon.Reset(ctx); !isCode(err, bootstrapapi.ECodeUnauthorized) {
		t.Fatalf("reset of the taken-over service without the token: %v, want unauthorized", err)
	}
	if r, err := bob.Client().Reset(ctx); err != nil || r.Removed != 1 {
		t.Fatalf("reset of the taken-over service with the token: %+v, %v", r, err)
	}
}

// TestSignerWithURLs: a configured service gets signed requests too, and
// no admin token file is created for it.
func TestSignerWithURLs(t *testing.T) {
	ctx := context.Background()
	srv, err := bootstrapserver.Start(bootstrapserver.Config{Listen: "127.0.0.1:0", DBPath: filepath.Join(t.TempDir(), "b.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	signer, id := newSigner(t)
	cfg := testConfig(t, freeAddr(t))
	cfg.URLs = []string{srv.URL()}
	cfg.Signer = signer
	d := openTestAgent(t, cfg)
	if r, err := d.Register(ctx, &fakeNode{id: id, addr: "127.0.0.1:7003"}); err != nil || r.Contact == nil || !r.Contact.Signed {
		t.Fatalf("register with a configured URL: %+v, %v; want signed", r, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, bootstrapserver.AdminTokenFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin token file with URLs configured: %v, want none", err)
	}
}

func isCode(err error, code string) bool {
	var e *bootstrapapi.Error
	return errors.As(err, &e) && e.Code == code
}
