package chat

// Anti-entropy repairs whatever eager push missed (frames dropped by a full
// queue, a broken stream, a partition, a crash, a late join), in the manner
// of Peerster's status/rumor exchange:
//
//   - The node announces its room set (RoomSet frame: room membership is
//     state each peer states itself over its authenticated streams) to
//     every linked peer when it changes and when a kept link opens. Every
//     AntiEntropyInterval it announces it again to the peers whose last
//     announcement did not fit in their queue or changed since, and to
//     each other peer every roomSetRefresh rounds or so (staggered), so
//     that one lost otherwise is repaired; and for each joined room it
//     sends its version vector (Status) to one random live member of the
//     room: in tree mode a neighbour, and a slice of the vector of at most
//     statusSliceEntries origins, the next one each round. (Announcing to every peer every round cost N² frames per
//     interval in an N-member group: half of a 50-member group's idle CPU.)
//   - A peer that gets a Status answers with a Repair holding what it has
//     and the sender lacks, in seq order per origin, at most
//     AntiEntropyBatch messages per round (the rest follows in later
//     rounds); if the sender has something it lacks, it also answers with
//     its own Status (reply), so one exchange repairs both directions.
//     A round's repair leaves out what the peer stored in the last
//     inFlightAge intervals (still on its way by push or tree, as a rule);
//     a join's catch-up gets everything, a gap pull the seqs it names
//     (gappull.go).
//   - Repaired messages are verified, stored and ordered like pushed ones,
//     but never forwarded.
//
// Everything travels on the existing per-peer send queues, which are
// bounded: when a queue is full the frame is dropped (counted in
// Stats.QueueDrops) and the next round sends it again. Nothing here grows
// with the backlog: a round reads at most AntiEntropyBatch messages from
// the log.

import (
	"bytes"
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// antiEntropyLoop runs the periodic rounds until Shutdown, and between
// two rounds the gap and tail pulls that are due (gappull.go,
// tailpull.go): what a peer that missed one of a burst's last messages
// waits for, so they come every half interval.
func (n *Node) antiEntropyLoop() {
	tick := time.NewTicker(n.cfg.AntiEntropyInterval / 2)
	defer tick.Stop()
	sent := map[*peerConn]roomSetSent{} // owned by this loop
	cursor := map[string]string{}       // per room, where the next status slice starts (tree mode)
	var round, ticks uint64
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := n.active(); err != nil {
			continue // left the group: nothing to exchange
		}
		ticks++
		if ticks%2 == 1 {
			n.sendDuePulls()
			continue
		}
		round++
		n.antiEntropyRound(sent, cursor, round)
	}
}

// antiEntropyRound runs one round: refresh our room set where due (see
// refreshRooms), start the restores that are due (restore.go), then per
// joined room refill the machine if it refused messages and send a status
// to one random live member: the whole version vector, or in tree mode
// the next slice of it (sendStatusSlice; cursor, owned by the loop, says
// where each room's next slice starts).
func (n *Node) antiEntropyRound(sent map[*peerConn]roomSetSent, cursor map[string]string, round uint64) {
	n.refreshRooms(sent, round)
	n.tryRestore()
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		if !r.state.fed() { // parted, or waiting for its restore
			r.mu.Unlock()
			continue
		}
		// Membership is synced on every change (syncMembersLocked skips
		// the work when nothing it follows from changed); every
		// memberSafetyRounds rounds the view is computed again whatever
		// the generations say: the safety net.
		n.syncMembersForced(r, round%memberSafetyRounds == 0)
		if r.refused || r.lagsLogLocked(n.ctx) {
			r.catchUpLocked(n.ctx)
		}
		ids := r.memberIDsLocked()
		now := time.Now()
		hot := r.nextHotLocked(now, hotWindow*n.cfg.AntiEntropyInterval)
		var retries, tails []gapPull
		if len(ids) > 0 {
			retries, tails = r.duePullsLocked(now, n.cfg.AntiEntropyInterval/2)
		}
		r.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		partner := n.antiEntropyPartner(ids)
		tree := n.ovl.treeMode()
		n.sendPulls(r.name, ids, partner, tree, retries, tails)
		if tree {
			cursor[r.name] = n.sendStatusSlice(partner, r.name, cursor[r.name], hot)
		} else {
			n.sendStatus(partner, r.name, false, false)
		}
	}
	if len(cursor) > 0 {
		maps.DeleteFunc(cursor, func(name string, _ string) bool { return n.joinedRoom(name) == nil })
	}
}

