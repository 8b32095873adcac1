package overlay

// Plumtree, one tree per origin: every neighbour starts eager. A payload
// received for the first time is delivered, pushed to the eager
// neighbours but the sender, and announced (its ID, in batched IHAVEs) to
// the lazy ones; a payload received again means two tree paths reached
// us, so the link it came on turns lazy at both ends (PRUNE). After an
// origin's first broadcasts its eager links form a spanning tree rooted
// at it, made of the fastest paths, and each peer receives each payload
// once. That first payload, pushed over links none of which is lazy
// yet, is announced to the eager neighbours as well (forward), so a lost
// push of it is grafted as a later one's is. A peer that hears an IHAVE
// for a message it lacks waits the graft timer for the payload
// (GraftTimeout, or adapted to how late the tree's payloads come:
// graft.go; on the tree, the fastest path, it comes first), then grafts
// an announcer: the link turns eager at both
// ends and the announcer sends the payload if it announced it to us, at
// most graftAnswers times; it tries the next announcer every GraftRetry
// (scaled as the timer), at most MaxGraftAttempts times. What a node got
// by a graft or a repair it relays flagged Repaired, so the nodes below
// do not time their graft timers by it (graft.go). A failed neighbour
// simply leaves the view; the subtree behind it is repaired by those
// grafts.
// A message the driver gets off the tree (anti-entropy above the
// overlay) is handed in with Repaired: recorded as received, so its wait
// and graft end, and relayed below us in its origin's tree, never back
// to our parent there, whose late copy of it then prunes nothing.
//
// Why a tree per origin, not one shared tree (the paper's other option):
// with one tree, messages of different origins in flight at once prune
// different links of the same cycle, cutting the tree into pieces that
// grafts must join again (in the simulator, 300 peers at 5 messages/s:
// one delivery in five needed a graft), and a shared tree's paths
// between two peers are about twice a rooted tree's depth. The cost is
// one 64-bit mask per origin (bit i: the neighbour in active view slot
// i is lazy), at most MaxTrees origins, least recently used forgotten
// (a forgotten origin starts all-eager again and prunes anew).
//
// Received IDs (duplicate detection), payloads (to answer grafts),
// missing IDs and lazy queues are bounded tables; when one is full the
// oldest entry goes (received IDs, payloads) or the new one is refused
// (missing, lazy): anti-entropy above the overlay repairs what is lost.

import (
	"cmp"
	"container/heap"
	"slices"
	"time"
)

type tree struct {
	trees map[string]*srcTree
	// The trees in the order of their last use, newest first: the one
	// forgotten for a new origin is the oldest, found without a scan of
	// up to MaxTrees trees per message naming a new origin.
	newest, oldest *srcTree

	seen  map[MsgID]seenEntry
	seenQ fifo // insertion order, to forget the oldest beyond MaxSeen

	cache      map[MsgID]cached
	cacheQ     fifo
	cacheBytes int

	// missing's entries are also in missingH, a heap by deadline, so
	// that a receipt ending one, the next deadline and a tick cost
	// O(log MaxMissing) or less, not a scan of up to MaxMissing entries
	// per input; missingSeq numbers them in the order they were made,
	// the order a tick handles those due (deterministic outputs).
	missing    map[MsgID]*missingMsg
	missingH   missingHeap
	missingSeq uint64
	due        []*missingMsg // tickTree's scratch

	lazyQ     map[string][]Announce
	nextFlush time.Duration // 0: nothing queued

	late graftLate // how late the tree's payloads come (graft.go)
}

// srcTree is this peer's links in one origin's tree.
type srcTree struct {
	lazy   uint64 // bit i set: active[i] is lazy
	origin string
	// newer and older link the trees in the order of their last use.
	newer, older *srcTree
	// parent is the neighbour whose payload of this origin was the last
	// first receipt over the tree, and round its hop count: where the
	// tree reaches us from, which a payload we got off the tree
	// (Repaired) must not be pushed back to. "" while unknown.
	parent string
	round  uint32
	// relayed: a payload of this origin was pushed from here before.
	// The first one is also announced to the eager neighbours (forward).
	relayed bool
}

