package chat

// The node's side of rooms: joining and parting, the registry of joined
// rooms (n.rooms) and of the room sets peers announce (n.peerRooms), and
// the room API (Rooms, History, HeldBack). Each joined room is a driver
// of its own (room.go); the node opens it with a roomEnv and routes frames
// to it. n.roomsMu guards n.rooms, n.peerRooms and n.roomVer; it is a leaf
// lock (a room's lock may be held while taking it).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/order"
)

// Room limits.
const (
	// maxRooms bounds the rooms one peer may join (and announce): a room
	// set larger than this is refused by receivers.
	maxRooms = 256
	// maxVector bounds the entries of a received version vector or floor
	// list (origins per room).
	maxVector = 4096
	// maxCache bounds the decoded envelopes a room keeps for delivery;
	// beyond it the cache is dropped and deliveries read the log.
	maxCache = 8192
	// replayChunk is how many messages per origin one catch-up step reads.
	replayChunk = 256
	// maxGapPulls bounds the origins a room remembers its last gap pull
	// for (room.receive); beyond it the map is cleared.
	maxGapPulls = 4096
)

// Errors of the room API.
var (
	// ErrNotJoined: the room is not joined by this node.
	ErrNotJoined = errors.New("room not joined")
	// ErrModeConflict: the room exists with another ordering mode.
	ErrModeConflict = errors.New("room exists with another ordering mode")
	// ErrRestoring: after a restart, a total or sequencer room waits (up
	// to 10 s) for its members before it takes messages again.
	ErrRestoring = errors.New("room is waiting for its members after a restart; try again in a moment")
)

// peerRoomSet is what a peer announced (RoomSet frame).
type peerRoomSet struct {
	version int64
	at      time.Time // when it arrived (local clock)
	rooms   map[string]*chatpb.RoomMembership
	signed  *chatpb.RoomSet // as its origin signed it, to relay (roomsets.go)
}

// JoinRoom joins room (with or without '#') and returns its info. mode 0
// means the room's existing mode (announced by its live members, or kept
// in this node's log from an earlier membership) or causal for a new
// room; an explicit mode that differs from the room's existing one is an
// error wrapping ErrModeConflict that names the room's mode. Joining a room
// already joined is not an error. It blocks (bounded by ctx and
// Config.HandshakeTimeout) until it has heard every live peer's rooms (for
// a room nobody announces: their next announcement, at most 1.5
// anti-entropy intervals), replays the room's part of the log if it has
// one, and waits until it holds what the members reported (the rest of the
// history follows through anti-entropy). Safe for concurrent use.
func (n *Node) JoinRoom(ctx context.Context, roomName string, mode hearsay.OrderMode) (hearsay.RoomInfo, error) {
	if err := ctx.Err(); err != nil {
		return hearsay.RoomInfo{}, err
	}
	name, err := NormalizeRoom(roomName)
	if err != nil {
		return hearsay.RoomInfo{}, err
	}
	if mode != 0 && !mode.Valid() {
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: invalid ordering mode %d", name, mode)
	}
	if _, err := n.active(); err != nil {
		return hearsay.RoomInfo{}, err
	}
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	if r := n.joinedRoom(name); r != nil {
		if mode != 0 && mode != r.mode {
			return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w: it is %s", name, ErrModeConflict, r.mode)
		}
		return r.info(n.id.ID), nil
	}
	// The room's mode and members come from its members: hear every live
	// peer's room set first (a peer that has just joined the group may
	// not have it yet).
	n.waitRoomSets(ctx, time.Time{}, n.cfg.HandshakeTimeout)
	existing := n.existingMode(ctx, name)
	if existing == "" {
		// A room nobody announced: it may have been created a moment ago
		// and its announcement be on its way. Ask every live peer for its
		// room set (want_reply) and wait for the answers, or 1.5
		// anti-entropy intervals at most, before creating it, so two peers
		// do not create one room with two modes (or two sequencers). The
		// answer to our request comes behind anything the peer queued to
		// us before it, on the same stream.
		asked := time.Now()
		n.requestRoomSets()
		n.waitRoomSets(ctx, asked, min(n.cfg.AntiEntropyInterval+n.cfg.AntiEntropyInterval/2, n.cfg.HandshakeTimeout))
		existing = n.existingMode(ctx, name)
	}
	m := mode
	switch {
	case mode == 0 && existing != "":
		m, err = hearsay.ParseOrderMode(existing)
	case mode == 0:
		m = order.Causal
	case existing != "" && existing != m.String():
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w: it is %s (join without --order, or pick another room)", name, ErrModeConflict, existing)
	}
	if err != nil {
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w", name, err)
	}
	info, err := n.log.Room(ctx, name)
	if errors.Is(err, msglog.ErrNotFound) {
		info = msglog.RoomInfo{Name: name, Created: time.Now()}
	} else if err != nil {
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w", name, err)
	}
	info.Mode = m.String()
	info.Joined = time.Now()
	if err := n.log.PutRoom(ctx, info); err != nil {
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w", name, err)
	}
	r, err := n.openRoom(ctx, info, false)
	if err != nil {
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w", name, err)
	}
	n.announceRooms()
	n.catchUpMembers(ctx, r, n.cfg.HandshakeTimeout)
	return r.info(n.id.ID), nil
}