// memberSafetyRounds is how often (in rounds) a round computes each
// room's members again even when no generation changed.
const memberSafetyRounds = 10

// statusSliceEntries bounds the vector entries of a status a tree-mode
// round sends: about 22 bytes each, so a round's status stays under
// 1 KB whatever the number of origins in the room. The whole vector of a
// room where 50 members spoke was 1.1 KB, sent (and often answered) by
// every peer every round: 74 bytes per delivery at 50 peers, growing
// with N. In tree mode the tree's grafts repair a lost message first;
// anti-entropy, the safety net, sweeps the vector in ceil(origins/40)
// rounds instead of one.
const statusSliceEntries = 40

// sendStatusSlice sends peer the part of room's version vector for the
// origins from lo (statusSlice), and our status of origin hot alone
// unless hot is "" (hotorigins.go), and returns where the next slice
// starts ("" after the last: the sweep starts again).
func (n *Node) sendStatusSlice(peer, roomName, lo, hot string) string {
	p := n.link(peer, true)
	if p == nil {
		return lo
	}
	vv, err := n.log.VersionVector(n.ctx, roomName)
	if err != nil {
		n.logger.Printf("status #%s: %v", roomName, err)
		return lo
	}
	st, next := statusSlice(roomName, vv, lo, statusSliceEntries)
	// Its digest stands for the slice (statusdigest.go): a receiver with
	// another vector there answers with its own, and repairs go on.
	st.Digest, st.Vector = digestDeps(st.Vector), nil // the slice is the range [from, until)
	f := statusFrame(st)
	if !p.enqueue(f) {
		return lo // queue full: the same slice next round
	}
	n.stats.statusSent.Add(1)
	if hot != "" {
		// The hot origin's status, from the same read of the vector
		// (hotorigins.go).
		hlo, hhi := pullRange(hot)
		if p.enqueue(statusFrame(&chatpb.Status{Room: roomName, FromOrigin: hlo, UntilOrigin: hhi, Vector: depsIn(vv, hlo, hhi)})) {
			n.stats.statusSent.Add(1)
		}
	}
	return next
}

// statusSlice returns the status of the origins in [lo, next) where next
// is the origin that follows the first k entries of vv from lo, or "" (the
// range then runs to the end) when no more than k remain. Consecutive
// slices, from "" until next is "" again, cover every origin once,
// including those vv lacks (a peer that has their messages repairs them).
func statusSlice(roomName string, vv msglog.VersionVector, lo string, k int) (*chatpb.Status, string) {
	deps := depsIn(vv, lo, "")
	next := ""
	if len(deps) > k {
		next = deps[k].Origin
		deps = deps[:k:k]
	}
	return &chatpb.Status{Room: roomName, Vector: deps, FromOrigin: lo, UntilOrigin: next}, next
}

// antiEntropyPartner picks the room member to send a room's status to:
// in tree mode one of the overlay neighbours in the room when there is one
// (their links are open anyway, and what the tree missed was most likely
// missed on the way from them), else any member of the room (over a link
// opened for it, which closes when idle).
func (n *Node) antiEntropyPartner(ids []string) string {
	slices.Sort(ids)
	if n.ovl.treeMode() {
		near := slices.DeleteFunc(n.ovl.neighbours(), func(p string) bool {
			_, ok := slices.BinarySearch(ids, p)
			return !ok
		})
		if len(near) > 0 {
			slices.Sort(near)
			return near[rand.IntN(len(near))]
		}
	}
	return ids[rand.IntN(len(ids))]
}

// lagsLogLocked reports whether the machine holds messages back for one
// that the log already has: stored, and never fed or fed and dropped. The
// status we send says we have it, so no peer would ever repair it, and
// the room would wait for good (chat/sim found rooms "waiting for b:2"
// with b's stream stored through 15 after restarts); feeding the machine
// from the log again repairs that, whatever the cause. Checked only when
// something is held back, once per anti-entropy round. Caller holds r.mu.
func (r *room) lagsLogLocked(ctx context.Context) bool {
	if r.m.Stats().Held == 0 {
		return false
	}
	vv, err := r.env.log.VersionVector(ctx, r.name)
	if err != nil {
		return false
	}
	for o, c := range vv {
		if want := r.m.WantOf(o); c >= want {
			r.env.logger.Printf("#%s: %s/%d is stored and the ordering still needs it: fed again from the log", r.name, o, want)
			return true
		}
	}
	return false
}

