package chat

// Bytes written per frame kind: what a node's links cost, broken down by
// what they carried, so that a benchmark can say which frames make the
// bytes per delivery (docs/BENCHMARKS.md) without a diagnostic build.
// Each frame a link's writer wrote adds its wire size to the counter of
// its kind: one atomic add per frame, no lock, no allocation.

import (
	"strings"
	"sync/atomic"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// frameKind indexes frameBytes: a Frame's oneof case, the overlay's
// frames split by their kind (they are most of a large group's frames).
type frameKind uint8

const (
	kindOther frameKind = iota // hello, auth, unknown: never written by a link
	kindEnvelope
	kindBatch
	kindPing
	kindPong
	kindBye
	kindRoomSet
	kindRoomSetDigest
	kindStatus
	kindRepair
	kindEncKeys
	kindDirect
	kindDirectAck
	kindReceipt
	kindOvlProbe
	kindOvlJoin
	kindOvlForwardJoin
	kindOvlNeighbor
	kindOvlNeighborReply
	kindOvlDisconnect
	kindOvlShuffle
	kindOvlShuffleReply
	kindOvlGossip
	kindOvlIHave
	kindOvlGraft
	kindOvlPrune
	numFrameKinds
)

// frameKindNames are the keys of Stats.FrameBytes, by frameKind. An
// overlay kind's is its name in chat/overlay (overlay.Kind.String), with
// "overlay_" before it and "_" for "-".
var frameKindNames = func() [numFrameKinds]string {
	names := [numFrameKinds]string{
		kindOther:         "other",
		kindEnvelope:      "envelope",
		kindBatch:         "batch",
		kindPing:          "ping",
		kindPong:          "pong",
		kindBye:           "bye",
		kindRoomSet:       "room_set",
		kindRoomSetDigest: "room_set_digest",
		kindStatus:        "status",
		kindRepair:        "repair",
		kindEncKeys:       "enc_keys",
		kindDirect:        "direct",
		kindDirectAck:     "direct_ack",
		kindReceipt:       "receipt",
		kindOvlProbe:      "overlay_probe", // kind 0: the driver's, not the overlay's
	}
	for k := overlay.KindJoin; k <= overlay.KindPrune; k++ {
		names[kindOvlProbe+frameKind(k)] = "overlay_" + strings.ReplaceAll(k.String(), "-", "_")
	}
	return names
}()

// kindOf returns f's frameKind.
func kindOf(f *chatpb.Frame) frameKind {
	switch m := f.GetMsg().(type) {
	case *chatpb.Frame_Envelope:
		return kindEnvelope
	case *chatpb.Frame_Batch:
		return kindBatch
	case *chatpb.Frame_Ping:
		return kindPing
	case *chatpb.Frame_Pong:
		return kindPong
	case *chatpb.Frame_Bye:
		return kindBye
	case *chatpb.Frame_RoomSet:
		return kindRoomSet
	case *chatpb.Frame_RoomSetDigest:
		return kindRoomSetDigest
	case *chatpb.Frame_Status:
		return kindStatus
	case *chatpb.Frame_Repair:
		return kindRepair
	case *chatpb.Frame_EncKeys:
		return kindEncKeys
	case *chatpb.Frame_Direct:
		return kindDirect
	case *chatpb.Frame_DirectAck:
		return kindDirectAck
	case *chatpb.Frame_Receipt:
		return kindReceipt
	case *chatpb.Frame_Overlay:
		// The overlay's kinds are 1 to 11 in order, 0 the driver's probe.
		if k := m.Overlay.GetKind(); k <= uint32(overlay.KindPrune) {
			return kindOvlProbe + frameKind(k)
		}
	}
	return kindOther
}

// Wire framing around a frame's protobuf encoding on the TLS transport
// (chat/transport): a 4-byte length prefix, and per TLS 1.3 record of at
// most 16 KB a 5-byte header, the inner content type and a 16-byte AEAD
// tag (a frame is written with one Write, so it fills its own records).
const (
	framePrefixBytes = 4
	tlsRecordBytes   = 16 << 10
	tlsRecordCost    = 5 + 1 + 16
)

// wireSize is what a frame whose encoding is size bytes costs on the
// wire: its encoding and framing.
func wireSize(size int) uint64 {
	n := uint64(size) + framePrefixBytes
	records := (n + tlsRecordBytes - 1) / tlsRecordBytes
	return n + records*tlsRecordCost
}

// frameBytes counts the wire bytes written per frameKind.
type frameBytes [numFrameKinds]atomic.Uint64

// add counts f, written to a link in an encoding of size bytes (what the
// transport's Send reported: the frame is not encoded again to size it),
// and returns its kind.
func (b *frameBytes) add(f *chatpb.Frame, size int) frameKind {
	k := kindOf(f)
	b[k].Add(wireSize(size))
	return k
}

// antiEntropy reports whether frames of kind k count in
// Stats.AntiEntropyBytes: statuses (full, sliced, digests, replies and gap
// pulls), room sets (our own, answers and relays) and room set digests
// (and their requests).
func (k frameKind) antiEntropy() bool {
	return k == kindStatus || k == kindRoomSet || k == kindRoomSetDigest
}

// snapshot returns the non-zero counters by kind name (nil when none).
func (b *frameBytes) snapshot() map[string]uint64 {
	var out map[string]uint64
	for k := range b {
		if v := b[k].Load(); v > 0 {
			if out == nil {
				out = make(map[string]uint64)
			}
			out[frameKindNames[k]] = v
		}
	}
	return out
}