type seenEntry struct {
	round  uint32 // hops from the origin to us
	parent string // who sent it first ("" for our own, or off the tree)
	// offTree: we got it off the tree (Repaired), so the first payload
	// of it that comes over the tree is a tree path reaching us late,
	// not a second path: it prunes nothing.
	offTree bool
}

type cached struct {
	payload []byte
	origin  string
	// owed holds the grafts of the message that each neighbour may still
	// have answered (handleGraft): bit i of owed[k] is set while active[i]
	// has more than k of them left. An announcement of the message to it
	// (an IHave) grants graftAnswers; each answer takes one.
	owed [graftAnswers]uint64
}

// graftAnswers is how many times a neighbour that was announced a message
// gets its payload for a graft: one, and one more for a retry after that
// payload was lost on the way. The announcer keeps no time per
// neighbour and message, so it cannot tell a retry from a repeat; two
// answers gave the simulator under 5 % loss and 10 % churn the delivery
// of unlimited answers (200 peers, seeds 1 and 2: 1.00000 and 0.99990
// delivered, 100 and 98 of 100 messages complete, as before); one alone
// lost some (0.99979 and 0.99985, 96 and 97 complete), the grafts'
// retries to the same announcer unanswered.
const graftAnswers = 2

type missingMsg struct {
	id        MsgID
	origin    string
	deadline  time.Duration
	announced time.Duration // the first announcement (graft.go: lateness)
	from      []string      // announcers, at most MaxAnnouncers
	attempts  int
	seq       uint64 // tree.missingSeq when it was made
	index     int    // its position in tree.missingH
}

// missingHeap orders the missing entries by deadline, then by age (a
// total order: the heap's shape, like everything else, follows from
// the inputs alone).
type missingHeap []*missingMsg

func (h missingHeap) Len() int { return len(h) }
func (h missingHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].seq < h[j].seq
}
func (h missingHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *missingHeap) Push(x any) {
	m := x.(*missingMsg)
	m.index = len(*h)
	*h = append(*h, m)
}
func (h *missingHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return m
}

// fifo is a queue of IDs with amortised O(1) push and pop.
type fifo struct {
	q    []MsgID
	head int
}

func (f *fifo) push(id MsgID) { f.q = append(f.q, id) }
func (f *fifo) len() int      { return len(f.q) - f.head }
func (f *fifo) pop() MsgID {
	id := f.q[f.head]
	f.head++
	if f.head > 1024 && f.head*2 > len(f.q) {
		f.q = append(f.q[:0], f.q[f.head:]...)
		f.head = 0
	}
	return id
}

func (t *tree) init() {
	t.trees = make(map[string]*srcTree)
	t.seen = make(map[MsgID]seenEntry)
	t.cache = make(map[MsgID]cached)
	t.missing = make(map[MsgID]*missingMsg)
	t.lazyQ = make(map[string][]Announce)
}

// treeFor returns origin's tree, creating it (all links eager) if needed.
func (n *Node) treeFor(origin string) *srcTree {
	t := &n.tree
	st := t.trees[origin]
	switch {
	case st == t.newest && st != nil:
		return st
	case st != nil:
		t.unlinkTree(st)
	default:
		if len(t.trees) >= n.cfg.MaxTrees {
			old := t.oldest
			t.unlinkTree(old)
			delete(t.trees, old.origin)
		}
		st = &srcTree{origin: origin}
		t.trees[origin] = st
	}
	st.older, st.newer = t.newest, nil
	if t.newest != nil {
		t.newest.newer = st
	} else {
		t.oldest = st
	}
	t.newest = st
	return st
}

// unlinkTree takes st out of the order of use.
func (t *tree) unlinkTree(st *srcTree) {
	if st.newer != nil {
		st.newer.older = st.older
	} else {
		t.newest = st.older
	}
	if st.older != nil {
		st.older.newer = st.newer
	} else {
		t.oldest = st.newer
	}
	st.newer, st.older = nil, nil
}

func (n *Node) treeLinks(origin string, lazy bool) []string {
	var mask uint64
	if st := n.tree.trees[origin]; st != nil {
		mask = st.lazy
	}
	var out []string
	for i, p := range n.view.active {
		if (mask&(1<<i) != 0) == lazy {
			out = append(out, p)
		}
	}
	return out
}

