package overlay

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func settledNet(t *testing.T, n int) *testNet {
	t.Helper()
	tn := newTestNet(t, n, testConfig)
	tn.joinAll()
	tn.advance(20*time.Second, 100*time.Millisecond)
	return tn
}

func gossipReceived(tn *testNet) uint64 {
	var total uint64
	for _, id := range tn.live() {
		total += tn.nodes[id].Stats().Received[KindGossip]
	}
	return total
}

func TestBroadcastReachesAllAndTreeConverges(t *testing.T) {
	tn := settledNet(t, 40)
	origins := []string{tn.order[0], tn.order[7], tn.order[14], tn.order[21], tn.order[28]}
	for i := range 5 {
		origin := origins[i]
		id := tn.broadcast(origin, i)
		tn.advance(time.Second, 50*time.Millisecond)
		if m := tn.missing(origin, id); len(m) > 0 {
			t.Fatalf("message %d missing at %v", i, m)
		}
	}
	// The duplicates of each origin's first broadcast pruned the cycles of
	// its tree: its messages now cross a spanning tree, one payload per
	// receiver.
	before := gossipReceived(tn)
	for i := 5; i < 15; i++ {
		origin := origins[i%5]
		id := tn.broadcast(origin, i)
		tn.advance(time.Second, 50*time.Millisecond)
		if m := tn.missing(origin, id); len(m) > 0 {
			t.Fatalf("message %d missing at %v", i, m)
		}
	}
	if got, want := gossipReceived(tn)-before, uint64(10*39); got != want {
		t.Errorf("payloads received for 10 broadcasts to 39 peers: got %d, want %d (one each)", got, want)
	}
	// Each origin's eager links form a spanning tree: N-1 links.
	for _, o := range origins {
		links := 0
		for _, id := range tn.live() {
			links += len(tn.nodes[id].Eager(o))
		}
		if links != 2*39 {
			t.Errorf("tree of %s: %d eager link ends, want %d (a spanning tree)", o, links, 2*39)
		}
	}
}

func TestTreeRepairAfterNeighbourFails(t *testing.T) {
	tn := settledNet(t, 40)
	for i := range 5 {
		tn.broadcast(tn.order[0], i)
		tn.advance(time.Second, 50*time.Millisecond)
	}
	// Crash the interior tree nodes with the most eager links: their
	// subtrees must be reached through grafts and the repaired views.
	var interior []string
	for _, id := range tn.order[1:] {
		if len(tn.nodes[id].Eager(tn.order[0])) >= 3 {
			interior = append(interior, id)
		}
	}
	if len(interior) == 0 {
		t.Fatal("no interior tree node to crash")
	}
	for _, id := range interior[:min(3, len(interior))] {
		tn.crash(id)
	}
	var grafts uint64
	for _, id := range tn.live() {
		grafts -= tn.nodes[id].Stats().GraftsSent
	}
	id := tn.broadcast(tn.order[0], 100)
	tn.advance(3*time.Second, 50*time.Millisecond)
	if m := tn.missing(tn.order[0], id); len(m) > 0 {
		t.Fatalf("after crashing %v, message missing at %v", interior, m)
	}
	for _, id := range tn.live() {
		grafts += tn.nodes[id].Stats().GraftsSent
	}
	t.Logf("crashed %d interior nodes; %d grafts repaired the tree", min(3, len(interior)), grafts)
	// The next messages need no repair: the tree healed.
	for i := 101; i < 104; i++ {
		id := tn.broadcast(tn.order[0], i)
		tn.advance(time.Second, 50*time.Millisecond)
		if m := tn.missing(tn.order[0], id); len(m) > 0 {
			t.Fatalf("message %d missing at %v", i, m)
		}
	}
}

