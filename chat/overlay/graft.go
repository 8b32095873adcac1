package overlay

import "time"

// The graft timer. Plumtree grafts a message that was announced and did
// not come over the tree within a timeout: too short, and every payload
// that is only late is fetched twice (a graft is a copy more, and it turns
// a link eager, reshaping the tree); too long, and a payload that was lost
// waits that long. What "late" means depends on where the node runs:
// chat's links are TCP, so a payload is late, not lost, unless its link
// broke; on a loaded machine a burst took up to 1.7 s to reach all of 30
// peers, while on an idle one a payload that comes after an announcement
// of it comes within tens of milliseconds, and a lost frame (the bench's
// loss, a link that broke) then waits for the whole fixed timeout.
//
// With Config.GraftTimeoutMin set, the timer follows what the node sees:
// a payload that arrives over the tree after its first announcement,
// without a graft, was late by the time between the two. The timer is
// twice the latest such lateness, halved every lateHalfLife without a
// later one, and kept within [GraftTimeoutMin, GraftTimeout]; each retry
// waits GraftRetry scaled by the same ratio. A node under load sees its
// payloads late and waits longer; a node that sees them on time grafts a
// lost one sooner. Only payloads that came are measured: a lost one
// leaves no sample. Nor does a payload flagged Repaired: the sender's
// copy, or one above it in the tree, came by a graft or an anti-entropy
// repair, so it is late by a lost frame upstream and that node's timer,
// not by slow links. Measuring those made the timer feed on itself under
// loss: a node doubled its parent's graft wait into its own timer, its
// children doubled that, and every timer sat at GraftTimeout
// (overlaysim's TestAdaptiveTimerUnderLoss: at 200 peers and 5 % loss, a
// message reached its last peer in 7.4 to 8.7 s, p99, against 2.0 to
// 2.2 s with the flag). A node sets the flag on what it relays when its
// own copy was grafted, came flagged or came from Repaired, and on a
// graft's answer.

// lateHalfLife is how fast a lateness is forgotten: the timer it sets
// halves every lateHalfLife until a later payload sets it again.
const lateHalfLife = 5 * time.Second

// graftLate is the latest large lateness and when it was seen.
type graftLate struct {
	d  time.Duration
	at time.Duration
}

// current returns the lateness remembered at now: d halved once per
// lateHalfLife since it was seen.
func (l graftLate) current(now time.Duration) time.Duration {
	if l.d <= 0 {
		return 0
	}
	halvings := (now - l.at) / lateHalfLife
	if halvings >= 62 {
		return 0
	}
	return l.d >> uint(halvings)
}

// noteLate records a payload that came over the tree d after its first
// announcement, without a graft.
func (n *Node) noteLate(d time.Duration) {
	if n.cfg.GraftTimeoutMin <= 0 || d <= 0 {
		return
	}
	t := &n.tree
	if d >= t.late.current(n.now) {
		t.late = graftLate{d: d, at: n.now}
	}
}

// graftTimeout is how long a newly announced missing message waits for
// the tree before its first graft.
func (n *Node) graftTimeout() time.Duration {
	if n.cfg.GraftTimeoutMin <= 0 {
		return n.cfg.GraftTimeout
	}
	return min(max(2*n.tree.late.current(n.now), n.cfg.GraftTimeoutMin), n.cfg.GraftTimeout)
}

// graftRetry is the wait before each further graft: GraftRetry, scaled as
// the timer is.
func (n *Node) graftRetry() time.Duration {
	if n.cfg.GraftTimeoutMin <= 0 {
		return n.cfg.GraftRetry
	}
	// In float64: the product of two durations in nanoseconds overflows
	// int64 once both pass about 3 s (a 10 s timeout and a 5 s retry
	// gave 1 ms, every retry back to back).
	scaled := float64(n.cfg.GraftRetry) * float64(n.graftTimeout()) / float64(n.cfg.GraftTimeout)
	return max(time.Duration(scaled), time.Millisecond)
}

// GraftTimer returns the wait a message announced now would have before
// its first graft (GraftTimeout unless the timer adapts).
func (n *Node) GraftTimer() time.Duration { return n.graftTimeout() }
