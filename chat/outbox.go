package chat

// The outbound side of a room: Node.Send checks a message and hands it to
// its room, whose send numbers, signs and stores it; the outbox holds our
// messages until their fsync, and pushes go to the room's members through
// roomEnv.conns (the node's per-peer queues, peerconn.go).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/order"
)

// Send signs a chat message to room (with or without '#'; "" is the lobby)
// and pushes it to the room's live members. The room must be joined
// (ErrNotJoined otherwise; the lobby always is). The message is stored in
// the message log before it leaves, and appears in this node's own Events
// when the room's ordering delivers it (at once in fifo and causal rooms,
// after the acks or the stamp in total and sequencer rooms). It returns
// once the message is stored and queued (it never waits for the network):
// a peer whose queue is full misses the push and gets it from
// anti-entropy. A body over Config.MaxBodyBytes (64 KiB by default) is
// refused with ErrTooLarge; in total and sequencer rooms too many of our
// own undelivered messages (Config.MaxInFlight) is an error wrapping
// order.ErrBusy. Safe for concurrent use; it blocks for the log write.
func (n *Node) Send(ctx context.Context, roomName, text string) (hearsay.MsgID, error) {
	if err := ctx.Err(); err != nil {
		return hearsay.MsgID{}, err
	}
	name, err := NormalizeRoom(roomName)
	if err != nil {
		return hearsay.MsgID{}, err
	}
	if limit := n.cfg.MaxBodyBytes; len(text) > limit {
		return hearsay.MsgID{}, fmt.Errorf("%w: the message is %d bytes and the limit is %d; split it", ErrTooLarge, len(text), limit)
	}
	if text == "" {
		return hearsay.MsgID{}, errors.New("empty message")
	}
	if !utf8.ValidString(text) {
		return hearsay.MsgID{}, errors.New("message is not valid UTF-8")
	}
	if _, err := n.active(); err != nil {
		return hearsay.MsgID{}, err
	}
	r := n.joinedRoom(name)
	if r == nil {
		return hearsay.MsgID{}, fmt.Errorf("send to #%s: %w (join it first)", name, ErrNotJoined)
	}
	id, err := r.send(ctx, text)
	if err == nil {
		n.noteOwn(name, id.Seq)
		n.noteHeldOwn(r, id, text)
	}
	return id, err
}

// outEntry is an own message waiting in a room's outbox.
type outEntry struct {
	env *chatpb.Envelope
	// durable: fsynced already (a control message queued behind a Send),
	// so it leaves as soon as everything before it has.
	durable bool
}

// send numbers text with the machine, signs and stores it, and pushes it
// once it is on disk (see Node.Send). r.mu keeps seq order and queue
// order the same, so each peer receives an origin's messages in seq order
// (FIFO per origin). It is not held during the fsync: concurrent sends
// (and received messages) proceed, and one fsync covers every send
// committed before it.
func (r *room) send(ctx context.Context, text string) (hearsay.MsgID, error) {
	env := r.env
	start := time.Now()
	r.mu.Lock()
	switch r.state {
	case roomLive:
	case roomParted:
		r.mu.Unlock()
		return hearsay.MsgID{}, fmt.Errorf("send to #%s: %w", r.name, ErrNotJoined)
	default:
		r.mu.Unlock()
		return hearsay.MsgID{}, fmt.Errorf("send to #%s: %w", r.name, ErrRestoring)
	}
	if r.syncErr != nil && len(r.outbox) > 0 {
		// An earlier message waits for an fsync that failed: try it again
		// before numbering more (a sticky log error keeps failing, and
		// send refuses rather than pile messages up behind it).
		waiting := r.outBase + uint64(len(r.outbox))
		r.mu.Unlock()
		if err := env.log.Sync(env.ctx); err != nil {
			return hearsay.MsgID{}, fmt.Errorf("send to #%s: the message log cannot sync to disk: %w", r.name, err)
		}
		r.mu.Lock()
		r.releaseLocked(waiting)
		r.syncErr = nil
		if r.state == roomParted {
			r.mu.Unlock()
			return hearsay.MsgID{}, fmt.Errorf("send to #%s: %w", r.name, ErrNotJoined)
		}
	}
	meta, out, err := r.m.Next()
	if err != nil {
		r.mu.Unlock()
		return hearsay.MsgID{}, fmt.Errorf("send to #%s: %w", r.name, err)
	}
	// In causal and total rooms the machine may number acks carrying
	// part of the message's deps just before it (order.MaxDepsPerMessage):
	// they are stored and leave first, so peers get our seqs in order.
	if i := slices.IndexFunc(out.Send, func(c order.Meta) bool { return c.Seq > meta.Seq }); i != 0 {
		if i < 0 {
			i = len(out.Send)
		}
		r.handleOutputLocked(order.Output{Send: out.Send[:i]})
		out.Send = out.Send[i:]
	}
	e := envelopeFor(meta, r.name)
	e.Kind = chatpb.Kind_KIND_CHAT
	e.Body = []byte(text)
	e.Nick = env.nick()
	SignEnvelope(env.id, e)
	// Store before sending: a restart continues after every seq that
	// may have left this node. Committed now, fsynced below.
	if _, err := storeEnvelope(ctx, e, env.log.AppendDeferred); err != nil {
		r.mu.Unlock()
		// The machine has numbered the message, so its seq stays unused
		// until the next start, whose Resume fills it with an ack.
		env.emit(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf("message to #%s not stored: %v", r.name, err)})
		return hearsay.MsgID{}, err
	}
	r.received.Add(1)
	env.stats.sent.Add(1)
	env.stats.stored.Add(1)
	if o := env.cfg.Observer; o != nil {
		o.SendStored(time.Since(start))
	}
	if meta.Kind == order.KindData {
		r.cache[meta.ID()] = e
	}
	r.outbox = append(r.outbox, outEntry{env: e})
	synced := r.outBase + uint64(len(r.outbox)) // the fsync below covers the outbox up to here
	// The machine's output now, in its order with everything else it says
	// (a total-order room shows messages in the order its machine decided;
	// control messages it asks for queue behind this one in the outbox).
	// The message is committed, so it is shown stored, only not yet fsynced.
	r.handleOutputLocked(out)
	r.mu.Unlock()
	id := hearsay.MsgID{Origin: env.id.ID, Seq: meta.Seq}
	if err := env.log.Sync(env.ctx); err != nil {
		// Committed but maybe not on disk: it must not leave before it is
		// (a crash could reuse its seq). It stays in the outbox, released
		// by the next fsync that succeeds (the next send tries one first).
		r.mu.Lock()
		r.syncErr = err
		r.mu.Unlock()
		return id, fmt.Errorf("send to #%s: the message is stored but not yet on disk, so it goes out with the next message that is: %w", r.name, err)
	}
	r.mu.Lock()
	r.releaseLocked(synced)
	r.mu.Unlock()
	return id, nil
}

