package chat

// Gap pulls that name their holes (protocol 9). A pushed or relayed
// message whose seq is past the next one its origin needs shows a gap, and
// the receiver pulls that origin at once (room.receive) from the peer it
// came from. Until protocol 9 the pull was a status of that one origin,
// which says where the gap starts and not where it ends, so the answer
// carried every message of the origin after the gap: the one that showed
// it, which the puller had, and the ones behind it still on their way by
// the tree. Under 20 % loss that made about 0.7 copies per delivery at 30
// to 200 peers (docs/BENCHMARKS.md, "Issue 16, fourth stop: loss"). Now
// the pull names the seqs it lacks below the highest one the ordering
// machine holds back of that origin (order.Machine.Gaps, at most
// maxPullSeqs; when the machine holds none, having refused the message,
// the seqs between the gap and the message that showed it), and the
// answer carries those and nothing else. The
// messages after the highest held one are not asked for: a lost one shows
// its own gap when its successor arrives, and the last of a stream is
// repaired by the tree's graft or by anti-entropy.

import (
	"slices"
	"strings"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// maxPullSeqs bounds Status.missing: about 3 bytes each on the wire at the
// seqs of a long stream, so a pull stays under 1 KB, and a receiver reads
// at most this many messages to answer one.
const maxPullSeqs = 256

// sendGapPull sends pull to its peer: a status of the one origin with our
// contiguous prefix and the seqs above it we lack. Holes the log already
// fills (the machine lags the log; anti-entropy's lagsLogLocked feeds it
// again) are not asked for, and when none is left no pull goes. It
// reports whether the pull was queued.
func (n *Node) sendGapPull(pull gapPull, roomName string) bool {
	lo, hi := pullRange(pull.origin)
	contig, err := n.log.Contiguous(n.ctx, roomName, pull.origin)
	if err != nil {
		n.logger.Printf("gap pull #%s %s: %v", roomName, pull.origin, err)
		return false
	}
	contig = min(contig, MaxSeq) // as in depsIn
	missing := slices.DeleteFunc(slices.Clone(pull.missing), func(s uint64) bool { return s <= contig || s > MaxSeq })
	if len(missing) == 0 {
		return false
	}
	p := n.link(pull.peer, true)
	if p == nil {
		return false
	}
	st := &chatpb.Status{Room: roomName, FromOrigin: lo, UntilOrigin: hi, Missing: missing}
	if contig > 0 {
		st.Vector = []*chatpb.Dep{{Origin: pull.origin, Seq: contig}}
	}
	f := statusFrame(st)
	if !p.enqueue(f) {
		return false // queue full: the next message behind the gap pulls again
	}
	n.stats.statusSent.Add(1)
	return true
}

// gapPullPeer returns the peer a pull of origin's holes goes to, the one
// rule of the first pull (room.receive) and of the rounds' retries
// (antientropy.go): the origin itself when it is a member of the room
// (member) and messages are pushed from their origin (not tree, below the
// tree threshold), as it holds every message it sent; else other: the
// peer the gap came from for a first pull, the round's partner for a
// retry (not the peer asked before: it lacked the message, or the pull
// or its answer was lost).
func gapPullPeer(origin, other string, member, tree bool) string {
	if member && !tree {
		return origin
	}
	return other
}

// retryGapPullsLocked returns a pull, without a peer, for each origin
// pulled before (r.gapPulls) whose holes are still open and whose last
// pull was at least after before now, the longest waiting first and at
// most maxRetryPulls of them, and marks them pulled now; it forgets the
// origins whose holes closed. Caller holds r.mu.
func (r *room) retryGapPullsLocked(now time.Time, after time.Duration) []gapPull {
	type due struct {
		origin string
		last   time.Time
	}
	var dues []due
	for origin, m := range r.gapPulls {
		if now.Sub(m.last) < after-after/10 { // a tenth for the ticker's jitter
			continue
		}
		if len(r.m.Gaps(origin, 1)) == 0 || m.retries >= maxGapRetries {
			// Closed; or no partner had it for maxGapRetries rounds (a
			// hole nobody may ever fill: its holder left, or it was never
			// sent): the rounds' sweep and hot origins are left with it.
			delete(r.gapPulls, origin)
			continue
		}
		dues = append(dues, due{origin, m.last})
	}
	slices.SortFunc(dues, func(a, b due) int {
		if c := a.last.Compare(b.last); c != 0 {
			return c
		}
		return strings.Compare(a.origin, b.origin)
	})
	var pulls []gapPull
	for _, d := range dues[:min(len(dues), maxRetryPulls)] {
		r.gapPulls[d.origin] = gapMark{last: now, retries: r.gapPulls[d.origin].retries + 1}
		pulls = append(pulls, gapPull{origin: d.origin, missing: r.m.Gaps(d.origin, maxPullSeqs)})
	}
	return pulls
}

// gapMark is a room's last pull of an origin's holes: when (zero: none
// yet, a gap a repair showed), and how many of the rounds' retries
// followed the last pull a message's gap made.
type gapMark struct {
	last    time.Time
	retries uint8
}

// maxGapRetries bounds the retries (every half interval: at the rounds
// and between them) that pull one origin's holes again after the last
// pull a gap made, 10 s of them: each costs a partner up to maxPullSeqs
// log reads, for a hole that may have no holder left.
const maxGapRetries = 20

// maxRetryPulls bounds the pulls a room's anti-entropy round sends again:
// each reads up to maxPullSeqs messages at the peer it asks, and after a
// partition thousands of origins may hold messages back, which the
// round's status repairs anyway.
const maxRetryPulls = 16

// validPull reports whether a status that carries Status.missing is a
// well-formed gap pull (chat.proto): one origin's range, no digest, not a
// reply and asking none, at most maxPullSeqs seqs in increasing order,
// each above the sender's entry theirs and at most MaxSeq.
func validPull(st *chatpb.Status, theirs msglog.VersionVector) bool {
	lo, hi := pullRange(st.FromOrigin)
	if st.UntilOrigin != hi || st.FromOrigin != lo || lo == "" || len(st.Digest) > 0 || st.Reply || st.WantReply {
		return false
	}
	if len(st.Missing) > maxPullSeqs {
		return false
	}
	prev := theirs[lo]
	for _, s := range st.Missing {
		if s <= prev || s > MaxSeq {
			return false
		}
		prev = s
	}
	return true
}

// statusVector reads our version vector to answer st (checked) with: for
// a gap pull, which names one origin, that origin's entry alone (reading
// the whole vector cost a pass over every origin of the room for it). The
// entry is Contiguous, as sendGapPull's: while Bolt applies its memtable
// it may be lower than the vector's, never higher, and a seq above it is
// then read one by one (sendPullRepair; our own not at all, the puller
// asks again).
func (n *Node) statusVector(st *chatpb.Status) (msglog.VersionVector, error) {
	if len(st.Missing) == 0 {
		return n.log.VersionVector(n.ctx, st.Room)
	}
	have, err := n.log.Contiguous(n.ctx, st.Room, st.FromOrigin)
	if err != nil {
		return nil, err
	}
	return msglog.VersionVector{st.FromOrigin: have}, nil
}

// sendPullRepair answers a gap pull from peer for origin's seqs (valid:
// validPull) with the messages of them this node holds: those up to have,
// our contiguous prefix of origin (clamped to what may leave), read as
// ranges with buildRepair, floors included when pruned; those above it
// one by one, if stored (never our own: above the clamp they may not be
// durable yet). Every other message of origin stays out.
func (n *Node) sendPullRepair(peer, roomName, origin string, seqs []uint64, have uint64) {
	p := n.peer(peer)
	if p == nil {
		return
	}
	var ranges []msglog.SeqRange
	var above []uint64
	for _, s := range seqs {
		switch {
		case s > have:
			above = append(above, s)
		case len(ranges) > 0 && ranges[len(ranges)-1].To+1 == s:
			ranges[len(ranges)-1].To = s
		default:
			ranges = append(ranges, msglog.SeqRange{Origin: origin, From: s, To: s})
		}
	}
	var reps []*chatpb.Repair
	budget := n.cfg.AntiEntropyBatch
	if len(ranges) > 0 {
		reps, _ = n.buildRepair(roomName, ranges, time.Time{})
		for _, rp := range reps {
			budget -= len(rp.Envelopes)
		}
	}
	if origin != n.id.ID && len(above) > 0 && budget > 0 {
		cur := &chatpb.Repair{Room: roomName}
		size := 0
		for _, s := range above[:min(len(above), budget)] {
			rec, err := n.log.Get(n.ctx, roomName, origin, s)
			if err != nil {
				continue // not here either: the puller asks someone else later
			}
			env, err := decodeStored(rec.Data)
			if err != nil {
				n.logger.Printf("repair #%s: stored %s/%d unreadable: %v", roomName, origin, s, err)
				continue
			}
			if size+len(rec.Data) > maxRepairFrame && len(cur.Envelopes) > 0 {
				reps = append(reps, cur)
				cur, size = &chatpb.Repair{Room: roomName}, 0
			}
			cur.Envelopes = append(cur.Envelopes, env)
			size += len(rec.Data) + 16
		}
		if len(cur.Envelopes) > 0 {
			reps = append(reps, cur)
		}
	}
	for _, rp := range reps {
		if p.enqueue(repairFrame(rp)) {
			n.stats.repairSent.Add(uint64(len(rp.Envelopes)))
		}
	}
}
