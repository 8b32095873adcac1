package chat

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// A set judged stale skips its signature check; if the origin's set is
// forgotten (forgetPeerRooms) before the set would be stored, the
// unverified set is dropped, not stored and relayed: a forged older set
// must never take the place of the forgotten one.
func TestStaleRoomSetNotStoredUnverified(t *testing.T) {
	var forget func(origin string)
	n, err := New(Config{Nick: "holder", EventBuffer: 16, roomSetTaking: func(origin string) {
		if forget != nil {
			forget(origin)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	other, err := New(Config{Nick: "origin", EventBuffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Shutdown() })

	signed := other.newRoomSetFrame().GetRoomSet()
	if signed == nil || checkRoomSetSignature(signed) != nil {
		t.Fatal("no signed room set")
	}
	origin := signed.Origin
	n.takeRoomSet(signed, origin, false)
	version := func() (int64, bool) {
		n.roomsMu.Lock()
		defer n.roomsMu.Unlock()
		s := n.peerRooms[origin]
		if s == nil {
			return 0, false
		}
		return s.version, true
	}
	if v, ok := version(); !ok || v != signed.Version {
		t.Fatalf("signed set not held (%d, %v)", v, ok)
	}

	forged := proto.Clone(signed).(*chatpb.RoomSet)
	forged.Version--
	forged.Rooms = append(forged.Rooms, &chatpb.RoomMembership{Name: "forged", Mode: hearsay.OrderCausal.String(), JoinedUnixNano: 1})
	if checkRoomSetSignature(forged) == nil {
		t.Fatal("the forged set verifies")
	}
	forget = func(string) { n.forgetPeerRooms(func(id string) bool { return id != origin }) }
	n.takeRoomSet(forged, origin, false)
	if v, ok := version(); ok {
		t.Fatalf("a forged older set (version %d, signed %d) was stored after its origin's set was forgotten", v, signed.Version)
	}
}
