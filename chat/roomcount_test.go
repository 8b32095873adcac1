package chat_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// TestRoomReceivedCountsChatMessagesOnly: in a total-order room, the
// stamps that order the messages are not counted as received messages
// (a user saw "27 received, 9 delivered" for 9 messages).
func TestRoomReceivedCountsChatMessagesOnly(t *testing.T) {
	const room, perPeer = "tot", 3
	peers := chattest.Cluster(t, 3, func(_ int, cfg *chat.Config) { fastRooms(cfg) })
	for i := range peers {
		chattest.JoinRoom(t, room, hearsay.OrderTotal, peers[:i+1]...)
		chattest.WaitRoomSeen(t, room, peers[:i+1], peers...)
	}
	for i := range perPeer {
		for _, p := range peers {
			if _, err := p.Send(context.Background(), room, fmt.Sprintf("%s %d", p.Nick(), i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := uint64(perPeer * len(peers))
	info := func(p *chattest.Peer) hearsay.RoomInfo {
		for _, ri := range p.Rooms() {
			if ri.Name == room {
				return ri
			}
		}
		return hearsay.RoomInfo{}
	}
	if !chattest.Poll(timeout, func() bool {
		for _, p := range peers {
			if ri := info(p); ri.Delivered < want || ri.HeldBack > 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every message delivered everywhere")
	}
	for _, p := range peers {
		if ri := info(p); ri.Received != want || ri.Delivered != want {
			t.Errorf("%s: #%s received %d, delivered %d; want %d and %d", p.Nick(), room, ri.Received, ri.Delivered, want, want)
		}
	}
}
