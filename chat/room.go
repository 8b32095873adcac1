package chat

// A room is the driver of one joined room (in the manner of etcd-io/raft's
// RawNode around its pure state machine): it owns the room's
// order.Machine (the ordering mode), the cache of envelopes waiting for
// delivery, the outbox of our own messages, its counters and its
// lifecycle, and it is given what it needs from outside at open (roomEnv:
// the message log, the signer, the way out to peers and to the user). The
// node routes frames to rooms and owns membership; a room never looks at
// the node.
//
// Everything that reaches a room goes through the same steps: verified
// and stored by the node's receive pipeline (receive.go: "received"),
// then fed to the machine (feedLocked), which says what to show
// ("delivered", deliverLocked), what control messages to sign, store and
// send (acks, stamps, syncs: handleOutputLocked), and what it could not
// hold (refused: fed again later from the log, catchUpLocked). Our own
// messages are numbered by the machine (send), stored, then pushed
// (outbox.go), so seqs are per (room, origin), gap-free and never reused:
// on restart the machine is restored from the log (LastSeq, MaxLamport,
// floors, replay) before anything new is numbered.
//
// Locks: room.mu serialises one room's machine, cache, outbox and
// lifecycle; it may be held while taking n.mu, n.roomsMu or n.evMu (through
// roomEnv's functions), never the other way round.

import (
	"context"
	"fmt"
	"log"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/order"
)

// roomState is a room's lifecycle. A room opened by JoinRoom, or restored
// at start in fifo and causal mode, is roomReplaying while its machine is
// rebuilt from the log, then roomLive. A total or sequencer room restored
// at start is roomDeferred until its members are known (restore.go), then
// roomRestoreQueued, roomReplaying, roomCatchingUp and roomLive. PartRoom
// makes any room roomParted, for good.
type roomState uint8

const (
	// roomDeferred: messages are stored, the machine waits for the
	// room's members before it is restored.
	roomDeferred roomState = iota
	// roomRestoreQueued: the restore has been started and has not taken
	// the room's lock yet; still nothing is fed.
	roomRestoreQueued
	// roomReplaying: the machine is rebuilt from the log; what it
	// delivers is history, not shown, unless no run of this peer has
	// shown it yet (shown.go).
	roomReplaying
	// roomCatchingUp: restored after a deferral, the room waits until it
	// holds what its members reported before it numbers our messages
	// (Send fails with ErrRestoring); deliveries are shown.
	roomCatchingUp
	// roomLive: deliveries are shown and Send numbers messages.
	roomLive
	// roomParted: PartRoom ran; the room ignores everything.
	roomParted
)

var roomStateNames = [...]string{"deferred", "restore-queued", "replaying", "catching-up", "live", "parted"}

func (s roomState) String() string {
	if int(s) < len(roomStateNames) {
		return roomStateNames[s]
	}
	return "unknown"
}

// fed reports whether the machine takes messages in this state.
func (s roomState) fed() bool { return s == roomReplaying || s == roomCatchingUp || s == roomLive }

// shown reports whether deliveries reach the user in this state.
func (s roomState) shown() bool { return s == roomCatchingUp || s == roomLive }

// roomEnv is what a room is given by the node that opens it. Its
// functions are safe to call with room.mu held.
type roomEnv struct {
	ctx    context.Context // cancelled by Shutdown
	id     *Identity       // signs our messages
	log    msglog.Log
	cfg    *Config
	stats  *counters
	logger *log.Logger
	// emit shows an event to the user; never blocks.
	emit func(hearsay.Event)
	// event turns a data envelope into the event to show (false: not
	// shown, such as a direct message to another peer).
	event func(*chatpb.Envelope) (hearsay.Event, bool)
	// conns returns the outgoing connections to the given members (the
	// ones that have one); the outbound path of every push.
	conns func(ids []string) []*peerConn
	// nick is the nick our messages carry now.
	nick func() string
	// isMember reports whether an origin is, or was, a member identity
	// (whose messages this node accepts).
	isMember func(id string) bool
	// shown holds what this peer has shown of each origin (shown.go).
	shown *shownMarks
	// overlay broadcasts our messages over the tree in large groups
	// (overlaydrv.go).
	overlay *overlayDriver
}

