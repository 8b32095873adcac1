package chat

// Anti-entropy repairs whatever eager push missed (frames dropped by a full
// queue, a broken stream, a partition, a crash, a late join), in the manner
// of Peerster's status/rumor exchange:
//
//   - The node announces its room set (RoomSet frame: room membership is
//     state each peer states itself over its authenticated streams) to
//     every live peer when it changes and when a stream opens. Every
//     AntiEntropyInterval it announces it again to the peers whose last
//     announcement did not fit in their queue or changed since, and to
//     each other peer every roomSetRefresh rounds or so (staggered), so
//     that one lost otherwise is repaired; and for each joined room it
//     sends its version vector (Status) to one random live member of the
//     room. (Announcing to every peer every round cost N² frames per
//     interval in an N-member group: half of a 50-member group's idle CPU.)
//   - A peer that gets a Status answers with a Repair holding what it has
//     and the sender lacks, in seq order per origin, at most
//     AntiEntropyBatch messages per round (the rest follows in later
//     rounds); if the sender has something it lacks, it also answers with
//     its own Status (reply), so one exchange repairs both directions.
//   - Repaired messages are verified, stored and ordered like pushed ones,
//     but never forwarded.
//
// Everything travels on the existing per-peer send queues, which are
// bounded: when a queue is full the frame is dropped (counted in
// Stats.QueueDrops) and the next round sends it again. Nothing here grows
// with the backlog: a round reads at most AntiEntropyBatch messages from
// the log.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// antiEntropyLoop runs the periodic rounds until Shutdown.
func (n *Node) antiEntropyLoop() {
	tick := time.NewTicker(n.cfg.AntiEntropyInterval)
	defer tick.Stop()
	lastPrune := time.Now()
	sent := map[*peerConn]roomSetSent{} // owned by this loop
	var round uint64
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := n.active(); err != nil {
			continue // left the group: nothing to exchange
		}
		round++
		n.antiEntropyRound(sent, round)
		if time.Since(lastPrune) >= n.cfg.RetentionInterval {
			lastPrune = time.Now()
			n.prune()
		}
	}
}

// antiEntropyRound runs one round: refresh our room set where due (see
// refreshRooms), then per joined room refill the machine if it refused
// messages and send a status to one random live member.
func (n *Node) antiEntropyRound(sent map[*peerConn]roomSetSent, round uint64) {
	n.refreshRooms(sent, round)
	n.tryRestore()
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		if r.parted || r.restoring {
			r.mu.Unlock()
			continue
		}
		n.syncMembersLocked(r)
		if r.refused {
			n.catchUpLocked(n.ctx, r)
		}
		if c := r.m.Stats().Conflicts; c > r.conflicts {
			r.conflicts = c
			n.emitError("#%s: conflicting ordering messages (%d so far): two members acted as sequencer of the same epoch (the room was created on both sides of a partition, or by two peers at once); members may disagree on its order", r.name, c)
		}
		ids := make([]string, 0, len(r.members))
		for id := range r.members {
			ids = append(ids, id)
		}
		r.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		slices.Sort(ids)
		n.sendStatus(ids[rand.IntN(len(ids))], r.name, false, false)
	}
}

// sendStatus sends room's version vector to peer (see Status in
// chat.proto for reply and wantReply).
func (n *Node) sendStatus(peer, roomName string, reply, wantReply bool) {
	p := n.peer(peer)
	if p == nil {
		return
	}
	vv, err := n.log.VersionVector(n.ctx, roomName)
	if err != nil {
		n.logger.Printf("status #%s: %v", roomName, err)
		return
	}
	f := &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: roomName, Vector: depsOf(vv), Reply: reply, WantReply: wantReply}}}
	if p.enqueue(f) {
		n.stats.statusSent.Add(1)
		n.stats.aeBytes.Add(uint64(proto.Size(f)))
	}
}

// peer returns the outgoing connection to id, or nil.
func (n *Node) peer(id string) *peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

// depsOf encodes a version vector sorted by origin.
func depsOf(vv msglog.VersionVector) []*chatpb.Dep {
	out := make([]*chatpb.Dep, 0, len(vv))
	for o, s := range vv {
		if s > 0 {
			out = append(out, &chatpb.Dep{Origin: o, Seq: s})
		}
	}
	slices.SortFunc(out, func(a, b *chatpb.Dep) int { return strings.Compare(a.Origin, b.Origin) })
	return out
}

