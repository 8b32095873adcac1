package chat_test

import (
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// A message held for a dependency that was lost on the way to this peer
// (in a causal room: a's message depends on b's, which never reached c)
// makes c ask for the missing origin at once, pushed to each member or
// over the tree. Nothing of b's own stream shows c a gap (b sends nothing
// more), and anti-entropy rounds are an hour apart: before, c held a's
// message until a round covered b (in tree mode a round covers 40
// origins, so at 200 peers every 5 s), and under 20 % loss at N=100 to
// 200 such waits were most of the tail.
func TestDependencyGapPulledAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		tree bool
	}{{"push", false}, {"tree", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tune := func(_ int, cfg *chat.Config) {
				cfg.AntiEntropyInterval = time.Hour
				cfg.Faults = &chat.Faults{Seed: 1}
			}
			var peers []*chattest.Peer
			if tc.tree {
				peers = treeCluster(t, 3, tune)
				waitNeighbours(t, peers)
			} else {
				peers = chattest.Cluster(t, 3, tune)
			}
			a, b, c := peers[0], peers[1], peers[2]
			room := chat.DefaultRoom
			// Every origin's first message reaches everyone: the links,
			// and in tree mode each origin's tree, are up.
			sent := []string{sendTo(t, a, room, "a warm"), sendTo(t, b, room, "b warm"), sendTo(t, c, room, "c warm")}
			waitShown(t, room, sent, peers...)

			// b's next message reaches a but not c: a and b drop every
			// chat frame to c (b's push or eager push, a's relay or its
			// announcement).
			for _, p := range []*chattest.Peer{a, b} {
				if err := p.Partition(c.ID()); err != nil {
					t.Fatal(err)
				}
			}
			dropped := b.Stats().FaultDrops
			lost := sendTo(t, b, room, "lost on the way to c")
			chattest.WaitFor(t, timeout, func() bool {
				return len(a.Rec.RoomMessages(room)) == len(sent)+1 && b.Stats().FaultDrops > dropped
			}, "a shows %d messages (want %d), b dropped %d frames to c", len(a.Rec.RoomMessages(room)), len(sent)+1,
				b.Stats().FaultDrops-dropped)
			for _, p := range []*chattest.Peer{a, b} {
				if err := p.Heal(); err != nil {
					t.Fatal(err)
				}
			}
			pulls := c.Stats().GapPulls

			// a delivered b's message before it sent this one, so this one
			// depends on it.
			dep := sendTo(t, a, room, "depends on the lost one")
			sent = append(sent, lost, dep)
			waitShown(t, room, sent, peers...)
			if st := c.Stats(); st.GapPulls == pulls {
				t.Errorf("c stats %+v: want a gap pull (had %d)", st, pulls)
			}
		})
	}
}
