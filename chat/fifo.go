package chat

// Bounded queues whose memory follows what they hold. A buffered channel
// allocates its whole bound up front and keeps it for the node's life; a
// hundred peers in one process each holding a few of them for bursts
// they rarely see was over 1 MB per peer (TestIdleNodeHeap). These grow
// with what waits and let it go once drained.

import "sync"

// keptInboxCap is the capacity a drained queue keeps for its next items;
// a larger one is let go.
const keptInboxCap = 16

// fifo is a bounded FIFO, a ring whose slice grows with what is queued,
// up to max, and shrinks as it drains: every push and pop is O(1)
// amortized, also while the queue stays full under a flood (a slice that
// slid its items down on each push copied the whole queue per input).
// Not safe for concurrent use.
type fifo[T any] struct {
	buf  []T // buf[head], buf[(head+1)%len(buf)], ...: n items
	head int
	n    int
	max  int // items queued at most
}

// len returns the number of queued items.
func (q *fifo[T]) len() int { return q.n }

// push queues v; false when max items are queued.
func (q *fifo[T]) push(v T) bool {
	if q.n >= q.max {
		return false
	}
	if q.n == len(q.buf) {
		q.resize(min(max(2*q.n, 8), q.max))
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	return true
}

// pop returns the oldest queued item; false when there is none.
func (q *fifo[T]) pop() (T, bool) {
	var zero T
	if q.n == 0 {
		return zero, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = zero // the caller's now: do not pin what it holds
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	switch {
	case q.n == 0 && len(q.buf) > keptInboxCap:
		q.buf, q.head = nil, 0
	case q.n == 0:
		q.head = 0
	case len(q.buf) > keptInboxCap && 4*q.n <= len(q.buf):
		// Drained to a quarter after a burst: a queue that never empties
		// (a steady trickle) still lets most of the burst's slice go.
		q.resize(max(2*q.n, keptInboxCap))
	}
	return v, true
}

// resize moves the queued items, in order, to a new slice of length c
// (at least their number).
func (q *fifo[T]) resize(c int) {
	buf := make([]T, c)
	k := copy(buf, q.buf[q.head:min(q.head+q.n, len(q.buf))])
	copy(buf[k:q.n], q.buf)
	q.buf, q.head = buf, 0
}

// signalQueue is a bounded fifo safe for concurrent use, for one reader:
// push never blocks, and ready holds a token while items may be waiting
// (the reader selects on it, then pops).
type signalQueue[T any] struct {
	mu     sync.Mutex
	q      fifo[T]
	closed bool          // closeIfEmpty, close: push refuses from now on
	ready  chan struct{} // capacity 1
}

func newSignalQueue[T any](max int) *signalQueue[T] {
	return &signalQueue[T]{q: fifo[T]{max: max}, ready: make(chan struct{}, 1)}
}

// pushResult is what push did with an item: queued, or why not. The
// reason is decided under the queue's lock, with the refusal: a caller
// that counts drops (a full queue: the reader is behind) apart from
// pushes to a reader that went away (closed) need not lock again to ask.
type pushResult uint8

const (
	pushed     pushResult = iota
	pushFull              // max items queued
	pushClosed            // closeIfEmpty or close closed the queue (full or not)
)

// push queues v and signals ready, or says why it did not.
func (s *signalQueue[T]) push(v T) pushResult {
	s.mu.Lock()
	r := pushed
	switch {
	case s.closed:
		r = pushClosed
	case !s.q.push(v):
		r = pushFull
	}
	s.mu.Unlock()
	if r == pushed {
		token(s.ready)
	}
	return r
}

// pop returns the oldest queued item; false when there is none.
func (s *signalQueue[T]) pop() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.pop()
}

// closeIfEmpty closes the queue, so that push refuses from now on, if
// nothing is queued, and reports whether it is closed: a reader that is
// about to go away decides it and a pusher's last item cannot both
// happen, as they are decided under one lock.
func (s *signalQueue[T]) closeIfEmpty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.q.len() == 0 {
		s.closed = true
	}
	return s.closed
}

// close closes the queue, so that push refuses from now on, whatever is
// queued: for a reader that goes away anyway (a link stopping), so a
// pusher learns its item would be lost.
func (s *signalQueue[T]) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// isClosed reports whether closeIfEmpty or close closed the queue.
func (s *signalQueue[T]) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// signal leaves a token in ready if items are queued: a reader that
// takes one item per turn calls it to come back for the rest.
func (s *signalQueue[T]) signal() {
	if s.len() > 0 {
		token(s.ready)
	}
}

// len returns the number of queued items.
func (s *signalQueue[T]) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.len()
}

// token leaves a token in ch (capacity 1), without blocking.
func token(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
