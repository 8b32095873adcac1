package chat

// Rooms: a joined room is an order.Machine (the room's ordering mode) over
// the room's part of the message log. Everything that reaches a room goes
// through the same steps: verify the envelope, store it (msglog Append:
// "received"), then feed it to the machine, which says what to show
// ("delivered"), what control messages to sign, store and send (acks,
// stamps, syncs), and what it could not hold (refused: fed again later from
// the log). Our own messages are numbered by the machine (Next), stored,
// then pushed, so seqs are per (room, origin), gap-free and never reused:
// on restart the machine is restored from the log (LastSeq, MaxLamport,
// floors, replay) before anything new is numbered.
//
// Locks: room.mu serialises one room's machine, cache and counters; it may
// be held while taking n.mu, n.roomsMu or n.evMu, never the other way
// round. n.roomsMu guards n.rooms and the room sets announced by peers; it
// is a leaf lock.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

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
	// for (feedReceived); beyond it the map is cleared.
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

// room is one joined room. See the file comment for its locking.
type room struct {
	name   string
	mode   order.Mode
	joined time.Time // our age in the room (sequencer role)

	mu       sync.Mutex
	m        *order.Machine
	members  map[string]uint64             // live members told to m (self excluded) -> age
	cache    map[order.ID]*chatpb.Envelope // data envelopes fed and not yet delivered
	refused  bool                          // m refused messages: feed again from the log
	parted   bool                          // PartRoom ran: ignore everything
	live     bool                          // emit deliveries (false while replaying the log)
	conflict map[string]bool               // peers announcing this room with another mode (logged once)
	gapPulls map[string]time.Time          // origin -> last immediate pull on a gap (bounded by maxGapPulls)
	// outbox holds our own messages of the room that are numbered and
	// committed but not pushed yet, in seq order: a Send's message waits
	// there for the fsync it shares with concurrent Sends (see Send), and a
	// control message created meanwhile waits behind it, so peers receive
	// our messages in seq order. outBase is the index of outbox[0] among
	// every entry ever added.
	outbox  []outEntry
	outBase uint64
	syncErr error // the last Send's fsync failed: its message waits in the outbox

	received  atomic.Uint64
	delivered atomic.Uint64
	late      atomic.Uint64
	conflicts uint64 // order Stats.Conflicts already reported (under mu)
	restoring bool   // restart of a total/sequencer room: waiting for its members (see tryRestore)
	// restoreRunning: restoreRoom was started; holdSends: it is catching
	// up, so Send waits for the room's clock (ErrRestoring).
	restoreRunning, holdSends bool

	// Join catch-up (see catchUpMembers): status replies by peer and a
	// channel closed and replaced on every reply or repair.
	progMu   sync.Mutex
	replies  map[string]msglog.VersionVector
	progress chan struct{}
}

// noteStatus records a member's status reply.
func (r *room) noteStatus(from string, vv msglog.VersionVector) {
	r.progMu.Lock()
	if r.replies != nil {
		r.replies[from] = vv
	}
	r.progMu.Unlock()
	r.notify()
}

// notify wakes catchUpMembers.
func (r *room) notify() {
	r.progMu.Lock()
	close(r.progress)
	r.progress = make(chan struct{})
	r.progMu.Unlock()
}

// peerRoomSet is what a peer announced (RoomSet frame).
type peerRoomSet struct {
	version int64
	at      time.Time // when it arrived (local clock)
	rooms   map[string]*chatpb.RoomMembership
}

// JoinRoom joins room (with or without '#') and returns its info. mode 0
// means the room's existing mode (announced by its live members, or kept
// in this node's log from an earlier membership) or causal for a new room; an explicit mode that differs from the room's existing one is an
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
		return n.roomInfo(r), nil
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
	r, err := n.openRoom(ctx, info)
	if err != nil {
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: %w", name, err)
	}
	n.announceRooms()
	n.catchUpMembers(ctx, r, n.cfg.HandshakeTimeout)
	return n.roomInfo(r), nil
}

