package order

import (
	"slices"
)

// seqState is the sequencer mode's stage (see the package comment,
// "Sequencer and takeover").
type seqState struct {
	epoch   uint64                        // highest epoch known
	seqr    map[uint64]string             // epoch -> its sequencer
	cut     map[uint64]uint64             // epoch -> agreed cut of its sequencer's stream
	synced  map[uint64]uint64             // epoch -> the cut we reported in our first sync
	sentFor map[syncKey]bool              // syncs we sent, by (epoch, candidate)
	syncs   map[syncKey]map[string]uint64 // (epoch, candidate) -> reporter -> cut
	// closing: epochs another member sent a sync for (it declared the
	// epoch's sequencer down); see reopen.
	closing map[uint64]bool
	// closedBySeqr: epochs whose own sequencer sent a sync for them (it
	// lost its quorum and stopped stamping): orphaned though it is live.
	closedBySeqr map[uint64]bool

	stamps       []Meta            // accepted stamp messages not yet valid or void
	order        map[uint64]ID     // global -> data, valid and not yet delivered
	byID         map[ID]uint64     // reverse of order
	through      map[string]uint64 // origin -> highest seq validly stamped
	issued       map[string]uint64 // origin -> highest seq we stamped in our epoch
	maxGlobal    uint64
	nextGlobal   uint64 // next global to deliver
	unknownStart bool   // Floor was used: start at the lowest global seen

	await map[string][]Meta // origin -> accepted undelivered data, in seq order
	done  map[string]uint64 // origin -> highest seq delivered or floored
	late  map[ID]bool       // validly stamped behind nextGlobal
	own   int               // our data waiting
	nwait int
}

type syncKey struct {
	epoch     uint64
	candidate string
}

func (s *seqState) init() {
	s.seqr = map[uint64]string{}
	s.cut = map[uint64]uint64{}
	s.synced = map[uint64]uint64{}
	s.syncs = map[syncKey]map[string]uint64{}
	s.sentFor = map[syncKey]bool{}
	s.closing = map[uint64]bool{}
	s.closedBySeqr = map[uint64]bool{}
	s.order = map[uint64]ID{}
	s.byID = map[ID]uint64{}
	s.through = map[string]uint64{}
	s.issued = map[string]uint64{}
	s.await = map[string][]Meta{}
	s.done = map[string]uint64{}
	s.late = map[ID]bool{}
	s.nextGlobal = 1
}

func (s *seqState) accept(m *Machine, msg Meta) {
	switch msg.Kind {
	case KindData:
		if s.late[msg.ID()] {
			delete(s.late, msg.ID())
			m.late(msg)
			s.done[msg.Origin] = msg.Seq
			return
		}
		s.await[msg.Origin] = append(s.await[msg.Origin], msg)
		s.nwait++
		if msg.Origin == m.cfg.Self {
			s.own++
		}
	case KindSync:
		e := msg.Epoch
		if e > 0 && msg.Prev != "" {
			s.learnSeqr(m, e, msg.Prev)
		}
		k := syncKey{e, msg.Candidate}
		if s.syncs[k] == nil {
			s.syncs[k] = map[string]uint64{}
		}
		if r, ok := s.syncs[k][msg.Origin]; !ok || msg.Cut > r {
			s.syncs[k][msg.Origin] = msg.Cut
		}
		if msg.Origin != m.cfg.Self {
			s.closing[e] = true
		}
		if e > 0 && msg.Prev == msg.Origin && s.seqr[e] == msg.Origin {
			s.closedBySeqr[e] = true
		}
		if e > s.epoch {
			s.epoch = e
		}
	case KindStamp:
		e := msg.Epoch
		if !s.learnSeqr(m, e, msg.Origin) {
			m.st.Conflicts++
			return
		}
		if e > 1 {
			if msg.Prev != "" && !s.learnSeqr(m, e-1, msg.Prev) {
				m.st.Conflicts++
			}
			if _, ok := s.cut[e-1]; !ok {
				s.cut[e-1] = msg.Cut
			}
		}
		if e > s.epoch {
			s.epoch = e
		}
		s.stamps = append(s.stamps, msg)
	}
}

// learnSeqr records the sequencer of epoch e; false if another one was
// recorded (split brain: the first wins).
func (s *seqState) learnSeqr(m *Machine, e uint64, id string) bool {
	if cur, ok := s.seqr[e]; ok {
		return cur == id
	}
	s.seqr[e] = id
	return true
}

func (s *seqState) floor(origin string, seq uint64) {
	if seq > s.done[origin] {
		s.done[origin] = seq
	}
	if seq > s.through[origin] {
		s.through[origin] = seq
	}
	q := s.await[origin]
	i := 0
	for i < len(q) && q[i].Seq <= seq {
		i++
	}
	s.nwait -= i
	s.await[origin] = q[i:]
	if s.maxGlobal == 0 {
		s.unknownStart = true
	}
}

