package hearsay

import "time"

// PeerIDLen is the length of a peer ID in characters.
const PeerIDLen = 16

// ValidPeerID reports whether s has the form of a peer ID: PeerIDLen
// lower-case hex digits (the start of the SHA-256 of the peer's public
// key; package chat derives it).
func ValidPeerID(s string) bool {
	if len(s) != PeerIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// MemberState is a member's state as this node sees it (Member.State).
type MemberState string

// Member states.
const (
	StateAlive   MemberState = "alive"
	StateSuspect MemberState = "suspect" // alive for memberlist, but this node cannot reach it
	StateDead    MemberState = "dead"    // declared dead by failure detection (or this node shut down)
	StateLeft    MemberState = "left"    // left gracefully
	// StateNotStarted is the local node's state before it has started.
	StateNotStarted MemberState = "not started"
)

// Member is one peer as this node sees it.
type Member struct {
	// ID is the peer ID (the memberlist node name).
	ID string `json:"id"`
	// Nick is the peer's nick as advertised in its node meta.
	Nick string `json:"nick"`
	// DisplayName is Nick, with "#xxxx" when another known member shares
	// it.
	DisplayName string `json:"display_name"`
	// Addr is the memberlist address host:port.
	Addr string `json:"addr"`
	// ChatAddr is the chat (TLS) address host:port.
	ChatAddr string `json:"chat_addr"`
	// State is one of the State* constants.
	State MemberState `json:"state"`
	// Self is true for the local node.
	Self bool `json:"self,omitempty"`
	// Since is when this node last saw the state change.
	Since time.Time `json:"since"`
}
