package order

import (
	"slices"
	"testing"
)

// split cuts every link between the groups a and b and makes each side
// declare the other failed, as memberlist does on both sides of a
// partition that outlasts its failure detection.
func (s *sim) split(a, b []string) {
	s.t.Helper()
	s.partition(a, b)
	for _, x := range a {
		for _, y := range b {
			nx, ny := s.node(x), s.node(y)
			s.handle(nx, nx.m.MemberDown(y))
			s.handle(ny, ny.m.MemberDown(x))
		}
	}
}

// rejoin heals every partition and makes every live member see every
// other live again.
func (s *sim) rejoin() {
	s.t.Helper()
	s.heal()
	for _, x := range s.ids {
		nx := s.node(x)
		if !nx.up {
			continue
		}
		for _, y := range s.ids {
			if s.node(y).up {
				s.handle(nx, nx.m.MemberUp(y, s.age(y)))
			}
		}
	}
}

// leave makes id part the room: it stops, and every other live member
// reports it gone for good.
func (s *sim) leave(id string) {
	s.t.Helper()
	s.node(id).up = false
	for _, o := range s.ids {
		if n := s.nodes[o]; n.up {
			s.handle(n, n.m.MemberLeft(id))
		}
	}
}

// wantSequencer fails unless every given node is in epoch e of sequencer
// seqr.
func wantSequencer(t *testing.T, s *sim, e uint64, seqr string, nodes ...string) {
	t.Helper()
	for _, id := range nodes {
		if st := s.node(id).m.Stats(); st.Epoch != e || st.Sequencer != seqr {
			t.Fatalf("%s: epoch %d sequencer %q, want %d and %q", id, st.Epoch, st.Sequencer, e, seqr)
		}
	}
}

// wantDelivered fails unless each node delivered exactly n messages.
func wantDelivered(t *testing.T, s *sim, n int, nodes ...string) {
	t.Helper()
	for _, id := range nodes {
		if got := ids(s.node(id).delivered); len(got) != n {
			t.Fatalf("%s delivered %d messages, want %d: %v", id, len(got), n, got)
		}
	}
}

// wantAll fails unless every node delivered every message of sent, and
// no node counted a conflict (two sequencers of one epoch).
func wantAll(t *testing.T, s *sim, sent []ID, nodes ...string) {
	t.Helper()
	for _, id := range nodes {
		n := s.node(id)
		got := ids(n.delivered)
		for _, m := range sent {
			if !slices.Contains(got, m.String()) {
				t.Fatalf("%s never delivered %s: %v", id, m, got)
			}
		}
		if c := n.m.Stats().Conflicts; c != 0 {
			t.Fatalf("%s counted %d conflicting sequencer messages", id, c)
		}
		if len(n.late) != 0 {
			t.Fatalf("%s reported late %v", id, ids(n.late))
		}
	}
}

// A 2 | 2 split of a four-member sequencer room (the CI campaign's
// seed 1 under load): neither side is a majority, so neither takes a new
// sequencer, and the old one stops stamping on its side; every message
// sent during the split waits, and after the heal every member shows the
// same sequence, those messages included. Before the quorum rule the side
// without the sequencer opened epoch 2 on its own, and after the heal the
// members followed two sequencers.
func TestQuorumSplitTwoTwoTakesNoSequencer(t *testing.T) {
	s := newSim(t, Sequencer, "a", "b", "c", "d")
	s.converge()
	sent := []ID{s.send("a"), s.send("c")}
	s.converge()
	sameDelivered(t, s, 2, s.ids...)

	s.split([]string{"a", "b"}, []string{"c", "d"})
	for range 2 {
		for _, id := range s.ids {
			sent = append(sent, s.send(id))
		}
	}
	s.converge()
	wantSequencer(t, s, 1, "a", s.ids...)
	wantDelivered(t, s, 2, s.ids...)
	for _, id := range s.ids {
		if hb := s.node(id).m.HeldBack(0); len(hb) == 0 {
			t.Fatalf("%s holds nothing back during the split", id)
		}
	}

	s.rejoin()
	s.converge()
	sameDelivered(t, s, len(sent), s.ids...)
	wantAll(t, s, sent, s.ids...)
	// c and d had closed epoch 1 (their syncs): a, still the sequencer,
	// opened epoch 2 with every stamp of its own valid.
	wantSequencer(t, s, 2, "a", s.ids...)
	sent = append(sent, s.send("d"), s.send("b"))
	s.converge()
	sameDelivered(t, s, len(sent), s.ids...)
}

// A 3 | 1 split with the sequencer alone: the three are a majority and
// take over; the sequencer, alone, stops stamping, so its own messages
// wait, and are ordered by the new sequencer after the heal.
func TestQuorumSplitThreeOneSequencerAlone(t *testing.T) {
	s := newSim(t, Sequencer, "a", "b", "c", "d")
	s.converge()
	sent := []ID{s.send("a"), s.send("d")}
	s.converge()

	s.split([]string{"a"}, []string{"b", "c", "d"})
	sent = append(sent, s.send("a"), s.send("b"), s.send("a"), s.send("d"), s.send("c"))
	s.converge()
	wantSequencer(t, s, 2, "b", "b", "c", "d")
	wantSequencer(t, s, 1, "a", "a")
	sameDelivered(t, s, 5, "b", "c", "d")
	wantDelivered(t, s, 2, "a")

	s.rejoin()
	s.converge()
	sameDelivered(t, s, len(sent), s.ids...)
	wantAll(t, s, sent, s.ids...)
	wantSequencer(t, s, 2, "b", s.ids...)
}

