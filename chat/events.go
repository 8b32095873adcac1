package chat

// Events: everything the user should see (messages, membership changes,
// problems) reaches the application through one bounded channel,
// Node.Events. Producers never block on it: gossip and the chat streams must
// not stall because a terminal is slow. When the channel is full the new
// event is dropped and counted, and an "error" event says how many were lost
// once there is room again.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Event types (Event.Type).
const (
	EventMessage = "message" // a chat message was delivered (also the user's own)
	EventJoin    = "join"    // a peer joined the group
	EventLeave   = "leave"   // a peer left gracefully
	EventFailed  = "failed"  // a peer was declared dead by failure detection
	EventNick    = "nick"    // a peer changed its nick: From is the new display name, Text the old one
	EventSystem  = "system"  // information from the node itself
	EventError   = "error"   // a problem the user should know about
)

// Event is one thing to show. Its JSON form is the `--json` output schema:
// type, time (RFC 3339), and room, from, from_id, id, text where they apply.
type Event struct {
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Time is when the event happened: for messages the origin's clock
	// when it sent (as chat users expect), otherwise this node's clock.
	Time time.Time `json:"time"`
	// Room is the room of a message ("lobby" by default), without '#'.
	Room string `json:"room,omitempty"`
	// From is the display name of the peer concerned: its nick, with
	// "#xxxx" (the start of its peer ID) when another member shares it.
	From string `json:"from,omitempty"`
	// FromID is the peer ID of the peer concerned.
	FromID string `json:"from_id,omitempty"`
	// ID is the message ID, "origin/seq", for messages.
	ID string `json:"id,omitempty"`
	// Text is the message text; for a nick event the old display name;
	// otherwise a human-readable description.
	Text string `json:"text,omitempty"`
	// Self is true when the event is about this node (its own message).
	Self bool `json:"self,omitempty"`
	// Late marks a message of a total-order room that arrived after the
	// room's delivery order had passed its place (from a member that was
	// declared down, typically across a partition): it is shown, but out
	// of the room's common sequence.
	Late bool `json:"late,omitempty"`
}

// MsgID is a message's ID within its room: its origin's peer ID and the
// origin's sequence number in that room (from 1; seqs are counted per room,
// so the same MsgID names different messages in different rooms).
type MsgID struct {
	Origin string
	Seq    uint64
}

// String returns "origin/seq".
func (m MsgID) String() string { return m.Origin + "/" + strconv.FormatUint(m.Seq, 10) }

