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
			q := newEventQueue(bound, nil)
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

// A queue its reader has emptied takes the next event even while the
// pump, having just handed its last event over, has not yet marked it so:
// that event counted against the fifo's room as held, and the queue
// refused an event with nothing waiting (seen once under load, bound 33).
func TestEventQueueTakesEventWhilePumpFinishes(t *testing.T) {
	const bound = eventChanSlots + 1
	q := newEventQueue(bound, nil)
	t.Cleanup(func() { q.close() })
	reached, release := make(chan struct{}), make(chan struct{})
	var calls sync.Mutex
	first := true
	q.handedOver = func() {
		calls.Lock()
		defer calls.Unlock()
		if first {
			first = false
			close(reached)
			<-release
		}
	}
	for i := range bound {
		if !q.emit(textEvent(i)) {
			t.Fatalf("event %d of %d dropped", i, bound)
		}
	}
	// The channel is full and the last event waits in the pump; taking
	// one lets the pump hand it over, and the hook holds it there.
	recvEvent(t, q)
	<-reached
	for range bound - 1 {
		recvEvent(t, q)
	}
	ok := q.emit(textEvent(-1))
	close(release)
	if !ok {
		t.Fatal("an emptied queue dropped an event while its pump finished a hand-over")
	}
	if ev := recvEvent(t, q); ev.Text != "-1" {
		t.Fatalf("got %q, want -1", ev.Text)
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
	q := newEventQueue(emitters*each, nil) // nothing dropped
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

// After close, emits are ignored; a reader that comes late still gets,
// in order, what the channel held, and close has not waited for it: what
// waited behind the channel is dropped and counted, and the pump is gone
// when close returns (it used to wait for the reader up to 10 s).
func TestEventQueueCloseDelivers(t *testing.T) {
	dropped := 0
	q := newEventQueue(100, func(n int) { dropped += n })
	for i := range 100 {
		q.emit(textEvent(i))
	}
	if q.pumps.Load() != 1 {
		t.Fatalf("%d pumps run behind a full channel, want 1", q.pumps.Load())
	}
	q.close()
	if n := q.pumps.Load(); n != 0 {
		t.Fatalf("%d pumps still run after close", n)
	}
	if dropped != 100-eventChanSlots {
		t.Fatalf("%d dropped at close, want %d", dropped, 100-eventChanSlots)
	}
	q.emit(textEvent(1000))
	q.close()
	i := 0
	for ev := range q.ch {
		if ev.Text != strconv.Itoa(i) {
			t.Fatalf("after close: got %q, want %d", ev.Text, i)
		}
		i++
	}
	if i != eventChanSlots {
		t.Fatalf("%d events received after close, want the channel's %d", i, eventChanSlots)
	}
	if q.len() != 0 {
		t.Fatalf("len %d after close, want 0", q.len())
	}
	// Nothing waiting behind the channel: close closes it at once.
	q2 := newEventQueue(100, nil)
	q2.emit(textEvent(0))
	q2.close()
	if ev, ok := <-q2.ch; !ok || ev.Text != "0" {
		t.Fatalf("got %v %v, want event 0", ev, ok)
	}
	if _, ok := <-q2.ch; ok {
		t.Fatal("channel still open after close with nothing queued")
	}
}

// A pump stopped while the reader has taken part of the channel moves
// what fits now, in order, and drops the rest, never an event behind a
// dropped one.
func TestEventQueueCloseFillsChannel(t *testing.T) {
	dropped := 0
	q := newEventQueue(100, func(n int) { dropped += n })
	for i := range 100 {
		q.emit(textEvent(i))
	}
	const taken = 5
	for i := range taken {
		if ev := recvEvent(t, q); ev.Text != strconv.Itoa(i) {
			t.Fatalf("got %q, want %d", ev.Text, i)
		}
	}
	q.close()
	i := taken
	for ev := range q.ch {
		if ev.Text != strconv.Itoa(i) {
			t.Fatalf("after close: got %q, want %d", ev.Text, i)
		}
		i++
	}
	// The pump may have moved some of the taken slots' worth before
	// close; together every event is received or dropped, once.
	if i+dropped != 100 || i < taken+eventChanSlots {
		t.Fatalf("%d received, %d dropped: want 100 in all, at least %d received", i, dropped, taken+eventChanSlots)
	}
}

// An idle queue holds the channel's few slots, not the bound: the
// default 1,024 events were a channel of 188 KB per node.
func TestEventQueueIdleSize(t *testing.T) {
	q := newEventQueue(DefaultConfig().EventBuffer, nil)
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
	q.pumpWG.Wait() // the pump returns once the burst is delivered
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := cap(q.over.buf); c > keptInboxCap {
		t.Fatalf("after the burst the queue keeps %d slots, want at most %d", c, keptInboxCap)
	}
	if q.pumping || q.held {
		t.Fatal("the pump is still marked running")
	}
}

// pendingEvents receives every event n has emitted so far: those in the
// channel and those still queued behind it (a node that is not started
// emits synchronously, but a burst beyond the channel's slots reaches it
// through the pump a moment later).
func pendingEvents(tb testing.TB, n *Node) []hearsay.Event {
	tb.Helper()
	var evs []hearsay.Event
	deadline := time.After(10 * time.Second)
	for n.events.len() > 0 {
		select {
		case ev := <-n.Events():
			evs = append(evs, ev)
		case <-deadline:
			tb.Fatalf("%d events still queued after 10 s", n.events.len())
		}
	}
	return evs
}

// Shutdown with nobody reading events returns with the events pump gone
// (it used to block for the reader up to 10 s after Shutdown returned):
// the channel keeps its events readable, the rest are counted as drops.
func TestShutdownStopsEventPump(t *testing.T) {
	const emitted = 100
	n, err := New(Config{Nick: "pumped", EventBuffer: emitted})
	if err != nil {
		t.Fatal(err)
	}
	for i := range emitted {
		n.emit(textEvent(i))
	}
	if p := n.events.pumps.Load(); p != 1 {
		t.Fatalf("%d pumps behind a full channel, want 1", p)
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if p := n.events.pumps.Load(); p != 0 {
		t.Fatalf("%d events pumps still run after Shutdown returned", p)
	}
	if d := n.Stats().EventDrops; d != emitted-eventChanSlots {
		t.Fatalf("%d event drops, want %d", d, emitted-eventChanSlots)
	}
	got := 0
	for range n.Events() {
		got++
	}
	if got != eventChanSlots {
		t.Fatalf("%d events readable after Shutdown, want %d", got, eventChanSlots)
	}
}
