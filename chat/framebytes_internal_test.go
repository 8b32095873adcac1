package chat

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// Every overlay kind has its own counter, named after it; an unknown kind
// counts as "other".
func TestFrameKindNames(t *testing.T) {
	seen := map[string]bool{}
	for k := uint32(0); k <= uint32(overlay.KindPrune); k++ {
		f := &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: k}}}
		name := frameKindNames[kindOf(f)]
		if !strings.HasPrefix(name, "overlay_") || seen[name] {
			t.Errorf("overlay kind %d counts as %q (seen before: %v)", k, name, seen[name])
		}
		seen[name] = true
	}
	if got := frameKindNames[kindOf(&chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 99}}})]; got != "other" {
		t.Errorf("overlay kind 99 counts as %q, want other", got)
	}
	// The names are keys of Stats.FrameBytes (the bench's results): an
	// overlay kind's is overlay.Kind's name, in the keys' spelling.
	for k, want := range map[overlay.Kind]string{
		overlay.KindIHave:         "overlay_ihave",
		overlay.KindForwardJoin:   "overlay_forward_join",
		overlay.KindShuffleReply:  "overlay_shuffle_reply",
		overlay.KindNeighborReply: "overlay_neighbor_reply",
	} {
		f := &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: uint32(k)}}}
		if got := frameKindNames[kindOf(f)]; got != want {
			t.Errorf("a %v counts as %q, want %q", k, got, want)
		}
	}
	for k, name := range frameKindNames {
		if name == "" {
			t.Errorf("frame kind %d has no name", k)
		}
	}
}

// A frame over one TLS record pays each record's overhead.
func TestWireSizeRecords(t *testing.T) {
	small := &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: 1}}}
	if got, want := wireSize(proto.Size(small)), uint64(proto.Size(small)+4+22); got != want {
		t.Errorf("ping: %d bytes, want %d", got, want)
	}
	big := &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: strings.Repeat("r", 40000)}}}
	n := proto.Size(big) + 4
	if got, want := wireSize(n-4), uint64(n+3*22); got != want {
		t.Errorf("%d-byte frame: %d bytes, want %d (three records)", n, got, want)
	}
}

// Anti-entropy's bytes are what the link's writer wrote, sized by the
// transport's Send: a status queued and not yet written counts nothing
// (it was counted at enqueue, with proto.Size, and still was when its
// link dropped it), and once written it counts its encoding; a frame of
// another kind counts nothing.
func TestAntiEntropyBytesCountedWhenWritten(t *testing.T) {
	p := batchTestConn(t)
	n := p.n
	vv := msglog.VersionVector{"0000000000000003": 7, "0000000000000004": 2}
	n.sendStatusVector(p, DefaultRoom, vv, false, true, "", "")
	f, ok := p.queue.pop()
	if !ok || f.GetStatus() == nil {
		t.Fatalf("queued %v, want a status", f)
	}
	if got := n.Stats().AntiEntropyBytes; got != 0 {
		t.Fatalf("AntiEntropyBytes %d for a status queued, not written", got)
	}
	size := proto.Size(f)
	p.sent(f, size)
	p.sent(&chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: 1}}}, 3)
	p.sent(roomSetFrame(&chatpb.RoomSet{Version: 5}), 17)
	p.sent(&chatpb.Frame{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Request: true}}}, 2)
	if got, want := n.Stats().AntiEntropyBytes, uint64(size+17+2); got != want {
		t.Fatalf("AntiEntropyBytes %d after a status of %d bytes, a ping, a room set of 17 and a digest of 2 written, want %d", got, size, want)
	}
	if got := n.Stats().FramesOut; got != 4 {
		t.Fatalf("FramesOut %d, want 4", got)
	}
}
