package chat_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// A message that reaches a peer off the tree goes on down the tree from
// there. The fault layer loses every frame of an origin o's broadcast
// (o's pushes and announcements), then o repairs it to v, its child in
// o's tree: v's own children in that tree get it from v over the tree,
// with no repair or graft of their own, and v grafts nothing for it.
// Before, v kept the repaired message to itself: nobody below it heard
// of it, and they waited for anti-entropy (here an hour away).
func TestTreeRelaysRepairedMessage(t *testing.T) {
	peers := treeCluster(t, 8, func(_ int, cfg *chat.Config) {
		cfg.Faults = &chat.Faults{}
		cfg.AntiEntropyInterval = time.Hour // no rounds, no gap pulls: the test repairs
	})
	waitNeighbours(t, peers)
	waitViewsSettled(t, peers)
	room := chat.DefaultRoom
	// Every origin's first messages build its tree.
	var sent []string
	for i := range 3 {
		for _, p := range peers {
			sent = append(sent, sendTo(t, p, room, fmt.Sprintf("warm %d", i)))
		}
	}
	waitShown(t, room, sent, peers...)
	byID := map[string]*chattest.Peer{}
	for _, p := range peers {
		byID[p.ID()] = p
	}
	tree := func(p *chattest.Peer, origin string) (parent string, eager, lazy []string) {
		t.Helper()
		parent, eager, lazy, ok := p.OverlayTreeForTest(origin)
		if !ok {
			t.Fatalf("%s: overlay driver not running", p.Nick())
		}
		return parent, eager, lazy
	}
	// An origin o, a child v of o in o's tree, and v's children there:
	// with 8 peers and at most 5 neighbours each, every tree has some.
	var o, v *chattest.Peer
	var kids []*chattest.Peer
	for _, cand := range peers {
		_, eager, _ := tree(cand, cand.ID())
		for _, vid := range eager {
			parent, veager, _ := tree(byID[vid], cand.ID())
			if parent != cand.ID() {
				continue
			}
			kids = kids[:0]
			for _, c := range veager {
				if cp, _, _ := tree(byID[c], cand.ID()); c != cand.ID() && cp == vid {
					kids = append(kids, byID[c])
				}
			}
			if len(kids) > 0 {
				o, v = cand, byID[vid]
				break
			}
		}
		if o != nil {
			break
		}
	}
	if o == nil {
		dumpOverlay(t, peers)
		t.Fatal("no tree of depth 2")
	}
	var kidNames []string
	for _, k := range kids {
		kidNames = append(kidNames, k.Nick())
	}
	t.Logf("origin %s, repaired at %s, its children in the tree %v", o.Nick(), v.Nick(), kidNames)

	// The fault layer decides a frame's fate when the link's writer sends
	// it, after the driver queued it: the drops counted are o's frames of
	// the message (one per neighbour) unless a probe's drop came first
	// and the faults ended while one was queued. Then the message may
	// reach v over the tree, and the attempt is made again.
	for attempt := 1; ; attempt++ {
		vBefore, kidsBefore := v.Stats(), make([]hearsay.Stats, len(kids))
		for i, k := range kids {
			kidsBefore[i] = k.Stats()
		}
		_, oEager, oLazy := tree(o, o.ID())
		drops, ihaves := o.Stats().FaultDrops, o.OverlayStatsForTest().Sent[overlay.KindIHave]
		if err := o.SetFaults(chat.Faults{DropRatio: 1}); err != nil {
			t.Fatal(err)
		}
		id, err := o.Send(context.Background(), room, fmt.Sprintf("lost %d", attempt))
		if err != nil {
			t.Fatal(err)
		}
		chattest.WaitFor(t, timeout, func() bool {
			return o.Stats().FaultDrops-drops >= uint64(len(oEager)+len(oLazy)) &&
				(len(oLazy) == 0 || o.OverlayStatsForTest().Sent[overlay.KindIHave] > ihaves)
		}, "o's frames of the message not dropped")
		if err := o.SetFaults(chat.Faults{}); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id.String())
		if v.Stats().OverlayDelivered > vBefore.OverlayDelivered {
			if attempt == 3 {
				t.Fatal("three attempts' messages reached v over the tree despite the faults")
			}
			waitShown(t, room, sent, peers...)
			continue
		}
		o.SendRepairForTest(v.ID(), room, o.ID(), id.Seq)
		waitShown(t, room, sent, append([]*chattest.Peer{v}, kids...)...)
		if got := v.Stats().Repaired - vBefore.Repaired; got != 1 {
			t.Fatalf("v stored %d messages from repairs, want 1", got)
		}
		if got := v.OverlayRepairedForTest(); got == 0 {
			t.Error("v's overlay machine took no repaired message")
		}
		if got := v.Stats().OverlayGrafts - vBefore.OverlayGrafts; got != 0 {
			t.Errorf("v sent %d grafts", got)
		}
		for i, k := range kids {
			st := k.Stats()
			if st.Repaired != kidsBefore[i].Repaired || st.GapPulls != kidsBefore[i].GapPulls {
				t.Errorf("%s repaired the message itself (repaired %d, gap pulls %d)", k.Nick(),
					st.Repaired-kidsBefore[i].Repaired, st.GapPulls-kidsBefore[i].GapPulls)
			}
			if st.OverlayGrafts != kidsBefore[i].OverlayGrafts {
				t.Errorf("%s grafted (%d)", k.Nick(), st.OverlayGrafts-kidsBefore[i].OverlayGrafts)
			}
			if st.OverlayDelivered == kidsBefore[i].OverlayDelivered {
				t.Errorf("%s did not get the message over the tree", k.Nick())
			}
		}
		break
	}
	// The rest of the group hears it announced by the peers that have it
	// and grafts it; o's tree is still whole for its next message.
	waitShown(t, room, sent, peers...)
	next := sendTo(t, o, room, "after")
	waitShown(t, room, append(sent, next), peers...)
	if slices.ContainsFunc(peers, func(p *chattest.Peer) bool { return p.Stats().OverlayNeighbors == 0 }) {
		t.Error("a peer lost every neighbour")
	}
}
