package chat

// Events: everything the user should see (messages, membership changes,
// problems) reaches the application through one bounded channel,
// Node.Events. Producers never block on it: gossip and the chat streams must
// not stall because a terminal is slow. When the channel is full the new
// event is dropped and counted, and an "error" event says how many were lost
// once there is room again.

import (
	"errors"
	"sync/atomic"
)

type counters struct {
	sent, received, delivered, duplicates, forged, invalid atomic.Uint64
	badFrames, refused, queueDrops, eventDrops, framesOut  atomic.Uint64
	batchesOut                                             atomic.Uint64
	kvUpdates, kvDrops                                     atomic.Uint64
	mlRefused                                              atomic.Uint64

	stored, controlSent, unjoined, heldDrops         atomic.Uint64
	heldDiskDrops                                    atomic.Uint64
	statusSent, statusReceived, repairSent, repaired atomic.Uint64
	aeBytes, forwarded, gapPulls, tailPulls          atomic.Uint64
	badFloors, strangers                             atomic.Uint64

	linkDials atomic.Uint64 // connections the links' writers dialed (peerconn.go)
	linkSwaps atomic.Uint64 // connections retired by the one-per-pair rule (peerconn.go)
	// roomSetSigns counts the signatures of our own room set
	// (roomSetAnnouncement): tests check that an unchanged set is not
	// signed again.
	roomSetSigns atomic.Uint64
	// memberViews counts the rooms' member views computed
	// (syncMembersForced): tests check an unchanged one is not.
	memberViews atomic.Uint64

	frameBytes frameBytes // wire bytes written per frame kind (framebytes.go)
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
