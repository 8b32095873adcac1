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

// eventQueue is a binary min-heap on (at, seq).
type eventQueue struct {
	h   []event
	seq uint64
}

func (q *eventQueue) len() int { return len(q.h) }

func less(a, b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *eventQueue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.h = append(q.h, e)
	i := len(q.h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !less(&q.h[i], &q.h[parent]) {
			break
		}
		q.h[i], q.h[parent] = q.h[parent], q.h[i]
		i = parent
	}
}

func (q *eventQueue) pop() event {
	top := q.h[0]
	last := len(q.h) - 1
	q.h[0] = q.h[last]
	q.h[last] = event{}
	q.h = q.h[:last]
	i := 0
	for {
		l, r := 2*i+1, 2*i+2
		small := i
		if l < len(q.h) && less(&q.h[l], &q.h[small]) {
			small = l
		}
		if r < len(q.h) && less(&q.h[r], &q.h[small]) {
			small = r
		}
		if small == i {
			break
		}
		q.h[i], q.h[small] = q.h[small], q.h[i]
		i = small
	}
	return top
}