// treeDown forgets neighbour p, in active view slot i (before it is
// removed from the view): the higher slots shift down in every mask.
func (n *Node) treeDown(i int, p string) {
	t := &n.tree
	low := uint64(1)<<i - 1
	for _, st := range t.trees {
		st.lazy = st.lazy&low | (st.lazy>>(i+1))<<i
	}
	delete(t.lazyQ, p)
	for id, c := range t.cache {
		if c.owed[0] != 0 {
			for k, o := range c.owed {
				c.owed[k] = o&low | (o>>(i+1))<<i
			}
			t.cache[id] = c
		}
	}
	for _, m := range t.missingH {
		if k := slices.Index(m.from, p); k >= 0 {
			m.from = slices.Delete(m.from, k, k+1)
		}
	}
}

func (n *Node) setLazy(origin, p string, lazy bool) {
	i := slices.Index(n.view.active, p)
	if i < 0 {
		return
	}
	st := n.treeFor(origin)
	if lazy {
		st.lazy |= 1 << i
	} else {
		st.lazy &^= 1 << i
	}
}

func (n *Node) makeEager(origin, p string) { n.setLazy(origin, p, false) }
func (n *Node) makeLazy(origin, p string)  { n.setLazy(origin, p, true) }

// isLazy reports whether neighbour p is lazy in origin's tree at our end.
func (n *Node) isLazy(origin, p string) bool {
	st := n.tree.trees[origin]
	if st == nil {
		return false
	}
	i := slices.Index(n.view.active, p)
	return i >= 0 && st.lazy&(1<<i) != 0
}

// Broadcast sends a new message of ours to the group. It reports false,
// and sends nothing, if the ID was seen already or the payload is larger
// than MaxPayload. The Node keeps payload (the caller must not change it).
func (n *Node) Broadcast(now time.Duration, id MsgID, payload []byte) bool {
	n.advance(now)
	if len(payload) > n.cfg.MaxPayload {
		return false
	}
	if _, ok := n.tree.seen[id]; ok {
		return false
	}
	n.markSeen(id, seenEntry{}, n.cfg.Self, payload)
	n.forward(n.cfg.Self, id, 0, payload, false, nil)
	return true
}

// Repaired tells the Node that this peer got origin's message id off the
// tree (anti-entropy, a pull for a gap, a direct push) and its driver
// has delivered it already: the Node does not deliver it again (no
// Delivery). It records it as received, which ends any wait and graft
// for it, and relays it as it would a payload first received over the
// tree: pushed to the eager neighbours of origin's tree, announced to
// the lazy ones — but never to our parent in that tree (it has the
// message: that is where the tree reaches us from, and a copy back would
// prune that link) nor to the neighbours that announced it to us. So
// the subtree below a lost push gets the message from the peer that
// repaired it, instead of each of its peers waiting for a repair of its
// own. A peer that has no parent in origin's tree (none of origin's
// payloads ever reached it over the tree) cannot tell its parent from
// its children, so it pushes nothing (a copy to its parent would prune
// that link); it announces the message to every neighbour but those
// that announced it to us, with an unknown hop count (unknownRound).
// That is the case of a flood that died out near its origin: the few
// peers it reached are repaired into the rest by anti-entropy one at a
// time, and a message with no successor is found only by the rounds'
// digests; announced, each repaired peer's neighbours that lack it graft
// it from there and relay it, and the flood goes on. A neighbour that
// has the message ignores the announcement. The payload is kept (the
// caller must not change it) to answer grafts.
//
// It reports whether the message was new to the Node: false, doing
// nothing, if it was received already, origin is this peer or not a
// valid ID, or the payload is larger than MaxPayload.
func (n *Node) Repaired(now time.Duration, origin string, id MsgID, payload []byte) bool {
	return n.offTree(now, origin, id, payload, true)
}

