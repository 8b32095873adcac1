package api

// The event ring: the peer's events, numbered, in a bounded buffer that
// every event stream reads at its own pace. Publishing never blocks and
// never waits for a reader (the chat node's events must not stall behind
// a slow browser); a reader that falls more than the ring's size behind
// is told how many events it missed (a "gap" event) instead of holding
// memory. Event IDs are "EPOCH-N": N counts from 1 in this run, EPOCH is
// random per ring, so a client resuming with an ID of an earlier run of
// the peer is recognised (and told) rather than mistaken for a position
// in this one.

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"

	"github.com/hearsay-chat/hearsay"
)

// DefaultRingSize is the number of events a Ring keeps.
const DefaultRingSize = 4096

// DefaultRingBytes bounds the text a Ring keeps (a message may be 64 KiB,
// so 4096 of them would be 256 MiB): the oldest events are dropped first.
const DefaultRingBytes = 16 << 20

// Entry is one numbered event.
type Entry struct {
	// Seq numbers the events of this ring from 1.
	Seq uint64
	// ID is the SSE event ID: the ring's epoch and Seq.
	ID    string
	Event hearsay.Event
}

// cost is what an entry counts against the byte bound: its strings and a
// fixed overhead.
func (e *Entry) cost() int {
	ev := &e.Event
	return 128 + len(e.ID) + len(ev.Type) + len(ev.Room) + len(ev.From) + len(ev.FromID) + len(ev.ID) + len(ev.Text)
}

// Ring is a bounded, numbered buffer of events. It is safe for concurrent
// use.
type Ring struct {
	epoch    string
	size     int
	maxBytes int

	mu     sync.Mutex
	buf    []Entry       // circular: seq s is at (s-1) % size
	first  uint64        // oldest seq held (next when empty)
	next   uint64        // seq of the next event
	bytes  int           // cost of the entries held
	notify chan struct{} // closed and replaced by every Publish
}

// NewRing returns a ring that keeps the last size events (DefaultRingSize
// when size <= 0), and at most DefaultRingBytes of them.
func NewRing(size int) *Ring {
	if size <= 0 {
		size = DefaultRingSize
	}
	var b [6]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return &Ring{epoch: hex.EncodeToString(b[:]), size: size, maxBytes: DefaultRingBytes,
		buf: make([]Entry, size), first: 1, next: 1, notify: make(chan struct{})}
}

// Epoch returns the ring's random epoch, the first part of its IDs.
func (r *Ring) Epoch() string { return r.epoch }

// Publish appends ev and wakes the readers. It never blocks on them. The
// oldest events are dropped when the ring holds size events or more than
// its byte bound (the newest is always kept).
func (r *Ring) Publish(ev hearsay.Event) {
	r.mu.Lock()
	seq := r.next
	r.next++
	if seq-r.first >= uint64(r.size) {
		r.dropOldestLocked()
	}
	e := &r.buf[(seq-1)%uint64(r.size)]
	*e = Entry{Seq: seq, ID: r.epoch + "-" + strconv.FormatUint(seq, 10), Event: ev}
	r.bytes += e.cost()
	for r.bytes > r.maxBytes && r.first < seq {
		r.dropOldestLocked()
	}
	close(r.notify)
	r.notify = make(chan struct{})
	r.mu.Unlock()
}

// dropOldestLocked forgets the oldest entry. Caller holds r.mu.
func (r *Ring) dropOldestLocked() {
	e := &r.buf[(r.first-1)%uint64(r.size)]
	r.bytes -= e.cost()
	*e = Entry{} // free its text now
	r.first++
}

// Last returns the seq of the last event published (0: none yet).
func (r *Ring) Last() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.next - 1
}

// Len returns the number of events held.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return int(r.next - r.first)
}

// After returns up to max events with a seq above after, oldest first,
// and how many events after it that are no longer held (missed: the
// reader fell behind by more than the ring holds). wait is closed by the
// next Publish: a reader that got nothing waits on it.
func (r *Ring) After(after uint64, max int) (out []Entry, missed uint64, wait <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	wait = r.notify
	last := r.next - 1
	if after >= last {
		return nil, 0, wait
	}
	from := after + 1
	if from < r.first {
		missed = r.first - from
		from = r.first
	}
	for s := from; s <= last && len(out) < max; s++ {
		out = append(out, r.buf[(s-1)%uint64(r.size)])
	}
	return out, missed, wait
}

// Position parses a Last-Event-ID given by a client: the seq to read
// after, and whether the ID belongs to this ring. An empty ID means "from
// now" (the last seq); an ID of another epoch (an earlier run of the
// peer) or a malformed one is reported with ok false, and the reader
// starts at the oldest event held. A seq beyond the last published is
// malformed too.
func (r *Ring) Position(id string) (after uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.next - 1
	if id == "" {
		return last, true
	}
	epoch, n, found := strings.Cut(id, "-")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !found || epoch != r.epoch || err != nil || seq > last {
		return r.first - 1, false
	}
	return seq, true
}
