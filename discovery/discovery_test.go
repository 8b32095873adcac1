package discovery

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// fakeNode records joins; the agent's contract with the chat node is only
// Node (the real node is exercised in partition_test.go).
type fakeNode struct {
	id, addr string
	mu       sync.Mutex
	joined   [][]string
	members  []hearsay.Member
}

var _ Node = (*fakeNode)(nil)

func (f *fakeNode) ID() string            { return f.id }
func (f *fakeNode) Nick() string          { return "nick-" + f.id }
func (f *fakeNode) AdvertiseAddr() string { return f.addr }
func (f *fakeNode) Join(_ context.Context, addrs []string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.joined = append(f.joined, addrs)
	return len(addrs), nil
}
func (f *fakeNode) Members() []hearsay.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hearsay.Member{{ID: f.id, Addr: f.addr, State: hearsay.StateAlive, Self: true}}, f.members...)
}
func (f *fakeNode) setMembers(ms ...hearsay.Member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = ms
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

func testConfig(t *testing.T, listen string) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.LocalListen = listen
	cfg.LocalURL = "http://" + listen
	cfg.RejoinInterval = 0
	cfg.Logf = t.Logf
	return cfg
}

func openTestAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	d, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func TestEmbeddedDefault(t *testing.T) {
	listen := freeAddr(t)
	ctx := context.Background()
	alice := openTestAgent(t, testConfig(t, listen))
	if !strings.Contains(alice.Describe(), "embedded") {
		t.Fatalf("first peer: %q, want the embedded service", alice.Describe())
	}
	a := &fakeNode{id: "alice", addr: "127.0.0.1:7001"}
	msg, err := alice.JoinGroup(ctx, a)
	if err != nil || !strings.Contains(msg, "starts the group") {
		t.Fatalf("first join: %q, %v", msg, err)
	}
	if _, err := alice.Register(ctx, a); err != nil {
		t.Fatal(err)
	}

	bob := openTestAgent(t, testConfig(t, listen))
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
	alice := openTestAgent(t, testConfig(t, listen))
	ttl := int64(2)
	if _, err := alice.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	bob := openTestAgent(t, testConfig(t, listen))
	b := &fakeNode{id: "bob", addr: "127.0.0.1:7002"}
	if _, err := bob.Register(ctx, b); err != nil {
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

// Issue 13, bug 7: when the peer serving the embedded default quits, one
// of the others serves it within about a WatchInterval (1 s; the lease
// renewal tick is 20 s), says so through Notify, and serves the same
// database: a max-peers change made before is kept, and so are the
// others' contacts.
func TestTakeOverGapAndConfig(t *testing.T) {
	listen := freeAddr(t)
	ctx := context.Background()
	shared := t.TempDir()
	var mu sync.Mutex
	takers := map[string]int{} // agent name -> takeover notices
	cfgFor := func(name string) Config {
		cfg := testConfig(t, listen)
		cfg.EmbeddedDB = filepath.Join(shared, "bootstrap.db")
		cfg.AdminTokenFile = filepath.Join(shared, "bootstrap-admin-token")
		cfg.Notify = func(text string) {
			if strings.Contains(text, "serves it now") {
				mu.Lock()
				takers[name]++
				mu.Unlock()
			}
		}
		return cfg
	}
	alice := openTestAgent(t, cfgFor("alice"))
	if !strings.Contains(alice.Describe(), "embedded") {
		t.Fatalf("alice: %q, want the embedded service", alice.Describe())
	}
	maxPeers := 7
	if _, err := alice.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{MaxPeers: &maxPeers}); err != nil {
		t.Fatal(err)
	}
	others := map[string]*Agent{}
	for i, name := range []string{"bob", "carol"} {
		others[name] = openTestAgent(t, cfgFor(name))
		if _, err := others[name].Register(ctx, &fakeNode{id: name, addr: fmt.Sprintf("127.0.0.1:%d", 7002+i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := alice.Register(ctx, &fakeNode{id: "alice", addr: "127.0.0.1:7001"}); err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(ctx); err != nil {
		t.Fatal(err)
	}
	quit := time.Now()
	probe := others["bob"].Client()
	waitFor(t, "another peer to serve the bootstrap service", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err := probe.Ping(pctx)
		return err == nil
	})
	gap := time.Since(quit)
	t.Logf("the service was down for %v after its peer quit", gap)
	if limit := 3 * DefaultConfig().WatchInterval; gap > limit {
		t.Errorf("service down for %v, want at most %v (a lease renewal tick is %v)", gap, limit, bootstrapapi.DefaultLeaseTTL/3)
	}
	got, err := probe.Config(ctx)
	if err != nil || got.MaxPeers != maxPeers {
		t.Errorf("config after the takeover: max peers %d, %v; want %d (kept)", got.MaxPeers, err, maxPeers)
	}
	l, err := probe.List(ctx, 0)
	if err != nil || l.NumPeers != 2 {
		t.Errorf("contacts after the takeover: %+v, %v; want bob and carol", l, err)
	}
	waitFor(t, "the takeover notice", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(takers) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	for name, n := range takers {
		if n != 1 || !others[name].serving() || len(takers) != 1 {
			t.Errorf("takeover notices %v; %s serving: %v; want one peer that says so once and serves", takers, name, others[name].serving())
		}
	}
}

func TestCachedContactsWhenServiceDown(t *testing.T) {
	srvAddr := freeAddr(t)
	ctx := context.Background()
	cfg := testConfig(t, srvAddr)
	first := openTestAgent(t, cfg) // embedded on srvAddr
	for _, id := range []string{"p1", "p2"} {
		if _, err := first.Client().Join(ctx, bootstrapapi.JoinRequest{ID: id, Addr: "127.0.0.1:" + map[string]string{"p1": "7101", "p2": "7102"}[id]}); err != nil {
			t.Fatal(err)
		}
	}
	// A peer configured with that URL lists (and caches) the contacts.
	cfg2 := testConfig(t, freeAddr(t))
	cfg2.URLs = []string{"http://" + srvAddr}
	d := openTestAgent(t, cfg2)
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
	cfg := testConfig(t, freeAddr(t))
	cfg.RejoinInterval = 100 * time.Millisecond
	d := openTestAgent(t, cfg)
	ttl := int64(1)
	if _, err := d.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	n := &fakeNode{id: "me", addr: "127.0.0.1:7000"}
	if _, err := d.Register(ctx, n); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two renewals", func() bool { return d.Stats().Renewals >= 2 })
	// A second contact that is not a live member gets joined again.
	ttl = 60
	if _, err := d.Client().SetConfig(ctx, bootstrapapi.ConfigUpdate{LeaseTTLSeconds: &ttl}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client().Join(ctx, bootstrapapi.JoinRequest{ID: "other", Addr: "127.0.0.1:7999"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a rejoin of the missing member", func() bool { return joinedAddr(n, "127.0.0.1:7999") })
	// Once it is a live member, rounds stop joining it.
	n.setMembers(hearsay.Member{ID: "other", Addr: "127.0.0.1:7999", State: hearsay.StateAlive})
	waitFor(t, "a round after the member is alive", func() bool {
		before := len(n.joins())
		r := d.Stats().Rejoins
		d.rejoin()
		return d.Stats().Rejoins == r && len(n.joins()) == before
	})
	// The contact list of the rounds refreshed the cache.
	if cs, err := d.readCache(); err != nil || len(cs) != 1 || cs[0].ID != "other" {
		t.Errorf("cache after rejoin rounds = %v, %v; want the other contact", cs, err)
	}
	// Close leaves the service.
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func joinedAddr(n *fakeNode, addr string) bool {
	for _, j := range n.joins() {
		for _, a := range j {
			if a == addr {
				return true
			}
		}
	}
	return false
}

func TestRejoinCandidates(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	window := time.Hour
	self := hearsay.Member{ID: "me", Addr: "10.0.0.1:1", State: hearsay.StateAlive, Self: true}
	m := func(id string, st hearsay.MemberState, ago time.Duration) hearsay.Member {
		return hearsay.Member{ID: id, Addr: "addr-" + id, State: st, Since: now.Add(-ago)}
	}
	tests := []struct {
		name     string
		members  []hearsay.Member
		contacts []cachedContact
		want     []string
	}{
		{name: "nothing to do", members: []hearsay.Member{self, m("a", hearsay.StateAlive, 0)}},
		{name: "failed recently", members: []hearsay.Member{self, m("a", hearsay.StateDead, time.Minute)}, want: []string{"addr-a"}},
		{name: "failed too long ago", members: []hearsay.Member{self, m("a", hearsay.StateDead, 2*time.Hour)}},
		{name: "left is not retried", members: []hearsay.Member{self, m("a", hearsay.StateLeft, time.Minute)}},
		{name: "suspect is live", members: []hearsay.Member{self, m("a", hearsay.StateSuspect, time.Minute)},
			contacts: []cachedContact{{ID: "a", Addr: "addr-a"}}},
		{name: "unknown contact", members: []hearsay.Member{self}, contacts: []cachedContact{{ID: "b", Addr: "addr-b"}}, want: []string{"addr-b"}},
		{name: "left contact is registered again", members: []hearsay.Member{self, m("b", hearsay.StateLeft, time.Minute)},
			contacts: []cachedContact{{ID: "b", Addr: "addr-b"}}, want: []string{"addr-b"}},
		{name: "self contact is not joined", members: []hearsay.Member{self}, contacts: []cachedContact{{ID: "me", Addr: "10.0.0.1:1"}}},
		{name: "no duplicates", members: []hearsay.Member{self, m("a", hearsay.StateDead, time.Minute)},
			contacts: []cachedContact{{ID: "a", Addr: "addr-a"}, {ID: "c", Addr: ""}}, want: []string{"addr-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rejoinCandidates(tt.members, tt.contacts, now, window)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// Without any service answering, the agent still rejoins members the node
// saw fail (what the chat library's own reconnect did before), at most
// RejoinMax addresses per round.
func TestRejoinFailedMembersWithoutService(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, freeAddr(t))
	cfg.URLs = []string{"http://" + freeAddr(t)} // nothing listens there
	cfg.RejoinInterval = 50 * time.Millisecond
	cfg.RejoinMax = 2
	d := openTestAgent(t, cfg)
	n := &fakeNode{id: "me", addr: "127.0.0.1:7000"}
	now := time.Now()
	n.setMembers(
		hearsay.Member{ID: "d1", Addr: "127.0.0.1:7101", State: hearsay.StateDead, Since: now},
		hearsay.Member{ID: "d2", Addr: "127.0.0.1:7102", State: hearsay.StateDead, Since: now},
		hearsay.Member{ID: "d3", Addr: "127.0.0.1:7103", State: hearsay.StateDead, Since: now},
		hearsay.Member{ID: "gone", Addr: "127.0.0.1:7104", State: hearsay.StateLeft, Since: now},
	)
	if _, err := d.Register(ctx, n); err == nil {
		t.Fatal("register with no service answering: no error")
	}
	waitFor(t, "every failed member rejoined", func() bool {
		return joinedAddr(n, "127.0.0.1:7101") && joinedAddr(n, "127.0.0.1:7102") && joinedAddr(n, "127.0.0.1:7103")
	})
	for _, j := range n.joins() {
		if len(j) > 2 {
			t.Errorf("a round joined %v, want at most RejoinMax=2", j)
		}
	}
	if joinedAddr(n, "127.0.0.1:7104") {
		t.Error("a member that left was joined again")
	}
	if got := d.Stats().Rejoins; got < 3 {
		t.Errorf("Rejoins = %d, want at least 3", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := Open(context.Background(), DefaultConfig()); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Errorf("open without a data dir: %v, want a DataDir error", err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.RejoinMax = -1
	if _, err := Open(context.Background(), cfg); err == nil {
		t.Error("negative RejoinMax accepted")
	}
	cfg = Config{DataDir: t.TempDir(), URLs: []string{"http://127.0.0.1:1"}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.RequestTimeout != def.RequestTimeout || cfg.RejoinMax != def.RejoinMax || cfg.RejoinWindow != def.RejoinWindow || cfg.HTTPClient == nil {
		t.Errorf("zero config not defaulted: %+v", cfg)
	}
	if cfg.RejoinInterval != 0 {
		t.Errorf("RejoinInterval = %s, want 0 (disabled) kept", cfg.RejoinInterval)
	}
}

// FuzzParseCache: whatever the contact cache holds, parsing it does not
// panic, and every contact it keeps has an address that parses.
func FuzzParseCache(f *testing.F) {
	f.Add([]byte(`[{"id":"a","addr":"127.0.0.1:7946"},{"id":"b","addr":"nope"}]`))
	f.Add([]byte(`{garbage`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := parseCache(b)
		if err != nil {
			return
		}
		for _, c := range cs {
			if _, _, err := bootstrapapi.SplitAddr(c.Addr); err != nil {
				t.Fatalf("kept %+v: %v", c, err)
			}
		}
	})
}
