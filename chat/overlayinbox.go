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

// overlayViewShare is the most view frames and probes a pass of the
// driver (overlayDrain inputs) takes while tree frames or our broadcasts
// wait; alone, they may take the whole pass. A member can send view
// frames as fast as its link carries them, and with view frames always
// first a flood of them (shuffles, joins, probes) left a neighbour's
// tree frames one input per pass at best: its payloads, grafts and
// announcements starved (TestOverlayViewFloodDoesNotStarveTree). A
// quarter of a pass still handles the view's own traffic, a few frames
// per neighbour per second, at once.
const overlayViewShare = overlayDrain / 4

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
func (b *overlayInbox) signal() { token(b.ready) }

// inboxPass is what a pass of the driver has taken so far.
type inboxPass struct {
	inputs, views int
}

// next returns the next input of pass p and counts it. The first of a
// pass comes from a queue picked at random among those with inputs, so
// that no queue waits for ever behind another; the rest of the pass
// takes view frames first up to their share (overlayViewShare; past it
// only when nothing else waits), then the tree's, then our broadcasts.
// false when all are empty.
func (b *overlayInbox) next(p *inboxPass) (overlayInput, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	in, k, ok := b.nextLocked(p)
	if ok {
		p.inputs++
		if k == inboxView {
			p.views++
		}
	}
	return in, ok
}

// nextLocked takes next's input and says from which queue; the caller
// holds b.mu.
func (b *overlayInbox) nextLocked(p *inboxPass) (overlayInput, int, bool) {
	if p.inputs == 0 {
		var ks [inboxQueues]int
		n := 0
		for k := range b.q {
			if b.q[k].len() > 0 {
				ks[n] = k
				n++
			}
		}
		if n == 0 {
			return overlayInput{}, 0, false
		}
		k := ks[rand.IntN(n)]
		in, _ := b.q[k].pop()
		return in, k, true
	}
	if p.views < overlayViewShare || b.q[inboxTree].len() == 0 && b.q[inboxOwn].len() == 0 {
		if in, ok := b.q[inboxView].pop(); ok {
			return in, inboxView, true
		}
	}
	for _, k := range []int{inboxTree, inboxOwn} {
		if in, ok := b.q[k].pop(); ok {
			return in, k, true
		}
	}
	return overlayInput{}, 0, false
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
		c[k] = len(b.q[k].buf)
	}
	return c
}

// pipelineQueue carries first receipts from the driver's goroutine to the
// feeder that hands them to the receive pipeline: a bounded FIFO of
// passes' deliveries whose slice, like the inbox's, holds only what
// waits. A buffered channel of the same bound held 4,096 slice headers
// (96 KB) per peer for the node's life.
type pipelineQueue struct {
	*signalQueue[[]pipelined] // ready: read by the feeder only
	// space (capacity 1) holds a token while room may have been made;
	// read by the driver only.
	space chan struct{}
}

func newPipelineQueue(max int) *pipelineQueue {
	return &pipelineQueue{signalQueue: newSignalQueue[[]pipelined](max), space: make(chan struct{}, 1)}
}

// put queues ps, waiting while the queue is full (back-pressure: see
// flush); false if done was closed first.
func (p *pipelineQueue) put(ps []pipelined, done <-chan struct{}) bool {
	for p.push(ps) != pushed {
		select {
		case <-p.space:
		case <-done:
			return false
		}
	}
	return true
}

// take returns the oldest queued deliveries, never blocking; false when
// none wait.
func (p *pipelineQueue) take() ([]pipelined, bool) {
	ps, ok := p.pop()
	if ok {
		token(p.space)
	}
	return ps, ok
}
