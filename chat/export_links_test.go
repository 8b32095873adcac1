package chat

import (
	"fmt"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// SetLinkIdleForTest makes links that are not kept close after d without
// frames (instead of linkIdleRounds anti-entropy intervals).
func SetLinkIdleForTest(cfg *Config, d time.Duration) { cfg.linkIdle = d }

// KeepLinkForTest is keepLink.
func (n *Node) KeepLinkForTest(id string, keep bool) { n.keepLink(id, keep) }

// SendFrameForTest queues env to peer id with sendFrame (a link on demand).
func (n *Node) SendFrameForTest(id string, env *chatpb.Envelope) bool {
	return n.sendFrame(id, envelopeFrame(env))
}

// LinkState is what a test sees of one link.
type LinkState struct {
	Connected bool   // established
	Kept      bool   // kept (links.go)
	Dialed    bool   // its current connection was dialed by this node
	Conns     int    // connections whose reader runs (current and retired)
	Current   string // identifies the current connection ("" when none)
	KeptGen   uint64 // counts the link's turns to kept
	Queued    int    // frames waiting for the writer
}

// LinkForTest returns the state of the link to id; false when there is no
// link.
func (n *Node) LinkForTest(id string) (LinkState, bool) {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p == nil {
		return LinkState{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := LinkState{Connected: p.connected.Load(), Kept: p.kept, Conns: len(p.conns), KeptGen: p.keptGen, Queued: p.queue.len()}
	if p.cur != nil {
		st.Dialed = p.cur.dialed
		st.Current = fmt.Sprintf("%p", p.cur)
	}
	return st, true
}

// BreakLinkForTest closes the current connection of the link to id, as a
// network failure would; false when it has none.
func (n *Node) BreakLinkForTest(id string) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p == nil {
		return false
	}
	lc := p.current()
	if lc == nil {
		return false
	}
	lc.c.Close()
	return true
}

// OpenConnsForTest returns the chat transport's open connections.
func (n *Node) OpenConnsForTest() transport.ConnCounts {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cc, ok := n.tr.(transport.ConnCounter); ok {
		return cc.OpenConns()
	}
	return transport.ConnCounts{}
}

// SetEnqueueHookForTest makes every link call hook with each frame it is
// about to queue, once it found the link running (hook must be safe for
// concurrent use).
func SetEnqueueHookForTest(cfg *Config, hook func(to string, f *chatpb.Frame)) {
	cfg.beforeEnqueue = hook
}

// IdleOutLinkForTest makes the link to id idle for longer than the idle
// timeout and runs its writer's decision to drop it (dropIdleLink); it
// reports whether the link was dropped.
func (n *Node) IdleOutLinkForTest(id string) bool {
	p := n.peer(id)
	if p == nil {
		return false
	}
	p.lastActive.Store(0)
	return n.dropIdleLink(p) && n.peer(id) == nil
}

// SetGreetedHookForTest makes every link's writer call hook once it has
// written the greeting of the link's turn to kept number gen (LinkState's
// KeptGen) to peer to (hook must be safe for concurrent use).
func SetGreetedHookForTest(cfg *Config, hook func(to string, gen uint64)) { cfg.greetedHook = hook }

// StopLinkForTest stops the link to id as a member's departure does
// (members.go: out of the node's links, then stop), and returns a func
// reporting how many frames the stopped link's queue still holds (frames
// no writer will send). Nil when there is no link.
func (n *Node) StopLinkForTest(id string) func() int {
	n.mu.Lock()
	p := n.peers[id]
	delete(n.peers, id)
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	p.stop()
	return p.queue.len
}
