package chat

// Messages: Send checks a message and hands it to its room (outbox.go
// numbers, signs, stores and pushes it); the conversion between envelopes
// and the ordering machine's Meta; and the event a delivered envelope
// shows.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

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
func (n *Node) Send(ctx context.Context, roomName, text string) (MsgID, error) {
	if err := ctx.Err(); err != nil {
		return MsgID{}, err
	}
	name, err := NormalizeRoom(roomName)
	if err != nil {
		return MsgID{}, err
	}
	if limit := n.cfg.MaxBodyBytes; len(text) > limit {
		return MsgID{}, fmt.Errorf("%w: the message is %d bytes and the limit is %d; split it", ErrTooLarge, len(text), limit)
	}
	if text == "" {
		return MsgID{}, errors.New("empty message")
	}
	if !utf8.ValidString(text) {
		return MsgID{}, errors.New("message is not valid UTF-8")
	}
	if _, err := n.active(); err != nil {
		return MsgID{}, err
	}
	r := n.joinedRoom(name)
	if r == nil {
		return MsgID{}, fmt.Errorf("send to #%s: %w (join it first)", name, ErrNotJoined)
	}
	return r.send(ctx, text)
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

// metaOf returns the ordering fields of a verified envelope.
func metaOf(env *chatpb.Envelope) order.Meta {
	m := order.Meta{
		Origin: env.Origin, Seq: env.Seq, Lamport: env.Lamport,
		Epoch: env.Epoch, Prev: env.Prev, Cut: env.Cut, Global: env.Global, Candidate: env.Candidate,
	}
	switch env.Kind {
	case chatpb.Kind_KIND_ACK:
		m.Kind = order.KindAck
	case chatpb.Kind_KIND_STAMP:
		m.Kind = order.KindStamp
	case chatpb.Kind_KIND_SYNC:
		m.Kind = order.KindSync
	default:
		// Chat, system, direct and receipt messages all take their place in
		// the origin's stream; which of them are shown is decided at delivery.
		m.Kind = order.KindData
	}
	if len(env.Deps) > 0 {
		m.Deps = make(map[string]uint64, len(env.Deps))
		for _, d := range env.Deps {
			m.Deps[d.Origin] = d.Seq
		}
	}
	for _, s := range env.Stamped {
		m.Stamped = append(m.Stamped, order.ID{Origin: s.Origin, Seq: s.Seq})
	}
	return m
}

// messageEvent turns a data envelope into the event to show; ok is false
// for kinds that are not shown (control messages, receipts, direct
// messages to another peer).
func (n *Node) messageEvent(env *chatpb.Envelope) (Event, bool) {
	typ := EventMessage
	switch env.Kind {
	case chatpb.Kind_KIND_CHAT:
	case chatpb.Kind_KIND_SYSTEM:
		typ = EventSystem
	case chatpb.Kind_KIND_DIRECT:
		if env.To != n.id.ID && env.Origin != n.id.ID {
			return Event{}, false
		}
	default:
		return Event{}, false
	}
	id := MsgID{Origin: env.Origin, Seq: env.Seq}
	return Event{Type: typ, Time: time.Unix(0, env.SentUnixNano), Room: env.Room,
		From: n.displayName(env.Origin, env.Nick), FromID: env.Origin, ID: id.String(),
		Text: string(env.Body), Self: env.Origin == n.id.ID}, true
}