// sendStatus sends room's version vector to peer (see Status in
// chat.proto for reply and wantReply), in as many frames as it takes.
func (n *Node) sendStatus(peer, roomName string, reply, wantReply bool) {
	n.sendStatusRange(peer, roomName, reply, wantReply, "", "")
}

// sendStatusRange sends the part of room's version vector for the origins
// in [lo, hi) ("" ends: unbounded), split by statusFrames.
func (n *Node) sendStatusRange(peer, roomName string, reply, wantReply bool, lo, hi string) {
	// On demand: in a large group the partner may be a member this node
	// keeps no link to (links.go).
	p := n.link(peer, true)
	if p == nil {
		return
	}
	vv, err := n.log.VersionVector(n.ctx, roomName)
	if err != nil {
		n.logger.Printf("status #%s: %v", roomName, err)
		return
	}
	n.sendStatusVector(p, roomName, vv, reply, wantReply, lo, hi)
}

// sendStatusVector sends to p our status of [lo, hi) with vv, our
// version vector as read by the caller (sendStatusRange).
func (n *Node) sendStatusVector(p *peerConn, roomName string, vv msglog.VersionVector, reply, wantReply bool, lo, hi string) {
	for _, st := range statusFrames(roomName, vv, lo, hi) {
		st.Reply, st.WantReply = reply, wantReply
		f := statusFrame(st)
		if !p.enqueue(f) {
			return // queue full: the next round sends it again
		}
		n.stats.statusSent.Add(1)
	}
}

// maxStatusEntries bounds the vector entries of one status frame: about
// 30 bytes each at most, so a frame stays near 60 KiB, under the frame
// limit and the receivers' maxVector, whatever the number of origins.
const maxStatusEntries = 2048

// statusFrames splits the entries of vv for the origins in [lo, hi) into
// statuses of at most maxStatusEntries, covering consecutive ranges (the
// first from lo, the last until hi). An empty range gives one empty
// status (it still says "I hold nothing there").
func statusFrames(roomName string, vv msglog.VersionVector, lo, hi string) []*chatpb.Status {
	deps := depsIn(vv, lo, hi)
	var out []*chatpb.Status
	from := lo
	for {
		k := min(len(deps), maxStatusEntries)
		st := &chatpb.Status{Room: roomName, Vector: deps[:k:k], FromOrigin: from, UntilOrigin: hi}
		deps = deps[k:]
		if len(deps) > 0 {
			st.UntilOrigin = deps[0].Origin
		}
		out = append(out, st)
		if len(deps) == 0 {
			return out
		}
		from = deps[0].Origin
	}
}

// inRange reports whether origin lies in [lo, hi) ("" ends: unbounded).
func inRange(origin, lo, hi string) bool {
	return origin >= lo && (hi == "" || origin < hi)
}

// peer returns the outgoing connection to id, or nil.
func (n *Node) peer(id string) *peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

// vectorOf decodes a received vector, refusing oversized or malformed
// ones.
func vectorOf(deps []*chatpb.Dep) (msglog.VersionVector, bool) {
	if len(deps) > maxVector {
		return nil, false
	}
	vv := make(msglog.VersionVector, len(deps))
	for _, d := range deps {
		if d == nil || !hearsay.ValidPeerID(d.Origin) || d.Seq == 0 || d.Seq > MaxSeq {
			return nil, false
		}
		if _, dup := vv[d.Origin]; dup {
			return nil, false
		}
		vv[d.Origin] = d.Seq
	}
	return vv, true
}

