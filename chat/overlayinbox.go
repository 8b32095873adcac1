package chat

// The overlay driver's inbox: the inputs waiting for its goroutine, in
// three bounded FIFOs (view frames and probes, the peers' tree frames,
// our own broadcasts) whose slices grow with what is queued and are let
// go once drained. Buffered channels of the same bounds allocated every
// slot up front, ~190 B each: 1 MB per peer for 6,144 inputs that are
// nearly always absent, the largest item of a 100-peer process's heap
// (docs/BENCHMARKS.md, "N=200 start and memory per connection").

import (
	"math/rand/v2"
	"sync"
)

// The inbox's queues, in the order a pass drains them.
const (
	inboxView = iota // view frames and probes (overlay.Kind.View, isProbe)
	inboxTree        // the peers' tree frames
	inboxOwn         // our own broadcasts
	inboxQueues
)

// keptInboxCap is the capacity a drained queue keeps for its next inputs;
// a larger one is let go.
const keptInboxCap = 16

// fifo is a bounded FIFO whose slice grows with what is queued, up to
// max, and shrinks as it drains. Not safe for concurrent use.
type fifo[T any] struct {
	items []T // items[head:] are queued
	head  int
	max   int // items queued at most
}

// len returns the number of queued items.
func (q *fifo[T]) len() int { return len(q.items) - q.head }

// push queues v; false when max items are queued.
func (q *fifo[T]) push(v T) bool {
	n := q.len()
	if n >= q.max {
		return false
	}
	if len(q.items) == cap(q.items) {
		if q.head > 0 && q.head >= n {
			// At least half of the slice is already taken: slide the
			// queued items down rather than grow (a queue never drained
			// would otherwise grow with every item ever queued).
			copy(q.items, q.items[q.head:])
			clear(q.items[n:])
			q.items, q.head = q.items[:n], 0
		} else {
			q.resize(min(max(2*n, 8), q.max))
		}
	}
	q.items = append(q.items, v)
	return true
}

// pop returns the oldest queued item; false when there is none.
func (q *fifo[T]) pop() (T, bool) {
	var zero T
	if q.head == len(q.items) {
		return zero, false
	}
	v := q.items[q.head]
	q.items[q.head] = zero // the caller's now: do not pin what it holds
	q.head++
	n := q.len()
	switch {
	case n == 0 && cap(q.items) > keptInboxCap:
		q.items, q.head = nil, 0
	case n == 0:
		q.items, q.head = q.items[:0], 0
	case cap(q.items) > keptInboxCap && 4*n <= cap(q.items):
		// Drained to a quarter after a burst: a queue that never empties
		// (a steady trickle) still lets most of the burst's slice go.
		q.resize(max(2*n, keptInboxCap))
	}
	return v, true
}

// resize moves the queued items to a new slice of capacity c (at least
// their number).
func (q *fifo[T]) resize(c int) {
	items := make([]T, q.len(), c)
	copy(items, q.items[q.head:])
	q.items, q.head = items, 0
}

// overlayInbox holds the driver's waiting inputs. push is safe for
// concurrent use (the connections' goroutines, senders); the driver's
// goroutine takes them (next) when ready signals.
type overlayInbox struct {
	mu sync.Mutex
	q  [inboxQueues]fifo[overlayInput]
	// ready (capacity 1) holds a token while an input may be waiting;
	// read by the driver's run loop only.
	ready chan struct{}
}

func newOverlayInbox(view, tree, own int) *overlayInbox {
	b := &overlayInbox{ready: make(chan struct{}, 1)}
	b.q[inboxView].max, b.q[inboxTree].max, b.q[inboxOwn].max = view, tree, own
	return b
}

// push queues in on queue k and wakes the driver; false when that queue
// is full. It never blocks.
func (b *overlayInbox) push(k int, in overlayInput) bool {
	b.mu.Lock()
	ok := b.q[k].push(in)
	b.mu.Unlock()
	if ok {
		b.signal()
	}
	return ok
}

// signal leaves a token in ready, without blocking.
func (b *overlayInbox) signal() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// next returns the next input of a pass. The first of a pass comes from
// a queue picked at random among those with inputs, so that no queue
// waits for ever behind another; the rest of the pass takes view frames
// first, then the tree's, then our broadcasts. false when all are empty.
func (b *overlayInbox) next(first bool) (overlayInput, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if first {
		var ks [inboxQueues]int
		n := 0
		for k := range b.q {
			if b.q[k].len() > 0 {
				ks[n] = k
				n++
			}
		}
		if n == 0 {
			return overlayInput{}, false
		}
		return b.q[ks[rand.IntN(n)]].pop()
	}
	for k := range b.q {
		if in, ok := b.q[k].pop(); ok {
			return in, true
		}
	}
	return overlayInput{}, false
}

// lens returns the number of inputs waiting on each queue.
func (b *overlayInbox) lens() [inboxQueues]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n [inboxQueues]int
	for k := range b.q {
		n[k] = b.q[k].len()
	}
	return n
}

// caps returns the capacity each queue's slice holds now.
func (b *overlayInbox) caps() [inboxQueues]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	var c [inboxQueues]int
	for k := range b.q {
		c[k] = cap(b.q[k].items)
	}
	return c
}
