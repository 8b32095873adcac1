package order

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

// Stats are the counters /stats shows for a room.
type Stats struct {
	Received    uint64 // valid messages fed to Receive (duplicates included)
	Sent        uint64 // our data messages (Next)
	ControlSent uint64 // our acks, stamps and syncs
	Delivered   uint64 // data messages delivered
	Control     uint64 // control messages accepted (ours and others')
	Duplicates  uint64 // dropped as already seen
	Invalid     uint64 // rejected by validation
	Refused     uint64 // not taken because the held-back space was full
	Late        uint64 // reported in Output.Late
	Busy        uint64 // Next calls refused with ErrBusy
	Exhausted   uint64 // counters at MaxSeq, or a gap Resume left unfilled (a damaged log)
	Conflicts   uint64 // sequencer: conflicting stamps or sequencers ignored
	Void        uint64 // sequencer: stamps beyond an agreed cut
	Held        int    // messages held back now (reorder buffer and mode queue)
	Epoch       uint64 // sequencer: current epoch
	Sequencer   string // sequencer: current sequencer ("" before the first epoch)
}

// Stats returns the counters. It does not allocate per held message.
func (m *Machine) Stats() Stats {
	s := m.st
	s.Held = m.nbuf + m.c.nwait + len(m.t.pending) + m.s.nwait
	s.Epoch = m.s.epoch
	s.Sequencer = m.s.seqr[m.s.epoch]
	return s
}

// Held describes one held-back message and why it waits: Waits is the
// message it waits for when that is one message (a gap's next seq, a
// causal dependency), zero otherwise.
type Held struct {
	ID     ID
	Kind   Kind
	Reason string
	Waits  ID
}

// HeldBack returns up to limit held-back messages (limit <= 0: all) with
// the reason each waits, sorted by origin and seq.
func (m *Machine) HeldBack(limit int) []Held {
	var hs []Held
	for o, b := range m.buf {
		for _, x := range b {
			w := ID{o, m.nextOf(o)}
			hs = append(hs, Held{ID: x.ID(), Kind: x.Kind, Reason: fmt.Sprintf("gap: waiting for %s", w), Waits: w})
		}
	}
	for _, q := range m.c.wait {
		for i, x := range q {
			r := fmt.Sprintf("fifo: behind %s", q[0].ID())
			var w ID
			if i == 0 {
				if b, ok := m.c.blocker(x); ok {
					r, w = fmt.Sprintf("causal: waiting for %s", b), b
				}
			}
			hs = append(hs, Held{ID: x.ID(), Kind: x.Kind, Reason: r, Waits: w})
		}
	}
	for _, x := range m.t.pending {
		r := "total: behind an earlier message"
		if x.ID() == m.t.pending[0].ID() {
			r = "total: waiting for acks from " + strings.Join(m.t.waitingFor(m, keyOf(x)), ",")
		}
		hs = append(hs, Held{ID: x.ID(), Kind: x.Kind, Reason: r})
	}
	stamped := map[ID]uint64{}
	for g, id := range m.s.order {
		stamped[id] = g
	}
	notStamped := "sequencer: not stamped yet"
	if m.cfg.Mode == Sequencer && !m.quorate() {
		live, voters := m.quorum()
		notStamped = fmt.Sprintf("%s (no quorum: %d of %d members live)", notStamped, live, voters)
	}
	for _, q := range m.s.await {
		for _, x := range q {
			r := notStamped
			if g, ok := stamped[x.ID()]; ok {
				r = fmt.Sprintf("sequencer: global %d, waiting for global %d", g, m.s.nextGlobal)
			}
			hs = append(hs, Held{ID: x.ID(), Kind: x.Kind, Reason: r})
		}
	}
	slices.SortFunc(hs, func(a, b Held) int {
		if idLess(a.ID, b.ID) {
			return -1
		}
		if idLess(b.ID, a.ID) {
			return 1
		}
		return 0
	})
	if limit > 0 && len(hs) > limit {
		hs = hs[:limit]
	}
	return hs
}

// Delivered returns the per-origin delivered vector of a causal room (a
// copy), as the next Deps would carry it plus our own entry.
func (m *Machine) Delivered() map[string]uint64 { return maps.Clone(m.c.delivered) }

// Lacks returns, in increasing order, up to limit seqs of origin from the
// next one the machine needs through through that it does not hold back:
// the holes Gaps names and the seqs after the highest held one, up to a
// seq some peer said it holds (chat's tail pulls: a status showed it, and
// no successor arrived to show the gap). nil when it needs none of them.
// Like Gaps, it costs O(limit + held) whatever the seqs.
func (m *Machine) Lacks(origin string, through uint64, limit int) []uint64 {
	b := m.buf[origin]
	var out []uint64
	for s := m.nextOf(origin); s <= through && len(out) < limit; s++ {
		if _, held := b[s]; !held {
			out = append(out, s)
		}
		if s == math.MaxUint64 {
			break
		}
	}
	return out
}

// Blocked is a causal dependency that holds a message back and that the
// machine has not received: seqs up to Through of Origin, needed by the
// held message By.
type Blocked struct {
	Origin  string
	Through uint64
	By      ID
}

// Blockers returns the dependencies, on other origins, of the messages at
// the head of each origin's causal wait that the machine has not received
// (a dependency received but held back is not named: its own blockers
// are). want says, for a head's origin, how many of its dependencies to
// consider (the first in origin order; 0: none), so that a caller's caps
// and filters apply before a choice is made and the work stays bounded
// by the sum of want. Each origin is then named once, with the lowest seq
// a considered head needs of it and that head: a member that names a seq
// nobody sent must not stand for an origin an honest message waits on.
// They are in order of origin.
func (m *Machine) Blockers(want func(by string) int) []Blocked {
	need := map[string]Blocked{}
	for o, q := range m.c.wait {
		if len(q) == 0 {
			continue
		}
		k := want(o)
		if k <= 0 {
			continue
		}
		head := q[0]
		deps := make([]string, 0, len(head.Deps))
		for p, through := range head.Deps {
			if p != o && m.nextOf(p) <= through {
				deps = append(deps, p)
			}
		}
		slices.Sort(deps)
		for _, p := range deps[:min(k, len(deps))] {
			through := head.Deps[p]
			if b, ok := need[p]; !ok || through < b.Through || through == b.Through && o < b.By.Origin {
				need[p] = Blocked{Origin: p, Through: through, By: head.ID()}
			}
		}
	}
	return slices.SortedFunc(maps.Values(need), func(a, b Blocked) int { return strings.Compare(a.Origin, b.Origin) })
}

// Gaps returns, in increasing order, up to limit seqs of origin that the
// machine still needs below the highest one it holds back in its reorder
// buffer: the holes a gap pull asks for (chat's Status.missing). The
// messages after the highest held one are not named: nothing says they
// were sent yet. nil when nothing of origin is held. The loop skips at
// most the held messages, so it costs O(limit + held) whatever the seqs.
func (m *Machine) Gaps(origin string, limit int) []uint64 {
	b := m.buf[origin]
	if len(b) == 0 || limit <= 0 {
		return nil
	}
	var top uint64
	for s := range b {
		top = max(top, s)
	}
	var out []uint64
	for s := m.nextOf(origin); s < top && len(out) < limit; s++ {
		if _, held := b[s]; !held {
			out = append(out, s)
		}
	}
	return out
}