// handleStatus answers a peer's status: a repair with what it lacks, and
// our own status when it has what we lack, both for the range of origins
// the status covers.
func (n *Node) handleStatus(st *chatpb.Status, from string) {
	n.stats.statusReceived.Add(1)
	lo, hi := st.FromOrigin, st.UntilOrigin
	theirs, ok := vectorOf(st.Vector)
	if ok && hi != "" && hi <= lo {
		ok = false
	}
	for o := range theirs {
		if !inRange(o, lo, hi) {
			ok = false
		}
	}
	if !ok || ValidateRoom(st.Room) != nil {
		n.stats.badFrames.Add(1)
		return
	}
	if len(st.Digest) > 0 && (len(st.Digest) != statusDigestLen || len(st.Vector) > 0 || st.Reply || st.WantReply) {
		n.stats.badFrames.Add(1) // a digest stands for the vector, and is never a reply
		return
	}
	if len(st.Missing) > 0 && !validPull(st, theirs) {
		n.stats.badFrames.Add(1) // a gap pull names one origin's holes (gappull.go)
		return
	}
	r := n.joinedRoom(st.Room)
	if r == nil {
		n.stats.unjoined.Add(1)
		return
	}
	if len(st.Digest) > 0 {
		n.handleStatusDigest(st, from)
		return
	}
	if st.Reply {
		r.noteStatus(from, theirs, hi == "")
	}
	if inRange(n.id.ID, lo, hi) {
		n.noteHeld(st.Room, from, theirs[n.id.ID]) // own message states (roomstate.go)
	}
	local, err := n.statusVector(st) // a gap pull's origin only (gappull.go)
	if err != nil {
		n.logger.Printf("status #%s: %v", st.Room, err)
		return
	}
	maps.DeleteFunc(local, func(o string, _ uint64) bool { return !inRange(o, lo, hi) })
	// Our own messages in the room's outbox are committed (so the log
	// shows them) but maybe not fsynced: none may leave before it is, or a
	// crash could reuse its seq. The vector was read before the lock, so
	// whatever it shows of ours is either released (durable) or still in
	// the outbox now.
	r.mu.Lock()
	r.clampUnsyncedLocked(local)
	// What from holds and we lack may be on its way; what is still
	// missing in a while is pulled from from (tailpull.go).
	lack := msglog.Missing(theirs, local)
	r.noteTailsLocked(lack, from, time.Now())
	r.mu.Unlock()
	leftOut := false
	if len(st.Missing) > 0 {
		// A gap pull: only the holes it names (gappull.go).
		n.sendPullRepair(from, st.Room, lo, st.Missing, local[lo])
	} else if miss := msglog.Missing(local, theirs); len(miss) > 0 {
		var fresh time.Time
		if isRound(st) {
			fresh = time.Now().Add(-inFlightAge * n.cfg.AntiEntropyInterval)
		}
		leftOut = n.sendRepair(from, st.Room, miss, fresh)
	}
	// A gap pull is not answered with our status when the puller holds
	// more than we do: it comes from a peer we relayed the origin's
	// messages to, and what we lack of them showed us its own gap, which
	// we pull ourselves; a status here had the puller repair us with
	// everything after our prefix, most of it already on its way to us
	// (N=100 under 20 % loss: about 1,300 repaired envelopes a run).
	// A hot origin's status (one origin) whose repair left out messages
	// still in flight is followed by our status too: from learns what we
	// hold, and pulls what has not come by then (tailpull.go). Only the
	// one-origin status: under steady traffic nearly every round's repair
	// leaves something out, and our status of a slice, or of the whole
	// vector in push mode, would cost a frame of up to a kilobyte a round.
	if !st.Reply && len(st.Missing) == 0 && (st.WantReply || leftOut && oneOrigin(st) || len(lack) > 0) {
		n.sendStatusRange(from, st.Room, true, false, lo, hi)
	}
}

// handleStatusDigest answers a status that carries its vector's digest
// (statusdigest.go; st is checked): nothing when our vector over its
// range has the same digest, but from then holds what we hold of our
// own messages; else our status of the range, which from answers with
// repairs and, if it lacks something we have, its own status.
func (n *Node) handleStatusDigest(st *chatpb.Status, from string) {
	lo, hi := st.FromOrigin, st.UntilOrigin
	local, err := n.log.VersionVector(n.ctx, st.Room)
	if err != nil {
		n.logger.Printf("status #%s: %v", st.Room, err)
		return
	}
	if bytes.Equal(statusDigest(local, lo, hi), st.Digest) {
		if inRange(n.id.ID, lo, hi) {
			n.noteHeld(st.Room, from, min(local[n.id.ID], MaxSeq)) // own message states (roomstate.go)
		}
		return
	}
	// Our status of the range, from the vector just read (on demand: the
	// sender may be a member this node keeps no link to).
	if p := n.link(from, true); p != nil {
		n.sendStatusVector(p, st.Room, local, false, false, lo, hi)
	}
}

// maxRepairFrame bounds the encoded envelopes and floors of one repair
// frame, below the chat frame limit.
const maxRepairFrame = maxFrameBytes - 8192

