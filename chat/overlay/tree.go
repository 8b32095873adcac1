package overlay

// Plumtree: every neighbour starts eager. A payload received for the
// first time is delivered, pushed to the eager neighbours but the sender,
// and announced (its ID, in batched IHAVEs) to the lazy ones; a payload
// received again means two tree paths reached us, so the link it came on
// turns lazy at both ends (PRUNE). After a few broadcasts the eager links
// form a spanning tree and each peer receives each payload once. A peer
// that hears an IHAVE for a message it lacks waits GraftTimeout for the
// payload (the tree is usually faster than the batched announcement),
// then grafts an announcer: the link turns eager at both ends and the
// announcer sends the payload; it tries the next announcer every
// GraftRetry, at most MaxGraftAttempts times. A failed neighbour simply
// leaves both sets; the subtree behind it is repaired by those grafts.
//
// Received IDs (duplicate detection), payloads (to answer grafts),
// missing IDs and lazy queues are bounded tables; when one is full the
// oldest entry goes (received IDs, payloads) or the new one is refused
// (missing, lazy): anti-entropy above the overlay repairs what is lost.

import (
	"slices"
	"time"
)

type tree struct {
	eager, lazy []string

	seen  map[MsgID]seenEntry
	seenQ fifo // insertion order, to forget the oldest beyond MaxSeen

	cache      map[MsgID][]byte
	cacheQ     fifo
	cacheBytes int

	missing  map[MsgID]*missingMsg
	missingQ []MsgID // insertion order: deterministic timer scans

	lazyQ     map[string][]Announce
	nextFlush time.Duration // 0: nothing queued
}

type seenEntry struct {
	round  uint32 // hops from the origin to us
	parent string // who sent it first ("" for our own)
}

type missingMsg struct {
	deadline   time.Duration
	announcers []Announce // Round; the announcer in from
	from       []string
	attempts   int
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
	t.seen = make(map[MsgID]seenEntry)
	t.cache = make(map[MsgID][]byte)
	t.missing = make(map[MsgID]*missingMsg)
	t.lazyQ = make(map[string][]Announce)
}

func (n *Node) treeUp(p string) {
	t := &n.tree
	if i := slices.Index(t.lazy, p); i >= 0 {
		t.lazy = slices.Delete(t.lazy, i, i+1)
	}
	if !slices.Contains(t.eager, p) {
		t.eager = append(t.eager, p)
	}
}

func (n *Node) treeDown(p string) {
	t := &n.tree
	if i := slices.Index(t.eager, p); i >= 0 {
		t.eager = slices.Delete(t.eager, i, i+1)
	}
	if i := slices.Index(t.lazy, p); i >= 0 {
		t.lazy = slices.Delete(t.lazy, i, i+1)
	}
	delete(t.lazyQ, p)
	for _, id := range t.missingQ {
		m := t.missing[id]
		if i := slices.Index(m.from, p); i >= 0 {
			m.from = slices.Delete(m.from, i, i+1)
			m.announcers = slices.Delete(m.announcers, i, i+1)
		}
	}
}

func (n *Node) makeEager(p string) {
	if !n.isActive(p) {
		return
	}
	n.treeUp(p)
}

func (n *Node) makeLazy(p string) {
	if !n.isActive(p) {
		return
	}
	t := &n.tree
	if i := slices.Index(t.eager, p); i >= 0 {
		t.eager = slices.Delete(t.eager, i, i+1)
	}
	if !slices.Contains(t.lazy, p) {
		t.lazy = append(t.lazy, p)
	}
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
	n.markSeen(id, 0, "", payload)
	n.forward(id, 0, payload, "")
	return true
}

// markSeen records a first receipt, and drops the missing entry it ends.
func (n *Node) markSeen(id MsgID, round uint32, parent string, payload []byte) {
	t := &n.tree
	if t.seenQ.len() >= n.cfg.MaxSeen {
		delete(t.seen, t.seenQ.pop())
		n.stats.SeenEvictions++
	}
	t.seen[id] = seenEntry{round: round, parent: parent}
	t.seenQ.push(id)
	if n.cfg.MaxCache > 0 && len(payload) <= n.cfg.MaxCacheBytes {
		for t.cacheQ.len() > 0 && (t.cacheQ.len() >= n.cfg.MaxCache || t.cacheBytes+len(payload) > n.cfg.MaxCacheBytes) {
			old := t.cacheQ.pop()
			t.cacheBytes -= len(t.cache[old])
			delete(t.cache, old)
		}
		t.cache[id] = payload
		t.cacheQ.push(id)
		t.cacheBytes += len(payload)
	}
	if _, ok := t.missing[id]; ok {
		delete(t.missing, id)
		if i := slices.Index(t.missingQ, id); i >= 0 {
			t.missingQ = slices.Delete(t.missingQ, i, i+1)
		}
	}
}

// forward pushes a payload received at round (hops) to the eager
// neighbours and queues its announcement for the lazy ones, but never
// back to from.
func (n *Node) forward(id MsgID, round uint32, payload []byte, from string) {
	for _, p := range n.tree.eager {
		if p != from {
			n.send(p, Message{Kind: KindGossip, ID: id, Round: round, Payload: payload})
		}
	}
	for _, p := range n.tree.lazy {
		if p != from {
			n.queueLazy(p, Announce{ID: id, Round: round})
		}
	}
	if n.cfg.LazyInterval == 0 {
		n.flushLazy()
	}
}

