package chat_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
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
	if !strings.HasPrefix(ev.Text, "p1") || !strings.HasSuffix(ev.Text, " joined #ops") {
		t.Errorf("join notice %q", ev.Text) // "p1#xxxx" while memberlist thinks p1 failed (a loaded machine)
	}
	if err := bob.PartRoom(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventRoomPart && ev.FromID == bob.ID() && ev.Room == "ops" && strings.HasSuffix(ev.Text, " left #ops")
	}, "bob left #ops")
	for _, ev := range carol.Rec.Events() {
		if ev.Type == hearsay.EventRoomJoin || ev.Type == hearsay.EventRoomPart {
			t.Errorf("carol, not in #ops, got %+v", ev)
		}
	}
}

// TestRoomMessageStates: alice's lobby message shows pending, then sent
// once a member reported holding it, then delivered by both others.
func TestRoomMessageStates(t *testing.T) {
	peers := chattest.Cluster(t, 3, func(_ int, cfg *chat.Config) { cfg.AntiEntropyInterval = 100 * time.Millisecond })
	alice := peers[0]
	id, err := alice.Send(context.Background(), "lobby", "count me")
	if err != nil {
		t.Fatal(err)
	}
	own := alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.ID == id.String()
	}, "own message")
	if own.State != hearsay.StatePending {
		t.Errorf("own message state %q, want pending", own.State)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventState && ev.ID == id.String() && ev.State == hearsay.StateSent && ev.Text == "1 of 2"
	}, "sent (1 of 2)")
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventState && ev.ID == id.String() && ev.State == hearsay.StateDelivered && ev.Text == "2 of 2"
	}, "delivered (2 of 2)")
}

// TestHeldOwnMessageEvent: in a total room an own message is shown at
// once as a held event (pending), before its message event.
func TestHeldOwnMessageEvent(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	alice := peers[0]
	chattest.JoinRoom(t, "ops", hearsay.OrderTotal, peers...)
	id, err := alice.Send(context.Background(), "ops", "in turn")
	if err != nil {
		t.Fatal(err)
	}
	alice.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.ID == id.String()
	}, "the message in order")
	var types []string
	for _, ev := range alice.Rec.Filter(func(ev hearsay.Event) bool { return ev.ID == id.String() && ev.Type != hearsay.EventState }) {
		types = append(types, ev.Type)
	}
	if len(types) != 2 || !slices.Contains(types, hearsay.EventHeld) {
		t.Errorf("events of the message: %v, want one held and one message", types)
	}
}
