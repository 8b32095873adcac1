package chat

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// OverlayNeighboursForTest returns the overlay's active view.
func (n *Node) OverlayNeighboursForTest() []string { return n.ovl.neighbours() }

// SendOverlayGossipForTest sends peer to an overlay gossip frame with
// payload, as a misbehaving neighbour would. A tree origin or a message ID
// other than zero is written into the frame's peer and id fields beside
// the payload, as protocol 6 did (protocol 7 derives them from the
// payload and refuses a frame that sets them).
func (n *Node) SendOverlayGossipForTest(to, tree string, id overlay.MsgID, payload []byte) bool {
	m := overlay.Message{Kind: overlay.KindGossip, Payload: payload}
	f := overlayFrame(&m)
	f.GetOverlay().Peer = tree
	if id != (overlay.MsgID{}) {
		f.GetOverlay().Id = id[:]
	}
	return n.sendFrame(to, f)
}

// OverlayIDForTest returns the overlay message ID of env.
func OverlayIDForTest(env *chatpb.Envelope) overlay.MsgID {
	return overlayMsgID(env.Room, env.Origin, env.Seq)
}

// OverlayStatsForTest returns the overlay machine's counters.
func (n *Node) OverlayStatsForTest() overlay.Stats {
	d := n.ovl
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// runOnOverlayForTest runs fn on n's overlay driver goroutine and waits
// for it; false if the driver is not running or does not take it in time.
func (n *Node) runOnOverlayForTest(fn func(d *overlayDriver)) bool {
	d := n.ovl
	if !d.running.Load() {
		return false
	}
	done := make(chan struct{})
	in := overlayInput{fn: func(d *overlayDriver) {
		defer close(done)
		fn(d)
	}}
	if !pushOverlayForTest(d, inboxView, in) {
		return false
	}
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// StepOverlayForTest hands n's overlay machine msgs from peer from, all in
// one pass of the driver (one flush after them, as a burst of frames
// drained together), and reports whether from is a neighbour of the
// machine afterwards and whether n keeps its link.
func (n *Node) StepOverlayForTest(from string, msgs ...overlay.Message) (neighbour, kept, ok bool) {
	ok = n.runOnOverlayForTest(func(d *overlayDriver) {
		for _, m := range msgs {
			d.m.Step(d.now(), from, m)
		}
		d.flush()
		neighbour = d.m.IsActive(from)
		n.mu.Lock()
		p := n.peers[from]
		n.mu.Unlock()
		if p != nil {
			p.mu.Lock()
			kept = p.kept
			p.mu.Unlock()
		}
	})
	return neighbour, kept, ok
}

// OverlayLinksForTest checks, on the driver's goroutine, that the links
// the driver keeps for the overlay are exactly the machine's active view
// and that each is marked kept; it returns what disagrees ("" if
// nothing).
func (n *Node) OverlayLinksForTest() string {
	var bad []string
	ok := n.runOnOverlayForTest(func(d *overlayDriver) {
		d.flush() // inputs drained before this one in the same pass
		for _, p := range d.m.Active() {
			if !d.kept[p] {
				bad = append(bad, "neighbour "+p+" not in the driver's kept set")
			}
			n.mu.Lock()
			l := n.peers[p]
			n.mu.Unlock()
			if l == nil {
				bad = append(bad, "neighbour "+p+" has no link")
				continue
			}
			l.mu.Lock()
			if !l.kept {
				bad = append(bad, "neighbour "+p+"'s link not kept")
			}
			l.mu.Unlock()
		}
		for p := range d.kept {
			if !d.m.IsActive(p) {
				bad = append(bad, p+" kept but not a neighbour")
			}
		}
	})
	if !ok {
		return "driver not running"
	}
	return strings.Join(bad, "; ")
}

// SendOverlayFrameForTest sends to an overlay frame carrying m, as a
// neighbour's driver would (or a misbehaving one).
func (n *Node) SendOverlayFrameForTest(to string, m overlay.Message) bool {
	return n.sendFrame(to, overlayFrame(&m))
}

// BlockOverlayForTest stops n's overlay driver in the middle of a pass
// until release is called (at the latest when the node shuts down), so
// that its inputs queue up; false if the driver did not take it.
func (n *Node) BlockOverlayForTest() (release func(), ok bool) {
	d := n.ovl
	started, stop := make(chan struct{}), make(chan struct{})
	in := overlayInput{fn: func(d *overlayDriver) {
		close(started)
		select {
		case <-stop:
		case <-d.n.ctx.Done():
		}
	}}
	if !pushOverlayForTest(d, inboxView, in) {
		return nil, false
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { close(stop) }) }, true
}

// FillOverlayQueuesForTest fills the driver's queues of tree frames and
// of our broadcasts with inputs that do nothing, as a flood of payloads
// and a busy sender's messages would, and returns how many it queued.
func (n *Node) FillOverlayQueuesForTest() int {
	d := n.ovl
	k := 0
	for _, q := range []int{inboxTree, inboxOwn} {
		for d.inbox.push(q, overlayInput{fn: func(*overlayDriver) {}}) {
			k++
		}
	}
	return k
}

// pushOverlayForTest queues in on d's queue k, waiting up to 10 s for
// room; false if there was none.
func pushOverlayForTest(d *overlayDriver, k int, in overlayInput) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !d.inbox.push(k, in) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // polls for room, with a deadline
	}
	return true
}

