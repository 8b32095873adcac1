package chat

// Held-back messages on disk. Every received message is stored before the
// ordering sees it, and one whose predecessors are missing waits in the
// log: the ordering bounds what it holds in memory (Config.MaxHeld), but
// without a bound here a peer could fill the disk with messages that can
// never be delivered (seqs 2…6001 of an origin whose seq 1 never comes).
// A received message more than Config.MaxHeldAhead beyond its origin's
// contiguous seqs in the log is not stored: it is counted in
// Stats.HeldDiskDrops and dropped, and anti-entropy fetches it again once
// the gap before it is filled (it asks from the contiguous seq on, in
// order). So the log holds at most MaxHeldAhead held-back messages per
// room and origin.
//
// The contiguous seq comes from msglog Contiguous (a bbolt read and a walk
// of its memtable); aheadHints remembers the last value per room and
// origin, so that a message within MaxHeldAhead of it costs one map
// lookup. A hint is a lower bound (contiguous seqs only grow) unless the
// room's log is deleted and rejoined, when it errs towards storing, never
// towards dropping.

import (
	"sync"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// maxAheadHints bounds the hint map; beyond it the map starts again empty
// (it is only a cache).
const maxAheadHints = 1 << 16

type aheadKey struct{ room, origin string }

// aheadHints caches contiguous seqs per room and origin. The zero value
// is ready to use; it is safe for concurrent use.
type aheadHints struct {
	mu sync.Mutex
	m  map[aheadKey]uint64
}

func (h *aheadHints) get(k aheadKey) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[k]
}

func (h *aheadHints) raise(k aheadKey, v uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxAheadHints {
		h.m = make(map[aheadKey]uint64)
	}
	h.m[k] = max(h.m[k], v)
}

// aheadCheck applies the bound to the envelopes of one receive call, in
// arrival order: those of a batch are checked before any is stored, so
// the ones it accepts count as stored for the ones after them (a repair
// or a backlog of 1,024 in order is not cut off at MaxHeldAhead).
type aheadCheck struct {
	n     *Node
	batch bool
	taken map[aheadKey]map[uint64]bool // accepted in this call (batches only)
}

// aheadCheck returns the check for one receive call of n envelopes.
func (n *Node) aheadCheck(count int) *aheadCheck { return &aheadCheck{n: n, batch: count > 1} }

// drop reports whether env (verified, for a joined room) is more than
// MaxHeldAhead beyond its origin's contiguous seqs (counting the ones
// accepted before it in this call), and otherwise notes it as accepted. A
// log error lets it through: the bound must not lose messages on a read
// failure that the append would report anyway.
func (a *aheadCheck) drop(env *chatpb.Envelope) bool {
	w := uint64(a.n.cfg.MaxHeldAhead)
	k := aheadKey{env.Room, env.Origin}
	h := a.n.ahead.get(k)
	switch {
	case env.Seq <= h+1 || env.Seq-h <= w: // next in order, a duplicate, or within the bound
	default:
		c, err := a.n.log.Contiguous(a.n.ctx, env.Room, env.Origin)
		if err != nil {
			break
		}
		h = max(h, a.extend(k, c))
		a.n.ahead.raise(k, h)
		if env.Seq > h+1 && env.Seq-h > w {
			return true
		}
	}
	if a.batch {
		if a.taken == nil {
			a.taken = make(map[aheadKey]map[uint64]bool)
		}
		if a.taken[k] == nil {
			a.taken[k] = make(map[uint64]bool)
		}
		a.taken[k][env.Seq] = true
	}
	if env.Seq == h+1 {
		// Stored next (or the append fails, and the hint errs towards
		// storing): the contiguous seqs grow.
		a.n.ahead.raise(k, a.extend(k, env.Seq))
	}
	return false
}

// extend returns c moved over the seqs accepted after it in this call.
func (a *aheadCheck) extend(k aheadKey, c uint64) uint64 {
	for a.taken[k][c+1] {
		c++
	}
	return c
}
