package hearsay

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event types (Event.Type).
const (
	EventMessage = "message" // a chat message was delivered (also the user's own)
	EventJoin    = "join"    // a peer joined the group
	EventLeave   = "leave"   // a peer left gracefully
	EventFailed  = "failed"  // a peer was declared dead by failure detection
	EventNick    = "nick"    // a peer changed its nick: From is the new display name, Text the old one
	EventSystem  = "system"  // information from the node itself, or command output
	EventError   = "error"   // a problem the user should know about
	// EventKV says that another peer's key/value write won over this
	// node's own (concurrent writes; the rule is in chat's kv.go): From and
	// FromID name the winner, Text says which write replaced which.
	EventKV = "kv"
	// EventHistory is a past message printed by /history. It is formatted
	// like a message but is not one: --json consumers that count delivered
	// messages count "message" events only.
	EventHistory = "history"
	// EventDirect is a direct message (end-to-end encrypted, one
	// recipient): received, or the user's own (Self). To and ToID name the
	// recipient, State its delivery state (own messages).
	EventDirect = "direct"
	// EventState says that one of the user's own messages changed state
	// (ID, To/ToID for direct messages or Room for room messages, State).
	EventState = "state"
	// EventRoomJoin and EventRoomPart say that a peer (From, FromID)
	// joined or left a room (Room) this node is in.
	EventRoomJoin = "room_join"
	EventRoomPart = "room_part"
	// EventHeld shows the user's own message at once in a room whose
	// ordering holds it back (total, sequencer): State pending, ID and
	// Text as the message event that follows when its turn comes.
	EventHeld = "held"
)

// Message states (Event.State), in the order a message goes through them.
const (
	StatePending   = "pending"   // stored locally, no other peer has it yet
	StateSent      = "sent"      // another peer (the recipient or a holder) stored it
	StateDelivered = "delivered" // the recipient's signed receipt arrived
	StateRead      = "read"      // the recipient showed it in its active window
)

// Event is one thing to show: an incoming or own message, a membership
// change, command output (system) or an error. Fields that do not apply
// are empty. Text from peers is untrusted: whoever prints it sanitises it
// first.
//
// Its JSON form (MarshalJSON) is the --json output schema documented in
// README.md: type, time (RFC 3339 with fractional seconds), and room,
// from, from_id, id, text and late where they apply. Self is not part of
// it.
type Event struct {
	// Type is one of the Event* constants.
	Type string
	// Time is when the event happened: for messages the origin's clock
	// when it sent (as chat users expect), otherwise this node's clock.
	Time time.Time
	// Room is the room of a message ("lobby" by default), without '#'.
	Room string
	// From is the display name of the peer concerned: its nick, with
	// "#xxxx" (the start of its peer ID) when another member shares it.
	From string
	// FromID is the peer ID of the peer concerned.
	FromID string
	// ID is the message ID, "origin/seq" (MsgID.String), for messages.
	ID string
	// Text is the message text; for a nick event the old display name;
	// otherwise a human-readable description.
	Text string
	// Self is true when the event is about this node (its own message or
	// nick change).
	Self bool
	// Late marks a message of a total-order room that arrived after the
	// room's delivery order had passed its place (from a member that was
	// declared down, typically across a partition): it is shown, but out
	// of the room's common sequence.
	Late bool
	// To and ToID name the recipient of a direct message (display name
	// and peer ID).
	To   string
	ToID string
	// State is the delivery state of the user's own message (State*
	// constants) in direct and state events.
	State string
	// Action marks a /me action ("* alice waves").
	Action bool
	// Backlog marks a message that arrived through catch-up (after a
	// restart or a late join, from anti-entropy) rather than live: a
	// client shows it under a "from while you were away" marker.
	Backlog bool
}

// eventJSON is Event's JSON form; the field order is the key order.
type eventJSON struct {
	Type    string `json:"type"`
	Time    string `json:"time"`
	Room    string `json:"room,omitempty"`
	From    string `json:"from,omitempty"`
	FromID  string `json:"from_id,omitempty"`
	ID      string `json:"id,omitempty"`
	Text    string `json:"text,omitempty"`
	Late    bool   `json:"late,omitempty"`
	To      string `json:"to,omitempty"`
	ToID    string `json:"to_id,omitempty"`
	State   string `json:"state,omitempty"`
	Action  bool   `json:"action,omitempty"`
	Backlog bool   `json:"backlog,omitempty"`
}

// MarshalJSON implements json.Marshaler: the --json output schema. The
// time is formatted with time.RFC3339Nano.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{Type: e.Type, Time: e.Time.Format(time.RFC3339Nano), Room: e.Room,
		From: e.From, FromID: e.FromID, ID: e.ID, Text: e.Text, Late: e.Late,
		To: e.To, ToID: e.ToID, State: e.State, Action: e.Action, Backlog: e.Backlog})
}

// UnmarshalJSON implements json.Unmarshaler: it reads what MarshalJSON
// writes, so tools can read --json output back. type and time are
// required; unknown keys are ignored (newer writers may add some). Self is
// always false.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode event: %w", err)
	}
	if j.Type == "" {
		return errors.New("decode event: no type")
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return fmt.Errorf("decode event time: %w", err)
	}
	*e = Event{Type: j.Type, Time: t, Room: j.Room, From: j.From, FromID: j.FromID, ID: j.ID, Text: j.Text, Late: j.Late,
		To: j.To, ToID: j.ToID, State: j.State, Action: j.Action, Backlog: j.Backlog}
	return nil
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

// ParseMsgID parses "origin/seq" (MsgID.String): origin must be a peer ID
// (ValidPeerID) and seq a positive number.
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
