package chat

// Restoring rooms after a restart. A fifo or causal room is restored from
// the log when it is opened (loadRooms). A total or sequencer room is
// opened deferred (roomDeferred: its messages are stored, its machine
// waits) and restored here once its members are known: a live peer
// announced the room and every live peer's room set has arrived, or
// restoreGrace passed since Start (the node is alone). Total order needs
// the membership before the replay: replayed alone, a total room would
// deliver without the others' acks and a sequencer room would open an epoch
// of its own, conflicting with the live sequencer. tryRestore runs when a
// peer's room set changes and on every anti-entropy round.

import "time"

// restoreGrace is how long a restarted node waits for the members of a
// total or sequencer room before it restores the room alone.
const restoreGrace = 10 * time.Second

// tryRestore starts the restore of the deferred rooms whose members are
// known (see the file comment).
func (n *Node) tryRestore() {
	var pending []*room
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		if r.state == roomDeferred {
			pending = append(pending, r)
		}
		r.mu.Unlock()
	}
	if len(pending) == 0 {
		return
	}
	// Members whose node meta did not verify are left out, as
	// waitRoomSets does: no link is made to them and no relay passes
	// their sets on, so waiting for theirs kept every deferred room
	// waiting until restoreGrace. (Read only: liveMembers' map is shared.)
	live := n.liveMembers()
	n.roomsMu.Lock()
	allSets := true
	announced := map[string]bool{}
	for id := range live {
		rs := n.peerRooms[id]
		if rs == nil {
			allSets = false
			continue
		}
		for name := range rs.rooms {
			announced[name] = true
		}
	}
	n.roomsMu.Unlock()
	alone := time.Since(time.Unix(0, n.startedAt.Load())) >= restoreGrace
	for _, r := range pending {
		if !alone && !(allSets && announced[r.name]) {
			continue
		}
		r.mu.Lock()
		start := r.state == roomDeferred
		if start {
			r.state = roomRestoreQueued
		}
		r.mu.Unlock()
		if start {
			// Not on the caller's goroutine: it may be a stream reader, and
			// the catch-up waits for status replies from the streams.
			n.spawn(func() { n.restoreRoom(r) })
		}
	}
}

// restoreRoom restores a deferred room, then catches up with its members
// before it takes our messages again (as a new member does).
func (n *Node) restoreRoom(r *room) {
	r.mu.Lock()
	if r.state != roomRestoreQueued {
		r.mu.Unlock()
		return // parted meanwhile
	}
	view, _, _ := n.roomMembers(r.name, r.mode.String())
	err := r.restoreLocked(n.ctx, view, roomCatchingUp)
	if err != nil {
		r.state = roomDeferred // restoreLocked failed before it changed anything: tried again later
	}
	r.mu.Unlock()
	if err != nil {
		n.emitError("restore #%s: %v", r.name, err)
		return
	}
	n.catchUpMembers(n.ctx, r, n.cfg.HandshakeTimeout)
	r.mu.Lock()
	if r.state == roomCatchingUp {
		r.state = roomLive
	}
	r.mu.Unlock()
}
