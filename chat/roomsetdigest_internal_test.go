package chat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/internal/allocs"
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
	// Nor is it built and encoded again to be compared with the one
	// signed: the announcement costs its frame's two wrappers.
	if a := allocs.MinPerRun(3, 100, func() { n.roomSetAnnouncement() }); a > 2 {
		t.Fatalf("an unchanged announcement costs %v allocations, want 2 (its frame)", a)
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

// setMemberState makes id a member of n in state, a membership change
// (memberGen), as the event loop applies one.
func setMemberState(n *Node, id *Identity, state hearsay.MemberState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members[id.ID] = &memberInfo{ID: id.ID, Nick: "m", Pub: id.Pub, Valid: true, State: state}
	n.membersChangedLocked()
}

// The room set digests are computed once per peer and direction while
// nothing they cover changes, and again after each change of a held set,
// of our own version or of the live members: every greeting and refresh
// above the tree threshold, and every digest received, paid for a pass
// over the members, a sort and a hash of all held sets.
func TestRoomSetDigestCached(t *testing.T) {
	bob := lobbyNode(t, "bob", 16)
	alice, carol := member(t, bob), member(t, bob)
	setMemberState(bob, alice, hearsay.StateAlive)
	setMemberState(bob, carol, hearsay.StateAlive)
	bob.handleFrame(roomSetFrame(signedRoomSet(alice, 5)), alice.ID)
	bob.handleFrame(roomSetFrame(signedRoomSet(carol, 5)), carol.ID)
	computed := func() uint64 {
		bob.roomsMu.Lock()
		defer bob.roomsMu.Unlock()
		return bob.digests.computed
	}
	// check asks for both digests of alice several times: each is the
	// digest of the sets held now, and computed once.
	check := func(when string) (to, from []byte) {
		t.Helper()
		before := computed()
		for range 5 {
			to, from = bob.cachedRoomSetDigest(alice.ID, true), bob.cachedRoomSetDigest(alice.ID, false)
			if want := roomSetDigest(bob.heldSetVersions(alice.ID, "", true)); string(to) != string(want) {
				t.Fatalf("%s: digest to alice %x, want %x", when, to, want)
			}
			if want := roomSetDigest(bob.heldSetVersions("", alice.ID, false)); string(from) != string(want) {
				t.Fatalf("%s: digest of alice's %x, want %x", when, from, want)
			}
		}
		if got := computed() - before; got != 2 {
			t.Fatalf("%s: %d digests computed for 10 asked, want 2 (one per direction)", when, got)
		}
		return to, from
	}
	to0, from0 := check("first")
	bob.handleFrame(roomSetFrame(signedRoomSet(carol, 6)), carol.ID)
	to1, from1 := check("carol's new set")
	if string(to1) == string(to0) || string(from1) == string(from0) {
		t.Fatal("carol's new set did not change the digests")
	}
	setMemberState(bob, carol, hearsay.StateDead)
	to2, _ := check("carol failed")
	if string(to2) == string(to1) {
		t.Fatal("carol's failure did not change the digest")
	}
	bob.newRoomSetFrame()
	if to3, _ := check("our new version"); string(to3) == string(to2) {
		t.Fatal("our new version did not change the digest to alice")
	}
	setMemberState(bob, carol, hearsay.StateAlive)
	check("carol back")
	bob.forgetPeerRooms(func(id string) bool { return id != carol.ID })
	check("carol forgotten")
}

// BenchmarkRoomSetDigest: the digest of a greeting or refresh to one
// neighbour with 200 held sets, computed each time (uncached) or taken from
// the cache while nothing changed (cached).
func BenchmarkRoomSetDigest(b *testing.B) {
	n := lobbyNode(b, "bench", 16)
	var to string
	for range 200 {
		id := member(b, n)
		setMemberState(n, id, hearsay.StateAlive)
		n.handleFrame(roomSetFrame(signedRoomSet(id, 1)), id.ID)
		to = id.ID
	}
	b.Run("uncached", func(b *testing.B) {
		for b.Loop() {
			roomSetDigest(n.heldSetVersions(to, "", true))
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			n.cachedRoomSetDigest(to, true)
		}
	})
}

// BenchmarkRoomSetAnnouncement: our unchanged room set of 20 rooms, as
// every greeting, refresh and answer asks for it.
func BenchmarkRoomSetAnnouncement(b *testing.B) {
	n := lobbyNode(b, "bench", 16)
	n.joinMu.Lock()
	for i := range 19 {
		if _, err := n.openRoom(context.Background(), msglog.RoomInfo{Name: fmt.Sprintf("room%d", i), Mode: hearsay.OrderCausal.String(), Joined: time.Now()}, false); err != nil {
			b.Fatal(err)
		}
	}
	n.joinMu.Unlock()
	n.roomSetAnnouncement()
	b.ReportAllocs()
	for b.Loop() {
		n.roomSetAnnouncement()
	}
}

// A relayed room set held until its origin is live is verified once, when
// it comes: taking it once the origin is live checked its signature again.
// The held copy is made unverifiable in memory to tell: it is still taken.
func TestHeldRoomSetVerifiedOnce(t *testing.T) {
	bob := lobbyNode(t, "bob", 16)
	relay, early := member(t, bob), member(t, bob)
	liveMemberOf(bob, relay)
	bob.handleFrame(roomSetFrame(signedRoomSet(early, 3, &chatpb.RoomMembership{Name: "dev", Mode: "causal", JoinedUnixNano: 1})), relay.ID)
	bob.roomsMu.Lock()
	h, ok := bob.heldRooms[early.ID]
	if ok {
		h.rs.Signature = nil
	}
	bob.roomsMu.Unlock()
	if !ok {
		t.Fatal("the relayed set of a member not live yet was not held")
	}
	forged := bob.Stats().Forged
	liveMemberOf(bob, early)
	bob.releaseHeldRoomSets()
	bob.roomsMu.Lock()
	got := bob.peerRooms[early.ID]
	bob.roomsMu.Unlock()
	if got == nil || got.version != 3 || bob.Stats().Forged != forged {
		t.Fatalf("held set taken as %+v, forged %d (was %d): want it taken, its signature not checked again", got, bob.Stats().Forged, forged)
	}
}

// A digest counts as one the peer may answer only when it was queued: one
// dropped at a full queue earned the peer a request answered with every
// set it lacked, for a digest it never saw.
func TestDigestCreditOnlyWhenQueued(t *testing.T) {
	n, err := New(Config{Nick: "credit", EventBuffer: 1, SendQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	p := newPeerConn(n, "0000000000000002", "127.0.0.1:1", nil)
	if ok := n.enqueueRoomSetDigest(p); !ok || p.digestsOut.Load() != 1 {
		t.Fatalf("queued %v, credit %d; want true, 1", ok, p.digestsOut.Load())
	}
	// The queue of one is full: the next digest is dropped, uncounted.
	if ok := n.enqueueRoomSetDigest(p); ok || p.digestsOut.Load() != 1 {
		t.Fatalf("at a full queue: queued %v, credit %d; want false, 1", ok, p.digestsOut.Load())
	}
	// At the bound a dropped digest takes back no credit it did not get.
	p.digestsOut.Store(maxDigestsOut)
	if ok := n.enqueueRoomSetDigest(p); ok || p.digestsOut.Load() != maxDigestsOut {
		t.Fatalf("at the bound: queued %v, credit %d; want false, %d", ok, p.digestsOut.Load(), maxDigestsOut)
	}
}
