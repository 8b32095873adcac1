package chat_test

import (
	"context"
	"testing"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// TestRoomNotices: alice, in #ops, sees "bob joined #ops" and "bob left
// #ops"; carol, not in #ops, sees neither.
func TestRoomNotices(t *testing.T) {
	peers := chattest.Cluster(t, 3, nil)
	alice, bob, carol := peers[0], peers[1], peers[2]
	ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
	defer cancel()
	chattest.JoinRoom(t, "ops", 0, alice)
	if _, err := bob.JoinRoom(ctx, "ops", 0); err != nil {
		t.Fatal(err)
	}
	ev := alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventRoomJoin && ev.FromID == bob.ID() && ev.Room == "ops"
	}, "bob joined #ops")
	if ev.Text != "p1 joined #ops" {
		t.Errorf("join notice %q", ev.Text)
	}
	if err := bob.PartRoom(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventRoomPart && ev.FromID == bob.ID() && ev.Text == "p1 left #ops"
	}, "bob left #ops")
	for _, ev := range carol.Rec.Events() {
		if ev.Type == hearsay.EventRoomJoin || ev.Type == hearsay.EventRoomPart {
			t.Errorf("carol, not in #ops, got %+v", ev)
		}
	}
}
