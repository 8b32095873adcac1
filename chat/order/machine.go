package order

import (
	"errors"
	"math"
	"slices"
)

// Machine orders one room's messages. It is not safe for concurrent use:
// the caller serialises calls (one goroutine per room, or a mutex). Calls
// never block. Slices and maps inside a Meta passed in are kept; do not
// modify them afterwards.
type Machine struct {
	cfg  Config
	live map[string]uint64 // member -> age (smaller joined earlier)
	// failed holds the members declared down through failure
	// (MemberDown), not gone for good (MemberLeft): they are no longer
	// live but still vote, so a sequencer takeover needs a majority of
	// live ∪ failed (see "Quorum"). Never holds a live member or Self.
	failed map[string]bool

	next  map[string]uint64          // next seq expected per origin (absent: 1)
	buf   map[string]map[uint64]Meta // reorder buffer: ahead of a gap
	nbuf  int                        // messages in buf
	floor map[string]uint64          // Floor calls: seqs at or below are done
	seen  map[string]uint64          // highest seq ever seen per origin (for Want)
	lastL map[string]uint64          // Lamport time of the latest accepted message per origin

	clock  uint64 // Lamport clock
	ownSeq uint64 // highest seq of ours ever seen or issued
	// restoring is set from Restore to Resume: the replay has not yet
	// taught the machine the room's state (a sequencer room's epoch), so
	// it must not act on it (send syncs, take over, stamp).
	restoring bool
	ownLast   uint64 // Lamport time of our latest message

	st  Stats
	out Output

	c causalState
	t totalState
	s seqState
}

// New returns a Machine for cfg. Membership starts with only ourselves;
// report other members with MemberUp.
func New(cfg Config) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Machine{
		cfg:    cfg,
		live:   map[string]uint64{},
		failed: map[string]bool{},
		next:   map[string]uint64{},
		buf:    map[string]map[uint64]Meta{},
		floor:  map[string]uint64{},
		seen:   map[string]uint64{},
		lastL:  map[string]uint64{},
	}
	m.c.init(cfg.Mode == Total)
	m.t.init()
	m.s.init()
	return m, nil
}

// Mode returns the room's ordering mode.
func (m *Machine) Mode() Mode { return m.cfg.Mode }

// Receive feeds received messages (a batch is cheaper than single calls:
// one ack covers it). Invalid messages are counted and reported in the
// returned error; the valid ones are processed regardless.
func (m *Machine) Receive(msgs ...Meta) (Output, error) {
	var errs []error
	for _, msg := range msgs {
		if err := m.cfg.validateMeta(msg); err != nil {
			m.st.Invalid++
			errs = append(errs, err)
			continue
		}
		m.st.Received++
		m.receive(msg)
	}
	m.settle()
	return m.take(), errors.Join(errs...)
}

// Next creates our next data message: it returns the Meta to put in the
// envelope (Seq, Lamport and, in causal and total rooms, Deps) and applies
// it locally, so the caller must not Receive it again (that only counts a
// duplicate). Store the message before sending it, so that a restart never
// reuses its seq. Output may already deliver it (fifo, causal) or carry a
// stamp for it (when we are the sequencer). In causal and total rooms
// Output.Send may begin with acks numbered before the message (see
// Config.DepsPerMessage): store and send them before it.
func (m *Machine) Next() (Meta, Output, error) {
	if (m.cfg.Mode == Total || m.cfg.Mode == Sequencer) && m.inFlight() >= m.cfg.MaxInFlight {
		m.st.Busy++
		return Meta{}, Output{}, ErrBusy
	}
	var deps map[string]uint64
	if m.cfg.Mode == Causal || m.cfg.Mode == Total {
		deps = m.c.depsFor(m.cfg.Self)
		// One ack per DepsPerMessage surplus entries, then the message:
		// check both counters have room for all of them first.
		per := m.cfg.DepsPerMessage
		need := uint64(1)
		if len(deps) > per {
			need += uint64((len(deps) - 1) / per)
		}
		if own := max(m.ownSeq, m.nextOf(m.cfg.Self)-1); own > MaxSeq-need || m.clock > MaxSeq-need {
			m.st.Exhausted++
			return Meta{}, Output{}, ErrExhausted
		}
		for len(deps) > per {
			ack, _ := m.newOwn(KindAck) // room checked above
			ack.Deps = takeDeps(deps, per)
			m.emit(ack)
		}
	}
	msg, ok := m.newOwn(KindData)
	if !ok {
		return Meta{}, Output{}, ErrExhausted
	}
	msg.Deps = deps
	m.st.Sent++
	m.receive(msg)
	m.settle()
	return msg, m.take(), nil
}