// catchUpMembers asks every live member of r for its status and waits (at
// most timeout, or until ctx ends) until this node holds everything they
// reported: a new member then numbers its first messages after the room's
// history (total order needs its Lamport clock past it). Anti-entropy
// finishes whatever the wait leaves.
func (n *Node) catchUpMembers(ctx context.Context, r *room, timeout time.Duration) {
	ids := r.memberIDs()
	if len(ids) == 0 {
		return
	}
	r.progMu.Lock()
	r.replies = map[string]msglog.VersionVector{}
	r.partial = map[string]msglog.VersionVector{}
	r.progMu.Unlock()
	defer func() {
		r.progMu.Lock()
		r.replies, r.partial = nil, nil
		r.progMu.Unlock()
	}()
	for _, id := range ids {
		n.sendStatus(id, r.name, false, true)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		r.progMu.Lock()
		wake := r.progress
		replies := maps.Clone(r.replies)
		r.progMu.Unlock()
		if len(replies) == len(ids) {
			local, err := n.log.VersionVector(ctx, r.name)
			if err != nil {
				return
			}
			done := true
			for _, vv := range replies {
				if len(msglog.Missing(vv, local)) > 0 {
					done = false
					break
				}
			}
			if done {
				return
			}
		}
		select {
		case <-wake:
		case <-timer.C:
			n.logger.Printf("join #%s: catch-up incomplete after %v; anti-entropy continues", r.name, timeout)
			return
		case <-ctx.Done():
			return
		case <-n.ctx.Done():
			return
		}
	}
}

// waitRoomSets waits, at most timeout or until ctx ends, until every
// live peer's room set has arrived after since, and reports whether they
// all did. A member whose node meta did not verify is not waited for: no
// link is made to it and no relay passes its set on, so its set never
// comes (and every join would wait the whole timeout).
func (n *Node) waitRoomSets(ctx context.Context, since time.Time, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		n.mu.Lock()
		live := n.liveIDsLocked(true) // a new map: entries are deleted below
		mgen := n.memberGen
		if !n.meshLinks() {
			// Above the tree threshold only linked peers (neighbours)
			// were asked; the others' sets come relayed, when they change.
			for id := range live {
				if n.peers[id] == nil {
					delete(live, id)
				}
			}
		}
		n.mu.Unlock()
		n.roomsMu.Lock()
		rgen := n.roomsGen
		missing := false
		for id := range live {
			if rs := n.peerRooms[id]; rs == nil || rs.at.Before(since) {
				missing = true
				break
			}
		}
		n.roomsMu.Unlock()
		if !missing {
			return true
		}
		select {
		case <-mgen:
		case <-rgen:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		case <-n.ctx.Done():
			return false
		}
	}
}

// existingMode returns the mode of room as announced by live peers, or as
// kept in the log, or "".
func (n *Node) existingMode(ctx context.Context, name string) string {
	live := n.liveSet()
	n.roomsMu.Lock()
	for id, rs := range n.peerRooms {
		if rm := rs.rooms[name]; rm != nil && live[id] {
			n.roomsMu.Unlock()
			return rm.Mode
		}
	}
	n.roomsMu.Unlock()
	if info, err := n.log.Room(ctx, name); err == nil && info.Mode != "" {
		return info.Mode
	}
	return ""
}