// ParseMsgID parses "origin/seq".
func ParseMsgID(s string) (MsgID, error) {
	origin, seq, ok := strings.Cut(s, "/")
	if !ok || !ValidPeerID(origin) {
		return MsgID{}, fmt.Errorf("message id %q: want origin/seq", s)
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || n == 0 {
		return MsgID{}, fmt.Errorf("message id %q: seq must be a positive number", s)
	}
	return MsgID{Origin: origin, Seq: n}, nil
}

// Member states (Member.State).
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// Member is one peer as this node sees it.
type Member struct {
	// ID is the peer ID (the memberlist node name).
	ID string `json:"id"`
	// Nick is the peer's nick as advertised in its node meta.
	Nick string `json:"nick"`
	// DisplayName is Nick, with "#xxxx" when another known member shares it.
	DisplayName string `json:"display_name"`
	// Addr is the memberlist address host:port.
	Addr string `json:"addr"`
	// ChatAddr is the chat (gRPC) address host:port.
	ChatAddr string `json:"chat_addr"`
	// State is alive, suspect, dead or left.
	State string `json:"state"`
	// Self is true for the local node.
	Self bool `json:"self,omitempty"`
	// Since is when this node last saw the state change.
	Since time.Time `json:"since"`
}

// Stats are the node's counters since Start. Every frame or message that is
// refused is counted in exactly one of the drop counters.
type Stats struct {
	Sent       uint64 `json:"sent"`        // messages this node originated
	Received   uint64 `json:"received"`    // envelopes received from peers (before checks)
	Delivered  uint64 `json:"delivered"`   // messages whose ordering condition held (shown; own included)
	Duplicates uint64 `json:"duplicates"`  // valid envelopes already seen, dropped
	Forged     uint64 `json:"forged"`      // envelopes with a bad signature or key, dropped
	Invalid    uint64 `json:"invalid"`     // envelopes breaking a limit or rule, dropped
	BadFrames  uint64 `json:"bad_frames"`  // undecodable or unexpected frames and packets, bad node meta
	Refused    uint64 `json:"refused"`     // inbound chat streams refused at the handshake
	QueueDrops uint64 `json:"queue_drops"` // frames dropped because a peer's send queue was full
	FaultDrops uint64 `json:"fault_drops"` // frames and packets dropped by fault injection (tests only)
	EventDrops uint64 `json:"event_drops"` // events dropped because Events was full
	FramesOut  uint64 `json:"frames_out"`  // frames written to peer streams
	BatchesOut uint64 `json:"batches_out"` // of FramesOut, Batch frames carrying several envelopes
	KVUpdates  uint64 `json:"kv_updates"`  // key/value changes applied (local and remote)
	KVDrops    uint64 `json:"kv_drops"`    // key/value entries refused (invalid, forged, full)
	Streams    int    `json:"streams"`     // outgoing chat streams currently established

	// Stored counts messages stored in the log since Start: "received" in
	// the ordering sense (data and control messages, own included).
	Stored uint64 `json:"stored"`
	// HeldBack is how many stored messages wait for their ordering
	// condition now, over all joined rooms (per room: Rooms()).
	HeldBack int `json:"held_back"`
	// ControlSent counts ordering control messages (acks, stamps, syncs)
	// this node originated.
	ControlSent uint64 `json:"control_sent"`
	// Late counts total-order messages shown out of the common sequence.
	Late uint64 `json:"late"`
	// Unjoined counts valid envelopes for rooms this node has not joined
	// (dropped: a peer had a stale view of our rooms).
	Unjoined uint64 `json:"unjoined"`
	// HeldDrops counts messages the ordering could not hold (held-back
	// space full); they stay in the log and are fed again later.
	HeldDrops uint64 `json:"held_drops"`
	// StatusSent and StatusReceived count anti-entropy digests.
	StatusSent     uint64 `json:"status_sent"`
	StatusReceived uint64 `json:"status_received"`
	// RepairSent counts messages this node sent in repairs; Repaired the
	// new ones it stored from repairs.
	RepairSent uint64 `json:"repair_sent"`
	Repaired   uint64 `json:"repaired"`
	// AntiEntropyBytes counts the bytes of status and room-set frames
	// sent: the cost of anti-entropy when nothing is missing.
	AntiEntropyBytes uint64 `json:"anti_entropy_bytes"`
	// Reconnects counts attempts to rejoin members that failed.
	Reconnects uint64 `json:"reconnects"`
	// Forwarded counts messages this node forwarded on first receipt
	// (rooms above the fan-out threshold).
	Forwarded uint64 `json:"forwarded"`
	// GapPulls counts statuses sent at once to the origin (or the sender)
	// of a message that showed a gap in its origin's seqs, instead of
	// waiting for the next anti-entropy round.
	GapPulls uint64 `json:"gap_pulls"`
}

type counters struct {
	sent, received, delivered, duplicates, forged, invalid atomic.Uint64
	badFrames, refused, queueDrops, eventDrops, framesOut  atomic.Uint64
	batchesOut                                             atomic.Uint64
	kvUpdates, kvDrops                                     atomic.Uint64

	stored, controlSent, unjoined, heldDrops         atomic.Uint64
	statusSent, statusReceived, repairSent, repaired atomic.Uint64
	aeBytes, reconnects, forwarded, gapPulls         atomic.Uint64
}

// Errors callers can test with errors.Is.
var (
	// ErrTooLarge: a message body is over MaxBodyBytes.
	ErrTooLarge = errors.New("message too large")
	// ErrNotStarted: the call needs Start first.
	ErrNotStarted = errors.New("node not started (use start first)")
	// ErrAlreadyStarted: Start was called twice.
	ErrAlreadyStarted = errors.New("node already started")
	// ErrLeft: the node has left the group (Leave); only Shutdown remains.
	ErrLeft = errors.New("node has left the group (shut down and start a new node to rejoin)")
	// ErrShutdown: the node was shut down.
	ErrShutdown = errors.New("node shut down")
	// ErrClusterKey: the contacted peers use a different cluster key.
	ErrClusterKey = errors.New("cluster key mismatch")
	// ErrUnknownPeer: no member matches the given ID or nick.
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrAmbiguousPeer: several members match the given nick.
	ErrAmbiguousPeer = errors.New("ambiguous peer")
)