// Pushed is Repaired for a message its origin pushed to us itself (a
// group below the tree threshold pushes each message to every member, and
// a busy origin may push one): it is relayed below us in origin's tree
// as Repaired does, but without a parent there it is announced to nobody,
// since every member got it from the origin, and an announcement that
// overtook the origin's push to a member would only bring a graft and a
// second copy.
func (n *Node) Pushed(now time.Duration, origin string, id MsgID, payload []byte) bool {
	return n.offTree(now, origin, id, payload, false)
}

// offTree is Repaired (announce: without a parent, announce the message)
// and Pushed.
func (n *Node) offTree(now time.Duration, origin string, id MsgID, payload []byte, announce bool) bool {
	n.advance(now)
	if origin == "" || origin == n.cfg.Self || len(origin) > MaxPeerIDLen || len(payload) > n.cfg.MaxPayload {
		return false
	}
	t := &n.tree
	if _, ok := t.seen[id]; ok {
		return false
	}
	var skip []string
	if m := t.missing[id]; m != nil {
		skip = slices.Clone(m.from) // markSeen drops the entry
	}
	n.stats.Repaired++
	parent := n.Parent(origin)
	if parent == "" {
		n.markSeen(id, seenEntry{round: unknownRound, offTree: true}, origin, payload)
		if !announce {
			return true
		}
		for _, p := range n.view.active {
			if !slices.Contains(skip, p) && n.queueLazy(p, Announce{ID: id, Origin: origin, Round: unknownRound}) {
				n.stats.RepairAnnounced++
			}
		}
		if n.cfg.LazyInterval == 0 {
			n.flushLazy()
		}
		return true
	}
	st := n.treeFor(origin) // a use: keeps the tree from being forgotten first
	n.markSeen(id, seenEntry{round: st.round, offTree: true}, origin, payload)
	n.forward(origin, id, st.round, payload, true, nil, append(skip, parent)...)
	return true
}

// unknownRound is the hop count a peer gives a message it got off the
// tree without a path to its origin (Repaired without a parent): far,
// so that no tree optimisation prefers a path through it, and far from
// saturating, so that the hops of those that graft it from us still
// count up.
const unknownRound = 1 << 30

// markSeen records a first receipt as e, keeps its payload, and drops
// the missing entry it ends.
func (n *Node) markSeen(id MsgID, e seenEntry, origin string, payload []byte) {
	t := &n.tree
	if t.seenQ.len() >= n.cfg.MaxSeen {
		delete(t.seen, t.seenQ.pop())
		n.stats.SeenEvictions++
	}
	t.seen[id] = e
	t.seenQ.push(id)
	if n.cfg.MaxCache > 0 && len(payload) <= n.cfg.MaxCacheBytes {
		for t.cacheQ.len() > 0 && (t.cacheQ.len() >= n.cfg.MaxCache || t.cacheBytes+len(payload) > n.cfg.MaxCacheBytes) {
			old := t.cacheQ.pop()
			t.cacheBytes -= len(t.cache[old].payload)
			delete(t.cache, old)
		}
		t.cache[id] = cached{payload: payload, origin: origin}
		t.cacheQ.push(id)
		t.cacheBytes += len(payload)
	}
	if m := t.missing[id]; m != nil {
		delete(t.missing, id)
		heap.Remove(&t.missingH, m.index)
	}
}

// forward pushes a payload received at round (hops) to origin's eager
// neighbours and queues its announcement for the lazy ones, but never
// to the peers in skip (the one it came from; for a repaired message its
// parent and announcers), nor, without tree optimisation, to holders:
// lazy neighbours that announced it to us before it came (skipHolders).
func (n *Node) forward(origin string, id MsgID, round uint32, payload []byte, repaired bool, holders []string, skip ...string) {
	st := n.treeFor(origin)
	lazy, first := st.lazy, !st.relayed
	for i, p := range n.view.active {
		if slices.Contains(skip, p) {
			continue
		}
		if lazy&(1<<i) != 0 {
			if n.skipHolders() && slices.Contains(holders, p) {
				n.stats.LazySkipped++
				continue
			}
			n.queueLazy(p, Announce{ID: id, Origin: origin, Round: round})
			continue
		}
		n.send(p, Message{Kind: KindGossip, Peer: origin, ID: id, Round: round, Payload: payload, Repaired: repaired})
		st.relayed = true // only once pushed: an origin alone, or a leaf, has no flood yet
		if first && !slices.Contains(holders, p) {
			// A new tree is a flood: every link eager, none lazy, so
			// no announcement would follow a lost push, and under
			// loss a flood can die out near its origin (at 20 % loss
			// one origin's first message of 200 reached 10 to 56 of
			// 200 peers, the rest waiting for anti-entropy). Announced
			// as well, a lost push is grafted; the neighbour that got
			// it ignores the announcement. One that announced it to us
			// has it.
			if n.queueLazy(p, Announce{ID: id, Origin: origin, Round: round}) {
				n.stats.FirstAnnounced++
			}
		}
	}
	if n.cfg.LazyInterval == 0 {
		n.flushLazy()
	}
}