// takeDeps moves the n smallest origins of deps into a new map, so the
// split is the same whatever the map's iteration order.
func takeDeps(deps map[string]uint64, n int) map[string]uint64 {
	keys := make([]string, 0, len(deps))
	for o := range deps {
		keys = append(keys, o)
	}
	slices.Sort(keys)
	out := make(map[string]uint64, n)
	for _, o := range keys[:n] {
		out[o] = deps[o]
		delete(deps, o)
	}
	return out
}

// newOwn stamps a new message of ours with the next seq and Lamport time;
// ok is false (and nothing changes) when either counter is at MaxSeq.
func (m *Machine) newOwn(k Kind) (msg Meta, ok bool) {
	if n := m.nextOf(m.cfg.Self) - 1; n > m.ownSeq {
		m.ownSeq = n
	}
	if m.ownSeq >= MaxSeq || m.clock >= MaxSeq {
		m.st.Exhausted++
		return Meta{}, false
	}
	m.ownSeq++
	m.clock++
	m.ownLast = m.clock
	return Meta{Origin: m.cfg.Self, Seq: m.ownSeq, Kind: k, Lamport: m.clock}, true
}

// emit creates, applies and outputs a control message of ours.
func (m *Machine) emit(msg Meta) {
	m.st.ControlSent++
	m.out.Send = append(m.out.Send, msg)
	m.receive(msg)
}

// MemberUp reports that id is a live member of the room. age orders
// members for the sequencer role: smaller is older (join order or join
// time); ties go to the smaller id. Report ourselves too, with our age.
func (m *Machine) MemberUp(id string, age uint64) Output {
	if id != "" {
		m.live[id] = age
		delete(m.failed, id)
	}
	m.settle()
	return m.take()
}

// MemberDown reports that id failed (declared down, not known to have
// left): it is no longer live, but it still votes. Its missing acks no
// longer hold up total order; in a sequencer room it counts among the
// voters of the quorum (see "Quorum"), so a side of a partition that is
// not a majority of the room neither takes over nor stamps. Report
// MemberLeft once it is gone for good. MemberDown of ourselves is
// ignored.
func (m *Machine) MemberDown(id string) Output {
	if id != m.cfg.Self && id != "" {
		delete(m.live, id)
		m.failed[id] = true
	}
	m.settle()
	return m.take()
}

// MemberLeft reports that id is gone for good: it parted the room, left
// the group, or failed long enough ago that the caller forgot it. It is
// neither live nor a voter any more. MemberLeft of ourselves is ignored.
func (m *Machine) MemberLeft(id string) Output {
	if id != m.cfg.Self {
		delete(m.live, id)
		delete(m.failed, id)
	}
	m.settle()
	return m.take()
}