// releaseLocked pushes the outbox entries before index synced (fsynced by
// the caller's Sync) and the durable ones after them, in order, stopping
// at the first entry still waiting for its fsync. Caller holds r.mu.
func (r *room) releaseLocked(synced uint64) {
	for len(r.outbox) > 0 {
		e := r.outbox[0]
		if !e.durable && r.outBase >= synced {
			return
		}
		r.outbox[0] = outEntry{}
		r.outbox = r.outbox[1:]
		r.outBase++
		if r.state == roomParted {
			continue
		}
		r.disseminateLocked(e.env)
	}
}

// disseminateLocked sends one of our messages to the room: over the
// overlay's broadcast tree in a group above Config.TreeThreshold (which
// reaches every member, and members relay), else pushed to the members
// (targetsLocked). Caller holds r.mu.
func (r *room) disseminateLocked(e *chatpb.Envelope) {
	if ov := r.env.overlay; ov != nil && ov.treeMode() && ov.broadcast(e) {
		return
	}
	pushTo(r.targetsLocked(), e)
}

// clampUnsyncedLocked lowers our own entry of vv below the first message
// of ours waiting in the outbox for its fsync: none may leave before it
// is on disk (a crash could reuse its seq), not even in a repair. Caller
// holds r.mu.
func (r *room) clampUnsyncedLocked(vv map[string]uint64) {
	if len(r.outbox) == 0 {
		return
	}
	self := r.env.id.ID
	if head := r.outbox[0].env.Seq; vv[self] >= head {
		vv[self] = head - 1
	}
}

// targetsLocked returns the connections to push a message of the room
// to: every live member, or Fanout random ones above FanoutThreshold
// (when the tree is not in use: fanoutLocked). exclude are never chosen
// (origin, the peer it came from). Caller holds r.mu.
func (r *room) targetsLocked(exclude ...string) []*peerConn {
	ids := make([]string, 0, len(r.members))
	for id := range r.members {
		if !slices.Contains(exclude, id) {
			ids = append(ids, id)
		}
	}
	cfg := r.env.cfg
	if r.fanoutLocked() && len(ids) > cfg.Fanout {
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		ids = ids[:cfg.Fanout]
	}
	return r.env.conns(ids)
}

// fanoutLocked reports whether the room is in forward-once gossip mode:
// above FanoutThreshold members while the group does not use the tree (in
// tree mode the tree forwards; this peer forwards nothing itself). Caller
// holds r.mu.
func (r *room) fanoutLocked() bool {
	if len(r.members) <= r.env.cfg.FanoutThreshold {
		return false
	}
	return r.env.overlay == nil || !r.env.overlay.treeMode()
}

// pushTo queues env to targets (never blocks: a full queue drops it,
// counted, and anti-entropy repairs).
func pushTo(targets []*peerConn, env *chatpb.Envelope) {
	if len(targets) == 0 {
		return
	}
	f := envelopeFrame(env)
	for _, p := range targets {
		p.enqueue(f)
	}
}

// envelopeFor builds an unsigned envelope carrying meta's ordering fields.
func envelopeFor(meta order.Meta, room string) *chatpb.Envelope {
	env := &chatpb.Envelope{
		Seq:          meta.Seq,
		Room:         room,
		Lamport:      meta.Lamport,
		SentUnixNano: time.Now().UnixNano(),
		Epoch:        meta.Epoch,
		Prev:         meta.Prev,
		Cut:          meta.Cut,
		Global:       meta.Global,
		Candidate:    meta.Candidate,
	}
	switch meta.Kind {
	case order.KindAck:
		env.Kind = chatpb.Kind_KIND_ACK
	case order.KindStamp:
		env.Kind = chatpb.Kind_KIND_STAMP
	case order.KindSync:
		env.Kind = chatpb.Kind_KIND_SYNC
	}
	if len(meta.Deps) > 0 {
		env.Deps = make([]*chatpb.Dep, 0, len(meta.Deps))
		for o, s := range meta.Deps {
			env.Deps = append(env.Deps, &chatpb.Dep{Origin: o, Seq: s})
		}
		slices.SortFunc(env.Deps, func(a, b *chatpb.Dep) int { return strings.Compare(a.Origin, b.Origin) })
	}
	for _, id := range meta.Stamped {
		env.Stamped = append(env.Stamped, &chatpb.MsgRef{Origin: id.Origin, Seq: id.Seq})
	}
	if meta.Kind != order.KindStamp {
		env.Global = 0 // Global is only meaningful on the wire for stamps
	}
	return env
}
