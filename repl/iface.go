package repl

import (
	"context"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// The REPL owns the interfaces it needs (the consumer owns the
// interface). Their methods use the domain types of package hearsay
// (Event, Member, RoomInfo, MsgID, OrderMode, Stats), so the chat node
// implements Peer, Lifecycle and Rooms as it is; cmd/hearsay adapts the
// bootstrap client and the fault controls. repl imports neither chat nor
// bootstrap-api.

// Peer is what the chat commands need from the chat peer. Implementations
// must be safe for concurrent use: the REPL calls them from the command
// goroutine while it reads Events on another.
type Peer interface {
	// ID returns the own peer ID.
	ID() string
	// Nick returns the own display name.
	Nick() string
	// SetNick changes the display name; it validates the name.
	SetNick(nick string) error
	// Send sends text to room (without '#') and returns the message ID.
	// It blocks until the message is stored locally, not until delivery.
	Send(ctx context.Context, room, text string) (hearsay.MsgID, error)
	// Events returns the channel of incoming events: messages (the user's
	// own too, delivered in the room's order; see Config.EchoOwn
	// otherwise), membership changes, notices. The REPL reads it until it
	// is closed or the REPL is closed.
	Events() <-chan hearsay.Event
	// Members returns the memberlist view, including the own node.
	Members() []hearsay.Member
	// Health returns memberlist's health score (0 is healthy).
	Health() int
	// Ping measures the round-trip time to a peer named by ID or nick.
	Ping(ctx context.Context, who string) (time.Duration, error)
	// KVSet, KVDel and KVList manage the key/values broadcast to all
	// members (cli-chat's broadcastadd/del/list).
	KVSet(key, value string) error
	KVDel(key string) error
	KVList() map[string]string
	// Stats returns the counters /stats shows (with len(Members()) and
	// Health()).
	Stats() hearsay.Stats
	// AdvertiseAddr is the memberlist address other peers join through;
	// /bootstrap join registers it. Empty when not started.
	AdvertiseAddr() string
	// MemberlistConfigJSON returns the memberlist configuration as JSON;
	// LoadMemberlistConfigJSON replaces it (before Start, in manual mode).
	MemberlistConfigJSON() ([]byte, error)
	LoadMemberlistConfigJSON(data []byte) error
}

// Lifecycle is the memberlist lifecycle that --manual mode drives step by
// step with the /ml commands. The chat peer implements it; the REPL only
// uses it when Config.Manual is set.
type Lifecycle interface {
	// Start creates the memberlist node and the chat listener.
	Start(ctx context.Context) error
	// Join contacts the given memberlist addresses and returns how many
	// answered.
	Join(ctx context.Context, addrs []string) (int, error)
	// Leave announces the departure to the group (graceful, bounded by ctx).
	Leave(ctx context.Context) error
	// Shutdown stops the node; it is idempotent.
	Shutdown() error
}

// Contact is a bootstrap service entry.
type Contact struct {
	ID      string
	Nick    string
	Addr    string
	Since   time.Time
	Expires time.Time
}

// JoinResult is the answer to /bootstrap join and refill.
type JoinResult struct {
	Stored   bool   // false when the service is full or refill kept others
	Renewed  bool   // the contact was already stored
	Replaced string // the ID a refill replaced, if any
	NumPeers int    // number of stored contacts after the call
}

// BootstrapConfig is the bootstrap service configuration.
type BootstrapConfig struct {
	MaxPeers            int
	MinRefillCandidates int
	LeaseTTL            time.Duration
}

// BootstrapConfigUpdate changes the configuration; nil fields keep their
// value.
type BootstrapConfigUpdate struct {
	MaxPeers            *int
	MinRefillCandidates *int
	LeaseTTL            *time.Duration
}

// Bootstrap is what /bootstrap needs from the bootstrap service client
// (bootstrapapi.Client through an adapter in cmd). Safe for concurrent use.
type Bootstrap interface {
	Join(ctx context.Context, c Contact) (JoinResult, error)
	Refill(ctx context.Context, c Contact) (JoinResult, error)
	Leave(ctx context.Context, id string) error
	List(ctx context.Context, n int) ([]Contact, error)
	// Reset removes every contact and returns how many were removed.
	Reset(ctx context.Context) (int, error)
	Config(ctx context.Context) (BootstrapConfig, error)
	SetConfig(ctx context.Context, u BootstrapConfigUpdate) (BootstrapConfig, error)
}

// Rooms is what the room commands (/join, /part, /switch, /rooms,
// /history and the per-room part of /stats) need from the chat peer.
// Implementations must be safe for concurrent use.
type Rooms interface {
	// JoinRoom joins room (without '#') with an ordering mode; mode 0
	// means the room's existing mode, or the default for a new room.
	// Joining an existing room with another mode is an error. It blocks
	// until the membership is recorded locally.
	JoinRoom(ctx context.Context, room string, mode hearsay.OrderMode) (hearsay.RoomInfo, error)
	// PartRoom leaves room.
	PartRoom(ctx context.Context, room string) error
	// Rooms returns the rooms this peer knows (joined or gossiped).
	Rooms() []hearsay.RoomInfo
	// History returns up to limit of the room's most recent stored
	// messages, oldest first.
	History(room string, limit int) ([]hearsay.Event, error)
	// HeldBack describes up to limit messages of room that are received
	// but held back by the ordering mode (e.g. "<origin>/7 waits for
	// <origin>/6").
	HeldBack(room string, limit int) []string
}

// FaultSettings are the fault-injection knobs /fault shows and sets.
type FaultSettings struct {
	DropRatio float64       // probability that an outgoing chat frame is lost
	Delay     time.Duration // added to every outgoing chat frame
	Jitter    time.Duration // uniform extra delay in [0, Jitter)
}

// Faults is the fault injection of the chat peer (tests and experiments;
// hearsay --faults). Implementations must be safe for concurrent use.
type Faults interface {
	// FaultSettings returns the current settings and whether fault
	// injection is enabled at all (it can only be enabled at start).
	FaultSettings() (FaultSettings, bool)
	// SetFaultSettings replaces drop ratio, delay and jitter.
	SetFaultSettings(FaultSettings) error
	// Partition cuts this peer off from the given peers (nicks or IDs),
	// adding to any partition in force.
	Partition(peers ...string) error
	// Heal ends every partition.
	Heal() error
	// Partitioned returns the peer IDs this peer is cut off from.
	Partitioned() []string
}
