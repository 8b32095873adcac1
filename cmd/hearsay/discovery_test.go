package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// fakeNode records joins; discovery's contract with the chat node is only
// these four methods (the real node is exercised by the peer tests).
type fakeNode struct {
	id, addr string
	mu       sync.Mutex
	joined   [][]string
}

func (f *fakeNode) ID() string            { return f.id }
func (f *fakeNode) Nick() string          { return "nick-" + f.id }
func (f *fakeNode) AdvertiseAddr() string { return f.addr }
func (f *fakeNode) Join(_ context.Context, addrs []string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined = append(f.joined, addrs)
	return len(addrs), nil
}
func (f *fakeNode) joins() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.joined...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not synchronisation
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func testDiscoveryConfig(t *testing.T, listen string) discoveryConfig {
	cfg := defaultDiscoveryConfig()
	cfg.DataDir = t.TempDir()
	cfg.LocalListen = listen
	cfg.LocalURL = "http://" + listen
	cfg.RejoinInterval = 0
	cfg.Logf = t.Logf
	return cfg
}

func openTestDiscovery(t *testing.T, cfg discoveryConfig) *discovery {
	t.Helper()
	d, err := openDiscovery(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func TestEmbeddedDefault(t *testing.T) {
	listen := freeAddr(t)
	ctx := context.Background()
	alice := openTestDiscovery(t, testDiscoveryConfig(t, listen))
	if !strings.Contains(alice.Describe(), "embedded") {
		t.Fatalf("first peer: %q, want the embedded service", alice.Describe())
	}
	a := &fakeNode{id: "alice", addr: "127.0.0.1:7001"}
	msg, err := alice.JoinGroup(ctx, a)
	if err != nil || !strings.Contains(msg, "starts the group") {
		t.Fatalf("first join: %q, %v", msg, err)
	}
	if _, err := alice.Register(ctx, a, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}

	bob := openTestDiscovery(t, testDiscoveryConfig(t, listen))
	if !strings.Contains(bob.Describe(), "local default") {
		t.Fatalf("second peer: %q, want the local default", bob.Describe())
	}
	b := &fakeNode{id: "bob", addr: "127.0.0.1:7002"}
	if msg, err := bob.JoinGroup(ctx, b); err != nil || !strings.Contains(msg, "1 of 1") {
		t.Fatalf("bob join: %q, %v", msg, err)
	}
	if j := b.joins(); len(j) != 1 || j[0][0] != "127.0.0.1:7001" {
		t.Fatalf("bob joined %v, want alice's address", j)
	}
}

func TestTakeOverWhenEmbeddedServerLeaves(t *testing.T) {
	listen := freeAddr(t)
	ctx := context.Background()
	// Short leases so renewals come quickly.
	alice := openTestDiscovery(t, testDiscoveryConfig(t, listen))
	ttl := int64(2)
	if _, err := alice.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	bob := openTestDiscovery(t, testDiscoveryConfig(t, listen))
	b := &fakeNode{id: "bob", addr: "127.0.0.1:7002"}
	if _, err := bob.Register(ctx, b, func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Bob's next renewal finds nobody and serves the service itself.
	waitFor(t, "bob to serve the bootstrap service", func() bool {
		l, err := bob.Client().List(ctx, 0)
		return err == nil && l.NumPeers == 1 && l.Peers[0].ID == "bob"
	})
}

func TestCachedContactsWhenServiceDown(t *testing.T) {
	srvAddr := freeAddr(t)
	ctx := context.Background()
	cfg := testDiscoveryConfig(t, srvAddr)
	first := openTestDiscovery(t, cfg) // embedded on srvAddr
	for _, id := range []string{"p1", "p2"} {
		if _, err := first.Client().Join(ctx, bootstrapapi.JoinRequest{ID: id, Addr: "127.0.0.1:" + map[string]string{"p1": "7101", "p2": "7102"}[id]}); err != nil {
			t.Fatal(err)
		}
	}
	// A peer configured with that URL lists (and caches) the contacts.
	cfg2 := testDiscoveryConfig(t, freeAddr(t))
	cfg2.URLs = []string{"http://" + srvAddr}
	d := openTestDiscovery(t, cfg2)
	addrs, source, err := d.Contacts(ctx, "me")
	if err != nil || len(addrs) != 2 || source != "bootstrap service" {
		t.Fatalf("contacts = %v, %q, %v", addrs, source, err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	addrs, source, err = d.Contacts(ctx, "me")
	if err != nil || len(addrs) != 2 || !strings.HasPrefix(source, "cached contacts") {
		t.Fatalf("with the service down: %v, %q, %v", addrs, source, err)
	}
	// A corrupt cache is a clear error, not a panic.
	if err := os.WriteFile(filepath.Join(cfg2.DataDir, "contacts.json"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Contacts(ctx, "me"); err == nil || !strings.Contains(err.Error(), "contacts.json") {
		t.Fatalf("corrupt cache: %v", err)
	}
}

func TestRenewalAndRejoin(t *testing.T) {
	ctx := context.Background()
	cfg := testDiscoveryConfig(t, freeAddr(t))
	cfg.RejoinInterval = 100 * time.Millisecond
	d := openTestDiscovery(t, cfg)
	ttl := int64(1)
	if _, err := d.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{id: "me", addr: "127.0.0.1:7000"}
	var mu sync.Mutex
	aliveSet := map[string]bool{}
	alive := func(id string) bool { mu.Lock(); defer mu.Unlock(); return aliveSet[id] }
	if _, err := d.Register(ctx, n, alive); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two renewals", func() bool { return d.Renewals() >= 2 })
	// A second contact that is not a live member gets joined again.
	ttl = 60
	d.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl})
	if _, err := d.Client().Join(ctx, bootstrapapi.JoinRequest{ID: "other", Addr: "127.0.0.1:7999"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a rejoin of the missing member", func() bool {
		for _, j := range n.joins() {
			if len(j) == 1 && j[0] == "127.0.0.1:7999" {
				return true
			}
		}
		return false
	})
	mu.Lock()
	aliveSet["other"] = true
	mu.Unlock()
	// Close leaves the service.
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
