package repl_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
	"github.com/hearsay-chat/hearsay/repl/repltest"
)

// fixedNow is the clock of every non-terminal test.
var fixedNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// syncBuffer is a bytes.Buffer safe for the event pump and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

type fixture struct {
	r    *repl.REPL
	peer *repltest.Peer
	bs   *repltest.Bootstrap
	out  *syncBuffer
}

// newFixture builds a REPL over a fake peer with members bob and bobby, a
// fake bootstrap service, a fixed clock and output into a buffer. mod may
// change the configuration.
func newFixture(t testing.TB, mod func(*repl.Config)) *fixture {
	t.Helper()
	peer := repltest.NewPeer("p-alice-0001", "alice")
	peer.AddMember(hearsay.Member{ID: "p-bob-0002", Nick: "bob", Addr: "127.0.0.1:7950", ChatAddr: "127.0.0.1:7951", State: "alive"})
	peer.AddMember(hearsay.Member{ID: "p-bobby-0003", Nick: "bobby", Addr: "127.0.0.1:7952", ChatAddr: "127.0.0.1:7953", State: "alive"})
	peer.AddMember(hearsay.Member{ID: "p-dave-0004", Nick: "dave", Addr: "127.0.0.1:7954", State: "dead"})
	bs := repltest.NewBootstrap(func() time.Time { return fixedNow })
	cfg := repl.DefaultConfig()
	cfg.Peer = peer
	cfg.Lifecycle = peer
	cfg.Bootstrap = bs
	cfg.Color = "never"
	cfg.EchoOwn = true
	cfg.Now = func() time.Time { return fixedNow }
	cfg.Location = time.UTC
	no := false
	cfg.Interactive = &no
	if mod != nil {
		mod(&cfg)
	}
	out := &syncBuffer{}
	r, err := repl.New(cfg, repl.IOStreams{In: bytes.NewReader(nil), Out: out, ErrOut: out})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return &fixture{r: r, peer: peer, bs: bs, out: out}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