// vectorOf decodes a received vector, refusing oversized or malformed
// ones.
func vectorOf(deps []*chatpb.Dep) (msglog.VersionVector, bool) {
	if len(deps) > maxVector {
		return nil, false
	}
	vv := make(msglog.VersionVector, len(deps))
	for _, d := range deps {
		if d == nil || !hearsay.ValidPeerID(d.Origin) || d.Seq == 0 {
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
// our own status when it has what we lack.
func (n *Node) handleStatus(st *chatpb.Status, from string) {
	n.stats.statusReceived.Add(1)
	theirs, ok := vectorOf(st.Vector)
	if !ok || ValidateRoom(st.Room) != nil {
		n.stats.badFrames.Add(1)
		return
	}
	r := n.joinedRoom(st.Room)
	if r == nil {
		n.stats.unjoined.Add(1)
		return
	}
	if st.Reply {
		r.noteStatus(from, theirs)
	}
	local, err := n.log.VersionVector(n.ctx, st.Room)
	if err != nil {
		n.logger.Printf("status #%s: %v", st.Room, err)
		return
	}
	// Our own messages in the room's outbox are committed (so the log
	// shows them) but maybe not fsynced: none may leave before it is, or a
	// crash could reuse its seq. The vector was read before the lock, so
	// whatever it shows of ours is either released (durable) or still in
	// the outbox now.
	r.mu.Lock()
	n.clampUnsyncedLocked(r, local)
	r.mu.Unlock()
	if miss := msglog.Missing(local, theirs); len(miss) > 0 {
		n.sendRepair(from, st.Room, miss)
	}
	if !st.Reply && (st.WantReply || len(msglog.Missing(theirs, local)) > 0) {
		n.sendStatus(from, st.Room, true, false)
	}
}

// clampUnsyncedLocked lowers our own entry of vv below the first message
// of ours waiting in r's outbox for its fsync. Caller holds r.mu.
func (n *Node) clampUnsyncedLocked(r *room, vv msglog.VersionVector) {
	if len(r.outbox) == 0 {
		return
	}
	if head := r.outbox[0].env.Seq; vv[n.id.ID] >= head {
		vv[n.id.ID] = head - 1
	}
}

// maxRepairFrame bounds the encoded envelopes of one repair frame, below
// the chat frame limit.
const maxRepairFrame = maxFrameBytes - 8192

// sendRepair sends to peer the stored messages of the ranges (see
// buildRepair).
func (n *Node) sendRepair(peer, roomName string, ranges []msglog.SeqRange) {
	p := n.peer(peer)
	if p == nil {
		return
	}
	for _, rp := range n.buildRepair(roomName, ranges) {
		if p.enqueue(&chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: rp}}) {
			n.stats.repairSent.Add(uint64(len(rp.Envelopes)))
		}
	}
}

// buildRepair reads the stored messages of the ranges, in seq order per
// origin, at most AntiEntropyBatch messages, split into frames under the
// frame limit. Ranges whose start was pruned are announced as floors.
func (n *Node) buildRepair(roomName string, ranges []msglog.SeqRange) []*chatpb.Repair {
	var out []*chatpb.Repair
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
		switch {
		case len(recs) == 0:
			cur.Floors = append(cur.Floors, &chatpb.Dep{Origin: rg.Origin, Seq: rg.To})
		case recs[0].Seq > rg.From:
			cur.Floors = append(cur.Floors, &chatpb.Dep{Origin: rg.Origin, Seq: recs[0].Seq - 1})
		}
		for _, rec := range recs {
			if rec.Seq > rg.To {
				break
			}
			env, err := decodeStored(rec.Data)
			if err != nil {
				n.logger.Printf("repair #%s: stored %s/%d unreadable: %v", roomName, rec.Origin, rec.Seq, err)
				break // a gap: the peer gets the rest from someone else
			}
			if size+len(rec.Data) > maxRepairFrame {
				flush()
			}
			cur.Envelopes = append(cur.Envelopes, env)
			size += len(rec.Data) + 16
			budget--
		}
	}
	flush()
	return out
}

