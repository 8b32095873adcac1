package order

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// simNode is one member in a simulated room: its Machine, its "log" (every
// message it has stored, as the chat layer's store would) and what it showed.
type simNode struct {
	sim       *sim
	id        string
	m         *Machine
	log       map[ID]Meta
	delivered []Meta
	late      []Meta
	shown     []Meta // Output.Show: delivered and late, in the order shown
	up        bool
}

type pkt struct {
	to  string
	msg Meta
}

// sim is a deterministic network of Machines: packets wait in a queue until
// the test delivers, drops, duplicates or reorders them; repair copies
// stored messages between two nodes like anti-entropy.
type sim struct {
	t     testing.TB
	mode  Mode
	nodes map[string]*simNode
	ids   []string
	queue []pkt
	cut   map[[2]string]bool // partitioned pairs (both directions)
	ages  map[string]uint64
	cfg   func(*Config)
	// past is the ground truth of causality: per data message sent, the
	// highest seq per other origin its sender had shown (delivered, or
	// late) when it sent it. Deps are compacted (a message names only what is not implied),
	// so the checker verifies deliveries against this, not against Deps.
	past map[ID]map[string]uint64
}

func newSim(t testing.TB, mode Mode, ids ...string) *sim {
	t.Helper()
	return newSimWith(t, mode, nil, ids...)
}

// newSimWith is newSim with tune applied to every node's Config.
func newSimWith(t testing.TB, mode Mode, tune func(*Config), ids ...string) *sim {
	t.Helper()
	s := &sim{t: t, mode: mode, nodes: map[string]*simNode{}, cut: map[[2]string]bool{}, ages: map[string]uint64{}, cfg: tune,
		past: map[ID]map[string]uint64{}}
	for i, id := range ids {
		s.add(id, uint64(i+1))
	}
	return s
}

// add starts a node with the given age and tells everyone about it.
func (s *sim) add(id string, age uint64) *simNode {
	s.t.Helper()
	cfg := DefaultConfig(id, s.mode)
	if s.cfg != nil {
		s.cfg(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		s.t.Fatalf("New(%s): %v", id, err)
	}
	n := &simNode{sim: s, id: id, m: m, log: map[ID]Meta{}, up: true}
	s.nodes[id] = n
	s.ages[id] = age
	s.ids = append(s.ids, id)
	slices.Sort(s.ids)
	for _, other := range s.ids {
		o := s.nodes[other]
		if !o.up {
			continue
		}
		s.handle(n, n.m.MemberUp(other, s.age(other)))
		if other != id {
			s.handle(o, o.m.MemberUp(id, age))
		}
	}
	return n
}

func (s *sim) age(id string) uint64 { return s.ages[id] }

func (s *sim) node(id string) *simNode {
	s.t.Helper()
	n, ok := s.nodes[id]
	if !ok {
		s.t.Fatalf("no node %s", id)
	}
	return n
}

// handle records an Output: deliveries, and control messages stored and
// broadcast.
func (s *sim) handle(n *simNode, out Output) {
	n.delivered = append(n.delivered, out.Deliver...)
	n.late = append(n.late, out.Late...)
	n.shown = append(n.shown, out.Show...)
	for _, c := range out.Send {
		n.log[c.ID()] = c
		s.broadcast(n.id, c)
	}
}

func (s *sim) broadcast(from string, msg Meta) {
	for _, id := range s.ids {
		if id != from {
			s.queue = append(s.queue, pkt{id, msg})
		}
	}
}

// send makes node id send one data message; it returns its ID.
func (s *sim) send(id string) ID {
	s.t.Helper()
	n := s.node(id)
	msg, out, err := n.m.Next()
	if err != nil {
		s.t.Fatalf("%s Next: %v", id, err)
	}
	s.notePast(n, msg)
	n.log[msg.ID()] = msg
	s.handle(n, out)
	s.broadcast(id, msg)
	return msg.ID()
}

// notePast records what n had shown when it sent msg.
func (s *sim) notePast(n *simNode, msg Meta) {
	if msg.Kind != KindData {
		return
	}
	past := map[string]uint64{}
	for _, d := range n.shown {
		if d.Origin != n.id && d.Seq > past[d.Origin] {
			past[d.Origin] = d.Seq
		}
	}
	s.past[msg.ID()] = past
}

// recv hands msg to node id as if it arrived (stored, then ordered).
func (s *sim) recv(id string, msg Meta) {
	s.t.Helper()
	n := s.node(id)
	if !n.up {
		return
	}
	if _, ok := n.log[msg.ID()]; !ok {
		n.log[msg.ID()] = msg
	}
	out, err := n.m.Receive(msg)
	if err != nil {
		s.t.Fatalf("%s Receive(%s): %v", id, msg.ID(), err)
	}
	s.handle(n, out)
}

func (s *sim) blocked(a, b string) bool { return s.cut[[2]string{a, b}] }

// flush delivers queued packets in order until the queue is empty;
// packets across a partition or to a down node are lost.
func (s *sim) flush() {
	for len(s.queue) > 0 {
		p := s.queue[0]
		s.queue = s.queue[1:]
		if s.blocked(p.msg.Origin, p.to) || !s.nodes[p.to].up {
			continue
		}
		s.recv(p.to, p.msg)
	}
}

// drop discards every queued packet.
func (s *sim) drop() { s.queue = nil }

// partition cuts every link between the two groups.
func (s *sim) partition(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			s.cut[[2]string{x, y}] = true
			s.cut[[2]string{y, x}] = true
		}
	}
}