// Floor declares every message of origin up to seq as done: pruned by
// retention or older than what this member will ever see. lamport is the
// Lamport time of message seq if known (0 otherwise). Use it on restart and
// when joining a room whose history is pruned, before replaying the stored
// messages above the floor with Receive. Floor(Self, ...) also makes Next
// continue after seq.
func (m *Machine) Floor(origin string, seq, lamport uint64) Output {
	if origin == "" || seq > MaxSeq || lamport > MaxSeq {
		// Beyond every valid counter: only a damaged log stores such a
		// floor, and honouring it would wrap seq+1 around to 0.
		m.st.Invalid++
		return Output{}
	}
	if lamport > m.clock {
		m.clock = lamport
	}
	if origin == m.cfg.Self {
		m.ownSeq = max(m.ownSeq, seq)
		m.ownLast = max(m.ownLast, lamport)
	}
	m.seen[origin] = max(m.seen[origin], seq)
	if seq >= m.nextOf(origin) {
		if lamport > m.lastL[origin] {
			m.lastL[origin] = lamport
		}
		m.next[origin] = seq + 1
		m.floor[origin] = seq
		for s := range m.buf[origin] {
			if s <= seq {
				delete(m.buf[origin], s)
				m.nbuf--
			}
		}
		switch m.cfg.Mode {
		case Causal:
			m.c.floor(origin, seq)
		case Total:
			m.c.floor(origin, seq)
			m.t.floor(m, origin, seq, lamport)
		case Sequencer:
			m.s.floor(origin, seq)
		}
		m.drain(origin)
	}
	m.settle()
	return m.take()
}

// Restore begins a restart: it makes our next messages (Next and the
// control messages we emit) continue after ownSeq with Lamport times after
// lamport (msglog LastSeq(room, Self) and MaxLamport(room)), so no seq is
// ever reused even while stored messages are replayed. The restart is:
//
//	m, _ := order.New(cfg)
//	m.Restore(lastSeq, maxLamport) // first: nothing may be emitted before it
//	m.MemberUp(...)                // membership as it is now, before the replay,
//	                               // or total order would not wait for the others
//	for origin, f := range floors { m.Floor(origin, f, 0) } // msglog Floors
//	m.Receive(stored...)           // per origin in seq order; send Output.Send
//	m.Resume()
//
// Deliveries during the replay are the room's history.
func (m *Machine) Restore(ownSeq, lamport uint64) {
	// A damaged log may hold anything: clamped, the counters stay
	// overflow-free (Next then says ErrExhausted).
	ownSeq, lamport = min(ownSeq, MaxSeq), min(lamport, MaxSeq)
	m.restoring = true
	m.ownSeq = max(m.ownSeq, ownSeq)
	// Only the clock: ownLast is the Lamport time of our own stream, which
	// the replay of our stored messages sets. Set to the room's maximum, it
	// made a total-order member believe its stream was already past every
	// stored message, so a message whose ack was lost in the crash (reserved,
	// never stored) was never acked again and waited for us for good
	// (chat/sim TestRandom/total, seed 1).
	m.clock = max(m.clock, lamport)
}

// Resume ends a restart (see Restore). A seq of ours up to the restored
// one that the log lacks (reserved but never stored, so never sent) would
// stall our stream on every member; Resume fills each such gap with a
// filler (an ack carrying a fresh Lamport time, which every mode consumes
// without showing), returned in Output.Send to be stored and sent like any
// control message. A crash leaves at most a few such seqs; a gap of more
// than MaxHeld is not a crash but a damaged or tampered log, and Resume
// leaves it unfilled (counted in Stats.Exhausted) rather than loop and
// allocate for it: the next message continues after it.
func (m *Machine) Resume() Output {
	m.restoring = false
	self := m.cfg.Self
	if n := m.nextOf(self); n <= m.ownSeq && m.ownSeq-n >= uint64(m.cfg.MaxHeld) {
		m.st.Exhausted++
		m.settle()
		return m.take()
	}
	for n := m.nextOf(self); n <= m.ownSeq && m.clock < MaxSeq; n = m.nextOf(self) {
		m.clock++
		m.ownLast = max(m.ownLast, m.clock)
		m.emit(Meta{Origin: self, Seq: n, Kind: KindAck, Lamport: m.clock})
	}
	m.settle()
	return m.take()
}