// handleRepair stores and orders the messages of a repair frame.
func (n *Node) handleRepair(rp *chatpb.Repair, from string) {
	if ValidateRoom(rp.Room) != nil || len(rp.Floors) > maxVector {
		n.stats.badFrames.Add(1)
		return
	}
	r := n.joinedRoom(rp.Room)
	if r == nil {
		n.stats.unjoined.Add(1)
		return
	}
	ctx := n.ctx
	if len(rp.Floors) > 0 {
		n.applyFloors(ctx, r, rp.Floors)
	}
	n.stats.received.Add(uint64(len(rp.Envelopes)))
	var unknown []*chatpb.Envelope
	for _, env := range rp.Envelopes {
		if n.known(env) {
			// Held already (verified when stored): no signature check.
			n.stats.duplicates.Add(1)
			continue
		}
		unknown = append(unknown, env)
	}
	errs := n.verify.check(unknown)
	var envs []*chatpb.Envelope
	for i, env := range unknown {
		if errs[i] != nil {
			n.countDrop(errs[i], from)
			continue
		}
		if env.Room != rp.Room {
			n.stats.invalid.Add(1)
			continue
		}
		envs = append(envs, env)
	}
	if len(envs) == 0 {
		return
	}
	// Repaired messages are received messages: fsync deferred like theirs.
	isNew, err := n.storeReceived(ctx, envs)
	if err != nil {
		n.logger.Printf("repair #%s from %s: %v", rp.Room, from, err)
		return
	}
	var fresh []*chatpb.Envelope
	for i, env := range envs {
		if isNew[i] {
			fresh = append(fresh, env)
		} else {
			n.stats.duplicates.Add(1)
		}
	}
	if len(fresh) == 0 {
		return
	}
	defer r.notify()
	n.stats.repaired.Add(uint64(len(fresh)))
	n.stats.stored.Add(uint64(len(fresh)))
	r.received.Add(uint64(len(fresh)))
	slices.SortFunc(fresh, func(a, b *chatpb.Envelope) int {
		if c := strings.Compare(a.Origin, b.Origin); c != 0 {
			return c
		}
		return int(a.Seq) - int(b.Seq)
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.parted {
		n.feedLocked(r, fresh)
	}
}

// applyFloors records that a peer no longer has an origin's messages up
// to a seq (pruned by its retention): this node stops asking for the ones
// it lacks below. Floors at or below what we hold change nothing; we trust
// an authenticated member's word on what it pruned.
func (n *Node) applyFloors(ctx context.Context, r *room, floors []*chatpb.Dep) {
	local, err := n.log.VersionVector(ctx, r.name)
	if err != nil {
		return
	}
	for _, f := range floors {
		if f == nil || !hearsay.ValidPeerID(f.Origin) || f.Seq <= local[f.Origin] {
			continue
		}
		if err := n.log.SetFloor(ctx, r.name, f.Origin, f.Seq); err != nil {
			n.logger.Printf("floor #%s %s/%d: %v", r.name, f.Origin, f.Seq, err)
			continue
		}
		r.mu.Lock()
		if !r.parted && !r.restoring { // a restore reads the floors itself
			n.handleOutputLocked(r, r.m.Floor(f.Origin, f.Seq, 0))
		}
		r.mu.Unlock()
	}
}

// roomSetFrame returns our room set announcement.
func (n *Node) roomSetFrame() *chatpb.Frame {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	rs := &chatpb.RoomSet{Version: n.roomVer}
	for _, r := range n.rooms {
		rs.Rooms = append(rs.Rooms, &chatpb.RoomMembership{Name: r.name, Mode: r.mode.String(), JoinedUnixNano: int64(age(r.joined))})
	}
	slices.SortFunc(rs.Rooms, func(a, b *chatpb.RoomMembership) int { return strings.Compare(a.Name, b.Name) })
	return &chatpb.Frame{Msg: &chatpb.Frame_RoomSet{RoomSet: rs}}
}

// announceRooms sends our room set to every peer; called when it changes.
func (n *Node) announceRooms() {
	n.sendRoomSets(false)
}

// requestRoomSets sends our room set to every peer asking for theirs back
// at once (JoinRoom, before it creates a room).
func (n *Node) requestRoomSets() {
	n.sendRoomSets(true)
}

func (n *Node) sendRoomSets(wantReply bool) {
	f := n.newRoomSetFrame()
	f.GetRoomSet().WantReply = wantReply
	size := uint64(proto.Size(f))
	for _, p := range n.peerList() {
		if p.enqueue(f) {
			n.stats.aeBytes.Add(size)
		}
	}
}

// roomSetRefresh is about how many anti-entropy rounds pass before a peer
// hears our unchanged room set again (between half and all of it, at
// random, so that the peers' refreshes do not fall in the same round).
const roomSetRefresh = 10

// roomSetSent is what the anti-entropy loop last queued to one peer.
type roomSetSent struct {
	rooms string // the announced rooms, without the version (roomsKey)
	next  uint64 // the round from which it is announced again
}

// refreshRooms announces our room set to the peers that may lack it: those
// whose last announcement by this loop was not queued, holds other rooms
// (announceRooms sent the change, unless their queue was full), or is due
// for its refresh. sent is the loop's record, pruned to the current peers.
func (n *Node) refreshRooms(sent map[*peerConn]roomSetSent, round uint64) {
	peers := n.peerList()
	f := n.roomSetFrame()
	key := roomsKey(f.GetRoomSet())
	var due []*peerConn
	for _, p := range peers {
		if last, ok := sent[p]; !ok || last.rooms != key || round >= last.next {
			due = append(due, p)
		}
	}
	if len(sent) > len(peers)-len(due) { // some peers are gone
		keep := make(map[*peerConn]bool, len(peers))
		for _, p := range peers {
			keep[p] = true
		}
		maps.DeleteFunc(sent, func(p *peerConn, _ roomSetSent) bool { return !keep[p] })
	}
	if len(due) == 0 {
		return
	}
	f = n.newRoomSetFrame() // a new version: receivers drop repeated ones
	size := uint64(proto.Size(f))
	for _, p := range due {
		if !p.enqueue(f) {
			delete(sent, p) // queue full: again next round
			continue
		}
		n.stats.aeBytes.Add(size)
		sent[p] = roomSetSent{rooms: key, next: round + roomSetRefresh/2 + uint64(rand.IntN(roomSetRefresh/2+1))}
	}
}

// roomsKey encodes what a room set says, without its version.
func roomsKey(rs *chatpb.RoomSet) string {
	var b strings.Builder
	for _, rm := range rs.Rooms {
		fmt.Fprintf(&b, "%s %s %d\n", rm.Name, rm.Mode, rm.JoinedUnixNano)
	}
	return b.String()
}

// newRoomSetFrame gives our room set a new version and returns its
// announcement.
func (n *Node) newRoomSetFrame() *chatpb.Frame {
	n.roomsMu.Lock()
	if v := time.Now().UnixNano(); v > n.roomVer {
		n.roomVer = v
	} else {
		n.roomVer++
	}
	n.roomsMu.Unlock()
	return n.roomSetFrame()
}

// peerList returns the outgoing connections.
func (n *Node) peerList() []*peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Collect(maps.Values(n.peers))
}

// handleRoomSet records the rooms a peer announced.
func (n *Node) handleRoomSet(rs *chatpb.RoomSet, from string) {
	if len(rs.Rooms) > maxRooms {
		n.stats.badFrames.Add(1)
		return
	}
	set := &peerRoomSet{version: rs.Version, at: time.Now(), rooms: make(map[string]*chatpb.RoomMembership, len(rs.Rooms))}
	for _, rm := range rs.Rooms {
		if rm == nil || ValidateRoom(rm.Name) != nil || set.rooms[rm.Name] != nil {
			n.stats.badFrames.Add(1)
			return
		}
		if _, err := hearsay.ParseOrderMode(rm.Mode); err != nil {
			n.stats.badFrames.Add(1)
			return
		}
		set.rooms[rm.Name] = rm
	}
	if rs.WantReply {
		// Answer even a stale set: the request is what matters.
		n.mu.Lock()
		p := n.peers[from]
		n.mu.Unlock()
		if p != nil {
			f := n.newRoomSetFrame()
			if p.enqueue(f) {
				n.stats.aeBytes.Add(uint64(proto.Size(f)))
			}
		}
	}
	n.roomsMu.Lock()
	old := n.peerRooms[from]
	if old != nil && old.version >= rs.Version {
		n.roomsMu.Unlock()
		return // stale or repeated (frames may be reordered)
	}
	changed := old == nil || len(old.rooms) != len(set.rooms)
	if !changed {
		for name, rm := range set.rooms {
			o := old.rooms[name]
			if o == nil || o.Mode != rm.Mode || o.JoinedUnixNano != rm.JoinedUnixNano {
				changed = true
				break
			}
		}
	}
	n.peerRooms[from] = set
	close(n.roomsGen) // wakes waitRoomSets
	n.roomsGen = make(chan struct{})
	n.roomsMu.Unlock()
	if changed {
		n.tryRestore()
		n.syncAllRooms()
	}
}

// forgetPeerRooms drops what a member that left or failed announced, once
// memberlist has forgotten it too (bounded by the members map).
func (n *Node) forgetPeerRooms(keep func(id string) bool) {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	for id := range n.peerRooms {
		if !keep(id) {
			delete(n.peerRooms, id)
		}
	}
}