// room is one joined room. See the file comment for its locking.
type room struct {
	env    *roomEnv
	name   string
	mode   order.Mode
	joined time.Time // our age in the room (sequencer role)

	mu       sync.Mutex
	state    roomState
	m        *order.Machine
	members  map[string]uint64             // live members told to m (self excluded) -> age
	failed   map[string]bool               // failed members told to m (MemberDown): still voters
	cache    map[order.ID]*chatpb.Envelope // data envelopes fed and not yet delivered
	arrived  map[order.ID]time.Time        // arrival of received data messages not yet delivered (observer.go)
	refused  bool                          // m refused messages: feed again from the log
	conflict map[string]bool               // peers announcing this room with another mode (reported once)
	gapPulls map[string]gapMark            // origin -> its last pull on a gap (bounded by maxGapPulls; gappull.go)
	tails    map[string]tailMark           // origin -> seqs a status showed we lack (bounded by maxTailMarks; tailpull.go)
	synced   memberSync                    // what the members told to m were computed from (syncMembersLocked)
	hot      hotOrigins                    // origins whose messages arrived lately (hotorigins.go)
	// outbox holds our own messages of the room that are numbered and
	// committed but not pushed yet, in seq order: a Send's message waits
	// there for the fsync it shares with concurrent Sends (see send), and a
	// control message created meanwhile waits behind it, so peers receive
	// our messages in seq order. outBase is the index of outbox[0] among
	// every entry ever added.
	outbox    []outEntry
	outBase   uint64
	syncErr   error  // the last Send's fsync failed: its message waits in the outbox
	conflicts uint64 // order Stats.Conflicts already reported

	received  atomic.Uint64
	delivered atomic.Uint64
	late      atomic.Uint64

	// Join catch-up (see catchUpMembers): status replies by peer and a
	// channel closed and replaced on every reply or repair.
	progMu   sync.Mutex
	replies  map[string]msglog.VersionVector // complete replies
	partial  map[string]msglog.VersionVector // replies whose last range has not arrived
	progress chan struct{}
}