// catchUpMembers asks every live member of r for its status and waits (at
// most timeout, or until ctx ends) until this node holds everything they
// reported: a new member then numbers its first messages after the room's
// history (total order needs its Lamport clock past it). Anti-entropy
// finishes whatever the wait leaves.
func (n *Node) catchUpMembers(ctx context.Context, r *room, timeout time.Duration) {
	r.mu.Lock()
	ids := slices.Collect(maps.Keys(r.members))
	r.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	r.progMu.Lock()
	r.replies = map[string]msglog.VersionVector{}
	r.progMu.Unlock()
	defer func() {
		r.progMu.Lock()
		r.replies = nil
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
// live peer's room set has arrived after since.
func (n *Node) waitRoomSets(ctx context.Context, since time.Time, timeout time.Duration) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		live := n.liveSet()
		n.mu.Lock()
		mgen := n.memberGen
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
			return
		}
		select {
		case <-mgen:
		case <-rgen:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-n.ctx.Done():
			return
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

// openRoom builds the room's machine from the log (see order.Restore) and
// registers the room. Caller holds n.joinMu.
func (n *Node) openRoom(ctx context.Context, info msglog.RoomInfo) (*room, error) {
	return n.openRoomDeferred(ctx, info, false)
}

// openRoomDeferred is openRoom; with deferred, the room is registered (so
// it is announced and its messages are stored) but its machine is only
// restored once the room's members are known (see tryRestore). Caller
// holds n.joinMu.
func (n *Node) openRoomDeferred(ctx context.Context, info msglog.RoomInfo, deferred bool) (*room, error) {
	mode, err := hearsay.ParseOrderMode(info.Mode)
	if err != nil {
		return nil, fmt.Errorf("stored room %q: %w", info.Name, err)
	}
	ocfg := order.DefaultConfig(n.id.ID, mode)
	ocfg.MaxHeld = n.cfg.MaxHeld
	ocfg.MaxInFlight = n.cfg.MaxInFlight
	ocfg.MaxEntries = min(MaxDeps, MaxStamped)
	ocfg.MaxStampBatch = min(ocfg.MaxStampBatch, MaxStamped)
	m, err := order.New(ocfg)
	if err != nil {
		return nil, err
	}
	r := &room{
		name:      info.Name,
		mode:      mode,
		joined:    info.Joined,
		m:         m,
		members:   map[string]uint64{},
		cache:     map[order.ID]*chatpb.Envelope{},
		conflict:  map[string]bool{},
		gapPulls:  map[string]time.Time{},
		progress:  make(chan struct{}),
		restoring: deferred,
	}
	if !deferred {
		r.mu.Lock()
		err := n.restoreLocked(ctx, r)
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	n.roomsMu.Lock()
	n.rooms[r.name] = r
	n.roomsMu.Unlock()
	return r, nil
}

// restoreLocked builds r's machine state from the log (order.Restore):
// our last seq and the room's clock, the live members (others first: told
// only about ourselves, a sequencer room's machine would open an epoch of
// its own), the floors, a silent replay of the stored messages (they are
// the room's history), then Resume. Caller holds r.mu.
func (n *Node) restoreLocked(ctx context.Context, r *room) error {
	last, err := n.log.LastSeq(ctx, r.name, n.id.ID)
	if err != nil {
		return err
	}
	maxL, err := n.log.MaxLamport(ctx, r.name)
	if err != nil {
		return err
	}
	floors, err := n.log.Floors(ctx, r.name)
	if err != nil {
		return err
	}
	r.restoring = false
	r.m.Restore(last, maxL)
	n.syncMembersLocked(r)
	n.handleOutputLocked(r, r.m.MemberUp(n.id.ID, age(r.joined)))
	for o, f := range floors {
		n.handleOutputLocked(r, r.m.Floor(o, f, 0))
	}
	n.catchUpLocked(ctx, r)
	n.handleOutputLocked(r, r.m.Resume())
	r.live = true
	return nil
}

// restoreGrace is how long a restarted node waits for the members of a
// total or sequencer room before it restores the room alone.
const restoreGrace = 10 * time.Second

// tryRestore restores the deferred rooms whose members are known: a live
// peer announced the room and every live peer's room set has arrived, or
// restoreGrace passed since Start (the node is alone). Total order needs
// the membership before the replay: replayed alone, a total room would
// deliver without the others' acks and a sequencer room would open an epoch
// of its own, conflicting with the live sequencer.
func (n *Node) tryRestore() {
	var pending []*room
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		if r.restoring {
			pending = append(pending, r)
		}
		r.mu.Unlock()
	}
	if len(pending) == 0 {
		return
	}
	live := n.liveSet()
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
		start := r.restoring && !r.restoreRunning && !r.parted
		r.restoreRunning = r.restoreRunning || start
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
	if !r.restoring || r.parted {
		r.mu.Unlock()
		return
	}
	r.holdSends = true
	err := n.restoreLocked(n.ctx, r)
	r.mu.Unlock()
	if err != nil {
		n.emitError("restore #%s: %v", r.name, err)
	}
	n.catchUpMembers(n.ctx, r, n.cfg.HandshakeTimeout)
	r.mu.Lock()
	r.holdSends = false
	r.mu.Unlock()
}

func age(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
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
	n.roomsMu.Unlock()
	r.mu.Lock()
	r.parted = true
	r.cache = nil
	r.mu.Unlock()
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
		out = append(out, n.roomInfo(r))
	}
	for _, ri := range others {
		slices.Sort(ri.Members)
		out = append(out, *ri)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// roomInfo snapshots a joined room.
func (n *Node) roomInfo(r *room) hearsay.RoomInfo {
	r.mu.Lock()
	members := append([]string{n.id.ID}, slices.Collect(maps.Keys(r.members))...)
	held := r.m.Stats().Held
	r.mu.Unlock()
	slices.Sort(members)
	return hearsay.RoomInfo{
		Name: r.name, Mode: r.mode, Joined: true, Members: members,
		Received: r.received.Load(), Delivered: r.delivered.Load(), HeldBack: held,
	}
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
	r.mu.Unlock()
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, fmt.Sprintf("%s/%d %s: %s", h.ID.Origin, h.ID.Seq, h.Kind, h.Reason))
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
// than this node.
func (n *Node) liveSet() map[string]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	live := make(map[string]bool, len(n.members))
	for id, m := range n.members {
		if m.State == hearsay.StateAlive || m.State == hearsay.StateSuspect {
			live[id] = true
		}
	}
	return live
}

// syncAllRooms brings every room's machine up to date with membership.
// It must not be called with n.mu held.
func (n *Node) syncAllRooms() {
	for _, r := range n.joinedRooms() {
		r.mu.Lock()
		n.syncMembersLocked(r)
		r.mu.Unlock()
	}
}

// syncMembersLocked tells r's machine who the live members of the room
// are: live peers that announced the room with the same mode. Caller holds
// r.mu.
func (n *Node) syncMembersLocked(r *room) {
	if r.parted || r.restoring {
		return
	}
	live := n.liveSet()
	want := map[string]uint64{}
	var conflicts []string
	n.roomsMu.Lock()
	for id, rs := range n.peerRooms {
		rm := rs.rooms[r.name]
		if rm == nil || !live[id] {
			continue
		}
		if rm.Mode != r.mode.String() {
			if !r.conflict[id] {
				conflicts = append(conflicts, id)
			}
			continue
		}
		want[id] = uint64(max(rm.JoinedUnixNano, 0))
	}
	n.roomsMu.Unlock()
	for _, id := range conflicts {
		r.conflict[id] = true
		n.emitError("peer %s has room #%s with ordering %s, this peer with %s: their messages are not exchanged", id, r.name, n.peerRoomMode(id, r.name), r.mode.String())
	}
	for id := range r.members {
		if _, ok := want[id]; !ok {
			delete(r.members, id)
			n.handleOutputLocked(r, r.m.MemberDown(id))
		}
	}
	for id, a := range want {
		if old, ok := r.members[id]; !ok || old != a {
			r.members[id] = a
			n.handleOutputLocked(r, r.m.MemberUp(id, a))
		}
	}
}

func (n *Node) peerRoomMode(id, name string) string {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	if rs := n.peerRooms[id]; rs != nil && rs.rooms[name] != nil {
		return rs.rooms[name].Mode
	}
	return "?"
}

// roomTargets returns the peer connections to push a message of r to:
// every live member, or Fanout random ones above FanoutThreshold. exclude
// are never chosen (origin, the peer it came from). Caller holds r.mu.
func (n *Node) roomTargetsLocked(r *room, exclude ...string) []*peerConn {
	ids := make([]string, 0, len(r.members))
	for id := range r.members {
		if !slices.Contains(exclude, id) {
			ids = append(ids, id)
		}
	}
	if len(r.members) > n.cfg.FanoutThreshold && len(ids) > n.cfg.Fanout {
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		ids = ids[:n.cfg.Fanout]
	}
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

// pushLocked queues env to targets (never blocks: a full queue drops it,
// counted, and anti-entropy repairs). Caller holds r.mu.
func (n *Node) pushLocked(targets []*peerConn, env *chatpb.Envelope) {
	if len(targets) == 0 {
		return
	}
	f := &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: env}}
	for _, p := range targets {
		p.enqueue(f)
	}
}

// decodeStored decodes an envelope read from the log and checks its
// fields (a damaged file must not crash the node). The signature is not
// checked again: only verified envelopes are stored, signature checks cost
// ~50 µs each (History reads thousands), and every peer that receives a
// repaired envelope verifies it anyway.
func decodeStored(b []byte) (*chatpb.Envelope, error) {
	if len(b) > maxFrameBytes {
		return nil, fmt.Errorf("%w: stored envelope of %d bytes", ErrInvalid, len(b))
	}
	var e chatpb.Envelope
	if err := proto.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: stored envelope: %v", ErrInvalid, err)
	}
	if err := validateEnvelope(&e); err != nil {
		return nil, fmt.Errorf("%w: stored envelope: %v", ErrInvalid, err)
	}
	return &e, nil
}

