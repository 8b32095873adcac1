package chat_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// linkRace is two peers, a and b, for a test of a ping queued from a to b
// in the instant a's link to b ends: a's enqueue hook calls act once, for
// that ping (after enqueue found the link running, before it pushes), and
// b notes whether the ping arrived. Nothing else uses the link.
type linkRace struct {
	a, b     *chattest.Peer
	nonce    uint64
	fired    atomic.Bool
	mu       sync.Mutex
	received bool
}

// newLinkRace starts the two peers; configA adjusts a's config (nil: none).
func newLinkRace(t *testing.T, nonce uint64, configA func(*chat.Config), act func(a *chattest.Peer, to string)) *linkRace {
	t.Helper()
	r := &linkRace{nonce: nonce}
	var a atomic.Pointer[chattest.Peer]
	var bID atomic.Pointer[string]
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour // nothing else uses the link
		if i == 0 {
			if configA != nil {
				configA(cfg)
			}
			chat.SetEnqueueHookForTest(cfg, func(to string, f *chatpb.Frame) {
				if f.GetPing().GetNonce() != nonce || r.fired.Swap(true) {
					return
				}
				if id := bID.Load(); id != nil && *id == to {
					act(a.Load(), to)
				}
			})
			return
		}
		chat.SetFrameReceivedHookForTest(cfg, func(_ string, f *chatpb.Frame) {
			if f.GetPing().GetNonce() == nonce {
				r.mu.Lock()
				r.received = true
				r.mu.Unlock()
			}
		})
	})
	r.a, r.b = peers[0], peers[1]
	id := r.b.ID()
	a.Store(r.a)
	bID.Store(&id)
	return r
}

// send queues the ping to b, which must be reported queued.
func (r *linkRace) send(t *testing.T) {
	t.Helper()
	if !r.a.SendFrameRawForTest(r.b.ID(), &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: r.nonce}}}) {
		t.Fatal("ping not queued")
	}
}

// waitReceived waits for the ping at b; msg says what failed when it
// does not come.
func (r *linkRace) waitReceived(t *testing.T, msg string) {
	t.Helper()
	chattest.WaitFor(t, timeout, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.received
	}, msg)
}

// A frame queued on a link in the instant its writer drops it for
// idleness is not lost: the drop and the push are decided under the
// queue's lock, so the push is refused and sendFrame puts the frame on a
// new link (before, the frame went into the dropped link's queue and
// sendFrame reported it sent). The instant is made with a hook: the link
// is idled out and dropped after enqueue found it running, before it
// pushes.
func TestFrameQueuedAsIdleLinkDrops(t *testing.T) {
	var dropped atomic.Bool
	r := newLinkRace(t, 0x1d1e,
		func(cfg *chat.Config) { chat.SetLinkIdleForTest(cfg, time.Hour) }, // it idles out only when the test says
		func(a *chattest.Peer, to string) { dropped.Store(a.IdleOutLinkForTest(to)) })
	id := r.b.ID()
	r.a.KeepLinkForTest(id, false) // a link on demand, which idles out
	r.send(t)
	if !r.fired.Load() || !dropped.Load() {
		t.Fatalf("the hook did not drop the link (fired %v, dropped %v)", r.fired.Load(), dropped.Load())
	}
	if _, ok := r.a.LinkForTest(id); !ok {
		t.Fatal("the ping was reported queued, but no link holds it")
	}
	r.waitReceived(t, "the ping queued as the link dropped never arrived")
}

// A frame queued on a link in the instant it is stopped (its member
// left: out of the node's links, then stop) is not accepted onto a queue
// no writer will read: stop closes the queue before it ends the link, so
// the push is refused and sendFrame puts the frame on a new link (before,
// sendFrame reported it queued and it was lost). The instant is made with
// a hook: the link is stopped after enqueue found it running, before it
// pushes.
func TestFrameQueuedAsLinkStops(t *testing.T) {
	var stopped atomic.Pointer[func() int]
	r := newLinkRace(t, 0x5709, nil, func(a *chattest.Peer, to string) {
		if left := a.StopLinkForTest(to); left != nil {
			stopped.Store(&left)
		}
	})
	r.send(t)
	left := stopped.Load()
	if !r.fired.Load() || left == nil {
		t.Fatalf("the hook did not stop the link (fired %v)", r.fired.Load())
	}
	if k := (*left)(); k != 0 {
		t.Fatalf("the ping was reported queued, but went onto the stopped link's queue (%d frames there)", k)
	}
	r.waitReceived(t, "the ping queued as the link stopped never arrived")
}