func (s *sim) heal() { s.cut = map[[2]string]bool{} }

// down declares id failed on every other live node.
func (s *sim) down(id string) {
	s.node(id).up = false
	for _, o := range s.ids {
		if n := s.nodes[o]; n.up {
			s.handle(n, n.m.MemberDown(id))
		}
	}
}

// repair is one anti-entropy exchange from a to b: b gets, in seq order
// per origin, every message a has stored that b lacks, then b re-feeds its
// own log from where its machine stands (messages refused earlier).
func (s *sim) repair(a, b string) {
	na, nb := s.node(a), s.node(b)
	if !na.up || !nb.up || s.blocked(a, b) {
		return
	}
	var missing []Meta
	for id, msg := range na.log {
		if _, ok := nb.log[id]; !ok {
			missing = append(missing, msg)
		}
	}
	slices.SortFunc(missing, func(x, y Meta) int { return cmpID(x.ID(), y.ID()) })
	for _, msg := range missing {
		s.recv(b, msg)
	}
	s.refeed(b)
}

// refeed gives a node's own stored messages back to its machine from
// Want on, as the chat layer does for refused messages.
func (s *sim) refeed(id string) {
	n := s.node(id)
	want := n.m.Want()
	var msgs []Meta
	for mid, msg := range n.log {
		if w, ok := want[mid.Origin]; !ok || mid.Seq >= w {
			msgs = append(msgs, msg)
		}
	}
	slices.SortFunc(msgs, func(x, y Meta) int { return cmpID(x.ID(), y.ID()) })
	if len(msgs) == 0 {
		return
	}
	out, err := n.m.Receive(msgs...)
	if err != nil {
		s.t.Fatalf("%s refeed: %v", id, err)
	}
	s.handle(n, out)
}

// converge runs flush and all-pairs repair until nothing changes.
func (s *sim) converge() {
	for range 50 {
		before := s.fingerprint()
		s.flush()
		for _, a := range s.ids {
			for _, b := range s.ids {
				if a != b {
					s.repair(a, b)
				}
			}
		}
		s.flush()
		if s.fingerprint() == before {
			return
		}
	}
	s.t.Fatalf("no convergence after 50 rounds")
}

func (s *sim) fingerprint() string {
	f := ""
	for _, id := range s.ids {
		n := s.nodes[id]
		f += fmt.Sprintf("%s:%d/%d/%d;", id, len(n.log), len(n.delivered), len(n.late))
	}
	return f
}

func cmpID(a, b ID) int {
	if idLess(a, b) {
		return -1
	}
	if idLess(b, a) {
		return 1
	}
	return 0
}

func ids(ms []Meta) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID().String()
	}
	return out
}

// checkInvariants verifies what must hold for any node in any mode:
// nothing delivered twice, per-origin order, and the mode's order.
func checkInvariants(t testing.TB, mode Mode, n *simNode) {
	t.Helper()
	c := newChecker(mode)
	if n.sim != nil {
		// Deps may name control messages (acks carrying deps): they are
		// consumed, never delivered, so the checker looks their kind up in
		// their origin's log.
		c.lookup = func(id ID) (Meta, bool) {
			o := n.sim.nodes[id.Origin]
			if o == nil {
				return Meta{}, false
			}
			x, ok := o.log[id]
			return x, ok
		}
		c.past = func(id ID) map[string]uint64 { return n.sim.past[id] }
	}
	if err := c.check(n.delivered); err != nil {
		t.Fatalf("%s: %v (delivered %v)", n.id, err, ids(n.delivered))
	}
}

// orderViolation returns what is wrong with a delivered sequence.
func orderViolation(mode Mode, delivered []Meta) error {
	return newChecker(mode).check(delivered)
}

