package chat

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/hearsay-chat/hearsay"
)

func textEvent(i int) hearsay.Event {
	return hearsay.Event{Type: hearsay.EventMessage, Text: strconv.Itoa(i)}
}

// A reader that is not reading lets exactly the bound wait, in order,
// whatever part of it is in the channel or queued behind it; the rest is
// dropped, and the next event that finds room is preceded by the notice.
func TestEventQueueBoundAndOrder(t *testing.T) {
	for _, bound := range []int{1, 5, eventChanSlots, eventChanSlots + 1, 200} {
		t.Run(strconv.Itoa(bound), func(t *testing.T) {
			q := newEventQueue(bound)
			t.Cleanup(func() { q.close() })
			const extra = 7
			dropped := 0
			for i := range bound + extra {
				if !q.emit(textEvent(i)) {
					dropped++
				}
			}
			if dropped != extra {
				t.Fatalf("%d events emitted into a bound of %d: %d dropped, want %d", bound+extra, bound, dropped, extra)
			}
			if got := q.len(); got != bound {
				t.Fatalf("len %d, want %d", got, bound)
			}
			for i := range bound {
				if ev := recvEvent(t, q); ev.Text != strconv.Itoa(i) {
					t.Fatalf("event %d: got %q, want %q", i, ev.Text, strconv.Itoa(i))
				}
			}
			if bound == 1 {
				return // the notice takes the only slot (as with a channel of 1)
			}
			if !q.emit(textEvent(-1)) {
				t.Fatal("an emptied queue dropped an event")
			}
			notice := recvEvent(t, q)
			if want := fmt.Sprintf("%d events were dropped", extra); notice.Type != hearsay.EventError || notice.Text[:len(want)] != want {
				t.Fatalf("after the drops: got %v %q, want an error saying %q", notice.Type, notice.Text, want)
			}
			if ev := recvEvent(t, q); ev.Text != "-1" {
				t.Fatalf("after the notice: got %q, want -1", ev.Text)
			}
		})
	}
}

func recvEvent(t *testing.T, q *eventQueue) hearsay.Event {
	t.Helper()
	select {
	case ev, ok := <-q.ch:
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	panic("unreachable")
}

// Emitters on several goroutines and a reader at the same time: every
// event arrives once, each emitter's in its order.
func TestEventQueueConcurrentOrder(t *testing.T) {
	const emitters, each = 4, 2000
	q := newEventQueue(emitters * each) // nothing dropped
	t.Cleanup(func() { q.close() })
	var wg sync.WaitGroup
	for e := range emitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if !q.emit(hearsay.Event{Type: hearsay.EventMessage, From: strconv.Itoa(e), Text: strconv.Itoa(i)}) {
					t.Errorf("emitter %d: event %d dropped", e, i)
					return
				}
			}
		}()
	}
	next := make([]int, emitters)
	for range emitters * each {
		ev := recvEvent(t, q)
		e, _ := strconv.Atoi(ev.From)
		if ev.Text != strconv.Itoa(next[e]) {
			t.Fatalf("emitter %d: got event %s, want %d", e, ev.Text, next[e])
		}
		next[e]++
	}
	wg.Wait()
}

// close keeps what the channel holds readable, in order, drops what waits
// behind it, stops the pump and closes the channel; emits after it are
// ignored.
func TestEventQueueClose(t *testing.T) {
	q := newEventQueue(100)
	for i := range 100 {
		q.emit(textEvent(i))
	}
	if dropped := q.close(); dropped != 100-eventChanSlots {
		t.Fatalf("close dropped %d, want %d", dropped, 100-eventChanSlots)
	}
	q.wg.Wait() // returns: the pump has stopped
	q.emit(textEvent(1000))
	i := 0
	for ev := range q.ch {
		if ev.Text != strconv.Itoa(i) {
			t.Fatalf("after close: got %q, want %d", ev.Text, i)
		}
		i++
	}
	if i != eventChanSlots {
		t.Fatalf("%d events readable after close, want %d", i, eventChanSlots)
	}
	if q.close() != 0 {
		t.Fatal("a second close dropped events")
	}
}

// A reader that takes a few events, then stops, while the pump holds
// one: close delivers the pump's event first.
func TestEventQueueCloseWithPumpBlocked(t *testing.T) {
	q := newEventQueue(eventChanSlots + 10)
	for i := range eventChanSlots + 10 {
		q.emit(textEvent(i))
	}
	// The pump holds event eventChanSlots, blocked on the full channel.
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		held := q.held
		q.mu.Unlock()
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pump never took an event")
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 3 { // room for the hand and the next two
		if ev := recvEvent(t, q); ev.Text != strconv.Itoa(i) {
			t.Fatalf("got %q, want %d", ev.Text, i)
		}
	}
	q.close()
	i := 3
	for ev := range q.ch {
		if ev.Text != strconv.Itoa(i) {
			t.Fatalf("after close: got %q, want %d", ev.Text, i)
		}
		i++
	}
	if i != eventChanSlots+3 {
		t.Fatalf("read up to event %d after close, want %d", i, eventChanSlots+3)
	}
}

// An idle queue holds the channel's few slots, not the bound: the
// default 1,024 events were a channel of 188 KB per node.
func TestEventQueueIdleSize(t *testing.T) {
	q := newEventQueue(DefaultConfig().EventBuffer)
	t.Cleanup(func() { q.close() })
	if c := cap(q.ch); c != eventChanSlots {
		t.Fatalf("channel capacity %d, want %d", c, eventChanSlots)
	}
	if size := uintptr(cap(q.ch)) * unsafe.Sizeof(hearsay.Event{}); size > 8<<10 {
		t.Fatalf("the channel's buffer is %d bytes, want at most 8 KB", size)
	}
	// A burst grows the queue; once read, it lets its slice go.
	for i := range 500 {
		q.emit(textEvent(i))
	}
	for range 500 {
		recvEvent(t, q)
	}
	q.wg.Wait() // the pump returns once the burst is delivered
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := cap(q.over.buf); c > keptInboxCap {
		t.Fatalf("after the burst the queue keeps %d slots, want at most %d", c, keptInboxCap)
	}
	if q.pumping || q.held {
		t.Fatal("the pump is still marked running")
	}
}
