package chat

import (
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/overlay"
	"github.com/hearsay-chat/hearsay/internal/allocs"
)

// A fifo keeps order and its bound, allocates nothing before its first
// item, grows with what is queued (never past its bound), keeps a slice
// of its size while a steady trickle never lets it empty, and lets a
// burst's slice go once drained.
func TestFifo(t *testing.T) {
	q := fifo[int]{max: 1000}
	if q.buf != nil {
		t.Fatal("a new fifo allocated")
	}
	next, want := 0, 0
	pop := func() {
		t.Helper()
		v, ok := q.pop()
		if !ok || v != want {
			t.Fatalf("popped %d, %v; want %d", v, ok, want)
		}
		want++
	}
	// Push 3, pop 2, until full: never empty, and wrapping round its
	// ring as it grows.
	for {
		for range 3 {
			if q.len() < q.max {
				if !q.push(next) {
					t.Fatalf("push refused with %d queued", q.len())
				}
				next++
			}
		}
		if q.len() == q.max {
			break
		}
		for range 2 {
			pop()
		}
	}
	if q.push(next) {
		t.Fatal("push beyond the bound accepted")
	}
	if c := len(q.buf); c > q.max {
		t.Fatalf("capacity %d past the bound %d", c, q.max)
	}
	// Held full, as under a flood: one out, one in, in place (a slice
	// that slid or regrew per push cost a copy of the queue per input).
	if a := allocs.MinPerRun(3, 1000, func() {
		pop()
		if !q.push(next) {
			t.Fatalf("push refused with %d queued", q.len())
		}
		next++
	}); a != 0 {
		t.Fatalf("%v allocations per input through a full queue, want 0", a)
	}
	// A trickle after the burst: one in, one out, 990 queued... down to
	// 5: the slice shrinks as the queue does, though it never empties.
	for q.len() > 5 {
		pop()
		pop()
		if !q.push(next) {
			t.Fatalf("push refused with %d queued", q.len())
		}
		next++
	}
	if c := len(q.buf); c > keptInboxCap {
		t.Fatalf("capacity %d with %d queued, want at most %d", c, q.len(), keptInboxCap)
	}
	for q.len() > 0 {
		pop()
	}
	if _, ok := q.pop(); ok {
		t.Fatal("popped from an empty fifo")
	}
	if c := len(q.buf); c > keptInboxCap {
		t.Fatalf("capacity %d once drained, want at most %d", c, keptInboxCap)
	}
	if want != next {
		t.Fatalf("popped %d of %d pushed", want, next)
	}
	// A popped slot no longer holds what it held.
	ps := fifo[*int]{max: 4}
	ps.push(new(int))
	ps.push(new(int))
	ps.pop()
	if ps.buf[0] != nil {
		t.Fatal("a popped item is still referenced by the queue")
	}
}

// The pipeline queue keeps order, holds the driver back while full (a
// put waits for a take, not dropping first receipts the machine would
// never deliver again), lets the driver go when the node stops, and
// lets its slice go once drained.
func TestPipelineQueue(t *testing.T) {
	const max = 40
	p := newPipelineQueue(max)
	batch := func(i int) []pipelined { return []pipelined{{Delivery: overlay.Delivery{Hops: uint32(i)}}} }
	never := make(chan struct{})
	for i := range max {
		if !p.put(batch(i), never) {
			t.Fatalf("put %d refused", i)
		}
	}
	put := make(chan bool)
	go func() { put <- p.put(batch(max), never) }()
	select {
	case <-put:
		t.Fatal("a put into a full queue did not wait")
	case <-time.After(50 * time.Millisecond): // it must still be waiting: no condition to poll for
	}
	for i := range max + 1 {
		ps, ok := p.take()
		if i == 0 {
			if !<-put {
				t.Fatal("the waiting put failed")
			}
		}
		if !ok || ps[0].Hops != uint32(i) {
			t.Fatalf("take %d: %v, %v", i, ps, ok)
		}
	}
	if _, ok := p.take(); ok {
		t.Fatal("took from an empty queue")
	}
	if c := len(p.q.buf); c > keptInboxCap {
		t.Fatalf("a drained queue holds %d slots, want at most %d", c, keptInboxCap)
	}
	for i := range max {
		p.put(batch(i), never)
	}
	done := make(chan struct{})
	go func() { put <- p.put(batch(max), done) }()
	close(done)
	if <-put {
		t.Fatal("a put into a full queue succeeded after done")
	}
	if n := p.len(); n != max {
		t.Fatalf("%d queued, want %d", n, max)
	}
}
