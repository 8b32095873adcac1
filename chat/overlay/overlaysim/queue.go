package overlaysim

import (
	"time"

	"github.com/hearsay-chat/hearsay/chat/overlay"
)

type eventKind uint8

const (
	evJoin      eventKind = iota // start a peer (it joins a random live one)
	evChurn                      // crash a random live peer, start a new one
	evMeasure                    // the measured phase begins
	evBroadcast                  // broadcast number `to` from a random peer
	evMessage                    // msg from `from` arrives at `to`
	evDown                       // `to` hears that `from` is unreachable
	evTick                       // `to`'s timer
)

type event struct {
	at       time.Duration
	seq      uint64 // ties broken by insertion order: deterministic
	kind     eventKind
	to, from int32
	msg      overlay.Message
}

// eventQueue is a binary min-heap on (at, seq). The heap holds small
// keys; the events themselves (a Message is ~150 bytes) sit in a slab and
// are not moved while the heap sifts.
type eventQueue struct {
	h    []qkey
	slab []event
	free []int32
	seq  uint64
}

type qkey struct {
	at  time.Duration
	seq uint64
	i   int32 // index into slab
}

func (q *eventQueue) len() int { return len(q.h) }

func less(a, b *qkey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	var i int32
	if n := len(q.free); n > 0 {
		i = q.free[n-1]
		q.free = q.free[:n-1]
		q.slab[i] = e
	} else {
		i = int32(len(q.slab))
		q.slab = append(q.slab, e)
	}
	q.h = append(q.h, qkey{at: e.at, seq: e.seq, i: i})
	k := len(q.h) - 1
	for k > 0 {
		parent := (k - 1) / 2
		if !less(&q.h[k], &q.h[parent]) {
			break
		}
		q.h[k], q.h[parent] = q.h[parent], q.h[k]
		k = parent
	}
}

func (q *eventQueue) pop() event {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h = q.h[:last]
	k := 0
	for {
		l, r := 2*k+1, 2*k+2
		small := k
		if l < len(q.h) && less(&q.h[l], &q.h[small]) {
			small = l
		}
		if r < len(q.h) && less(&q.h[r], &q.h[small]) {
			small = r
		}
		if small == k {
			break
		}
		q.h[k], q.h[small] = q.h[small], q.h[k]
		k = small
	}
	e := q.slab[top.i]
	q.slab[top.i] = event{} // drop references (payloads, peer lists)
	q.free = append(q.free, top.i)
	return e
}