// validate applies the stamp messages that became valid and drops void ones.
func (s *seqState) validate(m *Machine) bool {
	progress := false
	kept := s.stamps[:0]
	for _, p := range s.stamps {
		e := p.Epoch
		if c, ok := s.cut[e]; ok {
			if p.Seq <= c {
				s.apply(m, p)
			} else {
				m.st.Void++
			}
			progress = true
			continue
		}
		if r, ok := s.synced[e]; ok {
			if p.Seq <= r {
				s.apply(m, p)
				progress = true
				continue
			}
		} else if e == s.epoch && m.Live(s.seqr[e]) {
			s.apply(m, p)
			progress = true
			continue
		}
		kept = append(kept, p)
	}
	clear(s.stamps[len(kept):])
	s.stamps = kept
	return progress
}

func (s *seqState) apply(m *Machine, p Meta) {
	for i, id := range p.Stamped {
		g := p.Global + uint64(i)
		if cur, ok := s.order[g]; ok {
			if cur != id {
				m.st.Conflicts++
			}
			continue
		}
		if _, dup := s.byID[id]; dup {
			m.st.Conflicts++ // stamped twice: only a split brain does that
			continue
		}
		s.through[id.Origin] = max(s.through[id.Origin], id.Seq)
		if g > s.maxGlobal {
			s.maxGlobal = g
		}
		if g < s.nextGlobal && !s.unknownStart {
			s.markLate(m, id)
			continue
		}
		s.order[g] = id
		s.byID[id] = g
	}
}

// markLate handles a valid stamp behind the delivery point (only after a
// Floor): its data is reported late instead of delivered.
func (s *seqState) markLate(m *Machine, id ID) {
	if id.Seq <= s.done[id.Origin] {
		return
	}
	q := s.await[id.Origin]
	for i, x := range q {
		if x.Seq == id.Seq {
			s.await[id.Origin] = slices.Delete(q, i, i+1)
			s.nwait--
			s.done[id.Origin] = max(s.done[id.Origin], id.Seq)
			m.late(x)
			return
		}
	}
	s.late[id] = true
}

// orphaned reports whether the current epoch needs a takeover: no epoch
// has started, its sequencer is not live, or the sequencer closed it
// itself (it sent a sync for it: it had lost its quorum), or we are its
// sequencer and have lost our quorum now.
func (s *seqState) orphaned(m *Machine) bool {
	e := s.epoch
	if e == 0 {
		return true
	}
	prev := s.seqr[e]
	if !m.Live(prev) || s.closedBySeqr[e] {
		return true
	}
	return prev == m.cfg.Self && !m.quorate()
}

// syncIfOrphaned sends our sync for the current epoch to the candidate in
// our view once the epoch is orphaned, again whenever the candidate
// changes. A sequencer that loses its quorum syncs too (its report is its
// whole stream), which closes its epoch for good: it stamps no more in it,
// and a takeover by a majority (possibly by itself) opens the next.
func (s *seqState) syncIfOrphaned(m *Machine) {
	e := s.epoch
	cand := m.oldestLive()
	k := syncKey{e, cand}
	if s.sentFor[k] || !s.orphaned(m) {
		return
	}
	var prev string
	var r uint64
	if e > 0 {
		prev = s.seqr[e]
		r = m.nextOf(prev) - 1
	}
	if _, ok := s.synced[e]; !ok {
		s.synced[e] = r
	}
	msg, ok := m.newOwn(KindSync)
	if !ok {
		return
	}
	s.sentFor[k] = true
	msg.Epoch, msg.Prev, msg.Cut, msg.Candidate = e, prev, r, cand
	m.emit(msg)
}

// takeOver opens epoch e+1 when we are the oldest live member, every
// live member's sync for e is in, and the live members are a majority
// of the voters (see "Quorum").
func (s *seqState) takeOver(m *Machine) bool {
	e := s.epoch
	if !s.sentFor[syncKey{e, m.cfg.Self}] || m.oldestLive() != m.cfg.Self {
		return false
	}
	if !s.orphaned(m) {
		return false
	}
	if !m.quorate() {
		return false // a minority side waits: the majority may be taking over
	}
	reports := s.syncs[syncKey{e, m.cfg.Self}]
	for _, p := range m.liveMembers() {
		if _, ok := reports[p]; !ok {
			return false
		}
	}
	var cut uint64
	for _, r := range reports {
		cut = max(cut, r)
	}
	prev := s.seqr[e]
	if e > 0 && m.nextOf(prev)-1 < cut {
		return false // anti-entropy has yet to bring prev's stream up to the cut
	}
	if e > 0 {
		s.cut[e] = cut
	}
	s.validate(m)
	s.epoch = e + 1
	s.seqr[e+1] = m.cfg.Self
	clear(s.issued)
	s.stampAll(m, true)
	return true
}