// maxRepairEnvelopes bounds the envelopes of one repair frame, as
// maxBatchEnvelopes a batch's: a receiver refuses more as a bad frame
// (before decoding them: checkFrameBounds), since an empty envelope is two
// bytes on the wire and some 400 decoded. A valid envelope has at least a
// 64-byte signature, a 32-byte key and a 16-byte origin, so maxRepairFrame
// already holds fewer than some 850 of them; buildRepair splits at the
// bound all the same.
const maxRepairEnvelopes = maxBatchEnvelopes

// maxFloorBytes is the most one floor adds to a repair frame: a Dep of a
// 16-byte origin and a 10-byte varint seq, with tags and lengths.
const maxFloorBytes = 32

// inFlightAge, in anti-entropy intervals, is how long after storing a
// message this node leaves it out of the repairs that answer a round's
// status (isRound): until then the peer most likely lacks it only because
// the push or the tree is still bringing it. Under load every message is
// in flight for a while: at N=50 with every peer sending (throughput),
// ~0.9 copies per delivery were repairs of messages still on their way
// (repaired envelopes ~30 times the new ones they brought), each a log
// read, a frame and a duplicate check, on the CPU the pushes needed. A
// message that was lost is repaired by the gap pull its successor
// triggers, which is answered in full, or by a round at most this much
// later.
const inFlightAge = 2

// isRound reports whether st is a periodic anti-entropy status (a round's,
// its hot origin's, or the reply to one), whose repair leaves out messages
// that may still be in flight; a gap pull (one origin, pullRange, naming
// its holes) and a join's catch-up (WantReply) ask for what is missing
// now, and get all of it.
func isRound(st *chatpb.Status) bool {
	if st.WantReply {
		return false
	}
	if oneOrigin(st) {
		return len(st.Missing) == 0 // a hot origin's status (hotorigins.go), else a gap pull
	}
	return true
}

// oneOrigin reports whether st covers one origin's range alone
// (pullRange): a gap pull's or a hot origin's.
func oneOrigin(st *chatpb.Status) bool {
	lo, hi := pullRange(st.FromOrigin)
	return lo != "" && st.UntilOrigin == hi
}

// sendRepair sends to peer the stored messages of the ranges (see
// buildRepair), each range up to its first message stored after fresh
// (zero: all of it).
//
// It reports whether fresh left out a message the peer lacks.
func (n *Node) sendRepair(peer, roomName string, ranges []msglog.SeqRange, fresh time.Time) (leftOut bool) {
	p := n.peer(peer)
	if p == nil {
		return false
	}
	reps, leftOut := n.buildRepair(roomName, ranges, fresh)
	for _, rp := range reps {
		if p.enqueue(repairFrame(rp)) {
			n.stats.repairSent.Add(uint64(len(rp.Envelopes)))
		}
	}
	return leftOut
}

// buildRepair reads the stored messages of the ranges, in seq order per
// origin, at most AntiEntropyBatch messages, split into frames under the
// frame limit. Ranges whose start was pruned are announced as floors. A
// range stops at its first message stored after fresh (unless fresh is
// zero): the peer gets its messages in seq order, and the ones after it
// were stored later still, as a rule. leftOut reports whether fresh
// stopped a range.
func (n *Node) buildRepair(roomName string, ranges []msglog.SeqRange, fresh time.Time) (out []*chatpb.Repair, leftOut bool) {
	budget := n.cfg.AntiEntropyBatch
	cur := &chatpb.Repair{Room: roomName}
	size := 0
	flush := func() {
		if len(cur.Envelopes) == 0 && len(cur.Floors) == 0 {
			return
		}
		out = append(out, cur)
		cur = &chatpb.Repair{Room: roomName}
		size = 0
	}
	for _, rg := range ranges {
		if budget <= 0 {
			break
		}
		limit := min(uint64(budget), rg.To-rg.From+1, msglog.MaxRange)
		recs, err := n.log.Range(n.ctx, roomName, rg.Origin, rg.From, int(limit))
		if err != nil {
			n.logger.Printf("repair #%s: %v", roomName, err)
			break
		}
		var floor uint64
		switch {
		case len(recs) == 0:
			floor = rg.To
		case recs[0].Seq > rg.From:
			floor = recs[0].Seq - 1
		}
		floor = min(floor, MaxSeq) // as in depsIn
		if floor > 0 {
			// Floors count in the frame like envelopes, so no number of
			// origins makes a frame outgrow the limit.
			if size+maxFloorBytes > maxRepairFrame || len(cur.Floors) >= maxVector {
				flush()
			}
			cur.Floors = append(cur.Floors, &chatpb.Dep{Origin: rg.Origin, Seq: floor})
			size += maxFloorBytes
		}
		for _, rec := range recs {
			if rec.Seq > rg.To {
				break
			}
			if !fresh.IsZero() && rec.Meta.RecvTime.After(fresh) {
				leftOut = true
				break
			}
			env, err := decodeStored(rec.Data)
			if err != nil {
				n.logger.Printf("repair #%s: stored %s/%d unreadable: %v", roomName, rec.Origin, rec.Seq, err)
				break // a gap: the peer gets the rest from someone else
			}
			if size+len(rec.Data) > maxRepairFrame || len(cur.Envelopes) >= maxRepairEnvelopes {
				flush()
			}
			cur.Envelopes = append(cur.Envelopes, env)
			size += len(rec.Data) + 16
			budget--
		}
	}
	flush()
	return out, leftOut
}

