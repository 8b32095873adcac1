package chat

import (
	"context"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// Our room set is signed once per change: every greeting, refresh and
// answer asked for it and signed it anew, though it was unchanged.
func TestRoomSetSignedOncePerChange(t *testing.T) {
	n := lobbyNode(t, "signer", 1)
	f1 := n.roomSetAnnouncement()
	if err := checkRoomSetSignature(f1.GetRoomSet()); err != nil {
		t.Fatalf("first announcement: %v", err)
	}
	for range 5 {
		if f := n.roomSetAnnouncement(); f.GetRoomSet() != f1.GetRoomSet() {
			t.Fatal("an unchanged room set was built and signed again")
		}
	}
	if got := n.stats.roomSetSigns.Load(); got != 1 {
		t.Fatalf("%d signatures for one unchanged set, want 1", got)
	}
	// A new version, and a new room, are signed (and the frame that asks
	// for a reply does not change the shared set).
	f2 := n.newRoomSetFrame()
	if f2.GetRoomSet().Version == f1.GetRoomSet().Version || checkRoomSetSignature(f2.GetRoomSet()) != nil {
		t.Fatalf("new version %d (was %d) or its signature wrong", f2.GetRoomSet().Version, f1.GetRoomSet().Version)
	}
	n.requestRoomSets()
	if n.roomSetAnnouncement().GetRoomSet().WantReply {
		t.Fatal("requestRoomSets marked the shared announcement want_reply")
	}
	before := n.stats.roomSetSigns.Load()
	if n.roomSetAnnouncement(); n.stats.roomSetSigns.Load() != before {
		t.Fatal("the set of the last new version was signed again")
	}
	n.joinMu.Lock()
	_, err := n.openRoom(context.Background(), msglog.RoomInfo{Name: "side", Mode: hearsay.OrderFIFO.String(), Joined: time.Now()}, false)
	n.joinMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	f3 := n.roomSetAnnouncement()
	if len(f3.GetRoomSet().Rooms) != 2 || checkRoomSetSignature(f3.GetRoomSet()) != nil {
		t.Fatalf("after a join: %d rooms, signature %v", len(f3.GetRoomSet().Rooms), checkRoomSetSignature(f3.GetRoomSet()))
	}
	if got := n.stats.roomSetSigns.Load(); got <= before {
		t.Fatalf("the set with a new room was not signed (%d signatures, %d before)", got, before)
	}
}