// newRoom builds a room and its machine; in state roomDeferred the machine
// is restored later (restore.go), otherwise now (restoreLocked, with the
// room's live members). It does not register the room anywhere.
func newRoom(ctx context.Context, env *roomEnv, info msglog.RoomInfo, deferred bool, members roomView) (*room, error) {
	mode, err := hearsay.ParseOrderMode(info.Mode)
	if err != nil {
		return nil, err
	}
	ocfg := order.DefaultConfig(env.id.ID, mode)
	ocfg.MaxHeld = env.cfg.MaxHeld
	ocfg.MaxInFlight = env.cfg.MaxInFlight
	ocfg.MaxEntries = min(MaxDeps, MaxStamped)
	ocfg.MaxStampBatch = min(ocfg.MaxStampBatch, MaxStamped)
	m, err := order.New(ocfg)
	if err != nil {
		return nil, err
	}
	r := &room{
		env:      env,
		name:     info.Name,
		mode:     mode,
		joined:   info.Joined,
		state:    roomDeferred,
		m:        m,
		members:  map[string]uint64{},
		failed:   map[string]bool{},
		cache:    map[order.ID]*chatpb.Envelope{},
		conflict: map[string]bool{},
		gapPulls: map[string]gapMark{},
		tails:    map[string]tailMark{},
		progress: make(chan struct{}),
	}
	if !deferred {
		r.mu.Lock()
		err := r.restoreLocked(ctx, members, roomLive)
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return r, nil
}

// restoreLocked builds the machine's state from the log (order.Restore):
// our last seq and the room's clock, the live members (others first: told
// only about ourselves, a sequencer room's machine would open an epoch of
// its own), the floors, a silent replay of the stored messages (they are
// the room's history), then Resume; the room is then in state then.
// Caller holds r.mu.
func (r *room) restoreLocked(ctx context.Context, members roomView, then roomState) error {
	lg := r.env.log
	last, err := lg.LastSeq(ctx, r.name, r.env.id.ID)
	if err != nil {
		return err
	}
	maxL, err := lg.MaxLamport(ctx, r.name)
	if err != nil {
		return err
	}
	floors, err := lg.Floors(ctx, r.name)
	if err != nil {
		return err
	}
	r.state = roomReplaying
	r.m.Restore(last, maxL)
	r.setMembersLocked(members)
	r.handleOutputLocked(r.m.MemberUp(r.env.id.ID, age(r.joined)))
	for o, f := range floors {
		r.handleOutputLocked(r.m.Floor(o, f, 0))
	}
	r.catchUpLocked(ctx)
	r.handleOutputLocked(r.m.Resume())
	r.state = then
	return nil
}

// roomView is a room's membership as the node sees it (this node
// excluded): what setMembersLocked gives the room's machine.
type roomView struct {
	live map[string]uint64 // live members -> age in the room
	// failed: members memberlist declared failed less than
	// Config.FailedVoterTimeout ago, not left: they still vote in a
	// sequencer room's quorum (order.Machine.MemberDown). Nil when none.
	failed map[string]bool
}

// setMembersLocked tells the machine who the room's members are: live
// (MemberUp), failed and still voting (MemberDown), or gone for good
// (MemberLeft: parted, left the group, or failed longer than
// Config.FailedVoterTimeout ago). The changes that can only lower the
// sequencer quorum go first and the one that raises it (a voter gone)
// last, so that no step in between lets a minority act as a majority.
// Caller holds r.mu.
func (r *room) setMembersLocked(want roomView) {
	if !r.state.fed() {
		return
	}
	for id := range r.members {
		if _, ok := want.live[id]; !ok && want.failed[id] {
			delete(r.members, id)
			r.failed[id] = true
			r.handleOutputLocked(r.m.MemberDown(id))
		}
	}
	for id := range want.failed {
		if _, live := r.members[id]; !live && !r.failed[id] {
			r.failed[id] = true
			r.handleOutputLocked(r.m.MemberDown(id))
		}
	}
	for id, a := range want.live {
		if old, ok := r.members[id]; !ok || old != a {
			r.members[id] = a
			delete(r.failed, id)
			r.handleOutputLocked(r.m.MemberUp(id, a))
		}
	}
	for id := range r.members {
		if _, ok := want.live[id]; !ok {
			delete(r.members, id)
			r.handleOutputLocked(r.m.MemberLeft(id))
		}
	}
	for id := range r.failed {
		if _, live := want.live[id]; !live && !want.failed[id] {
			delete(r.failed, id)
			r.handleOutputLocked(r.m.MemberLeft(id))
		}
	}
}

// memberIDs returns the room's live members (this node excluded), sorted.
func (r *room) memberIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.members))
	for id := range r.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// part ends the room for good.
func (r *room) part() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = roomParted
	r.cache = nil
	r.arrived = nil
}

// noteConflictLocked reports, once per peer, a member announcing the room
// with another ordering mode. Caller holds r.mu.
func (r *room) noteConflictLocked(peer, theirMode string) {
	if r.conflict[peer] {
		return
	}
	r.conflict[peer] = true
	r.env.emit(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf("peer %s has room #%s with ordering %s, this peer with %s: their messages are not exchanged",
		peer, r.name, theirMode, r.mode.String())})
}