// A 3 | 1 split with another member alone: the sequencer keeps its
// majority and goes on; the lone member neither takes the role nor shows
// anything new, and after the heal it shows the same sequence (the
// sequencer reopens its epoch for it: it had sent a sync closing it).
func TestQuorumSplitThreeOneMemberAlone(t *testing.T) {
	s := newSim(t, Sequencer, "a", "b", "c", "d")
	s.converge()
	sent := []ID{s.send("a"), s.send("d")}
	s.converge()

	s.split([]string{"d"}, []string{"a", "b", "c"})
	sent = append(sent, s.send("d"), s.send("b"), s.send("d"), s.send("a"), s.send("c"))
	s.converge()
	wantSequencer(t, s, 1, "a", s.ids...)
	sameDelivered(t, s, 5, "a", "b", "c")
	wantDelivered(t, s, 2, "d")

	s.rejoin()
	s.converge()
	sameDelivered(t, s, len(sent), s.ids...)
	wantAll(t, s, sent, s.ids...)
	wantSequencer(t, s, 2, "a", s.ids...)
}

// A member that parted the room does not vote: with d gone and a failed,
// b and c are two of the three voters and take over. Had d only failed,
// they would be two of four and wait (the next test).
func TestQuorumLeftMemberDoesNotCount(t *testing.T) {
	s := newSim(t, Sequencer, "a", "b", "c", "d")
	s.converge()
	sent := []ID{s.send("d")}
	s.converge()
	s.leave("d")
	s.down("a")
	sent = append(sent, s.send("c"), s.send("b"))
	s.converge()
	wantSequencer(t, s, 2, "b", "b", "c")
	sameDelivered(t, s, len(sent), "b", "c")
	wantAll(t, s, sent, "b", "c")
}

// A failed member votes until its peer forgets it (MemberLeft): b and c,
// two of four voters after a and d failed, wait; once d is forgotten they
// are two of three and take over. A lone survivor of a two-member room
// likewise waits until the other is forgotten, then takes over.
func TestQuorumForgottenFailedMemberStopsCounting(t *testing.T) {
	t.Run("two of four", func(t *testing.T) {
		s := newSim(t, Sequencer, "a", "b", "c", "d")
		s.converge()
		sent := []ID{s.send("d")}
		s.converge()
		s.down("d")
		s.down("a")
		sent = append(sent, s.send("c"), s.send("b"))
		s.converge()
		wantSequencer(t, s, 1, "a", "b", "c")
		wantDelivered(t, s, 1, "b", "c")

		for _, id := range []string{"b", "c"} {
			n := s.node(id)
			s.handle(n, n.m.MemberLeft("d"))
		}
		s.converge()
		wantSequencer(t, s, 2, "b", "b", "c")
		sameDelivered(t, s, len(sent), "b", "c")
		wantAll(t, s, sent, "b", "c")
	})
	t.Run("lone survivor", func(t *testing.T) {
		s := newSim(t, Sequencer, "a", "b")
		s.converge()
		sent := []ID{s.send("b")}
		s.converge()
		s.down("a")
		sent = append(sent, s.send("b"))
		s.converge()
		wantDelivered(t, s, 1, "b")
		if hb := s.node("b").m.HeldBack(0); len(hb) != 1 || hb[0].Reason != "sequencer: not stamped yet (no quorum: 1 of 2 members live)" {
			t.Fatalf("b holds back %+v, want its message waiting for a quorum", hb)
		}
		n := s.node("b")
		s.handle(n, n.m.MemberLeft("a"))
		s.converge()
		wantSequencer(t, s, 2, "b", "b")
		sameDelivered(t, s, len(sent), "b")
	})
}

// A member that comes back up votes and counts as live again: after a
// flap (declared down, then up, with no takeover in between) the room
// goes on, and the member that synced against the sequencer is not left
// waiting for a cut that never comes.
func TestQuorumFlapResumes(t *testing.T) {
	s := newSim(t, Sequencer, "a", "b", "c")
	s.converge()
	sent := []ID{s.send("c")}
	s.converge()
	// c alone declares a down for a moment: it syncs, b does not.
	n := s.node("c")
	s.handle(n, n.m.MemberDown("a"))
	s.handle(n, n.m.MemberDown("b"))
	sent = append(sent, s.send("c"))
	s.handle(n, n.m.MemberUp("a", s.age("a")))
	s.handle(n, n.m.MemberUp("b", s.age("b")))
	sent = append(sent, s.send("a"), s.send("b"), s.send("c"))
	s.converge()
	sameDelivered(t, s, len(sent), s.ids...)
	wantAll(t, s, sent, s.ids...)
}
