package chat

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
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

// nodeWithInvalidMember returns bob, with alice, a live member whose node
// meta verified, and a stranger, live, whose meta did not (as the event
// loop records a join with unreadable meta).
func nodeWithInvalidMember(t *testing.T) (bob *Node, alice *Identity) {
	t.Helper()
	bob = lobbyNode(t, "bob", 16)
	alice, stranger := member(t, bob), testIdentity(t)
	liveMemberOf(bob, alice)
	bob.mu.Lock()
	bob.members[stranger.ID] = &memberInfo{ID: stranger.ID, Nick: "?", State: hearsay.StateAlive}
	bob.membersChangedLocked()
	bob.mu.Unlock()
	return bob, alice
}

// A join waits for every live member's room set, but not for a member
// whose node meta did not verify: no link is made to it and no relay
// passes its set on, so its set never comes and every join waited the
// whole handshake timeout for it.
func TestWaitRoomSetsSkipsInvalidMeta(t *testing.T) {
	bob, alice := nodeWithInvalidMember(t)
	ctx := context.Background()
	// alice's set has not come: the wait is for her (it ends at its timeout).
	if bob.waitRoomSets(ctx, time.Time{}, 20*time.Millisecond) {
		t.Fatal("waitRoomSets did not wait for a live member's room set")
	}
	bob.handleFrame(roomSetFrame(signedRoomSet(alice, 1)), alice.ID)
	// Now every member that can send a set has: it returns at once, before
	// its timeout (a wait for the stranger ends there, reporting false).
	if !bob.waitRoomSets(ctx, time.Time{}, 5*time.Second) {
		t.Fatal("waitRoomSets waited for a member whose node meta did not verify")
	}
}

// A deferred room is restored once every live member that can send a
// room set has sent one naming it: a member whose node meta did not
// verify never will (no link is made to it, no relay passes its set on),
// and waiting for it kept the room deferred until restoreGrace.
func TestRestoreSkipsInvalidMeta(t *testing.T) {
	bob, alice := nodeWithInvalidMember(t)
	bob.joinMu.Lock()
	r, err := bob.openRoom(context.Background(), msglog.RoomInfo{Name: "dev", Mode: hearsay.OrderCausal.String(), Joined: time.Now()}, true)
	bob.joinMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	state := func() roomState {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.state
	}
	bob.startedAt.Store(time.Now().UnixNano()) // within restoreGrace: not alone
	bob.tryRestore()                           // alice's set has not come: the room waits for it
	if s := state(); s != roomDeferred {
		t.Fatalf("restored before a live member's room set came: state %s", s)
	}
	bob.handleFrame(roomSetFrame(signedRoomSet(alice, 1, &chatpb.RoomMembership{Name: "dev", Mode: "causal", JoinedUnixNano: 1})), alice.ID)
	bob.tryRestore()
	if s := state(); s == roomDeferred {
		t.Fatal("still deferred once every member that can send a room set had sent one naming the room")
	}
}
