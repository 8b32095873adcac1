package chat_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// In tree mode an anti-entropy round sends its slice of the version
// vector as an 8-byte digest (protocol 8): between peers that hold the
// same messages a status is a few dozen bytes, where protocol 7 sent the
// slice, about 22 bytes per origin (here 4 origins: about 110 bytes; at
// 100 peers that all spoke, 40 origins: 830). A message only its origin
// stored (every frame it sent meanwhile lost) still reaches every peer by
// anti-entropy: the digests differ, and the full statuses that answer
// them bring the repairs.
func TestTreeStatusDigest(t *testing.T) {
	var mu sync.Mutex
	var counting bool
	var digests, vectors, hots, maxDigestFrame, maxHotFrame int
	var kinds []string
	peers := treeCluster(t, 4, func(_ int, cfg *chat.Config) {
		cfg.Faults = &chat.Faults{}
		// Rounds fast enough that anti-entropy repairs the lost message
		// long before a graft could (the tree's graft timeout is 2 s; a
		// round's repair leaves out what is younger than 2 rounds).
		cfg.AntiEntropyInterval = 100 * time.Millisecond
		chat.SetFrameHookForTest(cfg, func(to string, f *chatpb.Frame) {
			st := f.GetStatus()
			if st == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if !counting {
				return
			}
			switch {
			case len(st.Digest) > 0:
				digests++
				maxDigestFrame = max(maxDigestFrame, proto.Size(f))
			case !st.Reply && !st.WantReply && len(st.Missing) == 0 && st.UntilOrigin == st.FromOrigin+"\x00" && len(st.Vector) <= 1:
				// A hot origin's status (hotorigins.go): one entry.
				hots++
				maxHotFrame = max(maxHotFrame, proto.Size(f))
			default:
				vectors++
				kinds = append(kinds, fmt.Sprintf("to %s reply %v want %v [%q,%q) %v", to[:4], st.Reply, st.WantReply, st.FromOrigin, st.UntilOrigin, st.Vector))
			}
		})
	})
	waitNeighbours(t, peers)
	warm := stream(t, chat.DefaultRoom, peers, 4, 20*time.Millisecond, nil)
	waitShown(t, chat.DefaultRoom, warm, peers...)

	// Settled: every peer holds the same, so every status is a digest.
	// Shown is not yet in every log's vector (a store's commit may follow
	// the show by a moment), so the first rounds may differ and be
	// answered in full: count from the 20 digests after those.
	for range 2 {
		mu.Lock()
		counting = true
		digests, vectors, hots, maxDigestFrame, maxHotFrame, kinds = 0, 0, 0, 0, 0, nil
		mu.Unlock()
		chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return digests >= 20
		}, "20 statuses")
	}
	mu.Lock()
	counting = false
	d, v, h, size, hotSize := digests, vectors, hots, maxDigestFrame, maxHotFrame
	mu.Unlock()
	t.Logf("settled: %d digest statuses (at most %d bytes each), %d hot origins' (at most %d bytes), %d other with a vector", d, size, h, hotSize, v)
	if v > 0 {
		t.Errorf("%d statuses carried a vector between peers that hold the same messages, want digests and hot origins' only: %v", v, kinds)
	}
	// A slice's digest status is at most 48 bytes; a hot origin's status
	// (hotorigins.go) names its origin three times, as its range and
	// its one entry: 76 with a 16-byte ID and a one-byte seq.
	if size > 48 {
		t.Errorf("a digest status frame of %d bytes, want at most 48", size)
	}
	if h == 0 {
		t.Error("no hot origin's status while messages arrived lately")
	}
	if hotSize > 76 {
		t.Errorf("a hot origin's status frame of %d bytes, want at most 76", hotSize)
	}

	// A message every frame of whose origin is lost while it is sent:
	// neither its eager pushes nor its announcements leave, so only
	// anti-entropy can bring it.
	origin := peers[0]
	before := origin.Stats().FaultDrops
	if err := origin.SetFaults(chat.Faults{DropRatio: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	lost := sendTo(t, origin, chat.DefaultRoom, "lost on the tree")
	// Until every push and announcement of it has been dropped: the origin
	// has dropped a frame and has nothing left to flush or queue.
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
		if origin.Stats().FaultDrops == before {
			return false
		}
		lazy, ok := origin.OverlayLazyQueuedForTest()
		if !ok || lazy > 0 {
			return false
		}
		for _, p := range peers[1:] {
			if link, _ := origin.LinkForTest(p.ID()); link.Queued > 0 {
				return false
			}
		}
		return true
	}, "the origin's frames dropped and its queues empty")
	if err := origin.SetFaults(chat.Faults{}); err != nil {
		t.Fatal(err)
	}
	var repairedBefore uint64
	for _, p := range peers[1:] {
		repairedBefore += p.Stats().Repaired
	}
	waitShown(t, chat.DefaultRoom, append(warm, lost), peers...)
	var repaired uint64
	for _, p := range peers[1:] {
		repaired += p.Stats().Repaired
	}
	// At least one peer stored it from a repair. The others may have it
	// from that peer's tree relay of the repaired message (a repaired
	// message goes down the tree: overlay.Node.Repaired), not from their
	// own repairs.
	if repaired == repairedBefore {
		t.Errorf("no message stored from repairs, want the lost one at least at one peer")
	}
}
