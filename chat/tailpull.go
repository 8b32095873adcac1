package chat

// Tail pulls. A gap pull (gappull.go) needs a successor: a message past
// the next one its origin needs shows the hole, and the receiver pulls it.
// The last messages of a burst have none, so a peer that missed them (a
// lost push, a lost graft, a tree link that broke) had only the tree's
// grafts and the rounds left, and a round's repair leaves out what its
// sender stored in the last inFlightAge intervals. At 200 peers under
// 20 % loss, with every frame of a graft or of a round's exchange lost
// one time in five, the run's last message was still missing at one to
// five peers 5 s after it was sent.
//
// A status tells what its sender holds. When one shows seqs of an origin
// that we lack and hold nothing of, the room remembers the highest, who
// showed it and when (a tail mark). The next round at least half an
// interval later (as for a gap pull's retries) that still lacks them
// pulls them from that peer, as a gap pull
// naming the seqs (answered in full, not as a round); the mark is then
// pulled again at most maxTailPulls times, each a round apart, and
// forgotten once the seqs came. Whatever arrives on time by the tree or
// the push costs nothing but the mark. A round's repair that left out
// such fresh messages is followed by the sender's status
// (handleStatus), so the peer asking learns what to pull.

import (
	"slices"
	"strings"
	"time"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// tailMark is what a room remembers of a status that showed an origin's
// seqs it lacked: the highest (seq), the peer that holds them and when it
// said so (since, or the last pull).
type tailMark struct {
	seq   uint64
	peer  string
	since time.Time
	pulls uint8
}

// maxTailMarks bounds the origins a room keeps tail marks for: a status
// names at most maxVector origins, and each due mark costs a pull.
const maxTailMarks = 64

// maxTailPulls bounds the pulls of one mark: its peer said it holds the
// seqs, so a pull fails only when it or its answer is lost (or the peer
// left); the rounds' sweep and the next statuses take over after that.
const maxTailPulls = 3

// noteTailsLocked records, for each range of lack (what a status from
// peer showed that we lack; never our own origin), a tail mark at now,
// unless the origin has one not yet resolved. Caller holds r.mu.
func (r *room) noteTailsLocked(lack []msglog.SeqRange, self, peer string, now time.Time) {
	for _, rg := range lack {
		if rg.Origin == self {
			continue // we know our own stream; a higher entry is a lie or our unsynced tail
		}
		if m, ok := r.tails[rg.Origin]; ok && r.m.WantOf(rg.Origin) <= m.seq {
			continue // the older mark still waits: it is pulled first
		}
		if _, ok := r.tails[rg.Origin]; !ok && len(r.tails) >= maxTailMarks {
			continue
		}
		r.tails[rg.Origin] = tailMark{seq: rg.To, peer: peer, since: now}
	}
}

// dueTailPullsLocked returns a pull for each tail mark noted (or pulled)
// at least after before now whose seqs the machine still lacks, the
// oldest first, at most limit of them, leaving out the origins of busy
// (the round's retried gap pulls, which ask for the same holes), and
// forgets the marks whose seqs came or that were pulled maxTailPulls
// times. Caller holds r.mu.
func (r *room) dueTailPullsLocked(now time.Time, after time.Duration, limit int, busy []gapPull) []gapPull {
	type due struct {
		origin string
		mark   tailMark
	}
	var dues []due
	for origin, m := range r.tails {
		if now.Sub(m.since) < after {
			continue
		}
		dues = append(dues, due{origin, m})
	}
	slices.SortFunc(dues, func(a, b due) int {
		if c := a.mark.since.Compare(b.mark.since); c != 0 {
			return c
		}
		return strings.Compare(a.origin, b.origin)
	})
	var pulls []gapPull
	for _, d := range dues {
		missing := r.m.Lacks(d.origin, d.mark.seq, maxPullSeqs)
		if len(missing) == 0 || d.mark.pulls >= maxTailPulls {
			delete(r.tails, d.origin)
			continue
		}
		if len(pulls) >= limit || slices.ContainsFunc(busy, func(p gapPull) bool { return p.origin == d.origin }) {
			continue // due again next round
		}
		d.mark.pulls++
		d.mark.since = now
		r.tails[d.origin] = d.mark
		pulls = append(pulls, gapPull{peer: d.mark.peer, origin: d.origin, missing: missing})
	}
	return pulls
}
