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
// that we lack, the room remembers the highest, who showed it and when
// (a tail mark). Half an interval later or more (as for a gap pull's
// retries; the anti-entropy loop looks every half interval, at its rounds
// and between them) a node that still lacks them pulls them from that
// peer, as a gap pull naming the seqs (answered in full, not as a round);
// the mark is pulled maxTailPulls times in all, each half an interval
// apart, and forgotten once the seqs came. Whatever arrives on time by
// the tree or the push costs nothing but the mark. A hot origin's repair
// that left out such fresh messages is followed by the sender's status
// (handleStatus), so the peer asking learns what to pull. A message held
// back for a causal dependency marks the dependency the same way
// (noteHeldDepsLocked): its signed deps say the seqs exist; and while it
// is held each look of the loop marks it again once its pulls ran out
// (noteBlockersLocked).

import (
	"slices"
	"strings"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// tailMark is what a room remembers of a status that showed an origin's
// seqs it lacked: the highest (seq), the peer that holds them and when it
// said so (since, or the last pull). For a causal dependency that holds a
// message back, alt is that message's origin, which had delivered the
// seqs before it sent the message: every other pull goes to it; and by
// is that origin for every mark a dependency made (noteHeldDepsLocked,
// noteBlockersLocked), "" for a status's, so one origin's messages are
// held to maxDepMarksPerOrigin marks.
type tailMark struct {
	seq   uint64
	peer  string
	alt   string
	by    string
	since time.Time
	pulls uint8
}

// maxTailMarks bounds the origins a room keeps tail marks for: a status
// names at most maxVector origins, and each due mark costs a pull.
const maxTailMarks = 64

// maxHeldDepMarks is how many marks beyond maxTailMarks a room keeps for
// the dependencies that hold its messages back (noteHeldDepsLocked,
// noteBlockersLocked): statuses showing many origins' messages in flight
// (a group's warm-up, one message from each of 200 members) fill the
// maxTailMarks slots, and a dependency that nothing else pulls must not
// be refused its mark then.
const maxHeldDepMarks = 16

// maxDepMarksPerOrigin bounds the marks the dependencies of one origin's
// held messages hold (tailMark.by), a quarter of the reserve: a member
// whose messages name seqs nobody sent cannot fill it, and an honest
// message that lacks more dependencies has them pulled four at a time.
const maxDepMarksPerOrigin = maxHeldDepMarks / 4

// maxTailMarksPerPeer bounds the marks one peer's statuses hold: a member
// that claims seqs nobody sent, for many origins, must not take every
// slot (its marks are pulled from it alone, and are forgotten after
// maxTailPulls pulls).
const maxTailMarksPerPeer = 16

// maxTailPulls bounds the pulls of one mark, in all: its peer said it
// holds the seqs, so a pull fails only when it or its answer is lost (or
// the peer left, or lied); the rounds' sweep and the next statuses take
// over after that, and for a dependency that still holds a message back
// the next look's new mark (noteBlockersLocked).
const maxTailPulls = 6

// noteTailsLocked records, for each range of lack (what a status from
// peer showed that we lack), a tail mark at now. Only for an origin that
// is a member of the room, a member identity (memberkeys.go: the room's
// member view lags a new member's room set, which under loss a peer may
// lack for seconds, and then its first message, with no successor, was
// pulled by nothing but the rounds' slow sweep) or whose messages we
// hold (a status may name any ID), never our own; and not over a mark
// that still waits for its first pull. A mark pulled without its seqs coming is taken over by a
// peer that shows them too, keeping its pulls and time: a member whose
// status claimed seqs it cannot give holds a mark for at most its first
// pull. Caller holds r.mu.
func (r *room) noteTailsLocked(lack []msglog.SeqRange, peer string, now time.Time) {
	byPeer := -1 // the marks peer holds, counted when first needed
	for _, rg := range lack {
		if rg.Origin == r.env.id.ID {
			continue // we know our own stream; a higher entry is a lie or our unsynced tail
		}
		if _, member := r.members[rg.Origin]; !member && r.m.WantOf(rg.Origin) <= 1 && !r.env.isMember(rg.Origin) {
			continue
		}
		r.markTailLocked(rg, peer, "", "", now, &byPeer, maxTailMarks, maxTailMarksPerPeer)
	}
}

// markTailLocked records one tail mark (for noteTailsLocked,
// noteHeldDepsLocked and noteBlockersLocked), if the room holds fewer
// than limit marks and peer fewer than perPeer, counting in *byPeer the
// marks peer holds (counted first when negative). Caller holds r.mu.
func (r *room) markTailLocked(rg msglog.SeqRange, peer, alt, by string, now time.Time, byPeer *int, limit, perPeer int) bool {
	m, ok := r.tails[rg.Origin]
	if ok && r.m.WantOf(rg.Origin) <= m.seq {
		if m.pulls > 0 && m.peer != peer && rg.To >= r.m.WantOf(rg.Origin) {
			m.peer, m.seq = peer, min(m.seq, rg.To)
			r.tails[rg.Origin] = m
		}
		return false // the older mark still waits: it is pulled first
	}
	if *byPeer < 0 {
		*byPeer = 0
		for _, m := range r.tails {
			if m.peer == peer {
				*byPeer++
			}
		}
	}
	if *byPeer >= perPeer || !ok && len(r.tails) >= limit {
		return false
	}
	*byPeer++
	r.tails[rg.Origin] = tailMark{seq: rg.To, peer: peer, alt: alt, by: by, since: now}
	return true
}

// depMarksLocked counts the marks the dependencies of each origin's
// messages hold (tailMark.by). Caller holds r.mu.
func (r *room) depMarksLocked() map[string]int {
	byOrigin := map[string]int{}
	for _, m := range r.tails {
		if m.by != "" {
			byOrigin[m.by]++
		}
	}
	return byOrigin
}

// noteHeldDepsLocked leaves a tail mark for each causal dependency, on
// another origin, that holds back a message of envs (just fed, from
// peer): the signed envelope says its origin had delivered the seqs, so
// they exist, and nothing else would show they are missing (a lost
// message that is its origin's last has no successor; in the bench, one
// peer's warm-up message lost at a few peers held every later message of
// the sender back there). At most maxDepMarksPerOrigin marks are made
// for the messages of one origin: a member whose messages name seqs
// nobody sent must not fill the reserved slots. Caller holds r.mu.
func (r *room) noteHeldDepsLocked(envs []*chatpb.Envelope, peer string, now time.Time) {
	if peer == "" {
		return
	}
	byPeer := -1
	var byOrigin map[string]int // depMarksLocked, when first needed
	for _, env := range envs {
		// A dep the machine still needs holds env back (the machine
		// takes each origin's seqs in order first, so WantOf passed env
		// already; its causal wait is on the deps). The machine kept only
		// deps on member identities (feedLocked), so unlike a status's
		// claims these need no room membership: a member's warm-up
		// message that was lost named by the next message of another.
		for _, d := range env.Deps {
			if d.Origin == env.Origin || d.Origin == r.env.id.ID {
				continue // its own origin's: a gap pull's; ours: we hold them
			}
			next := r.m.WantOf(d.Origin)
			if next > d.Seq {
				continue
			}
			if byOrigin == nil {
				byOrigin = r.depMarksLocked()
			}
			if byOrigin[env.Origin] >= maxDepMarksPerOrigin {
				break
			}
			alt := env.Origin
			if alt == peer {
				alt = ""
			}
			if r.markTailLocked(msglog.SeqRange{Origin: d.Origin, From: next, To: d.Seq}, peer, alt, env.Origin, now, &byPeer, maxTailMarks+maxHeldDepMarks, maxTailMarksPerPeer) {
				byOrigin[env.Origin]++
			}
		}
	}
}

// noteBlockersLocked marks, at each look of the anti-entropy loop, the
// dependencies that still hold messages back (order.Machine.Blockers:
// each origin once, at the lowest seq a held message that may still make
// a mark needs) and have no mark. noteHeldDepsLocked marks them when the
// held message comes, and only then: a dependency is named once, by its origin's first message
// after it (compact deps), so a mark refused for want of a slot, or
// forgotten after maxTailPulls pulls in vain, left that message and every
// later one of its origin held for good (an N=200 run under loss ended
// with a peer that had waited 35 s for another member's warm-up
// message). These marks are pulled from the held message's origin, which
// delivered the seqs before it sent the message, and from no third peer;
// only while that origin is in the room's member view (a departed one
// cannot be asked: the rounds and statuses repair); and at most
// maxDepMarksPerOrigin held for one origin's messages (tailMark.by, the
// marks made when they came included; its statuses' marks are not), so a
// member whose messages name seqs nobody sent is pulled a few times each
// half interval and cannot take every reserved slot. Caller holds r.mu.
func (r *room) noteBlockersLocked(now time.Time) {
	byOrigin := r.depMarksLocked()
	want := func(by string) int {
		if _, member := r.members[by]; !member || by == r.env.id.ID {
			return 0
		}
		return maxDepMarksPerOrigin - byOrigin[by]
	}
	for _, b := range r.m.Blockers(want) {
		if _, ok := r.tails[b.Origin]; ok || b.Origin == r.env.id.ID || byOrigin[b.By.Origin] >= maxDepMarksPerOrigin {
			continue
		}
		byPeer := -1
		rg := msglog.SeqRange{Origin: b.Origin, From: r.m.WantOf(b.Origin), To: b.Through}
		if r.markTailLocked(rg, b.By.Origin, "", b.By.Origin, now, &byPeer, maxTailMarks+maxHeldDepMarks, maxTailMarksPerPeer) {
			byOrigin[b.By.Origin]++
		}
	}
}

// dueTailPullsLocked returns a pull for each tail mark noted (or pulled)
// at least after before now whose seqs the machine still lacks, the
// oldest first, at most limit of them, and forgets the marks whose seqs
// came or that were pulled maxTailPulls times. An origin whose holes a
// gap pull asked for less than after ago waits (gappull.go: the holes are
// the same, and both are answered in full). A tenth of after is allowed
// for the ticker's jitter. Caller holds r.mu.
func (r *room) dueTailPullsLocked(now time.Time, after time.Duration, limit int) []gapPull {
	type due struct {
		origin string
		mark   tailMark
	}
	wait := after - after/10
	var dues []due
	for origin, m := range r.tails {
		if now.Sub(m.since) < wait {
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
		if g, ok := r.gapPulls[d.origin]; len(pulls) >= limit || ok && now.Sub(g.last) < wait {
			continue // due again at the next look
		}
		peer := d.mark.peer
		if d.mark.alt != "" && d.mark.pulls%2 == 1 {
			// The peer that brought the held message may hold it back
			// too (a relay passes a message on before its deps came);
			// its origin delivered the deps before sending it.
			peer = d.mark.alt
		}
		d.mark.pulls++
		d.mark.since = now
		r.tails[d.origin] = d.mark
		pulls = append(pulls, gapPull{peer: peer, origin: d.origin, missing: missing})
	}
	return pulls
}

// duePullsLocked returns the gap pulls to retry (retryGapPullsLocked)
// and the tail pulls that are due at now, at least after since the last
// of each. Caller holds r.mu.
func (r *room) duePullsLocked(now time.Time, after time.Duration) (retries, tails []gapPull) {
	r.noteBlockersLocked(now)
	return r.retryGapPullsLocked(now, after), r.dueTailPullsLocked(now, after, maxRetryPulls)
}

// sendPulls sends a room's due pulls: each retried gap pull to the peer
// gapPullPeer names (partner, the anti-entropy partner, in tree mode),
// each tail pull to the peer whose status or message showed it holds
// the seqs.
func (n *Node) sendPulls(roomName string, ids []string, partner string, tree bool, retries, tails []gapPull) {
	for _, pull := range retries {
		pull.peer = gapPullPeer(pull.origin, partner, slices.Contains(ids, pull.origin), tree)
		if n.sendGapPull(pull, roomName) {
			n.stats.gapPulls.Add(1)
		}
	}
	for _, pull := range tails {
		if n.sendGapPull(pull, roomName) {
			n.stats.tailPulls.Add(1)
		}
	}
}

// sendDuePulls sends the pulls that are due in every joined room, to a
// partner chosen as a round's: the anti-entropy loop's turn between two
// rounds.
func (n *Node) sendDuePulls() {
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		var ids []string
		var retries, tails []gapPull
		if r.state.fed() {
			ids = r.memberIDsLocked()
			if len(ids) > 0 {
				retries, tails = r.duePullsLocked(time.Now(), n.cfg.AntiEntropyInterval/2)
			}
		}
		r.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		n.sendPulls(r.name, ids, n.antiEntropyPartner(ids), n.ovl.treeMode(), retries, tails)
	}
}
