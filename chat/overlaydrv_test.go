package chat_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// treeCluster starts n peers that use the tree for every room message
// (TreeThreshold 2) and whose anti-entropy is too slow to matter within a
// test (a minute), so what arrives came over the tree.
func treeCluster(t *testing.T, n int, tune func(i int, cfg *chat.Config)) []*chattest.Peer {
	t.Helper()
	peers := make([]*chattest.Peer, n)
	for i := range peers {
		cfg := chattest.Config(t, fmt.Sprintf("p%d", i))
		cfg.TreeThreshold = 2
		cfg.AntiEntropyInterval = time.Minute
		// Failure detection slow enough that dozens of peers on a loaded
		// machine do not declare each other dead by mistake (each false
		// death reshapes the views); the tests that stop a peer wait
		// for it.
		s := chattest.FastSettings()
		s.ProbeInterval = chat.Duration(time.Second)
		s.ProbeTimeout = chat.Duration(500 * time.Millisecond)
		s.SuspicionMult = 4
		cfg.Memberlist = &s
		if tune != nil {
			tune(i, &cfg)
		}
		peers[i] = chattest.Start(t, cfg)
	}
	// Each joins through an earlier peer, not all through the first: one
	// contact's push-pull with dozens of joiners times out on a loaded
	// machine. A join that fails is tried again through another.
	for i, p := range peers[1:] {
		var err error
		for attempt := range 5 {
			ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
			_, err = p.Join(ctx, []string{peers[(i+attempt)%(i+1)].AdvertiseAddr()})
			cancel()
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("join %s: %v", p.Nick(), err)
		}
	}
	// Dozens of peers on a loaded machine converge more slowly than
	// chattest's default allows.
	chattest.WaitFor(t, 3*time.Minute, func() bool {
		for _, p := range peers {
			if chattest.AliveCount(p.Node) != len(peers) || p.Stats().Streams != len(peers)-1 {
				return false
			}
		}
		return true
	}, "%d peers did not converge", n)
	chattest.WaitConverged(t, peers...)
	return peers
}

// waitNeighbours waits until every peer has an overlay neighbour (their
// messages go over the tree).
func waitNeighbours(t *testing.T, peers []*chattest.Peer) {
	t.Helper()
	chattest.WaitFor(t, timeout, func() bool {
		for _, p := range peers {
			if p.Stats().OverlayNeighbors == 0 {
				return false
			}
		}
		return true
	}, "overlay neighbours")
}

// waitViewsSettled waits until no peer has sent a view message (join,
// forward-join, neighbour request or reply, disconnect) for a while: a
// burst of joins reshapes the views for a few seconds, and each new link
// starts eager in every tree (copies above 1 until it is pruned).
func waitViewsSettled(t *testing.T, peers []*chattest.Peer) {
	t.Helper()
	viewMsgs := func() uint64 {
		var k uint64
		for _, p := range peers {
			st := p.OverlayStatsForTest()
			for _, kind := range []overlay.Kind{overlay.KindJoin, overlay.KindForwardJoin, overlay.KindNeighbor,
				overlay.KindNeighborReply, overlay.KindDisconnect} {
				k += st.Sent[kind]
			}
		}
		return k
	}
	last, since := viewMsgs(), time.Now()
	chattest.WaitFor(t, time.Minute, func() bool {
		if k := viewMsgs(); k != last {
			last, since = k, time.Now()
		}
		return time.Since(since) > 1500*time.Millisecond
	}, "overlay views still changing")
}