// Want returns, per origin this room has heard of, the next seq it needs
// to accept. Refused messages are found again from here: feed the log's
// messages of each origin from Want()[origin] on.
func (m *Machine) Want() map[string]uint64 {
	w := make(map[string]uint64, len(m.seen))
	for o := range m.seen {
		w[o] = m.nextOf(o)
	}
	return w
}

// WantOf is Want()[origin] without building the map: the next seq of
// origin the machine needs to accept (1 if it has heard nothing of it).
func (m *Machine) WantOf(origin string) uint64 { return m.nextOf(origin) }

// Live reports whether id is a live member (ourselves always are).
func (m *Machine) Live(id string) bool {
	if id == m.cfg.Self {
		return true
	}
	_, ok := m.live[id]
	return ok
}

func (m *Machine) nextOf(o string) uint64 {
	if n, ok := m.next[o]; ok {
		return n
	}
	return 1
}

func (m *Machine) take() Output {
	o := m.out
	m.out = Output{}
	return o
}

// receive runs one valid message through dedup and the reorder buffer.
func (m *Machine) receive(msg Meta) {
	o := msg.Origin
	if msg.Seq > m.seen[o] {
		m.seen[o] = msg.Seq
	}
	if o == m.cfg.Self && msg.Seq > m.ownSeq {
		m.ownSeq = msg.Seq
	}
	n := m.nextOf(o)
	if msg.Seq < n {
		m.st.Duplicates++
		return
	}
	if _, dup := m.buf[o][msg.Seq]; dup {
		m.st.Duplicates++
		return
	}
	if msg.Seq > n {
		m.hold(msg)
		return
	}
	if m.full() && !m.immediate(msg) {
		m.st.Refused++
		m.out.Refused = append(m.out.Refused, msg.ID())
		return
	}
	m.accept(msg)
	m.drain(o)
}

// drain accepts buffered messages of o that are now next.
func (m *Machine) drain(o string) {
	for {
		b := m.buf[o]
		nx, ok := b[m.nextOf(o)]
		if !ok {
			break
		}
		delete(b, nx.Seq)
		m.nbuf--
		m.accept(nx)
	}
	if len(m.buf[o]) == 0 {
		delete(m.buf, o)
	}
}

func (m *Machine) full() bool { return m.nbuf+m.c.nwait >= m.cfg.MaxHeld }

// immediate reports whether an in-sequence msg can be delivered right
// away (so accepting it never grows the held-back set). In the causal
// stage a control message without deps is no exception: behind a held
// message of its origin it waits too (total rooms' acks do).
func (m *Machine) immediate(msg Meta) bool {
	if m.cfg.Mode == Causal || m.cfg.Mode == Total {
		return m.c.ready(msg)
	}
	return true
}

// hold puts msg (ahead of a gap) in the reorder buffer, evicting a held
// message further from its turn when the buffer is full.
func (m *Machine) hold(msg Meta) {
	dist := func(x Meta) uint64 { return x.Seq - m.nextOf(x.Origin) }
	if m.full() {
		var worst *Meta
		for _, b := range m.buf {
			for _, x := range b {
				if worst == nil || dist(x) > dist(*worst) ||
					(dist(x) == dist(*worst) && idLess(worst.ID(), x.ID())) {
					x := x
					worst = &x
				}
			}
		}
		m.st.Refused++
		if worst == nil || dist(*worst) <= dist(msg) {
			m.out.Refused = append(m.out.Refused, msg.ID())
			return
		}
		delete(m.buf[worst.Origin], worst.Seq)
		m.nbuf--
		m.out.Refused = append(m.out.Refused, worst.ID())
	}
	b := m.buf[msg.Origin]
	if b == nil {
		b = map[uint64]Meta{}
		m.buf[msg.Origin] = b
	}
	b[msg.Seq] = msg
	m.nbuf++
}

