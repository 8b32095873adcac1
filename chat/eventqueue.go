package chat

// The queue behind Node.Events. A channel buffered to Config.EventBuffer
// (1,024 events of 184 bytes) allocated 188 KB per node for its life,
// scanned by every collection: 37 MB for 200 peers in one process, most
// of it never used, since a reader that keeps up takes each event as it
// comes. The channel now has a few slots (eventChanSlots); a burst beyond
// them waits in a fifo (fifo.go) that grows with it up to the same
// bound, and a pump goroutine, started for the burst and gone once it is
// delivered, moves it into the channel in order. The bound, the drops
// when it is full and the order of events are those of the channel
// before.

import (
	"fmt"
	"sync"

	"github.com/hearsay-chat/hearsay"
)

// eventChanSlots is the capacity of the events channel: what a reader
// that keeps up needs, a handful of events emitted together.
const eventChanSlots = 32

// eventQueue hands events to the application without ever blocking the
// emitter. Safe for concurrent use; one reader takes ch.
type eventQueue struct {
	ch chan hearsay.Event // the application's channel, closed by close

	mu      sync.Mutex // serialises emitters and guards what follows
	over    fifo[hearsay.Event]
	pumping bool // a pump runs: emitters queue behind it, never send directly
	held    bool // the pump holds hand, the oldest waiting event, taken from over
	hand    hearsay.Event
	closed  bool
	lost    uint64 // dropped since the last "events lost" notice

	done chan struct{} // closed by close: a pump stops
	wg   sync.WaitGroup
}

// newEventQueue returns a queue that holds at most bound events (at
// least 1).
func newEventQueue(bound int) *eventQueue {
	bound = max(bound, 1)
	slots := min(eventChanSlots, bound)
	return &eventQueue{ch: make(chan hearsay.Event, slots), over: fifo[hearsay.Event]{max: bound - slots}, done: make(chan struct{})}
}

// emit queues ev; it never blocks. When max events wait, ev is dropped
// and emit reports false; the next event that finds room is preceded by
// an error event saying how many were lost.
func (q *eventQueue) emit(ev hearsay.Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return true
	}
	if q.lost > 0 {
		notice := hearsay.Event{Type: hearsay.EventError, Time: ev.Time, Text: fmt.Sprintf("%d events were dropped because the reader was too slow", q.lost)}
		if q.putLocked(notice) {
			q.lost = 0
		}
	}
	if !q.putLocked(ev) {
		q.lost++
		return false
	}
	return true
}

// putLocked queues ev behind what waits: straight into the channel while
// no pump runs and it has room, else into the fifo, starting a pump.
// Caller holds q.mu.
func (q *eventQueue) putLocked(ev hearsay.Event) bool {
	if !q.pumping {
		select {
		case q.ch <- ev:
			return true
		default:
		}
	}
	waiting := q.over.len()
	if q.held {
		waiting++ // the pump's hand counts against the fifo's bound
	}
	if waiting >= q.over.max || !q.over.push(ev) {
		return false
	}
	if !q.pumping {
		q.pumping = true
		q.wg.Add(1)
		go q.pump()
	}
	return true
}

// pump moves the fifo's events into the channel, in order, and returns
// once the fifo is empty or the queue closes.
func (q *eventQueue) pump() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		ev, ok := q.over.pop()
		if !ok {
			q.pumping = false
			q.mu.Unlock()
			return
		}
		q.held, q.hand = true, ev
		q.mu.Unlock()
		select {
		case q.ch <- ev:
		case <-q.done:
			return // close delivers or drops the hand, first
		}
		q.mu.Lock()
		q.held, q.hand = false, hearsay.Event{}
		q.mu.Unlock()
	}
}

// len returns the number of events waiting for the reader.
func (q *eventQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.ch) + q.over.len()
	if q.held {
		n++
	}
	return n
}

// close stops the pump and closes the channel. What the channel holds
// stays readable; what still waited behind it is dropped (the reader has
// stopped taking events, or it would be in the channel). Idempotent.
func (q *eventQueue) close() (dropped int) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0
	}
	q.closed = true
	close(q.done)
	q.mu.Unlock()
	q.wg.Wait() // no emitter can start a pump: closed is set
	q.mu.Lock()
	defer q.mu.Unlock()
	put := func(ev hearsay.Event) {
		select {
		case q.ch <- ev:
		default:
			dropped++
		}
	}
	if q.held {
		put(q.hand) // taken first by the pump: the oldest
		q.held, q.hand = false, hearsay.Event{}
	}
	for {
		ev, ok := q.over.pop()
		if !ok {
			break
		}
		put(ev)
	}
	close(q.ch)
	return dropped
}
