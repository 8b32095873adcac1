// Package hearsay declares hearsay's domain types, once: the events a peer
// shows (Event, whose JSON form is the --json output), message IDs (MsgID),
// peer IDs, members (Member), rooms (RoomInfo), ordering modes (OrderMode)
// and a node's counters (Stats).
//
// Every layer uses these types directly: chat produces them, chat/order
// orders rooms by OrderMode, repl formats them and declares its interfaces
// with them, and cmd/hearsay hands the chat node to the REPL without
// translating anything. The package imports only the standard library and
// holds no behaviour beyond parsing, formatting and encoding its types.
package hearsay
