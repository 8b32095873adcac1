package chat_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// sequencerRoom makes the peers join a sequencer room one by one, so
// that peers[0] is its oldest member (the sequencer).
func sequencerRoom(t *testing.T, room string, peers []*chattest.Peer) {
	t.Helper()
	for i := range peers {
		chattest.JoinRoom(t, room, hearsay.OrderSequencer, peers[:i+1]...)
		chattest.WaitRoomSeen(t, room, peers[:i+1], peers...)
	}
}

// waitShownID waits until every peer showed the message id in room.
func waitShownID(t *testing.T, room, id string, peers ...*chattest.Peer) {
	t.Helper()
	chattest.WaitFor(t, timeout, func() bool {
		for _, p := range peers {
			if !slices.Contains(idsOf(p.Rec.RoomMessages(room)), id) {
				return false
			}
		}
		return true
	}, "%s shown in #%s by every peer", id, room)
}

// The lone survivor of a two-member sequencer room whose other member
// failed (crashed, no leave) is not a majority: it neither takes the
// sequencer role over nor shows its new message ("no quorum"), until the
// failed member has been failed for Config.FailedVoterTimeout; then the
// failed member stops counting, and it takes over and shows it. Before
// the quorum rule it took over at once, like the minority side of a
// partition, which left the room with two sequencers after the heal.
func TestSequencerLoneSurvivorWaitsForFailedVoterTimeout(t *testing.T) {
	const room = "seq"
	peers := chattest.Cluster(t, 2, func(_ int, cfg *chat.Config) {
		fastRooms(cfg)
		patientDetector(cfg)
		cfg.FailedVoterTimeout = 3 * time.Second
	})
	sequencerRoom(t, room, peers)
	waitShownID(t, room, sendTo(t, peers[1], room, "both here"), peers...)

	if err := peers[0].Shutdown(); err != nil { // the sequencer crashes
		t.Fatal(err)
	}
	alone := sendTo(t, peers[1], room, "alone")
	chattest.WaitFor(t, timeout, func() bool {
		held := peers[1].HeldBack(room, 0)
		return len(held) == 1 && strings.Contains(held[0], "no quorum: 1 of 2 members live")
	}, "p1 holding its message back for want of a quorum")
	if slices.Contains(idsOf(peers[1].Rec.RoomMessages(room)), alone) {
		t.Fatal("p1 showed its message without a quorum")
	}
	waitShownID(t, room, alone, peers[1])
	if held := peers[1].HeldBack(room, 0); len(held) != 0 {
		t.Fatalf("p1 still holds back %v", held)
	}
}

// A member that parted the room, or left the group, does not vote: with
// p3 gone and p0 (the sequencer) failed, p1 and p2 are two of the three
// voters and take the role over at once, well before the failed voter
// timeout (an hour here); had p3 counted, they would wait for it.
func TestSequencerPartedMemberDoesNotVote(t *testing.T) {
	for _, how := range []string{"parted", "left the group"} {
		t.Run(how, func(t *testing.T) {
			const room = "seq"
			peers := chattest.Cluster(t, 4, func(_ int, cfg *chat.Config) {
				fastRooms(cfg)
				patientDetector(cfg)
				cfg.FailedVoterTimeout = time.Hour
			})
			sequencerRoom(t, room, peers)
			waitShownID(t, room, sendTo(t, peers[2], room, "all here"), peers...)

			var err error
			if how == "parted" {
				err = peers[3].PartRoom(t.Context(), room)
			} else {
				// The agent first, as a program quits: Members after Leave
				// panics in memberlist's LocalNode (its own entry is gone).
				_ = peers[3].Agent.Close(t.Context()) // no service to leave: an error is expected
				err = peers[3].Leave(t.Context())
			}
			if err != nil {
				t.Fatal(err)
			}
			chattest.WaitRoomSeen(t, room, peers[:3], peers[:3]...)
			if err := peers[0].Shutdown(); err != nil {
				t.Fatal(err)
			}
			waitShownID(t, room, sendTo(t, peers[1], room, "after the failure"), peers[1], peers[2])
			waitShownID(t, room, sendTo(t, peers[2], room, "and again"), peers[1], peers[2])
			for _, p := range peers[1:3] {
				if held := p.HeldBack(room, 0); len(held) != 0 {
					t.Errorf("%s holds back %v", p.Nick(), held)
				}
			}
		})
	}
}
