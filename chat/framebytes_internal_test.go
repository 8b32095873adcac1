package chat

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
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
	if got := frameKindNames[kindOf(&chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: uint32(overlay.KindIHave)}}})]; got != "overlay_ihave" {
		t.Errorf("an ihave counts as %q", got)
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