func TestGraftOnLostEagerPush(t *testing.T) {
	tn := settledNet(t, 20)
	for i := range 5 {
		tn.broadcast(tn.order[0], i)
		tn.advance(time.Second, 50*time.Millisecond)
	}
	victim := tn.order[7]
	var lost int
	tn.drop = func(from string, e Envelope) bool {
		if e.To == victim && e.Msg.Kind == KindGossip {
			lost++
			return true
		}
		return false
	}
	before := tn.nodes[victim].Stats().GraftsSent
	id := tn.broadcast(tn.order[0], 50)
	tn.drop = nil
	if lost == 0 {
		t.Fatal("no eager push to the victim to lose")
	}
	if slices.ContainsFunc(tn.delivered[victim], func(d Delivery) bool { return d.ID == id }) {
		t.Fatal("delivered although its push was lost")
	}
	// The announcements leave after LazyInterval (the test network has no
	// latency); until GraftTimeout after them the victim waits.
	cfg := tn.nodes[victim].cfg
	tn.advance(cfg.LazyInterval+cfg.GraftTimeout-time.Millisecond, time.Millisecond)
	if got := tn.nodes[victim].Stats().GraftsSent; got != before {
		t.Fatalf("grafted before the timeout (%d grafts)", got-before)
	}
	tn.advance(2*time.Millisecond, time.Millisecond)
	if got := tn.nodes[victim].Stats().GraftsSent; got != before+1 {
		t.Fatalf("grafts after the timeout: %d, want 1", got-before)
	}
	if m := tn.missing(tn.order[0], id); len(m) > 0 {
		t.Fatalf("message missing at %v after the graft", m)
	}
}

func TestGraftRetriesWhenGraftLost(t *testing.T) {
	tn := settledNet(t, 20)
	for i := range 5 {
		tn.broadcast(tn.order[0], i)
		tn.advance(time.Second, 50*time.Millisecond)
	}
	victim := tn.order[9]
	grafts := 0
	tn.drop = func(from string, e Envelope) bool {
		if e.To == victim && e.Msg.Kind == KindGossip {
			return true
		}
		if from == victim && e.Msg.Kind == KindGraft && grafts == 0 {
			grafts++
			return true // the first graft is lost too
		}
		return false
	}
	id := tn.broadcast(tn.order[0], 60)
	// Only payloads sent during the broadcast are lost; grafts answer.
	tn.drop = func(from string, e Envelope) bool {
		if from == victim && e.Msg.Kind == KindGraft && grafts == 0 {
			grafts++
			return true
		}
		return false
	}
	tn.advance(2*time.Second, 10*time.Millisecond)
	if m := tn.missing(tn.order[0], id); len(m) > 0 {
		t.Fatalf("message missing at %v", m)
	}
	if got := tn.nodes[victim].Stats().GraftsSent; got < 2 {
		t.Fatalf("victim sent %d grafts, want a retry after the lost one", got)
	}
}

func TestTreeStateBoundedAgainstFloods(t *testing.T) {
	cfg := testConfig("me")
	cfg.MaxMissing = 64
	cfg.MaxSeen = 100
	cfg.MaxCache = 10
	cfg.MaxCacheBytes = 1000
	cfg.MaxLazyQueue = 8
	cfg.MaxIHave = 16
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	n.Step(0, "b", Message{Kind: KindPrune, Peer: "c"}) // b lazy for c's tree: its queue fills
	n.Ready()
	// An announcer floods IDs nobody will send.
	for i := range 100 {
		anns := make([]Announce, 16)
		for k := range anns {
			anns[k] = Announce{ID: msgID(i*16 + k + 1<<20), Origin: "z"}
		}
		n.Step(0, "a", Message{Kind: KindIHave, Announces: anns})
	}
	if got := len(n.tree.missing); got > cfg.MaxMissing {
		t.Errorf("missing table %d, bound %d", got, cfg.MaxMissing)
	}
	// A sender floods payloads.
	for i := range 1000 {
		n.Step(0, "c", Message{Kind: KindGossip, Peer: "c", ID: msgID(i), Payload: make([]byte, 300)})
	}
	if len(n.tree.seen) > cfg.MaxSeen || n.tree.seenQ.len() > cfg.MaxSeen {
		t.Errorf("seen %d, bound %d", len(n.tree.seen), cfg.MaxSeen)
	}
	if len(n.tree.cache) > cfg.MaxCache || n.tree.cacheBytes > cfg.MaxCacheBytes {
		t.Errorf("cache %d entries %d bytes, bounds %d, %d", len(n.tree.cache), n.tree.cacheBytes, cfg.MaxCache, cfg.MaxCacheBytes)
	}
	if got := len(n.tree.lazyQ["b"]); got > cfg.MaxLazyQueue {
		t.Errorf("lazy queue %d, bound %d", got, cfg.MaxLazyQueue)
	}
	if n.Stats().LazyDrops == 0 || n.Stats().MissingDrops == 0 || n.Stats().SeenEvictions == 0 {
		t.Errorf("floods not counted: %+v", n.Stats())
	}
	// Grafts given up after MaxGraftAttempts: the table empties.
	for k := range 100 {
		n.Tick(time.Duration(k+1) * time.Second)
	}
	if got := len(n.tree.missing); got != 0 {
		t.Errorf("missing table holds %d after every graft attempt", got)
	}
	n.Ready()
}

