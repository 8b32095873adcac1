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

// A frame queued on a link in the instant its writer drops it for
// idleness is not lost: the drop and the push are decided under the
// queue's lock, so the push is refused and sendFrame puts the frame on a
// new link (before, the frame went into the dropped link's queue and
// sendFrame reported it sent). The instant is made with a hook: the link
// is idled out and dropped after enqueue found it running, before it
// pushes.
func TestFrameQueuedAsIdleLinkDrops(t *testing.T) {
	const nonce = 0x1d1e
	var (
		a        atomic.Pointer[chattest.Peer]
		bID      atomic.Pointer[string]
		fired    atomic.Bool
		dropped  atomic.Bool
		mu       sync.Mutex
		received bool
	)
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour     // nothing else uses the link
		chat.SetLinkIdleForTest(cfg, time.Hour) // it idles out only when the test says
		if i == 0 {
			chat.SetEnqueueHookForTest(cfg, func(to string, f *chatpb.Frame) {
				if f.GetPing().GetNonce() != nonce || fired.Swap(true) {
					return
				}
				if id := bID.Load(); id != nil && *id == to {
					dropped.Store(a.Load().IdleOutLinkForTest(to))
				}
			})
			return
		}
		chat.SetFrameReceivedHookForTest(cfg, func(_ string, f *chatpb.Frame) {
			if f.GetPing().GetNonce() == nonce {
				mu.Lock()
				received = true
				mu.Unlock()
			}
		})
	})
	pa, pb := peers[0], peers[1]
	id := pb.ID()
	a.Store(pa)
	bID.Store(&id)
	pa.KeepLinkForTest(id, false) // a link on demand, which idles out
	if !pa.SendFrameRawForTest(id, &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: nonce}}}) {
		t.Fatal("ping not queued")
	}
	if !fired.Load() || !dropped.Load() {
		t.Fatalf("the hook did not drop the link (fired %v, dropped %v)", fired.Load(), dropped.Load())
	}
	if _, ok := pa.LinkForTest(id); !ok {
		t.Fatal("the ping was reported queued, but no link holds it")
	}
	chattest.WaitFor(t, timeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return received
	}, "the ping queued as the link dropped never arrived")
}

// A frame queued on a link in the instant it is stopped (its member
// left: out of the node's links, then stop) is not accepted onto a queue
// no writer will read: stop closes the queue before it ends the link, so
// the push is refused and sendFrame puts the frame on a new link (before,
// sendFrame reported it queued and it was lost). The instant is made with
// a hook: the link is stopped after enqueue found it running, before it
// pushes.
func TestFrameQueuedAsLinkStops(t *testing.T) {
	const nonce = 0x5709
	var (
		a        atomic.Pointer[chattest.Peer]
		bID      atomic.Pointer[string]
		fired    atomic.Bool
		stopped  atomic.Pointer[func() int]
		mu       sync.Mutex
		received bool
	)
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour // nothing else uses the link
		if i == 0 {
			chat.SetEnqueueHookForTest(cfg, func(to string, f *chatpb.Frame) {
				if f.GetPing().GetNonce() != nonce || fired.Swap(true) {
					return
				}
				if id := bID.Load(); id != nil && *id == to {
					if left := a.Load().StopLinkForTest(to); left != nil {
						stopped.Store(&left)
					}
				}
			})
			return
		}
		chat.SetFrameReceivedHookForTest(cfg, func(_ string, f *chatpb.Frame) {
			if f.GetPing().GetNonce() == nonce {
				mu.Lock()
				received = true
				mu.Unlock()
			}
		})
	})
	pa, pb := peers[0], peers[1]
	id := pb.ID()
	a.Store(pa)
	bID.Store(&id)
	if !pa.SendFrameRawForTest(id, &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: nonce}}}) {
		t.Fatal("ping not queued")
	}
	left := stopped.Load()
	if !fired.Load() || left == nil {
		t.Fatalf("the hook did not stop the link (fired %v)", fired.Load())
	}
	if k := (*left)(); k != 0 {
		t.Fatalf("the ping was reported queued, but went onto the stopped link's queue (%d frames there)", k)
	}
	chattest.WaitFor(t, timeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return received
	}, "the ping queued as the link stopped never arrived")
}