// waitShown waits until each peer shows want messages of room, and checks
// they are shown once each in per-origin order.
func waitShown(t *testing.T, room string, want []string, peers ...*chattest.Peer) {
	t.Helper()
	for _, p := range peers {
		if !chattest.Poll(timeout, func() bool { return len(p.Rec.RoomMessages(room)) >= len(want) }) {
			dumpOverlay(t, peers)
			t.Fatalf("%s shows %d of %d messages of #%s", p.Nick(), len(p.Rec.RoomMessages(room)), len(want), room)
		}
	}
	for _, p := range peers {
		got := p.Rec.RoomMessages(room)
		checkShown(t, p.Nick(), got)
		ids := idsOf(got)
		for _, id := range want {
			if !slices.Contains(ids, id) {
				t.Errorf("%s lacks %s", p.Nick(), id)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s shows %d messages of #%s, want %d", p.Nick(), len(got), room, len(want))
		}
	}
}

func dumpOverlay(t *testing.T, peers []*chattest.Peer) {
	for _, p := range peers {
		st := p.Stats()
		var nb []string
		for _, id := range p.OverlayNeighboursForTest() {
			for _, q := range peers {
				if q.ID() == id {
					nb = append(nb, q.Nick())
				}
			}
		}
		t.Logf("%s %v: neighbours %d payloads %d delivered %d relayed %d broadcasts %d grafts %d ihave %d invalid %d drops %d repaired %d queue drops %d",
			p.Nick(), nb, st.OverlayNeighbors, st.OverlayPayloads, st.OverlayDelivered, st.OverlayRelayed, st.OverlayBroadcasts,
			st.OverlayGrafts, st.OverlayIHave, st.OverlayInvalid, st.OverlayDrops, st.Repaired, st.QueueDrops)
	}
}

type overlayTotals struct{ payloads, delivered, broadcasts, relayed uint64 }

func totals(peers []*chattest.Peer) overlayTotals {
	var o overlayTotals
	for _, p := range peers {
		st := p.Stats()
		o.payloads += st.OverlayPayloads
		o.delivered += st.OverlayDelivered
		o.broadcasts += st.OverlayBroadcasts
		o.relayed += st.OverlayRelayed
	}
	return o
}

// A group of 30 over the tree: every room member shows every message
// exactly once, each peer receives about one copy of each once the
// speakers' trees are built, and the two peers outside the room relay the
// room's messages without storing or showing them.
func TestTreeDeliversOnceToEveryMember(t *testing.T) {
	if testing.Short() {
		t.Skip("30 peers")
	}
	const room = "crowd"
	peers := treeCluster(t, 30, nil)
	members, outside := peers[:28], peers[28:]
	chattest.JoinRoom(t, room, 0, members...)
	chattest.WaitRoomSeen(t, room, members, outside...)
	waitNeighbours(t, peers)
	waitViewsSettled(t, peers)
	speakers := members[:3]

	// Warm-up: each speaker's first broadcast floods the overlay and
	// builds its tree (the next ones settle what views that were still
	// changing added).
	var sent []string
	for i := range 3 * len(speakers) {
		sent = append(sent, sendTo(t, speakers[i%len(speakers)], room, fmt.Sprintf("warm %d", i)))
	}
	waitShown(t, room, sent, members...)
	before := totals(peers)
	var beforeKinds []overlay.Stats
	for _, p := range peers {
		beforeKinds = append(beforeKinds, p.OverlayStatsForTest())
	}

	for i := range 30 {
		sent = append(sent, sendTo(t, speakers[i%len(speakers)], room, fmt.Sprintf("m%d", i)))
	}
	waitShown(t, room, sent, members...)
	// Every peer but the origin receives each message: wait until the
	// outsiders have relayed them all too.
	if !chattest.Poll(timeout, func() bool {
		return totals(peers).delivered-before.delivered >= 30*uint64(len(peers)-1)
	}) {
		dumpOverlay(t, peers)
		t.Fatalf("%d deliveries over the overlay, want %d", totals(peers).delivered-before.delivered, 30*uint64(len(peers)-1))
	}
	after := totals(peers)
	// What the overlay sent in the measured phase, by kind (view changes
	// there make new eager links, hence copies).
	var sent0, sent1 [overlay.NumKinds]uint64
	for i, p := range peers {
		st := p.OverlayStatsForTest()
		for k := range sent1 {
			sent1[k] += st.Sent[k]
			sent0[k] += beforeKinds[i].Sent[k]
		}
	}
	var kinds []string
	for k := 1; k < overlay.NumKinds; k++ {
		kinds = append(kinds, fmt.Sprintf("%s %d", overlay.Kind(k), sent1[k]-sent0[k]))
	}
	t.Logf("overlay messages sent: %s", strings.Join(kinds, ", "))
	copies := float64(after.payloads-before.payloads) / float64(after.delivered-before.delivered)
	t.Logf("copies per delivery after warm-up: %.3f (%d payloads, %d deliveries)",
		copies, after.payloads-before.payloads, after.delivered-before.delivered)
	if copies > 1.1 {
		t.Errorf("copies per delivery %.3f > 1.1", copies)
	}
	if after.broadcasts < uint64(len(sent)) {
		t.Errorf("%d broadcasts over the tree, want %d", after.broadcasts, len(sent))
	}
	for _, p := range outside {
		st := p.Stats()
		if st.OverlayRelayed < uint64(len(sent)) {
			t.Errorf("%s relayed %d messages of #%s, want %d", p.Nick(), st.OverlayRelayed, room, len(sent))
		}
		if n := len(p.Rec.RoomMessages(room)); n != 0 {
			t.Errorf("%s, outside the room, showed %d of its messages", p.Nick(), n)
		}
		if _, err := p.History(room, 10); err == nil {
			if ids := chattest.HistoryIDs(t, p.Node, room); len(ids) != 0 {
				t.Errorf("%s, outside the room, stored %d of its messages", p.Nick(), len(ids))
			}
		}
	}
}
