package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// recorder matches deliveries to sends and timestamps them with one clock.
// It is the Observer every system reports to. All methods are safe for
// concurrent use.
type recorder struct {
	peers int

	mu   sync.Mutex
	msgs []*msgRec // indexed by message number; nil before the send is registered
	// early holds deliveries that arrived before their send was registered
	// (a fast loopback delivery can beat Send's return): message number →
	// delivery times per peer. Bounded by the messages in flight.
	early map[uint64]map[int]time.Time
	// onFull, when set, is called (without mu held) once per message when
	// the last receiving peer has delivered it.
	onFull func(m *msgRec)

	// fullGen is closed and replaced whenever a message becomes fully
	// delivered (guarded by mu), to wake waitComplete.
	fullGen chan struct{}

	deliveries atomic.Uint64 // first deliveries by a receiving peer
	duplicates atomic.Uint64 // repeated deliveries of a message by the same peer
	foreign    atomic.Uint64 // payloads that are not ours or name no registered message
}

// msgRec is one sent message. Fields are guarded by recorder.mu.
type msgRec struct {
	id     uint64
	from   int
	sent   time.Time
	got    []bool
	n      int           // receiving peers that delivered it
	full   time.Duration // time from send to the last receiving peer's delivery
	isFull bool
	// released is set by the throughput window when the message's slot
	// was given back (on full delivery or on expiry).
	released bool
}

func newRecorder(peers int) *recorder {
	return &recorder{peers: peers, early: make(map[uint64]map[int]time.Time), fullGen: make(chan struct{})}
}

// register records that message id was sent by from at sent, and applies
// any deliveries that arrived before it. It returns the message's record.
func (r *recorder) register(id uint64, from int, sent time.Time) *msgRec {
	m := &msgRec{id: id, from: from, sent: sent, got: make([]bool, r.peers)}
	r.mu.Lock()
	for uint64(len(r.msgs)) <= id {
		r.msgs = append(r.msgs, nil)
	}
	r.msgs[id] = m
	var fullNow bool
	if e, ok := r.early[id]; ok {
		delete(r.early, id)
		for peer, at := range e {
			fullNow = r.applyLocked(m, peer, at) || fullNow
		}
	}
	cb := r.onFull
	r.mu.Unlock()
	if fullNow && cb != nil {
		cb(m)
	}
	return m
}

// Deliver implements Observer.
func (r *recorder) Deliver(peer int, payload []byte) {
	at := time.Now()
	id, err := parsePayload(payload)
	if err != nil || peer < 0 || peer >= r.peers {
		r.foreign.Add(1)
		return
	}
	r.mu.Lock()
	var m *msgRec
	if id < uint64(len(r.msgs)) {
		m = r.msgs[id]
	}
	if m == nil {
		e := r.early[id]
		if e == nil {
			if len(r.early) >= 1<<16 { // not ours: never registered; drop
				r.mu.Unlock()
				r.foreign.Add(1)
				return
			}
			e = make(map[int]time.Time)
			r.early[id] = e
		}
		if _, dup := e[peer]; dup {
			r.duplicates.Add(1)
		} else {
			e[peer] = at
		}
		r.mu.Unlock()
		return
	}
	fullNow := r.applyLocked(m, peer, at)
	cb := r.onFull
	r.mu.Unlock()
	if fullNow && cb != nil {
		cb(m)
	}
}

// applyLocked records peer's delivery of m at at and reports whether it
// completed m. Caller holds r.mu.
func (r *recorder) applyLocked(m *msgRec, peer int, at time.Time) bool {
	if peer == m.from {
		return false // the sender's own echo is not a delivery
	}
	if m.got[peer] {
		r.duplicates.Add(1)
		return false
	}
	m.got[peer] = true
	m.n++
	r.deliveries.Add(1)
	if m.n == r.peers-1 {
		m.isFull = true
		m.full = at.Sub(m.sent)
		close(r.fullGen)
		r.fullGen = make(chan struct{})
		return true
	}
	return false
}

// tally is the outcome of a set of sent messages.
type tally struct {
	sent       int
	full       int             // messages delivered by every receiving peer
	latencies  []time.Duration // send → last receiving peer, for full messages
	deliveries int             // receiving-peer deliveries of these messages
	// short names the first messages that did not reach every peer: where
	// in the load they were sent and how many peers lacked them.
	short []shortMsg
}

// shortMsg is a message that did not reach every receiving peer.
type shortMsg struct {
	index   int // sent index-th of the load's messages, from 0
	missing int // receiving peers that did not deliver it
}

// maxShort bounds the incomplete messages a tally names.
const maxShort = 8

// tally summarises the messages numbered from first to last-1.
func (r *recorder) tally(first, last uint64) tally {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t tally
	for id := first; id < last && id < uint64(len(r.msgs)); id++ {
		m := r.msgs[id]
		if m == nil {
			continue
		}
		t.sent++
		t.deliveries += m.n
		if m.isFull {
			t.full++
			t.latencies = append(t.latencies, m.full)
		} else if len(t.short) < maxShort {
			t.short = append(t.short, shortMsg{index: t.sent - 1, missing: r.peers - 1 - m.n})
		}
	}
	return t
}

// shortList names the incomplete messages t holds in send order, with
// how many receivers lacked each ("#3 lacked by 1, #9 lacked by 2"), and
// "…" when more fell short than it holds.
func (t tally) shortList() string {
	which := make([]string, 0, len(t.short)+1)
	for _, m := range t.short {
		which = append(which, fmt.Sprintf("#%d lacked by %d", m.index+1, m.missing))
	}
	if t.sent-t.full > len(t.short) {
		which = append(which, "…")
	}
	return strings.Join(which, ", ")
}

// complete reports whether every message from first to last-1 is fully
// delivered.
func (r *recorder) complete(first, last uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := first; id < last; id++ {
		if id >= uint64(len(r.msgs)) {
			return false
		}
		// nil: forgotten (never sent); every number below last was
		// registered or forgotten before the caller asked.
		if m := r.msgs[id]; m != nil && !m.isFull {
			return false
		}
	}
	return true
}

// waitComplete waits until every message from first to last-1 is fully
// delivered (true), or until wait has passed or ctx ends (false).
func (r *recorder) waitComplete(ctx context.Context, first, last uint64, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		r.mu.Lock()
		wake := r.fullGen // taken before the check, so no completion is missed
		r.mu.Unlock()
		if r.complete(first, last) {
			return true
		}
		select {
		case <-wake:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// forget removes message id, registered but never sent.
func (r *recorder) forget(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id < uint64(len(r.msgs)) {
		r.msgs[id] = nil
	}
}

// lastFull returns when the last of the messages first to last-1 that
// reached every peer did so (zero time when none did).
func (r *recorder) lastFull(first, last uint64) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var t time.Time
	for id := first; id < last && id < uint64(len(r.msgs)); id++ {
		if m := r.msgs[id]; m != nil && m.isFull {
			if at := m.sent.Add(m.full); at.After(t) {
				t = at
			}
		}
	}
	return t
}
