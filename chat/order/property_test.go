package order

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"testing"
)

// TestRandomisedRooms runs simulated rooms with random interleavings,
// duplicated and dropped packets (repaired by anti-entropy), and for the
// total modes the failure of a random member, then checks that every live
// member delivered everything the live members stored, in an order the mode
// allows, and the same sequence where the mode promises it.
func TestRandomisedRooms(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	// HEARSAY_ORDER_SEEDS runs a longer soak.
	if n, err := strconv.Atoi(os.Getenv("HEARSAY_ORDER_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	for _, mode := range []Mode{FIFO, Causal, Total, Sequencer} {
		for seed := range seeds {
			t.Run(mode.String(), func(t *testing.T) { randomRoom(t, mode, uint64(seed), nil) })
		}
	}
	// Causal and total with one dep per message: nearly every message
	// comes with acks carrying the rest of its deps, dropped, duplicated
	// and reordered like everything else.
	for seed := range seeds {
		t.Run("causal-chunked", func(t *testing.T) {
			randomRoom(t, Causal, uint64(seed), func(c *Config) { c.DepsPerMessage = 1 })
		})
		t.Run("total-chunked", func(t *testing.T) {
			randomRoom(t, Total, uint64(seed), func(c *Config) { c.DepsPerMessage = 1 })
		})
	}
}

func randomRoom(t *testing.T, mode Mode, seed uint64, tune func(*Config)) {
	rng := randSource(seed)
	s := newSimWith(t, mode, tune, "a", "b", "c", "d", "e")
	failures := (mode == Total || mode == Sequencer) && seed%2 == 1
	failed := ""
	for range 300 {
		r := rng.IntN(100)
		switch {
		case r < 25:
			id := s.ids[rng.IntN(len(s.ids))]
			n := s.node(id)
			if !n.up {
				continue
			}
			msg, out, err := n.m.Next()
			if errors.Is(err, ErrBusy) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			s.notePast(n, msg)
			n.log[msg.ID()] = msg
			s.handle(n, out)
			s.broadcast(id, msg)
		case r < 85:
			if len(s.queue) == 0 {
				continue
			}
			i := rng.IntN(len(s.queue))
			p := s.queue[i]
			switch k := rng.IntN(10); {
			case k == 0: // dropped
				s.queue = slices.Delete(s.queue, i, i+1)
			case k == 1: // duplicated: delivered, and a copy stays queued
				s.recv(p.to, p.msg)
			default:
				s.queue = slices.Delete(s.queue, i, i+1)
				s.recv(p.to, p.msg)
			}
		case r < 95:
			a, b := s.ids[rng.IntN(len(s.ids))], s.ids[rng.IntN(len(s.ids))]
			if a != b {
				s.repair(a, b)
			}
		default:
			if failures && failed == "" {
				failed = s.ids[rng.IntN(len(s.ids))]
				s.down(failed)
			}
		}
		for _, id := range s.ids {
			checkInvariants(t, mode, s.node(id))
		}
	}
	s.converge()

	var live []string
	union := map[ID]Meta{}
	for _, id := range s.ids {
		n := s.node(id)
		checkInvariants(t, mode, n)
		if !n.up {
			continue
		}
		live = append(live, id)
		for mid, msg := range n.log {
			union[mid] = msg
		}
	}
	// Expected: every stored data message whose origin's stream is complete
	// up to it. A gap no live member can fill (the failed member's message
	// that reached nobody) holds what follows it everywhere alike.
	stored := map[ID]bool{}
	for mid, msg := range union {
		complete := true
		for q := uint64(1); q < mid.Seq; q++ {
			if _, ok := union[ID{mid.Origin, q}]; !ok {
				complete = false
				break
			}
		}
		if complete && msg.Kind == KindData {
			stored[mid] = true
		}
	}
	for _, id := range live {
		n := s.node(id)
		got := map[ID]bool{}
		for _, m := range append(slices.Clone(n.delivered), n.late...) {
			got[m.ID()] = true
		}
		for mid := range got {
			if !stored[mid] {
				t.Fatalf("seed %d: %s delivered %s behind a gap", seed, id, mid)
			}
		}
		for mid := range stored {
			if !got[mid] {
				t.Logf("failed member: %q", failed)
				for _, id := range s.ids {
					dumpNode(t, s.node(id))
				}
				t.Fatalf("seed %d: %s never delivered %s (held: %v)", seed, id, mid, n.m.HeldBack(5))
			}
		}
		if mode == Total {
			shownAfterPast(t, s, n)
		}
		if len(n.late) > 0 && (mode != Total || failed == "") {
			t.Fatalf("seed %d: %s has late messages %v without a failure", seed, id, ids(n.late))
		}
	}
	switch mode {
	case Sequencer:
		sameDelivered(t, s, len(stored), live...)
	case Total:
		if failed == "" {
			sameDelivered(t, s, len(stored), live...)
		}
		// With a failure, members may disagree on which of the failed
		// member's messages were late, never on the order of the others:
		// every delivered sequence is sorted by timestamp (checked above).
	}
}

// shownAfterPast checks that n showed every data message, late ones
// included, after everything its sender had shown when it sent it (the
// checker's causal check covers causal rooms' deliveries only). Run it
// once the room converged: a cause never shown is a failure too.
func shownAfterPast(t *testing.T, s *sim, n *simNode) {
	t.Helper()
	pos := map[ID]int{}
	for i, m := range n.shown {
		pos[m.ID()] = i
	}
	for i, m := range n.shown {
		for p, q := range s.past[m.ID()] {
			if j, ok := pos[ID{p, q}]; !ok || j > i {
				t.Fatalf("%s showed %s (late %v) at %d, its cause %s:%d at %d (shown: %v)", n.id, m.ID(), m.Late, i, p, q, j, ids(n.shown))
			}
		}
	}
}

// TestRandomisedRegressions replays seeds that once found bugs (a
// candidate acting on syncs sent before the epoch it missed; stamps of an
// older epoch applied after a newer one).
func TestRandomisedRegressions(t *testing.T) {
	for _, seed := range []uint64{143, 331, 363, 467, 541} {
		randomRoom(t, Sequencer, seed, nil)
	}
}
