package chat

// dedup remembers which (origin, seq) message IDs were delivered, so no
// message is shown twice. Per origin it keeps a floor (every seq up to it
// was seen) and the set of seen seqs above the floor; the floor advances as
// gaps fill, so in-order traffic costs one integer per origin. Memory is
// bounded: at most maxDedupAbove seqs above the floor per origin (beyond
// that the floor jumps forward, and late messages below it count as
// duplicates) and at most maxDedupOrigins origins (the least recently
// active origin is forgotten). Issue 4's persistent log replaces this as
// the source of truth; the bounds only matter under attack.

import "sync"

const (
	maxDedupAbove   = 4096
	maxDedupOrigins = 16384
)

type originSeen struct {
	floor uint64
	above map[uint64]struct{}
	touch uint64 // logical time of the last add, for eviction
}

// dedup is safe for concurrent use.
type dedup struct {
	mu      sync.Mutex
	origins map[string]*originSeen
	clock   uint64
}

func newDedup() *dedup { return &dedup{origins: make(map[string]*originSeen)} }

// Add records id and reports whether it is new.
func (d *dedup) Add(origin string, seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clock++
	o := d.origins[origin]
	if o == nil {
		if len(d.origins) >= maxDedupOrigins {
			d.evictLocked()
		}
		o = &originSeen{}
		d.origins[origin] = o
	}
	o.touch = d.clock
	if seq <= o.floor {
		return false
	}
	if _, ok := o.above[seq]; ok {
		return false
	}
	if seq == o.floor+1 {
		o.floor = seq
	} else {
		if o.above == nil {
			o.above = make(map[uint64]struct{})
		}
		o.above[seq] = struct{}{}
		if len(o.above) > maxDedupAbove {
			// Jump the floor to the smallest seq held: the gap below it is
			// given up (treated as seen).
			min := seq
			for s := range o.above {
				if s < min {
					min = s
				}
			}
			o.floor = min
			delete(o.above, min)
		}
	}
	for {
		if _, ok := o.above[o.floor+1]; !ok {
			break
		}
		o.floor++
		delete(o.above, o.floor)
	}
	return true
}

// Seen reports whether id was recorded.
func (d *dedup) Seen(origin string, seq uint64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.origins[origin]
	if o == nil {
		return false
	}
	if seq <= o.floor {
		return true
	}
	_, ok := o.above[seq]
	return ok
}

// evictLocked forgets the least recently active origin. Caller holds d.mu.
func (d *dedup) evictLocked() {
	var oldest string
	var t uint64 = ^uint64(0)
	for k, o := range d.origins {
		if o.touch < t {
			oldest, t = k, o.touch
		}
	}
	delete(d.origins, oldest)
}