// OverlayQueuedForTest returns the inputs waiting for the driver: view
// frames and probes, tree frames, our broadcasts.
func (n *Node) OverlayQueuedForTest() (view, tree, own int) {
	l := n.ovl.inbox.lens()
	return l[inboxView], l[inboxTree], l[inboxOwn]
}

// OverlayInboxCapsForTest returns the capacity each of the driver's
// queues holds now: view frames and probes, tree frames, our broadcasts.
func (n *Node) OverlayInboxCapsForTest() (view, tree, own int) {
	c := n.ovl.inbox.caps()
	return c[inboxView], c[inboxTree], c[inboxOwn]
}

// KeptInboxCapForTest is the capacity a drained queue of the driver keeps.
const KeptInboxCapForTest = keptInboxCap

// OverlayFloodForTest holds n's overlay driver still, fills its queue of
// view frames with a flood (each flood input, when handled, puts another
// in its place until the test ends: a member whose view frames arrive as
// fast as the driver takes them), queues k tree inputs behind it and lets
// the driver go. It returns how many flood inputs the driver had handled
// when the last tree input ran; ok is false if the tree inputs did not
// all run within timeout.
func (n *Node) OverlayFloodForTest(tb testing.TB, k int, timeout time.Duration) (views uint64, ok bool) {
	tb.Helper()
	d := n.ovl
	release, held := n.BlockOverlayForTest()
	if !held {
		tb.Fatal("overlay driver not blocked")
	}
	defer release()
	stop := make(chan struct{})
	tb.Cleanup(func() { close(stop) })
	var flooded atomic.Uint64
	var flood overlayInput
	flood.fn = func(d *overlayDriver) {
		flooded.Add(1)
		select {
		case <-stop:
		default:
			d.inbox.push(inboxView, flood)
		}
	}
	for d.inbox.push(inboxView, flood) {
	}
	done := make(chan struct{})
	var ran int
	for i := range k {
		tree := overlayInput{fn: func(*overlayDriver) {
			ran++ // the driver's goroutine only
			if ran == k {
				views = flooded.Load()
				close(done)
			}
		}}
		if !d.inbox.push(inboxTree, tree) {
			tb.Fatalf("tree input %d of %d refused", i, k)
		}
	}
	release()
	select {
	case <-done:
		return views, true
	case <-time.After(timeout):
		return flooded.Load(), false
	}
}

// OverlayDrainForTest and OverlayViewShareForTest are the inputs of a pass
// of the driver and the most of them the view's frames take while others
// wait.
const (
	OverlayDrainForTest     = overlayDrain
	OverlayViewShareForTest = overlayViewShare
)

// OverlayTreeForTest returns, from n's overlay machine, origin's tree at
// n: its parent (overlay.Node.Parent) and its eager and lazy neighbours.
func (n *Node) OverlayTreeForTest(origin string) (parent string, eager, lazy []string, ok bool) {
	ok = n.runOnOverlayForTest(func(d *overlayDriver) {
		parent, eager, lazy = d.m.Parent(origin), d.m.Eager(origin), d.m.Lazy(origin)
	})
	return parent, eager, lazy, ok
}

// SendRepairForTest sends to a Repair frame of room with origin's stored
// message seq, as n answers a pull for it.
func (n *Node) SendRepairForTest(to, room, origin string, seq uint64) {
	n.sendRepair(to, room, []msglog.SeqRange{{Origin: origin, From: seq, To: seq}}, time.Time{})
}

// OverlayRepairedForTest counts the envelopes stored off the tree that
// n's overlay machine took as new (overlay.Node.Repaired).
func (n *Node) OverlayRepairedForTest() uint64 { return n.ovl.repaired.Load() }

// OverlayLazyQueuedForTest returns how many announcements n's overlay
// machine holds for its next lazy flush; false if the driver did not
// answer.
func (n *Node) OverlayLazyQueuedForTest() (int, bool) {
	k := -1
	ok := n.runOnOverlayForTest(func(d *overlayDriver) {
		if d.m != nil {
			k = d.m.LazyQueued()
		}
	})
	return k, ok && k >= 0
}
