package chat

import "github.com/hearsay-chat/hearsay/chat/chatpb"

// SetFrameReceivedHookForTest makes every connection's reader call hook
// with each frame it decoded and the peer it came from (hook must be safe
// for concurrent use).
func SetFrameReceivedHookForTest(cfg *Config, hook func(from string, f *chatpb.Frame)) {
	cfg.frameReceived = hook
}

// SendFrameRawForTest queues f, whatever it holds, to peer id with
// sendFrame (a link on demand).
func (n *Node) SendFrameRawForTest(id string, f *chatpb.Frame) bool { return n.sendFrame(id, f) }

// ListEntriesForTest is listEntries: the deps and stamped messages of
// envelopes, counted against the frame-wide budget.
var ListEntriesForTest = listEntries

// CheckFrameBoundsForTest is checkFrameBounds.
func CheckFrameBoundsForTest(b []byte) error { return checkFrameBounds(b) }

// Bounds checkFrameBounds applies.
const (
	MaxVectorForTest   = maxVector
	MaxPullSeqsForTest = maxPullSeqs
	MaxFrameBytesTest  = maxFrameBytes
)

// Bounds of the other repeated fields checkFrameBounds counts.
const (
	MaxRoomsForTest          = maxRooms
	MaxBatchEnvelopesForTest = maxBatchEnvelopes
	MaxRepairEnvelopesTest   = maxRepairEnvelopes
	MaxEncKeysForTest        = maxEncKeysPerFrame
	MaxOverlayPeersForTest   = maxOverlayPeers
	MaxOverlayIDsForTest     = maxOverlayIDs
	MaxDigestHeldForTest     = maxDigestHeld
	// MaxFrameListEntriesForTest bounds a frame's envelope deps and
	// stamped messages in all.
	MaxFrameListEntriesForTest = maxFrameListEntries
)
