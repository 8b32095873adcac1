package order

import "container/heap"

// tsKey orders total-mode data: (lamport, origin, seq).
type tsKey struct {
	l uint64
	o string
	s uint64
}

func keyOf(m Meta) tsKey { return tsKey{m.Lamport, m.Origin, m.Seq} }

func (a tsKey) less(b tsKey) bool {
	if a.l != b.l {
		return a.l < b.l
	}
	if a.o != b.o {
		return a.o < b.o
	}
	return a.s < b.s
}

type tsHeap []Meta

func (h tsHeap) Len() int           { return len(h) }
func (h tsHeap) Less(i, j int) bool { return keyOf(h[i]).less(keyOf(h[j])) }
func (h tsHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tsHeap) Push(x any)        { *h = append(*h, x.(Meta)) }
func (h *tsHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// totalState is the total (Lamport + acks) mode's stage. Messages reach
// it (accept) only through the causal stage (causalState): a data message
// names, as in causal rooms, the data its sender had taken in (compact
// deps, the surplus in acks before it), and waits there until they have
// reached this stage too. The acks rule alone does not give causality
// once a member is declared down: it stops counting, so a message whose
// sender had shown one of the failed member's messages could be delivered
// here before that message came, which then came late (chat/sim
// TestRandom/total seed 2). With the causal stage in front, a message
// that arrives late still waits for its deps, and one that is taken in
// after its deps is shown after them: a dep taken in earlier has a
// smaller timestamp, so it is delivered first, or was shown late at once.
// A member's stream counts for acks only as far as it passed the causal
// stage, so a message held there for a dep holds the order behind it, as
// a missing message of a live member does.
type totalState struct {
	last     map[string]uint64 // origin -> Lamport time of its latest accepted message
	pending  tsHeap
	lastDone tsKey // key of the latest delivered message
	anyDone  bool
	own      int // our data messages pending
	needAck  bool
	ackFor   tsKey // the latest data from others accepted since our last message
}

func (t *totalState) init() { t.last = map[string]uint64{} }

func (t *totalState) accept(m *Machine, msg Meta) {
	if msg.Lamport > t.last[msg.Origin] {
		t.last[msg.Origin] = msg.Lamport
	}
	if msg.Kind != KindData {
		return
	}
	k := keyOf(msg)
	if t.anyDone && k.less(t.lastDone) {
		m.late(msg)
		return
	}
	heap.Push(&t.pending, msg)
	if msg.Origin == m.cfg.Self {
		t.own++
		return
	}
	if !t.needAck || t.ackFor.less(k) {
		t.ackFor = k
	}
	t.needAck = true
}

func (t *totalState) floor(m *Machine, origin string, seq, lamport uint64) {
	if lamport > t.last[origin] {
		t.last[origin] = lamport
	}
	kept := t.pending[:0]
	for _, x := range t.pending {
		if x.Origin == origin && x.Seq <= seq {
			if origin == m.cfg.Self {
				t.own--
			}
			continue
		}
		kept = append(kept, x)
	}
	t.pending = kept
	heap.Init(&t.pending)
}

// after reports whether member p's stream is past k: (last[p], p) > (k.l, k.o).
func (t *totalState) after(p string, k tsKey) bool {
	l := t.last[p]
	return l > k.l || (l == k.l && p >= k.o)
}

// waitingFor lists the live members whose streams are not yet past k.
func (t *totalState) waitingFor(m *Machine, k tsKey) []string {
	var ids []string
	for _, p := range m.liveMembers() {
		if !t.after(p, k) {
			ids = append(ids, p)
		}
	}
	return ids
}

func (t *totalState) settle(m *Machine) {
	for t.needAck {
		t.needAck = false
		// Our own stream must get past the data we accepted, so that its
		// sender (and everyone) can deliver it; skip when it already is.
		self := m.cfg.Self
		if !(m.ownLast > t.ackFor.l || (m.ownLast == t.ackFor.l && self > t.ackFor.o)) {
			if ack, ok := m.newOwn(KindAck); ok {
				m.emit(ack)
				// The ack counts once it passed the causal stage. Its
				// time is past everything accepted, so what this lets
				// through never asks for another one.
				m.c.settle(m)
			}
		}
	}
	members := m.liveMembers()
	for len(t.pending) > 0 {
		head := t.pending[0]
		k := keyOf(head)
		for _, p := range members {
			if !t.after(p, k) {
				return
			}
		}
		heap.Pop(&t.pending)
		if head.Origin == m.cfg.Self {
			t.own--
		}
		t.lastDone, t.anyDone = k, true
		m.deliver(head)
	}
}
