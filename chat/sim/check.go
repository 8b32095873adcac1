package sim

// The checker: convergence (waited for, by polling), then safety over
// what each live member showed in all its lives, then liveness (a probe
// from every member reaches every member), then safety again.

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hearsay-chat/hearsay"
)

// Check waits until the network has settled (see the package comment) and
// checks every room. It needs a healed network: with a cut in force the
// sides legitimately differ. Failures are returned together, with peer
// IDs replaced by names.
func (s *Sim) Check() error {
	if s.cutsInForce() {
		return errors.New("check: a partition is in force (heal first)")
	}
	if err := s.waitGroup(); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	var errs []error
	for _, room := range s.Rooms() {
		if err := s.checkRoom(room); err != nil {
			errs = append(errs, fmt.Errorf("#%s (%v): %w", room, s.rooms[room].mode, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errors.New(s.rename(err.Error()))
	}
	return nil
}

func (s *Sim) checkRoom(room string) error {
	if len(s.liveMembers(room)) == 0 {
		return nil
	}
	if err := s.waitRoomMembers(room); err != nil {
		return err
	}
	if err := s.waitSettled(room); err != nil {
		return err
	}
	if err := s.checkSafety(room); err != nil {
		return err
	}
	// Liveness: every live member sends one more message, which every
	// live member must show.
	for _, p := range s.liveMembers(room) {
		if _, err := s.Send(p.Name, room, "probe from "+p.Name); err != nil {
			return fmt.Errorf("liveness: %w", err)
		}
	}
	if err := s.waitSettled(room); err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	return s.checkSafety(room)
}

// waitSettled waits until every live member of room has shown the same
// set of messages, including every message a live peer's Send
// acknowledged, and holds nothing back.
func (s *Sim) waitSettled(room string) error {
	return s.waitFor(func() bool { return s.settled(room) == "" }, func() string { return s.settled(room) + "; " + s.describe(room) })
}

// describe says what each live member reports of room and which errors it
// showed, for a failure message.
func (s *Sim) describe(room string) string {
	var b strings.Builder
	for _, p := range s.liveMembers(room) {
		for _, ri := range p.node.Rooms() {
			if ri.Name == room {
				fmt.Fprintf(&b, "%s (life %d): received %d, delivered %d, held %d, members %s; ", p.Name, len(p.lives), ri.Received, ri.Delivered, ri.HeldBack, strings.Join(s.namesOf(ri.Members), ","))
			}
		}
		for _, rec := range p.lives {
			for _, ev := range rec.Filter(func(ev hearsay.Event) bool { return ev.Type == hearsay.EventError }) {
				fmt.Fprintf(&b, "%s error: %s; ", p.Name, ev.Text)
			}
		}
	}
	return b.String()
}

// settled says why room has not settled, or "" when it has.
func (s *Sim) settled(room string) string {
	ms := s.liveMembers(room)
	want := map[string]bool{}
	for _, m := range s.rooms[room].sent {
		if p := s.peers[m.from]; p.node != nil {
			want[m.id] = true
		}
	}
	for _, p := range ms {
		for _, id := range p.shownIDs(room) {
			want[id] = true
		}
	}
	var why []string
	for _, p := range ms {
		got := map[string]bool{}
		for _, id := range p.shownIDs(room) {
			got[id] = true
		}
		if s.opts.ReplayedShown && len(p.lives) > 1 {
			for _, id := range s.logged(p, room) {
				got[id] = true
			}
		}
		var missing []string
		for id := range want {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			why = append(why, fmt.Sprintf("%s has not shown %d of %d messages (%s)", p.Name, len(missing), len(want), abbrev(missing)))
		}
		if held := p.node.HeldBack(room, 5); len(held) > 0 {
			why = append(why, fmt.Sprintf("%s holds back %s", p.Name, strings.Join(held, "; ")))
		}
	}
	return strings.Join(why, "; ")
}

// abbrev lists at most 5 IDs.
func abbrev(ids []string) string {
	if len(ids) <= 5 {
		return strings.Join(ids, " ")
	}
	return strings.Join(ids[:5], " ") + fmt.Sprintf(" and %d more", len(ids)-5)
}

// checkSafety checks what the live members of room showed (the package
// comment lists the properties).
func (s *Sim) checkSafety(room string) error {
	r := s.rooms[room]
	ms := s.liveMembers(room)
	var errs []error
	for _, p := range ms {
		evs := p.shown(room)
		// life[i] is the life (1, 2, …) in which evs[i] was shown.
		life := make([]int, 0, len(evs))
		for k, rec := range p.lives {
			for range rec.RoomMessages(room) {
				life = append(life, k+1)
			}
		}
		for len(life) < len(evs) { // events recorded between the two reads
			life = append(life, len(p.lives))
		}
		at := func(i int) string { return fmt.Sprintf("%d (life %d)", i, life[i]) }
		seen := map[string]int{}
		last := map[string]uint64{}
		for i, ev := range evs {
			if k, dup := seen[ev.ID]; dup {
				errs = append(errs, fmt.Errorf("%s showed %s twice (at %s and %s)", p.Name, ev.ID, at(k), at(i)))
				continue
			}
			seen[ev.ID] = i
			id, err := hearsay.ParseMsgID(ev.ID)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s showed a message with a bad id: %w", p.Name, err))
				continue
			}
			if id.Seq <= last[id.Origin] {
				errs = append(errs, fmt.Errorf("%s showed %s at %s, after seq %d of the same origin", p.Name, ev.ID, at(i), last[id.Origin]))
			}
			last[id.Origin] = id.Seq
		}
		// The log holds exactly what was shown (see Options.ReplayedShown).
		strict := !s.opts.ReplayedShown || len(p.lives) == 1
		if logged := s.logged(p, room); strict && !sameSet(logged, p.shownIDs(room)) {
			errs = append(errs, fmt.Errorf("%s logged %d messages but showed %d", p.Name, len(logged), len(seen)))
		}
		if r.mode == hearsay.OrderCausal || r.mode == hearsay.OrderTotal {
			errs = append(errs, checkCausal(p, evs, r.sent, strict)...)
		}
	}
	// Two sides of a partition may both open a sequencer epoch; the room
	// then has no single order, which is a documented limit as long as the
	// nodes report it (docs/RELIABILITY.md, "Limits").
	excused := r.mode == hearsay.OrderSequencer && s.conflictReported(room)
	if (r.mode == hearsay.OrderTotal || r.mode == hearsay.OrderSequencer) && !excused {
		for i, p := range ms {
			for _, q := range ms[i+1:] {
				if err := sameOrder(p, q, room); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// conflictReported reports whether a live member of room showed an
// error event about conflicting ordering messages (two sequencers).
func (s *Sim) conflictReported(room string) bool {
	for _, p := range s.liveMembers(room) {
		for _, rec := range p.lives {
			if len(rec.Filter(func(ev hearsay.Event) bool {
				return ev.Type == hearsay.EventError && strings.Contains(ev.Text, "#"+room+": conflicting ordering") && strings.Contains(ev.Text, "sequencer")
			})) > 0 {
				return true
			}
		}
	}
	return false
}

// checkCausal checks that p showed every message after what its sender
// had shown when it sent it. Late messages (total order's messages from
// across a partition) are shown out of order on purpose and skipped.
func checkCausal(p *Peer, evs []hearsay.Event, sent []sentMsg, strict bool) []error {
	pos := map[string]int{}
	for i, ev := range evs {
		pos[ev.ID] = i
	}
	var errs []error
	for _, m := range sent {
		i, ok := pos[m.id]
		if !ok || evs[i].Late {
			continue
		}
		for _, d := range m.deps {
			if j, ok := pos[d]; (!ok && strict) || j > i {
				where := "never"
				if ok {
					where = fmt.Sprintf("at %d", j)
				}
				errs = append(errs, fmt.Errorf("%s showed %s at %d but its cause %s %s", p.Name, m.id, i, d, where))
				if len(errs) >= 5 {
					return errs
				}
			}
		}
	}
	return errs
}

// sameOrder checks that p and q showed the messages they both showed in
// the common order (not late) in the same relative order.
func sameOrder(p, q *Peer, room string) error {
	inOrder := func(x *Peer) []string {
		var ids []string
		for _, ev := range x.shown(room) {
			if !ev.Late {
				ids = append(ids, ev.ID)
			}
		}
		return ids
	}
	a, b := inOrder(p), inOrder(q)
	inB := map[string]bool{}
	for _, id := range b {
		inB[id] = true
	}
	inA := map[string]bool{}
	for _, id := range a {
		inA[id] = true
	}
	a = slices.DeleteFunc(a, func(id string) bool { return !inB[id] })
	b = slices.DeleteFunc(b, func(id string) bool { return !inA[id] })
	for i := range a {
		if a[i] != b[i] {
			lo, hi := max(0, i-2), min(len(a), i+3)
			return fmt.Errorf("%s and %s disagree on the order at position %d of %d common messages: %s has %v, %s has %v",
				p.Name, q.Name, i, len(a), p.Name, a[lo:hi], q.Name, b[lo:hi])
		}
	}
	return nil
}

// logged returns the IDs of the messages of room in p's log.
func (s *Sim) logged(p *Peer, room string) []string {
	hist, err := p.node.History(room, 10_000)
	if err != nil {
		s.logf("%s history #%s: %v", p.Name, room, err)
		return nil
	}
	ids := make([]string, len(hist))
	for i, ev := range hist {
		ids[i] = ev.ID
	}
	return ids
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
