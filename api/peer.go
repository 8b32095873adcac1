package api

import (
	"context"

	"github.com/hearsay-chat/hearsay"
)

// Peer is what the API needs from the running chat peer (the consumer owns
// the interface; cmd/hearsay hands it the chat node). Implementations
// must be safe for concurrent use: every request runs on its own
// goroutine.
type Peer interface {
	// ID returns the own peer ID.
	ID() string
	// Nick returns the own nick.
	Nick() string
	// SetNick changes the nick; it validates the name.
	SetNick(nick string) error
	// Send sends text to a joined room (name without '#'); it blocks until
	// the message is stored locally.
	Send(ctx context.Context, room, text string) (hearsay.MsgID, error)
	// Members returns the memberlist view, the own node included.
	Members() []hearsay.Member
	// Health returns memberlist's health score (0 is healthy).
	Health() int
	// Stats returns the node's counters.
	Stats() hearsay.Stats
	// Rooms returns the rooms the node knows, joined or not.
	Rooms() []hearsay.RoomInfo
	// JoinRoom joins a room; mode 0 means the room's mode or the default.
	JoinRoom(ctx context.Context, room string, mode hearsay.OrderMode) (hearsay.RoomInfo, error)
	// PartRoom leaves a joined room.
	PartRoom(ctx context.Context, room string) error
	// History returns up to limit past messages of a room, oldest first.
	History(room string, limit int) ([]hearsay.Event, error)
	// Join contacts memberlist addresses (host:port) and returns how many
	// answered.
	Join(ctx context.Context, addrs []string) (int, error)
	// AdvertiseAddr is the memberlist address other peers join through
	// (the "contact address" the web UI shows); empty before Start.
	AdvertiseAddr() string
}

// DirectPeer is implemented by a peer that can send direct (one-to-one)
// messages. A peer without it answers POST /v1/messages with "to" by 501:
// the API plugs direct messages in as soon as the node has them, and
// their events ("direct", message states) flow through the event stream
// like every other event.
type DirectPeer interface {
	// SendDirect sends text, end-to-end encrypted, to the member named
	// by nick or peer ID, and returns the direct message's ID.
	SendDirect(ctx context.Context, to, text string) (string, error)
}

// QueuePeer is implemented by a peer that reports its queue sizes (for
// /metrics): frames waiting in the send queues of its streams, events
// waiting for their reader.
type QueuePeer interface {
	QueueLens() (sendQueued, eventsQueued int)
}