// queueLazy queues an announcement for p; false if p's queue was full
// (counted in LazyDrops).
func (n *Node) queueLazy(p string, a Announce) bool {
	t := &n.tree
	q := t.lazyQ[p]
	if len(q) >= n.cfg.MaxLazyQueue {
		n.stats.LazyDrops++
		return false
	}
	t.lazyQ[p] = append(q, a)
	if t.nextFlush == 0 {
		t.nextFlush = n.now + n.cfg.LazyInterval
	}
	return true
}

// skipHolders reports whether announcements go only to lazy neighbours
// that may lack the message: not to one that announced it to us. Such an
// announcement cannot lead to a graft (the neighbour holds the message);
// what it still tells is the length of our path from the origin, which
// only tree optimisation uses (a neighbour whose path is longer by
// OptimizeThreshold hops grafts us). So with optimisation on (the
// simulator's default) every lazy neighbour hears of every message, as
// the paper has it, and without it (chat) the holders are skipped: in
// the simulator with optimisation on, skipping them left seed 7 of
// TestConvergenceManySeeds under 10 % churn with p99 hops 11.
func (n *Node) skipHolders() bool { return n.cfg.OptimizeThreshold == 0 }

// unqueueLazy drops, from p's lazy queue, the announcements of the IDs in
// have: p announced them to us, so it holds them, and our announcement
// would tell it nothing. Two lazy ends of a link both hold most messages
// (each got its copy over its own tree path), and whichever flushes
// first spares the other its announcement: this halves what lazy links
// cost when their ends flush at different times, as real peers do.
// Without effect when announcements go to holders too (skipHolders).
func (n *Node) unqueueLazy(p string, have []MsgID) {
	q := n.tree.lazyQ[p]
	if len(q) == 0 || len(have) == 0 || !n.skipHolders() {
		return
	}
	// A set when the lists are long: an IHave carries up to MaxIHave IDs
	// and a queue up to MaxLazyQueue, and a neighbour chooses the IHave.
	var set map[MsgID]struct{}
	if len(have) > 8 {
		set = make(map[MsgID]struct{}, len(have))
		for _, id := range have {
			set[id] = struct{}{}
		}
	}
	kept := q[:0]
	for _, a := range q {
		var ok bool
		if set != nil {
			_, ok = set[a.ID]
		} else {
			ok = slices.Contains(have, a.ID)
		}
		if ok {
			n.stats.LazySkipped++
			continue
		}
		kept = append(kept, a)
	}
	if len(kept) == 0 {
		delete(n.tree.lazyQ, p)
		return
	}
	n.tree.lazyQ[p] = kept
}

// flushLazy sends every queued announcement, in neighbour order (the
// active view's order: deterministic, unlike a map's), and records that
// each neighbour is owed the payloads it was told of (cached.owed).
func (n *Node) flushLazy() {
	t := &n.tree
	t.nextFlush = 0
	for i, p := range n.view.active {
		q := t.lazyQ[p]
		for _, a := range q {
			if c, ok := t.cache[a.ID]; ok {
				for k := range c.owed {
					c.owed[k] |= 1 << i
				}
				t.cache[a.ID] = c
			}
		}
		for len(q) > 0 {
			k := min(len(q), n.cfg.MaxIHave)
			n.send(p, Message{Kind: KindIHave, Announces: slices.Clone(q[:k])})
			q = q[k:]
		}
	}
	clear(t.lazyQ) // also the queues of peers that left the view meanwhile
}