// handleRepair runs a repair frame's envelopes through the receive
// pipeline (receive.go), then applies its floors: the envelopes first, so
// a floor can be bounded by the envelopes that came with it. A repair
// over maxVector floors, maxRepairEnvelopes envelopes or
// maxFrameListEntries deps and stamped messages in all is a bad frame.
func (n *Node) handleRepair(rp *chatpb.Repair, from string) {
	if ValidateRoom(rp.Room) != nil || len(rp.Floors) > maxVector || len(rp.Envelopes) > maxRepairEnvelopes ||
		listEntries(rp.Envelopes) > maxFrameListEntries {
		n.stats.badFrames.Add(1)
		return
	}
	r := n.joinedRoom(rp.Room)
	if r == nil {
		n.stats.unjoined.Add(1)
		return
	}
	if len(rp.Envelopes) > 0 {
		n.receive(rp.Envelopes, from, rp.Room)
	}
	if len(rp.Floors) > 0 {
		n.applyFloors(n.ctx, r, rp.Floors, from)
	}
}

// applyFloors records that a peer no longer has an origin's messages up
// to a seq (pruned by its retention), so this node stops asking for the
// ones it lacks below. A floor is an unsigned claim, so it may only skip
// seqs that signed envelopes prove exist and that nobody can give us
// anymore, never remove, truncate or override what is signed:
//
//   - A floor for our own ID is refused: we know our stream.
//   - A floor from the origin itself (the stream proves who sends it) is
//     the origin's word on its own stream and is honoured.
//   - A floor from anyone else is honoured only up to just below the
//     lowest message of the origin we hold above our contiguous prefix:
//     that signed envelope proves the seqs below it were sent, and the
//     floor only says they cannot be fetched. With no such envelope the
//     floor is ignored (nothing signed proves those seqs exist; the
//     origin's next message, once here, bounds the floor).
//
// Either way the floor deletes nothing and leaves LastSeq alone (msglog
// SetFloor). Floors at or below what we hold change nothing.
func (n *Node) applyFloors(ctx context.Context, r *room, floors []*chatpb.Dep, from string) {
	local, err := n.log.VersionVector(ctx, r.name)
	if err != nil {
		return
	}
	for _, f := range floors {
		if f == nil || !hearsay.ValidPeerID(f.Origin) || f.Seq > MaxSeq {
			n.stats.badFrames.Add(1)
			continue
		}
		if f.Origin == n.id.ID {
			n.stats.badFloors.Add(1)
			n.logger.Printf("floor #%s from %s: refused a floor for our own stream (%d)", r.name, from, f.Seq)
			continue
		}
		have := local[f.Origin]
		if f.Seq <= have {
			continue
		}
		seq := f.Seq
		if f.Origin != from {
			recs, err := n.log.Range(ctx, r.name, f.Origin, have+1, 1)
			if err != nil {
				n.logger.Printf("floor #%s %s/%d: %v", r.name, f.Origin, f.Seq, err)
				continue
			}
			if len(recs) == 0 || recs[0].Seq <= have+1 {
				n.stats.badFloors.Add(1)
				continue // nothing signed above the gap
			}
			seq = min(seq, recs[0].Seq-1)
		}
		if err := n.log.SetFloor(ctx, r.name, f.Origin, seq); err != nil {
			n.logger.Printf("floor #%s %s/%d: %v", r.name, f.Origin, seq, err)
			continue
		}
		r.applyFloor(f.Origin, seq)
	}
}
