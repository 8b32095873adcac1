package chat

// How long a message is in flight. A periodic anti-entropy round's repair
// leaves out the messages the answering peer stored recently: the peer
// that asked most likely lacks them only because the push is still
// bringing them (antientropy.go, inFlightAge). A fixed cutoff of two
// intervals fits a group that keeps up; a group that falls behind (every
// peer sending on a busy machine: at N=50 messages took 10 to 40 s to
// reach every peer) repairs nearly everything still in flight, and those
// duplicates (54,478 repaired envelopes for 934 new ones in one run, more
// than one extra copy per delivery) take the CPU the pushes needed, so it
// falls further behind. The cutoff therefore follows what this node sees:
// twice the median time its pushed messages took to arrive, from their
// origin's send time to their storage here, over the last samples, never
// below the fixed cutoff nor above maxInFlightAge intervals.
//
// The send time is the origin's clock, so the figure is an estimate: a
// skewed clock or a lying origin moves the median only by its share of the
// samples, and the cap bounds what it can do: round repairs come at most
// maxInFlightAge intervals after a message was stored. Gap pulls and a
// join's catch-up are answered in full whatever the cutoff.

import (
	"slices"
	"sync"
	"time"
)

// maxInFlightAge, in anti-entropy intervals, caps the cutoff.
const maxInFlightAge = 30

// transitSamples is how many recent transit times the median is taken
// over.
const transitSamples = 128

// transitTimes keeps the transit times of the latest pushed messages this
// node stored. Safe for concurrent use.
type transitTimes struct {
	mu   sync.Mutex
	at   [transitSamples]int64 // unix ns when each sample was taken
	d    [transitSamples]int64 // its transit time in ns (0 when the clock was ahead)
	next int                   // ring index of the next sample
}

// note records the transit of messages sent at sentUnixNano (the
// envelopes' SentUnixNano) and stored at now.
func (t *transitTimes) note(now time.Time, sentUnixNano ...int64) {
	if len(sentUnixNano) == 0 {
		return
	}
	ns := now.UnixNano()
	t.mu.Lock()
	defer t.mu.Unlock()
	// The last transitSamples of them are all the ring keeps.
	for _, s := range sentUnixNano[max(0, len(sentUnixNano)-transitSamples):] {
		d := ns - s
		if s <= 0 || s > ns { // no send time, or a clock ahead of ours
			d = 0
		}
		t.at[t.next], t.d[t.next] = ns, d
		t.next = (t.next + 1) % transitSamples
	}
}

// inFlightFor returns how long after storing a message a round's repair
// leaves it out at now: twice the median transit of the samples taken in
// the last maxInFlightAge intervals, within [inFlightAge, maxInFlightAge]
// intervals.
func (t *transitTimes) inFlightFor(now time.Time, interval time.Duration) time.Duration {
	lo, hi := inFlightAge*interval, maxInFlightAge*interval
	since := now.Add(-hi).UnixNano()
	var buf [transitSamples]int64
	ds := buf[:0]
	t.mu.Lock()
	for i, at := range t.at {
		if at != 0 && at >= since {
			ds = append(ds, t.d[i])
		}
	}
	t.mu.Unlock()
	if len(ds) == 0 {
		return lo
	}
	slices.Sort(ds)
	med := time.Duration(ds[len(ds)/2])
	if med >= hi/2 { // 2×med would reach the cap (and cannot overflow here)
		return hi
	}
	return min(max(2*med, lo), hi)
}
