package chat

// Messages: Send builds, signs and pushes an envelope to every live
// member's stream; handleEnvelope is the receive pipeline (check, dedup,
// deliver) for envelopes arriving on authenticated streams.

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// Send signs a chat message to room (with or without '#'; "" is the lobby)
// and pushes it to every live member. The message also appears in this
// node's own Events. It returns once the message is queued for every peer
// (it never waits for the network): a peer whose queue is full misses it
// (counted in Stats.QueueDrops). A body over Config.MaxBodyBytes (64 KiB
// by default) is refused with ErrTooLarge.
func (n *Node) Send(ctx context.Context, room, text string) (MsgID, error) {
	if err := ctx.Err(); err != nil {
		return MsgID{}, err
	}
	room, err := NormalizeRoom(room)
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
	// sendMu keeps seq order and queue order the same, so each peer
	// receives an origin's messages in seq order (FIFO per origin).
	n.sendMu.Lock()
	defer n.sendMu.Unlock()
	seq, err := n.seq.Next()
	if err != nil {
		return MsgID{}, err
	}
	now := time.Now()
	env := &chatpb.Envelope{
		Seq:          seq,
		Room:         room,
		Kind:         chatpb.Kind_KIND_CHAT,
		Lamport:      n.lamport.Add(1),
		SentUnixNano: now.UnixNano(),
		Body:         []byte(text),
		Nick:         n.Nick(),
	}
	SignEnvelope(n.id, env)
	id := MsgID{Origin: n.id.ID, Seq: seq}
	n.seen.Add(id.Origin, id.Seq)
	n.stats.sent.Add(1)
	n.stats.delivered.Add(1)
	n.emit(Event{Type: EventMessage, Time: now, Room: room, From: n.displayName(n.id.ID, env.Nick),
		FromID: n.id.ID, ID: id.String(), Text: text, Self: true})
	n.broadcastFrame(&chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: env}})
	return id, nil
}

// broadcastFrame queues f on every peer connection without blocking.
func (n *Node) broadcastFrame(f *chatpb.Frame) {
	n.mu.Lock()
	peers := make([]*peerConn, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, p)
	}
	n.mu.Unlock()
	for _, p := range peers {
		p.enqueue(f)
	}
}

// handleEnvelope runs the receive pipeline on an envelope that arrived over
// an authenticated stream from peer `from`: check, dedup, deliver.
func (n *Node) handleEnvelope(env *chatpb.Envelope, from string) {
	n.stats.received.Add(1)
	if err := CheckEnvelope(env); err != nil {
		if errors.Is(err, ErrForged) {
			n.stats.forged.Add(1)
		} else {
			n.stats.invalid.Add(1)
		}
		n.logger.Printf("drop envelope from %s: %v", from, err)
		return
	}
	for {
		cur := n.lamport.Load()
		if env.Lamport <= cur || n.lamport.CompareAndSwap(cur, env.Lamport) {
			break
		}
	}
	if !n.seen.Add(env.Origin, env.Seq) {
		n.stats.duplicates.Add(1)
		return
	}
	switch env.Kind {
	case chatpb.Kind_KIND_CHAT, chatpb.Kind_KIND_SYSTEM:
	case chatpb.Kind_KIND_DIRECT:
		if env.To != n.id.ID {
			return // held for another peer: issue 4 stores and forwards it
		}
	default:
		return // receipts, acks and order stamps belong to issue 4's ordering
	}
	n.stats.delivered.Add(1)
	id := MsgID{Origin: env.Origin, Seq: env.Seq}
	typ := EventMessage
	if env.Kind == chatpb.Kind_KIND_SYSTEM {
		typ = EventSystem
	}
	n.emit(Event{Type: typ, Time: time.Unix(0, env.SentUnixNano), Room: env.Room,
		From: n.displayName(env.Origin, env.Nick), FromID: env.Origin, ID: id.String(), Text: string(env.Body)})
}