// reportConflictsLocked tells the user when the machine has seen new
// conflicting ordering messages. Caller holds r.mu.
func (r *room) reportConflictsLocked() {
	if c := r.m.Stats().Conflicts; c > r.conflicts {
		r.conflicts = c
		r.env.emit(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf("#%s: conflicting ordering messages (%d so far): two members acted as sequencer of the same epoch (the room was created on both sides of a partition, or by two peers at once); members may disagree on its order", r.name, c)})
	}
}

// info snapshots the room; self is this node's peer ID.
func (r *room) info(self string) hearsay.RoomInfo {
	r.mu.Lock()
	members := append([]string{self}, r.memberIDsLocked()...)
	held := r.m.Stats().Held
	r.mu.Unlock()
	slices.Sort(members)
	return hearsay.RoomInfo{
		Name: r.name, Mode: r.mode, Joined: true, Members: members,
		Received: r.received.Load(), Delivered: r.delivered.Load(), HeldBack: held,
	}
}

func (r *room) memberIDsLocked() []string {
	ids := make([]string, 0, len(r.members))
	for id := range r.members {
		ids = append(ids, id)
	}
	return ids
}

// noteStatus records a member's status reply.
// A vector may come in several statuses covering ranges of origins; it
// counts as a reply once the last range (final) is in: they arrive in
// order on the member's stream.
func (r *room) noteStatus(from string, vv msglog.VersionVector, final bool) {
	r.progMu.Lock()
	if r.replies != nil {
		acc := r.partial[from]
		if acc == nil {
			acc = msglog.VersionVector{}
		}
		maps.Copy(acc, vv)
		if final {
			r.replies[from] = acc
			delete(r.partial, from)
		} else if len(r.partial) < maxVector {
			r.partial[from] = acc
		}
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

// catchUpLocked feeds the machine the stored messages it has not taken
// yet (replay on restart, and messages it refused when its held-back space
// was full), replayChunk per origin per step, until nothing moves. Caller
// holds r.mu.
func (r *room) catchUpLocked(ctx context.Context) {
	r.refused = false
	lg := r.env.log
	for step := 0; step < 1<<20; step++ {
		vv, err := lg.VersionVector(ctx, r.name)
		if err != nil {
			r.env.logger.Printf("catch up #%s: %v", r.name, err)
			r.refused = true
			return
		}
		want := r.m.Want()
		origins := make([]string, 0, len(vv))
		for o := range vv {
			origins = append(origins, o)
		}
		slices.Sort(origins)
		moved, again := false, false
		for _, o := range origins {
			from := want[o]
			if from == 0 {
				from = 1
			}
			recs, err := lg.Range(ctx, r.name, o, from, replayChunk)
			if err != nil {
				r.env.logger.Printf("catch up #%s: %v", r.name, err)
				r.refused = true
				return
			}
			envs := make([]*chatpb.Envelope, 0, len(recs))
			for _, rec := range recs {
				env, err := decodeStored(rec.Data)
				if err != nil || env.Room != r.name || env.Origin != o || env.Seq != rec.Seq {
					r.env.logger.Printf("catch up #%s: stored %s/%d unreadable: %v", r.name, o, rec.Seq, err)
					continue
				}
				envs = append(envs, env)
			}
			if len(envs) == 0 {
				continue
			}
			before := r.m.Want()[o]
			r.feedLocked(envs)
			if r.m.Want()[o] != before {
				moved = true
			} else if len(recs) == replayChunk {
				// A full chunk behind a gap: what lies beyond it was not
				// fed; try again next round (the gap may be filled by then).
				again = true
			}
		}
		if !moved {
			r.refused = r.refused || again
			return
		}
	}
}

// applyFloor records that a member no longer has origin's messages up to
// seq (pruned by its retention), so the machine stops waiting for the
// ones below it.
func (r *room) applyFloor(origin string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.fed() { // a restore reads the floors itself
		r.handleOutputLocked(r.m.Floor(origin, seq, 0))
	}
}

func age(t time.Time) uint64 {
	if t.IsZero() || t.UnixNano() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}