func (n *Node) handleGossip(from, origin string, id MsgID, round uint32, payload []byte, repaired bool) {
	if round < ^uint32(0) {
		round++ // our hops; saturating, the sender chose round
	}
	if s, ok := n.tree.seen[id]; ok {
		n.stats.Duplicates++
		if s.offTree {
			// Our copy came off the tree: this is the tree's own path
			// (our parent's push, or a graft's answer) arriving after
			// the repair, not a redundant one. Pruning it would cut us,
			// and the subtree we relay to, off the origin's tree. A
			// second tree copy prunes as usual.
			n.tree.seen[id] = seenEntry{round: round, parent: from}
			if n.isActive(from) {
				st := n.treeFor(origin)
				st.parent, st.round = from, round
			}
			return
		}
		if n.isActive(from) {
			n.makeLazy(origin, from)
			n.send(from, Message{Kind: KindPrune, Peer: origin})
		}
		return
	}
	var holders []string
	if m := n.tree.missing[id]; m != nil { // read before markSeen ends the entry
		holders = m.from // the announcers
		switch {
		case m.attempts > 0:
			// We grafted it: every node below us gets it late by our
			// timer, which says nothing of their links.
			repaired = true
		case !repaired:
			n.noteLate(n.now - m.announced) // came over the tree after an announcement, ungrafted
		}
	}
	n.markSeen(id, seenEntry{round: round, parent: from}, origin, payload)
	n.stats.Delivered++
	n.out.Deliveries = append(n.out.Deliveries, Delivery{ID: id, Payload: payload, From: from, Hops: round})
	if n.isActive(from) {
		st := n.treeFor(origin)
		st.parent, st.round = from, round
	}
	if n.isLazy(origin, from) {
		// We had pruned from, and it pushed this before our Prune
		// reached it: it is lazy for us at its end now. Our parent
		// becomes from at our end only, and if our old parent's copy
		// comes second we prune that one too, leaving no eager link
		// into us in origin's tree (every later message would wait for
		// a graft; seen with bursts of messages from one origin over
		// real links). Tell from to keep pushing: a Graft without IDs.
		n.send(from, Message{Kind: KindGraft, Peer: origin})
	}
	n.makeEager(origin, from)
	n.forward(origin, id, round, payload, repaired, holders, from)
}

func (n *Node) handleIHave(from string, anns []Announce) {
	if !n.isActive(from) {
		return
	}
	t := &n.tree
	var held []MsgID // announced IDs we hold: from needs no announcement of them
	unqueue := len(t.lazyQ[from]) > 0 && n.skipHolders()
	for _, a := range anns {
		if s, ok := t.seen[a.ID]; ok {
			if unqueue {
				held = append(held, a.ID)
			}
			n.maybeOptimize(from, a, s)
			continue
		}
		m := t.missing[a.ID]
		if m == nil {
			if len(t.missing) >= n.cfg.MaxMissing {
				n.stats.MissingDrops++
				continue
			}
			m = &missingMsg{id: a.ID, origin: a.Origin, deadline: n.now + n.graftTimeout(), announced: n.now, seq: t.missingSeq}
			t.missingSeq++
			t.missing[a.ID] = m
			heap.Push(&t.missingH, m)
		}
		if len(m.from) < n.cfg.MaxAnnouncers && !slices.Contains(m.from, from) {
			m.from = append(m.from, from)
		}
	}
	n.unqueueLazy(from, held)
}

// maybeOptimize: an announcer whose path to the origin is shorter than
// ours by OptimizeThreshold hops or more becomes our parent in the tree
// (graft it, prune the old one), so paths stay short as the tree heals.
func (n *Node) maybeOptimize(from string, a Announce, s seenEntry) {
	th := n.cfg.OptimizeThreshold
	if th == 0 || s.parent == "" || s.parent == from || !n.isActive(s.parent) {
		return
	}
	if uint64(a.Round)+1+uint64(th) > uint64(s.round) {
		return
	}
	n.makeEager(a.Origin, from)
	n.send(from, Message{Kind: KindGraft, Peer: a.Origin})
	n.makeLazy(a.Origin, s.parent)
	n.send(s.parent, Message{Kind: KindPrune, Peer: a.Origin})
	// Once per message: the next announcement compares with the new path.
	n.tree.seen[a.ID] = seenEntry{round: a.Round + 1, parent: from}
}

