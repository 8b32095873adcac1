package chat

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// ruleConn is a connection that records its Close and receives what a
// test puts in its in channel (when it has one).
type ruleConn struct {
	name   string
	in     chan *chatpb.Frame
	closed atomic.Bool
	once   sync.Once
	done   chan struct{}
}

func newRuleConn(name string) *ruleConn {
	return &ruleConn{name: name, in: make(chan *chatpb.Frame, 4), done: make(chan struct{})}
}

func (c *ruleConn) Peer() transport.Peer            { return transport.Peer{} }
func (c *ruleConn) Send(*chatpb.Frame) (int, error) { return 0, nil }
func (c *ruleConn) Recv() (*chatpb.Frame, error) {
	select {
	case f := <-c.in:
		return f, nil
	case <-c.done:
		return nil, transport.ErrClosed
	}
}
func (c *ruleConn) Close() error {
	c.closed.Store(true)
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *ruleConn) waitClosed(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s connection not closed", c.name)
	}
}

// The rule, at one end, in every order of arrival: of a dialed and an
// accepted connection the link keeps the one dialed by the smaller peer ID
// and retires (closes after linkRetireGrace) the other; a newer
// connection in the same direction replaces the current one.
func TestInstallRule(t *testing.T) {
	n, err := New(Config{Nick: "rule", EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	if n.id.ID == "0000000000000000" || n.id.ID == "ffffffffffffffff" {
		t.Skip("identity collides with the test's peer IDs")
	}
	for _, tc := range []struct {
		name        string
		peer        string
		dialedFirst bool
		wantDialed  bool // which one the link keeps
	}{
		{"peer smaller, dialed first", "0000000000000000", true, false},
		{"peer smaller, accepted first", "0000000000000000", false, false},
		{"peer larger, dialed first", "ffffffffffffffff", true, true},
		{"peer larger, accepted first", "ffffffffffffffff", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeerConn(n, tc.peer, "127.0.0.1:1", nil)
			t.Cleanup(p.closeAll)
			dialed, accepted := newRuleConn("dialed"), newRuleConn("accepted")
			swaps := n.stats.linkSwaps.Load()
			first, second := transport.Conn(accepted), transport.Conn(dialed)
			if tc.dialedFirst {
				first, second = dialed, accepted
			}
			if p.install(first, tc.dialedFirst) == nil || p.install(second, !tc.dialedFirst) == nil {
				t.Fatal("install refused on a running link")
			}
			cur := p.current()
			if cur.dialed != tc.wantDialed {
				t.Errorf("link keeps the dialed=%v connection, want dialed=%v", cur.dialed, tc.wantDialed)
			}
			if got := n.stats.linkSwaps.Load() - swaps; got != 1 {
				t.Errorf("%d swaps counted, want 1", got)
			}
			loser, winner := accepted, dialed
			if !tc.wantDialed {
				loser, winner = dialed, accepted
			}
			loser.waitClosed(t)
			if winner.closed.Load() {
				t.Error("the kept connection was closed")
			}

			// The peer redials in the kept direction: the newer wins.
			newer := newRuleConn("newer")
			if p.install(newer, tc.wantDialed) == nil {
				t.Fatal("install refused on a running link")
			}
			if p.current().c != newer {
				t.Error("a newer connection in the kept direction did not replace the current one")
			}
			winner.waitClosed(t)
		})
	}
	// A stopped link takes no connection.
	p := newPeerConn(n, "ffffffffffffffff", "127.0.0.1:1", nil)
	p.closeAll()
	c := newRuleConn("late")
	if p.install(c, true) != nil || !c.closed.Load() {
		t.Error("a stopped link installed a connection, or left it open")
	}
}

// A connection that lost the rule is still read until it closes: a frame
// the peer wrote on it before switching is processed (here a Ping, whose
// Pong goes to the link's writer), then the retire grace closes it and
// its reader ends.
func TestRetiredConnectionStillRead(t *testing.T) {
	n, err := New(Config{Nick: "rule", EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	p := newPeerConn(n, "ffffffffffffffff", "127.0.0.1:1", nil)
	t.Cleanup(p.closeAll)
	if n.id.ID == "ffffffffffffffff" {
		t.Skip("identity collides with the test's peer ID")
	}
	kept, lost := newRuleConn("kept"), newRuleConn("lost")
	p.install(kept, true) // dialed by us, the smaller ID: kept
	lc := p.install(lost, false)
	if p.current().c != kept {
		t.Fatal("the rule kept the wrong connection")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.serveLink(p, lc)
	}()
	lost.in <- pingFrame(42)
	select {
	case f := <-p.replies:
		if f.GetPong().GetNonce() != 42 {
			t.Errorf("reply %v, want the pong of 42", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a ping on the retired connection was not answered")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the retired connection's reader did not end")
	}
	if !lost.closed.Load() || kept.closed.Load() {
		t.Errorf("closed: retired %v, kept %v; want true, false", lost.closed.Load(), kept.closed.Load())
	}
}
