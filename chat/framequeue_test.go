package chat

import (
	"testing"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// limit returns the most items the queue holds: for tests (max is set
// once, at newSignalQueue).
func (s *signalQueue[T]) limit() int { return s.q.max }

// The send queue is a bounded FIFO that holds no memory for frames it
// does not hold: nothing allocated before the first frame, order kept
// when it is never drained (the ring), its bound enforced, and a large
// slice let go once drained (all but keptInboxCap slots).
func TestFrameQueue(t *testing.T) {
	q := newSignalQueue[*chatpb.Frame](100)
	if q.q.buf != nil {
		t.Fatal("a new queue allocated frames")
	}
	ping := func(n uint64) *chatpb.Frame { return pingFrame(n) }
	next, want := uint64(0), uint64(0)
	// Push 3, pop 2, over and over: the queue is never empty, so only the
	// ring keeps its slice from growing with every frame ever queued.
	for range 1000 {
		for range 3 {
			if q.len() < q.limit() {
				if r := q.push(ping(next)); r != pushed {
					t.Fatalf("push refused (%d) with %d queued", r, q.len())
				}
				next++
			}
		}
		for range 2 {
			f, ok := q.pop()
			if !ok || f.GetPing().GetNonce() != want {
				t.Fatalf("popped %v, %v; want nonce %d", f, ok, want)
			}
			want++
		}
	}
	for q.len() < q.limit() {
		if r := q.push(ping(next)); r != pushed {
			t.Fatalf("push refused (%d) with %d queued", r, q.len())
		}
		next++
	}
	if q.len() != 100 {
		t.Fatalf("%d queued, want the bound, 100", q.len())
	}
	if r := q.push(ping(next)); r != pushFull {
		t.Fatalf("push beyond the bound: %d, want pushFull (%d)", r, pushFull)
	}
	if cap(q.q.buf) > 2*q.limit() {
		t.Fatalf("slice of capacity %d for %d frames at most", cap(q.q.buf), q.limit())
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("frames queued and ready not signalled")
	}
	for q.len() > 0 {
		f, _ := q.pop()
		if f.GetPing().GetNonce() != want {
			t.Fatalf("popped nonce %d, want %d", f.GetPing().GetNonce(), want)
		}
		want++
	}
	if cap(q.q.buf) > keptInboxCap {
		t.Fatalf("a drained queue keeps a slice of capacity %d, want at most %d", cap(q.q.buf), keptInboxCap)
	}
	if _, ok := q.pop(); ok {
		t.Fatal("popped from an empty queue")
	}
	// A closed queue says so, full or not: the link's enqueue counts a
	// drop only for a full one (a reader behind), from this answer alone.
	if r := q.push(ping(next)); r != pushed {
		t.Fatalf("push to an open, empty queue: %d", r)
	}
	q.close()
	if r := q.push(ping(next)); r != pushClosed {
		t.Fatalf("push to a closed queue: %d, want pushClosed (%d)", r, pushClosed)
	}
	full := newSignalQueue[*chatpb.Frame](1)
	full.push(ping(0))
	full.close()
	if r := full.push(ping(1)); r != pushClosed {
		t.Fatalf("push to a closed, full queue: %d, want pushClosed (%d)", r, pushClosed)
	}
}
