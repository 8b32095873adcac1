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
// before; what differs is when an event queued behind a full channel
// becomes receivable: a moment after it was emitted, when the pump has
// moved it, not at once.
//
// Shutdown closes the queue: later events are ignored, the pump stops
// and Shutdown returns once it has (Node.Shutdown waits for every
// goroutine it owns; a pump that waited up to 10 s for a reader that
// never came back outlived it). What waits behind the channel goes into
// it while it has room, the rest is dropped and counted, and the channel
// closes: its events stay readable, as a buffered channel closed by
// Shutdown kept them.

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hearsay-chat/hearsay"
)

// eventChanSlots is the capacity of the events channel: what a reader
// that keeps up needs, a handful of events emitted together.
const eventChanSlots = 32

// eventQueue hands events to the application without ever blocking the
// emitter. Safe for concurrent use; one reader takes ch.
type eventQueue struct {
	ch     chan hearsay.Event // the application's channel
	onDrop func(n int)        // counts events dropped at close; never nil

	bound int // the most events waiting for the reader: in ch, held, in over

	mu      sync.Mutex // serialises emitters and guards what follows
	over    fifo[hearsay.Event]
	pumping bool // a pump runs: emitters queue behind it, never send directly
	held    bool // the pump holds one event (taken from over) it is handing over
	closed  bool // Shutdown: emits are ignored; ch is closed or closes as the pump stops
	lost    uint64
	stop    chan struct{} // closed by close: the pump hands over what fits and drops the rest
	pumpWG  sync.WaitGroup
	pumps   atomic.Int32 // pumps running (0 or 1), for tests
	// handedOver, when set (tests), runs in the pump right after it
	// handed an event over, before it takes the lock again.
	handedOver func()
}

// newEventQueue returns a queue that holds at most bound events (at
// least 1). onDrop, if not nil, is told how many events close dropped.
func newEventQueue(bound int, onDrop func(int)) *eventQueue {
	bound = max(bound, 1)
	slots := min(eventChanSlots, bound)
	if onDrop == nil {
		onDrop = func(int) {}
	}
	return &eventQueue{ch: make(chan hearsay.Event, slots), onDrop: onDrop, bound: bound, over: fifo[hearsay.Event]{max: bound},
		stop: make(chan struct{})}
}

// emit queues ev; it never blocks. When the bound is reached, ev is
// dropped and emit reports false; the next event that finds room is
// preceded by an error event saying how many were lost. After close, ev
// is ignored.
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
	// Everything not yet received counts against the bound: the channel,
	// the pump's event, the fifo. Counting the fifo and the pump's event
	// alone against what the channel leaves (bound - slots) dropped
	// events into an emptied queue: the pump's event, just handed over,
	// still counted as held until the pump took the lock again, so a
	// queue of 33 drained by its reader refused the next event.
	// At most one event is counted twice, for a moment, near the bound.
	if q.lenLocked() >= q.bound || !q.over.push(ev) {
		return false
	}
	if !q.pumping {
		q.pumping = true
		q.pumpWG.Add(1)
		q.pumps.Add(1)
		go q.pump()
	}
	return true
}

// pump moves the fifo's events into the channel, in order. It returns
// once the fifo is empty (closing the channel if the queue is closed), or
// at close, once it has moved what fits.
func (q *eventQueue) pump() {
	defer q.pumpWG.Done()
	defer q.pumps.Add(-1)
	for {
		q.mu.Lock()
		ev, ok := q.over.pop()
		if !ok {
			q.pumping = false
			if q.closed {
				close(q.ch)
			}
			q.mu.Unlock()
			return
		}
		q.held = true
		q.mu.Unlock()
		select {
		case q.ch <- ev:
			if q.handedOver != nil {
				q.handedOver()
			}
			q.mu.Lock()
			q.held = false
			q.mu.Unlock()
		case <-q.stop:
			q.finish(ev)
			return
		}
	}
}

// finish ends a pump stopped by close, holding ev: ev and the events
// behind it go into the channel while it has room, without waiting for
// the reader; from the first that does not fit on, they are dropped and
// counted (a later one never overtakes a dropped one). The channel
// closes.
func (q *eventQueue) finish(ev hearsay.Event) {
	q.mu.Lock()
	dropped := 0
	for {
		select {
		case q.ch <- ev:
		default:
			dropped = 1 + q.over.len()
		}
		var ok bool
		if ev, ok = q.over.pop(); !ok || dropped > 0 {
			break
		}
	}
	q.over = fifo[hearsay.Event]{max: q.over.max}
	q.held, q.pumping = false, false
	close(q.ch)
	q.mu.Unlock()
	if dropped > 0 {
		q.onDrop(dropped)
	}
}

// len returns the number of events waiting for the reader.
func (q *eventQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.lenLocked()
}

// lenLocked is len with q.mu held: the channel, the pump's event, the
// fifo.
func (q *eventQueue) lenLocked() int {
	n := len(q.ch) + q.over.len()
	if q.held {
		n++
	}
	return n
}

// close ignores events from now on, stops the pump and closes the
// channel: what waits behind it goes in while it has room, the rest is
// dropped (finish). It returns once the pump has ended, without waiting
// for the reader. Idempotent.
func (q *eventQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.pumpWG.Wait()
		return
	}
	q.closed = true
	if !q.pumping {
		close(q.ch) // what the channel holds stays readable
	} else {
		close(q.stop)
	}
	q.mu.Unlock()
	q.pumpWG.Wait() // a pump that has just emptied the fifo may still be returning
}