// checker verifies deliveries incrementally: nothing twice, per-origin
// order, and the mode's order.
type checker struct {
	mode   Mode
	seen   map[ID]bool
	last   map[string]uint64
	counts map[string]uint64 // causal: delivered (or floored) per origin
	// deps (causal): per origin, the union of the Deps of its delivered
	// messages. Deps are compacted (each message names only what is new),
	// so every message must find all of them met, not only its own.
	deps map[string]map[string]uint64
	// lookup finds a message in its origin's log (nil: no log). Deps may
	// name control messages, which are consumed, never delivered (a dep on
	// one is met once the data before it is), and acks carry part of the
	// deps of the data message after them.
	lookup func(ID) (Meta, bool)
	// past returns the ground truth of a message's causal past (nil: not
	// known); a message must come after all of it.
	past       func(ID) map[string]uint64
	scanned    map[string]uint64 // causal: seqs whose acks' deps are in deps
	prevKey    tsKey
	prevGlobal uint64
	any        bool
}

func newChecker(mode Mode) *checker {
	return &checker{mode: mode, seen: map[ID]bool{}, last: map[string]uint64{}, counts: map[string]uint64{},
		deps: map[string]map[string]uint64{}, scanned: map[string]uint64{}}
}

// floor mirrors Machine.Floor.
func (c *checker) floor(origin string, seq uint64) {
	c.counts[origin] = max(c.counts[origin], seq)
	c.last[origin] = max(c.last[origin], seq)
}

// onlyControl reports whether origin's seqs from..to are all control
// messages (so nothing of them is ever delivered).
func (c *checker) onlyControl(origin string, from, to uint64) bool {
	if c.lookup == nil || to-from > 1<<16 {
		return false
	}
	for s := from; s <= to; s++ {
		if x, ok := c.lookup(ID{origin, s}); !ok || x.Kind == KindData {
			return false
		}
	}
	return true
}

func (c *checker) check(delivered []Meta) error {
	for _, m := range delivered {
		if m.Kind != KindData {
			return fmt.Errorf("delivered %s of kind %s", m.ID(), m.Kind)
		}
		if c.seen[m.ID()] {
			return fmt.Errorf("%s delivered twice", m.ID())
		}
		c.seen[m.ID()] = true
		if m.Seq <= c.last[m.Origin] {
			return fmt.Errorf("%s after seq %d of the same origin", m.ID(), c.last[m.Origin])
		}
		c.last[m.Origin] = m.Seq
		switch c.mode {
		case Causal:
			all := c.deps[m.Origin]
			if all == nil {
				all = map[string]uint64{}
				c.deps[m.Origin] = all
			}
			for p, s := range m.Deps {
				all[p] = max(all[p], s)
			}
			// The control messages of m's origin before it, with their deps.
			if c.lookup != nil && m.Seq-c.scanned[m.Origin] <= 1<<16 {
				for s := c.scanned[m.Origin] + 1; s < m.Seq; s++ {
					if x, ok := c.lookup(ID{m.Origin, s}); ok && x.Kind != KindData {
						for p, d := range x.Deps {
							all[p] = max(all[p], d)
						}
					}
				}
			}
			c.scanned[m.Origin] = m.Seq
			if c.past != nil {
				for p, s := range c.past(m.ID()) {
					if c.counts[p] < s {
						return fmt.Errorf("%s delivered before %s:%d, which its sender had delivered before sending it", m.ID(), p, s)
					}
				}
			}
			for p, s := range all {
				if p != m.Origin && c.counts[p] < s && !c.onlyControl(p, c.counts[p]+1, s) {
					return fmt.Errorf("%s delivered before its dependency %s:%d", m.ID(), p, s)
				}
			}
			c.counts[m.Origin] = m.Seq
		case Total:
			k := keyOf(m)
			if c.any && !c.prevKey.less(k) {
				return fmt.Errorf("%s delivered after a later timestamp", m.ID())
			}
			c.prevKey = k
		case Sequencer:
			if m.Global == 0 || (c.any && m.Global <= c.prevGlobal) {
				return fmt.Errorf("%s global %d after %d", m.ID(), m.Global, c.prevGlobal)
			}
			c.prevGlobal = m.Global
		}
		c.any = true
	}
	return nil
}

func randSource(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

// dumpNode logs a node's sequencer state, to diagnose a failure.
func dumpNode(t testing.TB, n *simNode) {
	t.Helper()
	s := &n.m.s
	t.Logf("%s: up %v stats %+v", n.id, n.up, n.m.Stats())
	t.Logf("  next %v epoch %d seqr %v cut %v synced %v", n.m.next, s.epoch, s.seqr, s.cut, s.synced)
	t.Logf("  order %v nextGlobal %d maxGlobal %d", s.order, s.nextGlobal, s.maxGlobal)
	for _, h := range n.m.HeldBack(10) {
		t.Logf("  held %s (%s): %s", h.ID, h.Kind, h.Reason)
	}
}