// store appends a verified envelope of our own to the log, fsynced before
// it returns (a seq that may have left this node is never reused), and
// reports whether it was new.
func (n *Node) store(ctx context.Context, env *chatpb.Envelope) (bool, error) {
	return n.storeWith(ctx, env, n.log.Append)
}

// storeReceived appends verified envelopes received from peers in one
// log append with a deferred fsync (msglog AppendBatchDeferred): written
// before delivery, so a killed process keeps them; an OS crash within
// msglog's SyncInterval can lose them, and anti-entropy fetches them again
// from the peers. isNew[i] reports whether envs[i] was not stored yet.
func (n *Node) storeReceived(ctx context.Context, envs []*chatpb.Envelope) ([]bool, error) {
	recs, err := recordsOf(envs, time.Now())
	if err != nil {
		return nil, err
	}
	isNew, err := n.log.AppendBatchDeferred(ctx, recs)
	if err != nil {
		return nil, fmt.Errorf("store %d received messages: %w", len(envs), err)
	}
	return isNew, nil
}

// recordsOf encodes envelopes as log records received at now.
func recordsOf(envs []*chatpb.Envelope, now time.Time) ([]msglog.Record, error) {
	recs := make([]msglog.Record, len(envs))
	for i, env := range envs {
		data, err := proto.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("encode envelope %s/%d: %w", env.Origin, env.Seq, err)
		}
		recs[i] = msglog.Record{Room: env.Room, Origin: env.Origin, Seq: env.Seq,
			Meta: msglog.Meta{Lamport: env.Lamport, SendTime: time.Unix(0, env.SentUnixNano), RecvTime: now}, Data: data}
	}
	return recs, nil
}

func (n *Node) storeWith(ctx context.Context, env *chatpb.Envelope,
	appendFn func(ctx context.Context, room, origin string, seq uint64, meta msglog.Meta, data []byte) (bool, error)) (bool, error) {
	data, err := proto.Marshal(env)
	if err != nil {
		return false, fmt.Errorf("encode envelope: %w", err)
	}
	meta := msglog.Meta{Lamport: env.Lamport, SendTime: time.Unix(0, env.SentUnixNano), RecvTime: time.Now()}
	isNew, err := appendFn(ctx, env.Room, env.Origin, env.Seq, meta, data)
	if err != nil {
		return false, fmt.Errorf("store %s/%d in #%s: %w", env.Origin, env.Seq, env.Room, err)
	}
	return isNew, nil
}