// reopen closes our own epoch e and opens e+1, ours again, when we are
// its sequencer, live among a majority of the voters, and another member
// has sent a sync for e. That member declared us down for a while (a
// partition it was on the minority side of, or on a side without a
// majority): from its sync on it applies our stamps of e only up to the
// cut it reported, and with no quorum no one took the role over, so no
// cut would ever come and it would hold our later stamps back for good.
// The cut of e is our whole stream: every stamp we issued stays valid,
// and a member that synced learns it from the opening stamp (Prev, Cut)
// and fetches the rest of our stream by anti-entropy.
func (s *seqState) reopen(m *Machine) bool {
	e, self := s.epoch, m.cfg.Self
	if e == 0 || s.seqr[e] != self || !s.closing[e] || s.orphaned(m) {
		return false
	}
	if m.nextOf(self) != m.ownSeq+1 {
		return false // our stream has a gap (replay incomplete): wait for it
	}
	if _, ok := s.cut[e]; ok {
		return false
	}
	s.cut[e] = m.nextOf(self) - 1
	s.validate(m)
	s.epoch = e + 1
	s.seqr[e+1] = self
	clear(s.issued)
	s.stampAll(m, true)
	return true
}

// stampAll stamps every accepted, unstamped data message; open forces one
// stamp message (the epoch's opening) even if there is nothing to stamp.
func (s *seqState) stampAll(m *Machine, open bool) {
	if m.nextOf(m.cfg.Self) != m.ownSeq+1 {
		// Our own stream has a gap (a replay is incomplete): a stamp would
		// wait behind it unapplied and be issued again and again.
		return
	}
	var todo []Meta
	for o, q := range s.await {
		for _, x := range q {
			// Each message is stamped at most once per epoch of ours, even
			// if a forged cut voids our own stamps: no stamping loop.
			if x.Seq > s.through[o] && x.Seq > s.issued[o] {
				todo = append(todo, x)
				s.issued[o] = x.Seq
			}
		}
	}
	slices.SortFunc(todo, func(a, b Meta) int {
		ka, kb := keyOf(a), keyOf(b)
		switch {
		case ka.less(kb):
			return -1
		case kb.less(ka):
			return 1
		}
		return 0
	})
	e := s.epoch
	for open || len(todo) > 0 {
		open = false
		n := min(len(todo), m.cfg.MaxStampBatch)
		msg, ok := m.newOwn(KindStamp)
		if !ok {
			return
		}
		msg.Epoch, msg.Prev, msg.Cut = e, s.seqr[e-1], s.cut[e-1]
		msg.Global = s.maxGlobal + 1
		for _, x := range todo[:n] {
			msg.Stamped = append(msg.Stamped, x.ID())
		}
		todo = todo[n:]
		m.emit(msg)
		s.validate(m)
	}
}

// deliverReady delivers data in global order as far as it can.
func (s *seqState) deliverReady(m *Machine) bool {
	if s.unknownStart {
		if len(s.order) == 0 {
			return false
		}
		lowest := uint64(0)
		for g := range s.order {
			if lowest == 0 || g < lowest {
				lowest = g
			}
		}
		s.nextGlobal, s.unknownStart = lowest, false
	}
	progress := false
	for {
		id, ok := s.order[s.nextGlobal]
		if !ok {
			return progress
		}
		if id.Seq <= s.done[id.Origin] {
			delete(s.order, s.nextGlobal)
			delete(s.byID, id)
			s.nextGlobal++
			continue
		}
		q := s.await[id.Origin]
		if len(q) == 0 || q[0].Seq != id.Seq {
			return progress
		}
		x := q[0]
		s.await[id.Origin] = q[1:]
		if len(s.await[id.Origin]) == 0 {
			delete(s.await, id.Origin)
		}
		s.nwait--
		if x.Origin == m.cfg.Self {
			s.own--
		}
		s.done[id.Origin] = id.Seq
		x.Global = s.nextGlobal
		delete(s.order, s.nextGlobal)
		delete(s.byID, id)
		s.nextGlobal++
		m.deliver(x)
		progress = true
	}
}

func (s *seqState) settle(m *Machine) {
	for {
		// While restoring, the epoch is the one the replay reached so far
		// (0 before it starts): a sync or a takeover for it would open an
		// epoch the room already has, a second sequencer of it (issue 13:
		// "two members acted as sequencer of the same epoch" after a
		// restart, then "waiting for global 1" for good). Resume settles
		// with the whole log read.
		if m.restoring {
			if !s.validate(m) && !s.deliverReady(m) {
				return
			}
			continue
		}
		s.syncIfOrphaned(m)
		progress := s.validate(m)
		if s.takeOver(m) || s.reopen(m) {
			progress = true
		}
		// Without a majority the sequencer stamps nothing (and closes its
		// epoch: syncIfOrphaned): the members it no longer sees may be a
		// majority that takes the role over, and what it stamped and
		// showed on its side meanwhile would be voided and ordered again
		// elsewhere.
		if s.epoch > 0 && s.seqr[s.epoch] == m.cfg.Self && !s.orphaned(m) {
			before := m.ownSeq
			s.stampAll(m, false)
			progress = progress || m.ownSeq != before
		}
		if s.deliverReady(m) {
			progress = true
		}
		if !progress {
			return
		}
	}
}
