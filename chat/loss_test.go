package chat_test

import (
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// In tree mode a peer that sees a gap in an origin's seqs asks the
// neighbour that relayed the message, not the origin: here the origin b
// cannot reach c at all (every chat frame between them is dropped at b),
// and a's relay of b's first message (or its announcement) is lost, so
// only a can repair it, and anti-entropy rounds are an hour apart.
// Before, the pull went to the origin and c held b's second message for
// good. (In a large group under loss, pulls to the origin also made the
// sender the repairer of everyone.)
func TestTreeGapPulledFromRelay(t *testing.T) {
	peers := treeCluster(t, 3, func(_ int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour
		cfg.Faults = &chat.Faults{Seed: 1}
	})
	waitNeighbours(t, peers)
	a, b, c := peers[0], peers[1], peers[2]
	room := chat.DefaultRoom
	// Every origin's first message reaches everyone: the links and each
	// origin's tree are up.
	sent := []string{sendTo(t, a, room, "a warm"), sendTo(t, b, room, "b warm"), sendTo(t, c, room, "c warm")}
	waitShown(t, room, sent, peers...)

	if err := b.Partition(c.ID()); err != nil {
		t.Fatal(err)
	}
	if err := a.Partition(c.ID()); err != nil {
		t.Fatal(err)
	}
	dropped := a.Stats().FaultDrops
	lost := sendTo(t, b, room, "lost on the way to c")
	// a's relay of it to c, an eager push at once or an announcement at
	// its next lazy flush, must be dropped before the heal: one that went
	// after would let c graft it, with no gap to pull. So wait until a
	// shows it, has no announcement left to flush and nothing queued for
	// c, and has dropped a frame to c.
	chattest.WaitFor(t, timeout, func() bool {
		if len(a.Rec.RoomMessages(room)) != len(sent)+1 || a.Stats().FaultDrops == dropped {
			return false
		}
		lazy, ok := a.OverlayLazyQueuedForTest()
		link, _ := a.LinkForTest(c.ID())
		return ok && lazy == 0 && link.Queued == 0
	}, "a shows %d messages (want %d), a dropped %d frames to c", len(a.Rec.RoomMessages(room)), len(sent)+1,
		a.Stats().FaultDrops-dropped)
	if err := a.Heal(); err != nil {
		t.Fatal(err)
	}
	pulls := c.Stats().GapPulls
	// c gets b's next message through a only, and sees the gap.
	next := sendTo(t, b, room, "shows the gap")
	sent = append(sent, lost, next)
	waitShown(t, room, sent, peers...)
	if st := c.Stats(); st.GapPulls == pulls || st.Repaired == 0 {
		t.Errorf("c stats %+v: want a gap pull (had %d) and a repaired message", st, pulls)
	}
}