// handleGraft makes from eager in origin's tree and sends it the payloads
// it names that it is owed: those we announced to it, each at most
// graftAnswers times (cached.owed). A Graft is a few bytes from a neighbour
// and may name MaxIHave IDs, each a payload of up to MaxPayload from the
// cache: answered in full every time, one small frame repeated would cost
// the cache's bytes in sends each time. An honest neighbour grafts only
// its announcers (tickTree takes them from the missing entry, which only
// an IHave fills) and only what it still lacks, so it loses nothing: a
// payload lost on the way to it comes again from another announcer's
// graft, or from anti-entropy above the overlay, as a payload is when the
// cache has forgotten it. The IDs refused are counted (GraftRefused).
func (n *Node) handleGraft(from, origin string, ids []MsgID) {
	i := slices.Index(n.view.active, from)
	if i < 0 {
		return
	}
	n.makeEager(origin, from)
	bit := uint64(1) << i
	for _, id := range ids {
		c, ok := n.tree.cache[id]
		if !ok {
			continue
		}
		if c.owed[0]&bit == 0 {
			n.stats.GraftRefused++
			continue
		}
		for k := len(c.owed) - 1; k >= 0; k-- {
			if c.owed[k]&bit != 0 {
				c.owed[k] &^= bit
				break
			}
		}
		n.tree.cache[id] = c
		n.send(from, Message{Kind: KindGossip, Peer: c.origin, ID: id, Round: n.tree.seen[id].round, Payload: c.payload, Repaired: true})
	}
}

func (t *tree) nextDeadline() (time.Duration, bool) {
	var d time.Duration
	ok := false
	if t.nextFlush != 0 {
		d, ok = t.nextFlush, true
	}
	if len(t.missingH) > 0 && (!ok || t.missingH[0].deadline < d) {
		d, ok = t.missingH[0].deadline, true
	}
	return d, ok
}

// tickTree sends due announcements and grafts: for each missing message
// whose timer expired, the next announcer is grafted (one Graft per
// announcer and origin, with every ID it is asked for).
func (n *Node) tickTree() {
	t := &n.tree
	if t.nextFlush != 0 && n.now >= t.nextFlush {
		n.flushLazy()
	}
	type key struct{ peer, origin string }
	var grafts map[key][]MsgID
	var order []key
	due := t.due[:0]
	for len(t.missingH) > 0 && t.missingH[0].deadline <= n.now {
		due = append(due, heap.Pop(&t.missingH).(*missingMsg))
	}
	// Oldest first, whatever their deadlines: the order of the grafts,
	// and which IDs one takes when there are more than MaxIHave, follow
	// from it.
	slices.SortFunc(due, func(a, b *missingMsg) int { return cmp.Compare(a.seq, b.seq) })
	for _, m := range due {
		if len(m.from) == 0 || m.attempts >= n.cfg.MaxGraftAttempts {
			// Nobody left to ask: anti-entropy will bring it.
			delete(t.missing, m.id)
			n.stats.GraftGiveUps++
			continue
		}
		k := key{m.from[m.attempts%len(m.from)], m.origin}
		m.attempts++
		m.deadline = n.now + n.graftRetry()
		if grafts == nil {
			grafts = make(map[key][]MsgID)
		}
		if _, ok := grafts[k]; !ok {
			order = append(order, k)
		}
		if len(grafts[k]) < n.cfg.MaxIHave {
			grafts[k] = append(grafts[k], m.id)
		}
		heap.Push(&t.missingH, m)
	}
	clear(due) // no pointers kept to entries that may go
	t.due = due[:0]
	for _, k := range order {
		n.makeEager(k.origin, k.peer)
		n.stats.GraftsSent++
		n.send(k.peer, Message{Kind: KindGraft, Peer: k.origin, IDs: grafts[k]})
	}
}