// roomEnv returns what the node gives every room it opens.
func (n *Node) newRoomEnv() *roomEnv {
	return &roomEnv{
		ctx: n.ctx, id: n.id, log: n.log, cfg: &n.cfg, stats: &n.stats, logger: n.logger,
		emit:     n.emit,
		event:    n.messageEvent,
		conns:    n.conns,
		nick:     n.Nick,
		isMember: n.speakers.isMember,
		shown:    n.shown,
		overlay:  n.ovl,
	}
}

// conns returns the outgoing connections to the given peers (those that
// have one).
func (n *Node) conns(ids []string) []*peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*peerConn, 0, len(ids))
	for _, id := range ids {
		if p := n.peers[id]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// openRoom builds the room from the log (see room.restoreLocked) and
// registers it. With deferred, the room is registered (so it is announced
// and its messages are stored) but its machine is only restored once the
// room's members are known (restore.go). Caller holds n.joinMu.
func (n *Node) openRoom(ctx context.Context, info msglog.RoomInfo, deferred bool) (*room, error) {
	var members roomView
	if !deferred {
		members, _, _ = n.roomMembers(info.Name, info.Mode)
	}
	r, err := newRoom(ctx, n.env, info, deferred, members)
	if err != nil {
		return nil, fmt.Errorf("room %q: %w", info.Name, err)
	}
	n.roomsMu.Lock()
	n.rooms[r.name] = r
	n.ownSetChangedLocked()
	n.roomsMu.Unlock()
	return r, nil
}

// PartRoom leaves room: peers stop sending it to this node and this node
// stops showing it. The room's log (history and our seq counter) is kept,
// so joining again continues where it stopped. The lobby cannot be parted
// (it is where messages without a room go). A room not joined is an error
// wrapping ErrNotJoined. Safe for concurrent use.
func (n *Node) PartRoom(ctx context.Context, roomName string) error {
	name, err := NormalizeRoom(roomName)
	if err != nil {
		return err
	}
	if name == DefaultRoom {
		return fmt.Errorf("part #%s: the lobby cannot be parted (it is the default room)", name)
	}
	n.joinMu.Lock()
	defer n.joinMu.Unlock()
	r := n.joinedRoom(name)
	if r == nil {
		return fmt.Errorf("part #%s: %w", name, ErrNotJoined)
	}
	n.roomsMu.Lock()
	delete(n.rooms, name)
	n.ownSetChangedLocked()
	n.roomsMu.Unlock()
	r.part()
	info, err := n.log.Room(ctx, name)
	if err == nil {
		info.Joined = time.Time{}
		err = n.log.PutRoom(ctx, info)
	}
	n.announceRooms()
	if err != nil {
		return fmt.Errorf("part #%s: %w", name, err)
	}
	return nil
}

// Rooms lists the rooms this node has joined and the rooms live peers
// announce, sorted by name. Safe for concurrent use; never blocks on the
// network.
func (n *Node) Rooms() []hearsay.RoomInfo {
	live := n.liveSet()
	n.roomsMu.Lock()
	joined := make([]*room, 0, len(n.rooms))
	for _, r := range n.rooms {
		joined = append(joined, r)
	}
	others := map[string]*hearsay.RoomInfo{}
	for id, rs := range n.peerRooms {
		if !live[id] {
			continue
		}
		for name, rm := range rs.rooms {
			if n.rooms[name] != nil {
				continue
			}
			ri := others[name]
			if ri == nil {
				mode, _ := hearsay.ParseOrderMode(rm.Mode) // checked on receipt (handleRoomSet)
				ri = &hearsay.RoomInfo{Name: name, Mode: mode}
				others[name] = ri
			}
			ri.Members = append(ri.Members, id)
		}
	}
	n.roomsMu.Unlock()
	out := make([]hearsay.RoomInfo, 0, len(joined)+len(others))
	for _, r := range joined {
		out = append(out, r.info(n.id.ID))
	}
	for _, ri := range others {
		slices.Sort(ri.Members)
		out = append(out, *ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// History returns up to limit (1 to 10000; <= 0 means 100) of the room's
// retained messages as message events, oldest first (in Lamport order,
// which is the delivery order of total rooms and consistent with causal
// order). The room need not be joined now: a parted room keeps its log. It
// blocks for the message log. Safe for concurrent use.
func (n *Node) History(roomName string, limit int) ([]hearsay.Event, error) {
	name, err := NormalizeRoom(roomName)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	if limit > msglog.MaxRange {
		limit = msglog.MaxRange
	}
	// Control messages share the log: read twice the limit, and more while
	// that is not enough data messages and the log has more.
	for want := min(2*limit+16, msglog.MaxRange); ; want = min(4*want, msglog.MaxRange) {
		recs, err := n.log.History(n.ctx, name, want)
		if err != nil {
			return nil, fmt.Errorf("history #%s: %w", name, err)
		}
		var out []hearsay.Event
		for _, rec := range recs {
			env, err := decodeStored(rec.Data)
			if err != nil {
				n.logger.Printf("history #%s: %s/%d: %v", name, rec.Origin, rec.Seq, err)
				continue
			}
			if ev, ok := n.messageEvent(env); ok {
				out = append(out, ev)
			}
		}
		if len(out) >= limit || len(recs) < want || want == msglog.MaxRange {
			if len(out) > limit {
				out = out[len(out)-limit:]
			}
			return out, nil
		}
	}
}

// HeldBack describes up to limit (<= 0: all) messages of room that are
// received but not delivered, with the reason each waits, one line each
// ("origin/seq kind: reason"). An unknown or parted room gives nil. Safe
// for concurrent use.
func (n *Node) HeldBack(roomName string, limit int) []string {
	name, err := NormalizeRoom(roomName)
	if err != nil {
		return nil
	}
	r := n.joinedRoom(name)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	hs := r.m.HeldBack(limit)
	// What the room knows of each waited-for message: whether its origin
	// is in the member view or a member identity at all (a dep on
	// neither is dropped), and its tail mark (who is to be pulled).
	waits := make([]string, len(hs))
	for i, h := range hs {
		if h.Waits.Origin == "" || h.Waits.Origin == h.ID.Origin {
			continue
		}
		_, member := r.members[h.Waits.Origin]
		waits[i] = fmt.Sprintf("; %s: in the member view %t, a member identity %t", h.Waits.Origin, member, r.env.isMember(h.Waits.Origin))
		if m, ok := r.tails[h.Waits.Origin]; ok {
			from := m.peer
			if m.alt != "" {
				from += " and " + m.alt + " in turn"
			}
			waits[i] += fmt.Sprintf(", pulled %d times (from %s, through %d)", m.pulls, from, m.seq)
		} else {
			waits[i] += ", no tail mark"
		}
	}
	r.mu.Unlock()
	out := make([]string, 0, len(hs))
	for i, h := range hs {
		line := fmt.Sprintf("%s/%d %s: %s", h.ID.Origin, h.ID.Seq, h.Kind, h.Reason)
		// The log's view beside the machine's: a gap the log does not
		// have is a message stored and never given to the machine.
		origins := []string{h.ID.Origin}
		if waits[i] != "" {
			origins = append(origins, h.Waits.Origin)
		}
		for _, o := range origins {
			if c, err := n.log.Contiguous(n.ctx, name, o); err == nil {
				line += fmt.Sprintf(" (stored through %s/%d)", o, c)
			}
		}
		out = append(out, line+waits[i])
	}
	return out
}

// joinedRoom returns the joined room name or nil.
func (n *Node) joinedRoom(name string) *room {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	return n.rooms[name]
}

// joinedRooms returns the joined rooms.
func (n *Node) joinedRooms() []*room {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	return slices.Collect(maps.Values(n.rooms))
}

// liveSet returns the IDs of the live members (alive or suspect) other
// than this node. It differs from liveMembers in one thing: a member
// whose node meta did not verify (members.Valid) is in it. And the map
// is new, the caller's.
func (n *Node) liveSet() map[string]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.liveIDsLocked(false)
}

// syncAllRooms brings every room's machine up to date with membership.
// It must not be called with n.mu held.
func (n *Node) syncAllRooms() {
	for _, r := range n.joinedRooms() {
		n.syncMembers(r)
	}
}

// syncMembers tells r who the live members of the room are (see
// roomMembers). Membership is the node's; the room only applies it. It
// holds r.mu while it reads membership, so concurrent syncs apply in
// order.
func (n *Node) syncMembers(r *room) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n.syncMembersLocked(r)
}

// syncMembersLocked is syncMembers. Caller holds r.mu.
//
// A room's members follow from the member table and the held room sets
// alone (roomMembers), and from the clock only as far as a failed member
// stops voting FailedVoterTimeout after it failed. So the view is
// computed again only when one of them changed since the last one was
// applied: the membership generation (memberGen), the room sets'
// (peerRoomsGen), or the clock passed the next failed voter's timeout.
// Every node syncs every room on each turn of its event loop (at least
// once a second) and each anti-entropy round: at 200 peers that was two
// passes over three maps of every member per node per second, 13 % of the
// CPU of a 200-peer process under load, nearly all of them finding
// nothing new.
func (n *Node) syncMembersLocked(r *room) {
	n.syncMembersForced(r, false)
}

// memberSync is what a room's applied member view was computed from.
type memberSync struct {
	members chan struct{} // n.memberGen
	rooms   uint64        // n.peerRoomsGen
	until   time.Time     // a failed voter's timeout passes then (zero: none)
}

// syncMembersForced is syncMembersLocked; force computes the view even
// if nothing it follows from changed (the anti-entropy round's periodic
// safety net). Caller holds r.mu.
func (n *Node) syncMembersForced(r *room, force bool) {
	n.mu.Lock()
	key := memberSync{members: n.memberGen}
	n.mu.Unlock()
	n.roomsMu.Lock()
	key.rooms = n.peerRoomsGen
	n.roomsMu.Unlock()
	// Read before the view: a change while it is computed makes the next
	// sync compute it again.
	s := r.synced
	if !force && s.members == key.members && s.rooms == key.rooms && (s.until.IsZero() || time.Now().Before(s.until)) {
		return
	}
	view, conflicts, until := n.roomMembers(r.name, r.mode.String())
	n.stats.memberViews.Add(1)
	for id, mode := range conflicts {
		r.noteConflictLocked(id, mode)
	}
	r.setMembersLocked(view)
	if r.state.fed() {
		key.until = until
		r.synced = key
	} else {
		r.synced = memberSync{} // nothing applied (setMembersLocked): the next sync applies it
	}
}

// failedSet returns the IDs of the members memberlist declared failed
// (not left) less than Config.FailedVoterTimeout ago: they still vote in
// sequencer rooms (roomView.failed); and when the first of them stops
// voting (zero if none).
func (n *Node) failedSet() (map[string]bool, time.Time) {
	now := time.Now()
	since := now.Add(-n.cfg.FailedVoterTimeout)
	n.mu.Lock()
	defer n.mu.Unlock()
	var failed map[string]bool
	var until time.Time
	for id, m := range n.members {
		if m.State == hearsay.StateDead && m.Since.After(since) {
			if failed == nil {
				failed = map[string]bool{}
			}
			failed[id] = true
			if t := m.Since.Add(n.cfg.FailedVoterTimeout); until.IsZero() || t.Before(until) {
				until = t
			}
		}
	}
	return failed, until
}

// roomMembers returns the room's members as the node sees them (the live
// peers that announced room with mode, with their age in the room, and the
// failed ones that still vote) and the peers that announced it with
// another mode (peer ID -> their mode). A peer that parted the room no
// longer announces it, and one that left the group is not failed: neither
// is in the view.
func (n *Node) roomMembers(room, mode string) (view roomView, conflicts map[string]string, until time.Time) {
	live := n.liveSet()
	failed, until := n.failedSet()
	view.live = map[string]uint64{}
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	for id, rs := range n.peerRooms {
		rm := rs.rooms[room]
		if rm == nil || (!live[id] && !failed[id]) {
			continue
		}
		if rm.Mode != mode {
			if conflicts == nil {
				conflicts = map[string]string{}
			}
			conflicts[id] = rm.Mode
			continue
		}
		if !live[id] {
			if view.failed == nil {
				view.failed = map[string]bool{}
			}
			view.failed[id] = true
			continue
		}
		view.live[id] = uint64(max(rm.JoinedUnixNano, 0))
	}
	return view, conflicts, until
}