// accept takes msg, the next of its origin, into the mode's stage.
func (m *Machine) accept(msg Meta) {
	m.next[msg.Origin] = msg.Seq + 1
	// Lamport times grow along a stream; a sender that breaks this (a bug
	// or a forged clock) is clamped, the same way on every member, so that
	// timestamp order never contradicts per-origin order.
	if l, ok := m.lastL[msg.Origin]; ok && msg.Lamport <= l {
		msg.Lamport = l + 1
	}
	m.lastL[msg.Origin] = msg.Lamport
	if msg.Lamport > m.clock {
		m.clock = msg.Lamport
	}
	if msg.Origin == m.cfg.Self && msg.Lamport > m.ownLast {
		m.ownLast = msg.Lamport
	}
	if msg.Origin == m.cfg.Self && (m.cfg.Mode == Causal || m.cfg.Mode == Total) {
		m.c.noteSent(msg.Deps) // replayed after a restart too
	}
	if msg.Kind != KindData {
		m.st.Control++
	}
	switch m.cfg.Mode {
	case FIFO:
		if msg.Kind == KindData {
			m.deliver(msg)
		}
	case Causal:
		m.c.accept(msg)
	case Total:
		// A message waits for its deps before it takes its place in the
		// timestamp order (see totalState); one that need not wait goes
		// on at once, as most do.
		if m.c.ready(msg) {
			m.c.pass(m, msg)
		} else {
			m.c.accept(msg)
		}
	case Sequencer:
		m.s.accept(m, msg)
	}
}

func (m *Machine) deliver(msg Meta) {
	m.st.Delivered++
	m.out.Deliver = append(m.out.Deliver, msg)
	m.out.Show = append(m.out.Show, msg)
}

func (m *Machine) late(msg Meta) {
	m.st.Late++
	m.out.Late = append(m.out.Late, msg)
	msg.Late = true
	m.out.Show = append(m.out.Show, msg)
}

// settle runs the mode's delivery and protocol steps until nothing moves.
func (m *Machine) settle() {
	switch m.cfg.Mode {
	case Causal:
		m.c.settle(m)
	case Total:
		m.c.settle(m)
		m.t.settle(m)
	case Sequencer:
		m.s.settle(m)
	}
}

func (m *Machine) inFlight() int {
	switch m.cfg.Mode {
	case Total:
		return m.t.own
	case Sequencer:
		return m.s.own
	}
	return 0
}

// ageOf returns a member's age; ourselves without MemberUp rank youngest.
func (m *Machine) ageOf(id string) uint64 {
	if a, ok := m.live[id]; ok {
		return a
	}
	return math.MaxUint64
}

// oldestLive returns the live member with the smallest (age, id).
func (m *Machine) oldestLive() string {
	best := m.cfg.Self
	for id := range m.live {
		if a, b := m.ageOf(id), m.ageOf(best); a < b || (a == b && id < best) {
			best = id
		}
	}
	return best
}

// quorate reports whether the live members, ourselves included, are a
// strict majority of the voters: the live members and those declared
// down through failure (see "Quorum").
func (m *Machine) quorate() bool {
	live, voters := m.quorum()
	return 2*live > voters
}

// quorum returns how many members are live (ourselves included) and how
// many vote (live plus failed).
func (m *Machine) quorum() (live, voters int) {
	live = len(m.live) + 1
	if _, ok := m.live[m.cfg.Self]; ok {
		live--
	}
	return live, live + len(m.failed)
}

// liveMembers returns the live members, ourselves included, sorted.
func (m *Machine) liveMembers() []string {
	ids := make([]string, 0, len(m.live)+1)
	ids = append(ids, m.cfg.Self)
	for id := range m.live {
		if id != m.cfg.Self {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func idLess(a, b ID) bool {
	if a.Origin != b.Origin {
		return a.Origin < b.Origin
	}
	return a.Seq < b.Seq
}
