package repl

import (
	"context"
	"time"
)

// The REPL owns the interfaces it needs (STYLE.md: the consumer owns the
// interface). cmd/hearsay adapts the chat peer and the bootstrap client to
// them; repl imports neither.

// Event types as they appear in Event.Type and in --json output.
const (
	EventMessage = "message"
	EventJoin    = "join"
	EventLeave   = "leave"
	EventFailed  = "failed"
	EventNick    = "nick"
	EventSystem  = "system"
	EventError   = "error"
)

// Event is one thing to show: an incoming or own message, a membership
// change, command output (system) or an error. Fields that do not apply
// are empty. Text from peers is untrusted: the REPL sanitises it before
// printing. For a nick event, From is the new display name and Text the
// old one. The peer is expected to emit the user's own messages too
// (delivered in the room's order); see Config.EchoOwn otherwise.
type Event struct {
	Type   string    // one of the Event* constants
	Time   time.Time // when it happened (send time for messages)
	Room   string    // room of a message, without '#', e.g. "lobby"
	From   string    // nick of the origin (display name)
	FromID string    // peer ID of the origin
	ID     string    // message ID, e.g. "<origin>/<seq>"
	Text   string    // message body, or the event's description
	// Late marks a message of a total-order room shown out of the room's
	// common sequence: it arrived after its place had passed (from a
	// member that was declared down, typically across a partition).
	Late bool
}

// Member is one memberlist member as /members and /who show it.
type Member struct {
	ID          string // peer ID (memberlist node name)
	Nick        string // display name as the peer set it
	DisplayName string // unique display name, e.g. "alice#3f2a"; may be empty
	Addr        string // memberlist address host:port
	ChatAddr    string // chat transport address host:port
	State       string // alive, suspect, dead, left
}

// Stat is one line of /stats: a name and its value, already formatted.
type Stat struct {
	Name  string
	Value string
}

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
	Send(ctx context.Context, room, text string) (id string, err error)
	// Events returns the channel of incoming events. The REPL reads it
	// until it is closed or the REPL is closed.
	Events() <-chan Event
	// Members returns the memberlist view, including the own node.
	Members() []Member
	// Health returns memberlist's health score (0 is healthy).
	Health() int
	// Ping measures the round-trip time to a peer named by ID or nick.
	Ping(ctx context.Context, who string) (time.Duration, error)
	// KVSet, KVDel and KVList manage the key/values broadcast to all
	// members (cli-chat's broadcastadd/del/list).
	KVSet(key, value string) error
	KVDel(key string) error
	KVList() map[string]string
	// Stats returns counters for /stats, in display order.
	Stats() []Stat
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

// Room ordering modes, as /join --order takes them (DESIGN.md "Ordering").
const (
	OrderFIFO      = "fifo"
	OrderCausal    = "causal"
	OrderTotal     = "total"
	OrderSequencer = "sequencer"
)

// OrderModes lists the ordering modes in the order /help shows them.
var OrderModes = []string{OrderCausal, OrderFIFO, OrderTotal, OrderSequencer}

// EventHistory is the type of a past message printed by /history. It is
// formatted like a message but is not one: --json consumers that count
// delivered messages count "message" events only.
const EventHistory = "history"

// RoomInfo is one room as /rooms and /stats show it.
type RoomInfo struct {
	Name      string   // without '#'
	Mode      string   // one of the Order* constants
	Joined    bool     // this peer is a member
	Members   []string // peer IDs of the members this peer knows of
	Received  uint64   // messages stored (received) in this room
	Delivered uint64   // messages shown (their ordering condition held)
	HeldBack  int      // received but not yet deliverable
}

// Rooms is what the room commands (/join, /part, /switch, /rooms,
// /history and the per-room part of /stats) need from the chat peer.
// Implementations must be safe for concurrent use.
type Rooms interface {
	// JoinRoom joins room (without '#') with an ordering mode; mode ""
	// means the room's existing mode, or the default for a new room.
	// Joining an existing room with another mode is an error. It blocks
	// until the membership is recorded locally.
	JoinRoom(ctx context.Context, room, mode string) (RoomInfo, error)
	// PartRoom leaves room.
	PartRoom(ctx context.Context, room string) error
	// Rooms returns the rooms this peer knows (joined or gossiped).
	Rooms() []RoomInfo
	// History returns up to limit of the room's most recent stored
	// messages, oldest first.
	History(room string, limit int) ([]Event, error)
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
