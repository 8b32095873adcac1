package overlay

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// testNet delivers messages between Nodes in one FIFO queue with no
// latency, as etcd-io/raft's network in its tests: a test drives time by
// hand, drops what it wants (drop), and crashes peers.
type testNet struct {
	t     testing.TB
	now   time.Duration
	nodes map[string]*Node
	order []string // creation order: deterministic iteration
	dead  map[string]bool
	queue []queued
	// drop, if set, is asked about every message; true drops it.
	drop func(from string, e Envelope) bool
	// sent, if set, sees every message as its sender hands it out, with
	// the sender's views as they are then.
	sent      func(from string, e Envelope)
	delivered map[string][]Delivery
}

type queued struct {
	from string
	env  Envelope
}

func newTestNet(t testing.TB, n int, cfg func(self string) Config) *testNet {
	t.Helper()
	tn := &testNet{t: t, nodes: map[string]*Node{}, dead: map[string]bool{}, delivered: map[string][]Delivery{}}
	for i := range n {
		tn.add(fmt.Sprintf("p%03d", i), cfg)
	}
	return tn
}

func (tn *testNet) add(id string, cfg func(self string) Config) *Node {
	tn.t.Helper()
	nd, err := New(cfg(id))
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.nodes[id] = nd
	tn.order = append(tn.order, id)
	return nd
}

// collect moves a node's outputs into the queue.
func (tn *testNet) collect(id string) {
	rd := tn.nodes[id].Ready()
	for _, e := range rd.Messages {
		e.Msg.Peers = slices.Clone(e.Msg.Peers)
		if tn.sent != nil {
			tn.sent(id, e)
		}
		tn.queue = append(tn.queue, queued{from: id, env: e})
	}
	tn.delivered[id] = append(tn.delivered[id], rd.Deliveries...)
}

// run delivers queued messages until none is left (bounded, so a livelock
// fails the test instead of hanging it).
func (tn *testNet) run() {
	tn.t.Helper()
	for steps := 0; len(tn.queue) > 0; steps++ {
		if steps > 1_000_000 {
			tn.t.Fatal("the network did not quiesce")
		}
		q := tn.queue[0]
		tn.queue = tn.queue[1:]
		if tn.drop != nil && tn.drop(q.from, q.env) {
			continue
		}
		to := tn.nodes[q.env.To]
		if to == nil || tn.dead[q.env.To] {
			// Connection refused: the sender finds out.
			if !tn.dead[q.from] {
				tn.nodes[q.from].PeerDown(tn.now, q.env.To)
				tn.collect(q.from)
			}
			continue
		}
		to.Step(tn.now, q.from, q.env.Msg)
		tn.collect(q.env.To)
	}
}

// advance moves time forward in steps of at most step, ticking every live
// node at each step and delivering what the ticks send.
func (tn *testNet) advance(d, step time.Duration) {
	end := tn.now + d
	for tn.now < end {
		tn.now = min(tn.now+step, end)
		for _, id := range tn.order {
			if !tn.dead[id] {
				tn.nodes[id].Tick(tn.now)
				tn.collect(id)
			}
		}
		tn.run()
	}
}

// crash kills a peer: its neighbours' connections break.
func (tn *testNet) crash(id string) {
	tn.dead[id] = true
	for _, o := range tn.order {
		if !tn.dead[o] && slices.Contains(tn.nodes[o].view.active, id) {
			tn.nodes[o].PeerDown(tn.now, id)
			tn.collect(o)
		}
	}
	tn.run()
}

// joinAll joins every node through a random earlier one.
func (tn *testNet) joinAll() {
	for i, id := range tn.order[1:] {
		contact := tn.order[(i*7919)%(i+1)]
		tn.nodes[id].Join(tn.now, contact)
		tn.collect(id)
		tn.run()
	}
}

func (tn *testNet) live() []string {
	var out []string
	for _, id := range tn.order {
		if !tn.dead[id] {
			out = append(out, id)
		}
	}
	return out
}

// checkViews fails unless every live node's active view is symmetric,
// holds only live peers, is within its bound, and the live nodes form one
// connected graph.
func (tn *testNet) checkViews(minActive int) {
	tn.t.Helper()
	live := tn.live()
	for _, id := range live {
		nd := tn.nodes[id]
		if len(nd.view.active) > nd.cfg.ActiveSize+nd.cfg.ActiveSlack || len(nd.view.passive) > nd.cfg.PassiveSize {
			tn.t.Fatalf("%s: views %d/%d over their bounds", id, len(nd.view.active), len(nd.view.passive))
		}
		if len(nd.view.active) < minActive {
			tn.t.Errorf("%s: active view %v, want at least %d peers", id, nd.view.active, minActive)
		}
		for _, p := range nd.view.active {
			if tn.dead[p] {
				tn.t.Errorf("%s: dead peer %s in its active view", id, p)
			}
			if !slices.Contains(tn.nodes[p].view.active, id) {
				tn.t.Errorf("%s has %s active, not the reverse", id, p)
			}
		}
		for o, st := range nd.tree.trees {
			if st.lazy>>len(nd.view.active) != 0 {
				tn.t.Errorf("%s: tree %s has lazy bits %b beyond its %d neighbours", id, o, st.lazy, len(nd.view.active))
			}
		}
	}
	// Connectivity from the first live node.
	seen := map[string]bool{live[0]: true}
	stack := []string{live[0]}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, q := range tn.nodes[p].view.active {
			if !seen[q] {
				seen[q] = true
				stack = append(stack, q)
			}
		}
	}
	if len(seen) != len(live) {
		tn.t.Errorf("overlay split: %d of %d live peers reachable", len(seen), len(live))
	}
}

func msgID(i int) MsgID {
	var id MsgID
	id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
	id[15] = 0xAA
	return id
}

// broadcast sends one message from origin and lets it spread, ticking so
// that grafts and lazy pushes happen.
func (tn *testNet) broadcast(origin string, i int) MsgID {
	id := msgID(i)
	if !tn.nodes[origin].Broadcast(tn.now, id, []byte(fmt.Sprintf("m%d", i))) {
		tn.t.Fatalf("broadcast %d refused", i)
	}
	tn.collect(origin)
	tn.run()
	return id
}

// missing returns the live nodes (but origin) that have not delivered id.
func (tn *testNet) missing(origin string, id MsgID) []string {
	var out []string
	for _, p := range tn.live() {
		if p == origin {
			continue
		}
		if !slices.ContainsFunc(tn.delivered[p], func(d Delivery) bool { return d.ID == id }) {
			out = append(out, p)
		}
	}
	return out
}

func testConfig(self string) Config {
	c := DefaultConfig(self, uint64(len(self))*31+uint64(self[len(self)-1]))
	c.ActiveSize = 4
	c.PassiveSize = 12
	c.ARWL, c.PRWL = 5, 2
	return c
}