// A tick that comes late finds missing messages due whose deadlines are
// not in the order they were announced (a retry's deadline after a
// newer announcement's): it grafts them oldest first, as it always did,
// not by deadline, so a driver's outputs do not depend on how the
// missing table is kept.
func TestLateTickGraftsOldestMissingFirst(t *testing.T) {
	cfg := testConfig("me")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Join(0, "a")
	n.Step(0, "a", Message{Kind: KindNeighborReply, Accept: true})
	n.Step(0, "b", Message{Kind: KindNeighbor})
	if cfg.GraftRetry >= cfg.GraftTimeout {
		t.Fatalf("the test needs GraftRetry < GraftTimeout, got %v, %v", cfg.GraftRetry, cfg.GraftTimeout)
	}
	old, newer := msgID(1), msgID(2)
	n.Step(0, "a", Message{Kind: KindIHave, Announces: []Announce{{ID: old, Origin: "o"}}})
	n.Step(cfg.GraftRetry/2, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: newer, Origin: "p"}}})
	n.Tick(cfg.GraftTimeout) // old: grafted, retried after the newer one's deadline
	n.Ready()
	if d, want := n.NextDeadline(), cfg.GraftRetry/2+cfg.GraftTimeout; d != want {
		t.Fatalf("next deadline %v, want the newer message's %v", d, want)
	}
	n.Tick(cfg.GraftTimeout + cfg.GraftRetry) // late: both are due
	var grafts []string
	for _, e := range n.Ready().Messages {
		if e.Msg.Kind == KindGraft {
			grafts = append(grafts, fmt.Sprint(e.To, e.Msg.IDs))
		}
	}
	want := []string{fmt.Sprint("a", []MsgID{old}), fmt.Sprint("b", []MsgID{newer})}
	if !slices.Equal(grafts, want) {
		t.Fatalf("grafts %v, want %v (oldest first)", grafts, want)
	}
}

// A peer that others took in as a neighbour, without a Join of its own
// and without losing a neighbour, has no maintenance timer armed: its
// next deadline must still be its graft's (and lazy flush's, shuffle's),
// not 0, "nothing to do", which left them to a driver's fallback timer
// (the simulator's first peer never ticked until it dropped a neighbour).
func TestNextDeadlineWithoutJoin(t *testing.T) {
	cfg := testConfig("me")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Step(0, "a", Message{Kind: KindNeighbor})
	n.Step(0, "a", Message{Kind: KindIHave, Announces: []Announce{{ID: msgID(1), Origin: "o"}}})
	if d := n.NextDeadline(); d == 0 || d > cfg.GraftTimeout {
		t.Fatalf("next deadline %v with a graft due at %v", d, cfg.GraftTimeout)
	}
}