func (n *Node) queueLazy(p string, a Announce) {
	t := &n.tree
	q := t.lazyQ[p]
	if len(q) >= n.cfg.MaxLazyQueue {
		n.stats.LazyDrops++
		return
	}
	t.lazyQ[p] = append(q, a)
	if t.nextFlush == 0 {
		t.nextFlush = n.now + n.cfg.LazyInterval
	}
}

// flushLazy sends every queued announcement, in neighbour order (the
// active view's order: deterministic, unlike a map's).
func (n *Node) flushLazy() {
	t := &n.tree
	t.nextFlush = 0
	for _, p := range n.view.active {
		q := t.lazyQ[p]
		for len(q) > 0 {
			k := min(len(q), n.cfg.MaxIHave)
			n.send(p, Message{Kind: KindIHave, Announces: slices.Clone(q[:k])})
			q = q[k:]
		}
		delete(t.lazyQ, p)
	}
	clear(t.lazyQ) // queues of peers that left the view meanwhile
}

func (n *Node) handleGossip(from string, id MsgID, round uint32, payload []byte) {
	if round < ^uint32(0) {
		round++ // our hops; saturating, the sender chose round
	}
	if _, ok := n.tree.seen[id]; ok {
		n.stats.Duplicates++
		if n.isActive(from) {
			n.makeLazy(from)
			n.send(from, Message{Kind: KindPrune})
		}
		return
	}
	n.markSeen(id, round, from, payload)
	n.stats.Delivered++
	n.out.Deliveries = append(n.out.Deliveries, Delivery{ID: id, Payload: payload, From: from, Hops: round})
	n.makeEager(from)
	n.forward(id, round, payload, from)
}

func (n *Node) handleIHave(from string, anns []Announce) {
	if !n.isActive(from) {
		return
	}
	t := &n.tree
	for _, a := range anns {
		if s, ok := t.seen[a.ID]; ok {
			n.maybeOptimize(from, a, s)
			continue
		}
		m := t.missing[a.ID]
		if m == nil {
			if len(t.missing) >= n.cfg.MaxMissing {
				n.stats.MissingDrops++
				continue
			}
			m = &missingMsg{deadline: n.now + n.cfg.GraftTimeout}
			t.missing[a.ID] = m
			t.missingQ = append(t.missingQ, a.ID)
		}
		if len(m.from) < n.cfg.MaxAnnouncers && !slices.Contains(m.from, from) {
			m.from = append(m.from, from)
			m.announcers = append(m.announcers, a)
		}
	}
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
	n.makeEager(from)
	n.send(from, Message{Kind: KindGraft})
	n.makeLazy(s.parent)
	n.send(s.parent, Message{Kind: KindPrune})
	// Once per message: the next announcement compares with the new path.
	n.tree.seen[a.ID] = seenEntry{round: a.Round + 1, parent: from}
}

func (n *Node) handleGraft(from string, ids []MsgID) {
	if !n.isActive(from) {
		return
	}
	n.makeEager(from)
	for _, id := range ids {
		payload, ok := n.tree.cache[id]
		if !ok {
			continue
		}
		n.send(from, Message{Kind: KindGossip, ID: id, Round: n.tree.seen[id].round, Payload: payload})
	}
}

func (n *Node) handlePrune(from string) {
	n.makeLazy(from)
}

func (t *tree) nextDeadline() (time.Duration, bool) {
	var d time.Duration
	ok := false
	if t.nextFlush != 0 {
		d, ok = t.nextFlush, true
	}
	for _, id := range t.missingQ {
		if m := t.missing[id]; !ok || m.deadline < d {
			d, ok = m.deadline, true
		}
	}
	return d, ok
}

// tickTree sends due announcements and grafts: for each missing message
// whose timer expired, the next announcer is grafted (one Graft per
// announcer, with every ID it is asked for).
func (n *Node) tickTree() {
	t := &n.tree
	if t.nextFlush != 0 && n.now >= t.nextFlush {
		n.flushLazy()
	}
	var grafts map[string][]MsgID
	var order []string
	kept := t.missingQ[:0]
	for _, id := range t.missingQ {
		m := t.missing[id]
		if m.deadline > n.now {
			kept = append(kept, id)
			continue
		}
		if len(m.from) == 0 || m.attempts >= n.cfg.MaxGraftAttempts {
			// Nobody left to ask: anti-entropy will bring it.
			delete(t.missing, id)
			n.stats.GraftGiveUps++
			continue
		}
		k := m.attempts % len(m.from)
		p := m.from[k]
		m.attempts++
		m.deadline = n.now + n.cfg.GraftRetry
		if grafts == nil {
			grafts = make(map[string][]MsgID)
		}
		if _, ok := grafts[p]; !ok {
			order = append(order, p)
		}
		if len(grafts[p]) < n.cfg.MaxIHave {
			grafts[p] = append(grafts[p], id)
		}
		kept = append(kept, id)
	}
	t.missingQ = kept
	for _, p := range order {
		n.makeEager(p)
		n.stats.GraftsSent++
		n.send(p, Message{Kind: KindGraft, IDs: grafts[p]})
	}
}