func TestDeterministic(t *testing.T) {
	run := func() string {
		tn := settledNet(t, 25)
		for i := range 5 {
			tn.broadcast(tn.order[i], i)
			tn.advance(time.Second, 50*time.Millisecond)
		}
		tn.crash(tn.order[3])
		tn.advance(5*time.Second, 100*time.Millisecond)
		out := ""
		for _, id := range tn.live() {
			out += fmt.Sprint(id, tn.nodes[id].Active(), tn.nodes[id].Eager(tn.order[0]), tn.nodes[id].Passive(), tn.nodes[id].Stats())
		}
		return out
	}
	if a, b := run(), run(); a != b {
		t.Fatal("two runs with the same seeds and inputs differ")
	}
}

// A neighbour we pruned pushed a message before our Prune reached it (an
// origin sending several messages at once): its copy is our first, so it
// becomes our parent at our end, but it is lazy for us at its end. We
// must tell it (a Graft without IDs); otherwise, when the old parent's
// copy arrives second and is pruned too, no eager link leads into us in
// that origin's tree and every later message waits for a graft.
func TestFirstCopyFromPrunedNeighbourGraftsIt(t *testing.T) {
	n, err := New(testConfig("me"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "x"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	id := func(b byte) MsgID { return MsgID{b} }
	n.Step(0, "p", Message{Kind: KindGossip, Peer: "o", ID: id(1), Payload: []byte("1")})
	n.Step(0, "x", Message{Kind: KindGossip, Peer: "o", ID: id(1), Payload: []byte("1")}) // duplicate: x pruned
	if !slices.Contains(n.Lazy("o"), "x") {
		t.Fatalf("x not lazy after its duplicate: lazy %v", n.Lazy("o"))
	}
	n.Ready()
	// x pushed message 2 before it got our Prune; p's copy comes second.
	n.Step(time.Millisecond, "x", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
	grafted := false
	for _, e := range n.Ready().Messages {
		if e.To == "x" && e.Msg.Kind == KindGraft && e.Msg.Peer == "o" && len(e.Msg.IDs) == 0 {
			grafted = true
		}
	}
	if !grafted {
		t.Error("no graft to the pruned neighbour whose copy came first: it stays lazy at its end")
	}
	n.Step(2*time.Millisecond, "p", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
	if eager := n.Eager("o"); !slices.Equal(eager, []string{"x"}) {
		t.Errorf("eager links in o's tree %v, want [x]", eager)
	}
}

// A lazy neighbour that announced a message to us holds it: our own
// announcement of it would tell it nothing. Whether its IHave came before
// our copy (it is among the missing message's announcers) or after (our
// announcement waits in its lazy queue), we send it none; the neighbour
// that did not announce still gets ours, so a peer whose eager push was
// lost still hears where to graft it.
func TestNoAnnouncementToLazyNeighbourThatAnnounced(t *testing.T) {
	id := func(b byte) MsgID { return MsgID{b} }
	setup := func(t *testing.T) *Node {
		t.Helper()
		cfg := testConfig("me")
		cfg.LazyInterval = 100 * time.Millisecond
		cfg.OptimizeThreshold = 0 // as chat runs it (skipHolders)
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"p", "x", "y"} {
			n.Step(0, p, Message{Kind: KindNeighbor})
		}
		// o's tree: p our parent, x and y lazy (their duplicates pruned).
		for _, p := range []string{"p", "x", "y"} {
			n.Step(0, p, Message{Kind: KindGossip, Peer: "o", ID: id(1), Payload: []byte("1")})
		}
		if lazy := n.Lazy("o"); !slices.Equal(lazy, []string{"x", "y"}) {
			t.Fatalf("lazy links in o's tree %v, want [x y]", lazy)
		}
		n.Tick(time.Second) // flush what message 1 queued
		n.Ready()
		return n
	}
	announcedTo := func(msgs []Envelope) map[string][]MsgID {
		out := map[string][]MsgID{}
		for _, e := range msgs {
			if e.Msg.Kind == KindIHave {
				for _, a := range e.Msg.Announces {
					out[e.To] = append(out[e.To], a.ID)
				}
			}
		}
		return out
	}
	t.Run("announced after our copy", func(t *testing.T) {
		n := setup(t)
		now := time.Second
		n.Step(now, "p", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
		n.Step(now+10*time.Millisecond, "x", Message{Kind: KindIHave, Announces: []Announce{{ID: id(2), Origin: "o", Round: 1}}})
		n.Tick(now + time.Second)
		got := announcedTo(n.Ready().Messages)
		if len(got["x"]) != 0 {
			t.Errorf("announced %x to x, which announced it to us first", got["x"])
		}
		if !slices.Equal(got["y"], []MsgID{id(2)}) {
			t.Errorf("announced %x to y, want message 2 (y may lack it)", got["y"])
		}
		if s := n.Stats().LazySkipped; s != 1 {
			t.Errorf("LazySkipped %d, want 1", s)
		}
	})
	t.Run("announced before our copy", func(t *testing.T) {
		n := setup(t)
		now := time.Second
		n.Step(now, "x", Message{Kind: KindIHave, Announces: []Announce{{ID: id(2), Origin: "o", Round: 1}}})
		n.Step(now+10*time.Millisecond, "p", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
		n.Tick(now + time.Second)
		msgs := n.Ready().Messages
		got := announcedTo(msgs)
		if len(got["x"]) != 0 {
			t.Errorf("announced %x to x, which announced it to us first", got["x"])
		}
		if !slices.Equal(got["y"], []MsgID{id(2)}) {
			t.Errorf("announced %x to y, want message 2 (y may lack it)", got["y"])
		}
		for _, e := range msgs {
			if e.Msg.Kind == KindGraft {
				t.Errorf("graft to %s for a message that came in time", e.To)
			}
		}
	})
	t.Run("with tree optimisation every lazy neighbour hears", func(t *testing.T) {
		cfg := testConfig("me")
		cfg.LazyInterval = 100 * time.Millisecond
		cfg.OptimizeThreshold = 2 // announcements carry path lengths it uses
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"p", "x"} {
			n.Step(0, p, Message{Kind: KindNeighbor})
			n.Step(0, p, Message{Kind: KindGossip, Peer: "o", ID: id(1), Payload: []byte("1")})
		}
		n.Tick(time.Second)
		n.Ready()
		n.Step(time.Second, "p", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
		n.Step(time.Second+10*time.Millisecond, "x", Message{Kind: KindIHave, Announces: []Announce{{ID: id(2), Origin: "o", Round: 1}}})
		n.Tick(2 * time.Second)
		if got := announcedTo(n.Ready().Messages); !slices.Equal(got["x"], []MsgID{id(2)}) {
			t.Errorf("announced %x to x, want message 2", got["x"])
		}
	})
	t.Run("an announcement of another message keeps ours", func(t *testing.T) {
		n := setup(t)
		now := time.Second
		n.Step(now, "p", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
		n.Step(now, "p", Message{Kind: KindGossip, Peer: "o", ID: id(3), Payload: []byte("3")})
		n.Step(now+10*time.Millisecond, "x", Message{Kind: KindIHave, Announces: []Announce{{ID: id(3), Origin: "o", Round: 1}}})
		n.Tick(now + time.Second)
		if got := announcedTo(n.Ready().Messages); !slices.Equal(got["x"], []MsgID{id(2)}) {
			t.Errorf("announced %x to x, want message 2 only", got["x"])
		}
	})
}

// A peer whose eager push was lost gets the message off the tree (the
// driver's repair) before its graft timer fires: Repaired relays it down
// the tree at once, so the peers below it get it from it without a
// repair or a graft of their own, and nobody grafts or prunes for it.
func TestRepairedRelaysDownTheTreeAndCancelsGraft(t *testing.T) {
	tn := settledNet(t, 30)
	origin := tn.order[0]
	for i := range 5 {
		tn.broadcast(origin, i)
		tn.advance(time.Second, 50*time.Millisecond)
	}
	// An interior node of origin's tree: a parent and at least a child.
	var victim string
	for _, id := range tn.order[1:] {
		if len(tn.nodes[id].Eager(origin)) >= 2 {
			victim = id
			break
		}
	}
	if victim == "" {
		t.Fatal("no interior tree node")
	}
	parent := tn.nodes[victim].Parent(origin)
	var children []string
	for _, p := range tn.nodes[victim].Eager(origin) {
		if p != parent {
			children = append(children, p)
		}
	}
	var grafts, prunes uint64
	count := func() (g, p uint64) {
		for _, id := range tn.live() {
			g += tn.nodes[id].Stats().GraftsSent
			p += tn.nodes[id].Stats().Sent[KindPrune]
		}
		return g, p
	}
	grafts, prunes = count()
	tn.drop = func(from string, e Envelope) bool { return e.To == victim && e.Msg.Kind == KindGossip }
	id := tn.broadcast(origin, 50)
	tn.drop = nil
	for _, c := range append([]string{victim}, children...) {
		if slices.ContainsFunc(tn.delivered[c], func(d Delivery) bool { return d.ID == id }) {
			t.Fatalf("%s delivered although the push into its subtree was lost", c)
		}
	}
	// The announcements arrive; the repair comes before the graft timer.
	tn.advance(tn.nodes[victim].cfg.LazyInterval, time.Millisecond)
	if len(tn.nodes[victim].tree.missing) == 0 {
		t.Fatal("the victim heard no announcement: no graft to cancel")
	}
	if !tn.nodes[victim].Repaired(tn.now, origin, id, []byte("m50")) {
		t.Fatal("Repaired refused a message the victim lacks")
	}
	if tn.nodes[victim].Repaired(tn.now, origin, id, []byte("m50")) {
		t.Error("Repaired took the same message twice")
	}
	tn.collect(victim)
	if slices.ContainsFunc(tn.delivered[victim], func(d Delivery) bool { return d.ID == id }) {
		t.Error("the repaired message was delivered to the driver again")
	}
	tn.run()
	for _, c := range children {
		i := slices.IndexFunc(tn.delivered[c], func(d Delivery) bool { return d.ID == id })
		if i < 0 {
			t.Fatalf("child %s did not get the repaired message from %s", c, victim)
		}
		if from := tn.delivered[c][i].From; from != victim {
			t.Errorf("child %s got it from %s, want %s", c, from, victim)
		}
	}
	tn.advance(5*time.Second, 50*time.Millisecond)
	if m := tn.missing(origin, id); len(m) != 1 || m[0] != victim {
		t.Errorf("missing at %v, want only the victim (its copy was not the machine's to deliver)", m)
	}
	if g, p := count(); g != grafts || p != prunes {
		t.Errorf("grafts %d, prunes %d after the repair, want 0 and 0", g-grafts, p-prunes)
	}
	// The tree is whole: the next message needs no repair.
	id = tn.broadcast(origin, 51)
	if m := tn.missing(origin, id); len(m) > 0 {
		t.Errorf("next message missing at %v", m)
	}
}

// The parent's push of a message this peer got off the tree, arriving
// after it, is the tree's path reaching it late: it prunes nothing. A
// second tree copy still does. A repaired message is never pushed back
// to the parent.
func TestRepairedThenParentCopyKeepsTree(t *testing.T) {
	n, err := New(testConfig("me"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p", "c", "x"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	id := func(b byte) MsgID { return MsgID{b} }
	n.Step(0, "p", Message{Kind: KindGossip, Peer: "o", ID: id(1), Payload: []byte("1")})
	n.Step(0, "x", Message{Kind: KindGossip, Peer: "o", ID: id(1), Payload: []byte("1")}) // x lazy
	n.Ready()
	if !n.Repaired(time.Millisecond, "o", id(2), []byte("2")) {
		t.Fatal("Repaired refused")
	}
	rd := n.Ready()
	var pushed []string
	for _, e := range rd.Messages {
		if e.Msg.Kind == KindGossip {
			pushed = append(pushed, e.To)
			if e.Msg.Round != 1 || e.Msg.Peer != "o" || e.Msg.ID != id(2) || string(e.Msg.Payload) != "2" {
				t.Errorf("relayed %+v", e.Msg)
			}
		}
	}
	if !slices.Equal(pushed, []string{"c"}) {
		t.Errorf("repaired message pushed to %v, want [c] (not the parent p, not the lazy x)", pushed)
	}
	if len(rd.Deliveries) != 0 {
		t.Errorf("repaired message delivered again: %v", rd.Deliveries)
	}
	n.Step(2*time.Millisecond, "p", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
	for _, e := range n.Ready().Messages {
		if e.Msg.Kind == KindPrune {
			t.Errorf("prune to %s for the parent's late copy", e.To)
		}
	}
	if !slices.Contains(n.Eager("o"), "p") {
		t.Errorf("parent p lazy after its late copy: eager %v", n.Eager("o"))
	}
	n.Step(3*time.Millisecond, "c", Message{Kind: KindGossip, Peer: "o", ID: id(2), Payload: []byte("2")})
	pruned := false
	for _, e := range n.Ready().Messages {
		pruned = pruned || e.To == "c" && e.Msg.Kind == KindPrune
	}
	if !pruned {
		t.Error("a second tree copy did not prune its link")
	}
	if got := n.Stats().Repaired; got != 1 {
		t.Errorf("Stats.Repaired %d, want 1", got)
	}
}

// Without a parent in the origin's tree a peer cannot tell which eager
// link leads back to the tree: a repaired message is recorded (its wait
// and graft end) and pushed to nobody, but announced to every neighbour
// that did not announce it to us, with an unknown hop count, and a
// neighbour that grafts it gets it; one its origin pushed to us (Pushed)
// is announced to nobody. A message received already, our own, or too
// large is refused.
func TestRepairedWithoutParentAnnounces(t *testing.T) {
	cfg := testConfig("me")
	cfg.MaxPayload = 8
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	id := MsgID{7}
	n.Step(0, "a", Message{Kind: KindIHave, Announces: []Announce{{ID: id, Origin: "o"}}})
	n.Ready()
	if !n.Repaired(time.Millisecond, "o", id, []byte("7")) {
		t.Fatal("Repaired refused")
	}
	if rd := n.Ready(); len(rd.Messages) != 0 || len(rd.Deliveries) != 0 {
		t.Errorf("sent %v, delivered %v before the announcements' batch", rd.Messages, rd.Deliveries)
	}
	n.Tick(time.Millisecond + cfg.LazyInterval)
	announced := map[string]bool{}
	for _, e := range n.Ready().Messages {
		switch {
		case e.Msg.Kind == KindIHave && len(e.Msg.Announces) == 1 && e.Msg.Announces[0].ID == id:
			if r := e.Msg.Announces[0].Round; r != unknownRound {
				t.Errorf("announced to %s with hop count %d, want %d", e.To, r, unknownRound)
			}
			announced[e.To] = true
		default:
			t.Errorf("sent %v to %s", e.Msg.Kind, e.To)
		}
	}
	if !announced["b"] || !announced["c"] || announced["a"] {
		t.Errorf("announced to %v, want b and c (a announced it to us)", announced)
	}
	if got := n.Stats().RepairAnnounced; got != 2 {
		t.Errorf("Stats.RepairAnnounced %d, want 2", got)
	}
	n.Step(time.Second, "b", Message{Kind: KindGraft, Peer: "o", IDs: []MsgID{id}})
	n.Step(time.Second, "a", Message{Kind: KindGraft, Peer: "o", IDs: []MsgID{id}})
	var to []string
	for _, e := range n.Ready().Messages {
		if e.Msg.Kind == KindGossip && e.Msg.ID == id {
			to = append(to, e.To)
		}
	}
	if !slices.Equal(to, []string{"b"}) {
		t.Errorf("graft answers to %v, want b only (a was not announced it)", to)
	}
	n.Tick(10 * time.Second)
	if got := n.Stats().GraftsSent; got != 0 {
		t.Errorf("%d grafts for a repaired message", got)
	}
	// Pushed by its origin (a small group's direct push): every member
	// got it from the origin, so nobody is announced it.
	pushed := MsgID{11}
	if !n.Pushed(11*time.Second, "o", pushed, []byte("11")) {
		t.Fatal("Pushed refused")
	}
	n.Tick(11*time.Second + cfg.LazyInterval)
	for _, e := range n.Ready().Messages {
		if !e.Msg.Kind.View() { // a shuffle may fall due meanwhile
			t.Errorf("a pushed message without a parent: sent %v to %s", e.Msg.Kind, e.To)
		}
	}
	for name, ok := range map[string]bool{
		"again":     n.Repaired(time.Second, "o", id, []byte("7")),
		"own":       n.Repaired(time.Second, "me", MsgID{8}, []byte("8")),
		"too large": n.Repaired(time.Second, "o", MsgID{9}, make([]byte, 9)),
		"no origin": n.Repaired(time.Second, "", MsgID{10}, []byte("a")),
	} {
		if ok {
			t.Errorf("%s: taken", name)
		}
	}
}

// An origin's first payload floods a new tree, every link eager: a push
// of it lost was announced by nobody, and a flood that lost its first
// pushes died out (the rest of the group waited for anti-entropy). Now
// the first payload of a tree to pass a node is announced to its eager
// neighbours as well, so here, with every one of the origin's pushes
// lost, its neighbours graft it and the flood goes on. Later payloads
// go to the eager neighbours without an announcement, as before.
func TestFirstPayloadAnnouncedToEagerNeighbours(t *testing.T) {
	tn := settledNet(t, 20)
	origin := tn.order[0]
	tn.drop = func(from string, e Envelope) bool {
		return from == origin && e.Msg.Kind == KindGossip && !e.Msg.Repaired // the pushes, not the grafts' answers
	}
	id := tn.broadcast(origin, 1)
	if got, want := tn.nodes[origin].Stats().FirstAnnounced, uint64(len(tn.nodes[origin].Active())); got != want {
		t.Fatalf("first payload announced to %d eager neighbours, want %d", got, want)
	}
	cfg := tn.nodes[origin].cfg
	tn.advance(cfg.LazyInterval+cfg.GraftTimeout+time.Second, 10*time.Millisecond)
	tn.drop = nil
	if m := tn.missing(origin, id); len(m) > 0 {
		t.Fatalf("the first payload, its pushes lost, missing at %v", m)
	}

	before := tn.nodes[origin].Stats().FirstAnnounced
	var ihaves int
	tn.sent = func(from string, e Envelope) {
		if from == origin && e.Msg.Kind == KindIHave && !tn.nodes[origin].isLazy(origin, e.To) {
			ihaves++
		}
	}
	id = tn.broadcast(origin, 2)
	tn.advance(cfg.LazyInterval+time.Millisecond, time.Millisecond)
	if after := tn.nodes[origin].Stats().FirstAnnounced; after != before || ihaves != 0 {
		t.Fatalf("the second payload announced to %d eager neighbours (%d counted)", ihaves, after-before)
	}
	if m := tn.missing(origin, id); len(m) > 0 {
		t.Fatalf("the second payload missing at %v", m)
	}
}

// An origin whose first broadcast had no neighbour to go to floods its
// tree with the next one: that one is the first pushed, and announced.
func TestFirstPushedPayloadAnnouncedAfterLonelyBroadcast(t *testing.T) {
	n, err := New(testConfig("me"))
	if err != nil {
		t.Fatal(err)
	}
	if !n.Broadcast(0, msgID(1), []byte("alone")) {
		t.Fatal("Broadcast refused")
	}
	n.Ready()
	for _, p := range []string{"a", "b", "c"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	n.Ready()
	n.Broadcast(time.Millisecond, msgID(2), []byte("flood"))
	if got := n.Stats().FirstAnnounced; got != 3 {
		t.Fatalf("the first pushed payload announced to %d eager neighbours, want 3", got)
	}
}
