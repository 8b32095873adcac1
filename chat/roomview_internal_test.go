package chat

import (
	"maps"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// A room's member view is computed again only when what it follows from
// changed: the members, the held room sets, or a failed voter's timeout.
// Every node synced every room at each turn of its event loop and each
// anti-entropy round, a pass over every member each time (13 % of a
// 200-peer process's CPU).
func TestRoomMembersComputedOnChange(t *testing.T) {
	bob := lobbyNode(t, "bob", 16)
	// Long enough that the syncs before it surely come first, even on a
	// slow machine under the race detector; the test does not wait for
	// it, it moves the failure back by as much (below).
	bob.cfg.FailedVoterTimeout = time.Minute
	r := bob.joinedRoom(DefaultRoom)
	lobby := &chatpb.RoomMembership{Name: DefaultRoom, Mode: hearsay.OrderCausal.String(), JoinedUnixNano: 1}
	alice, carol := member(t, bob), member(t, bob)
	setMemberState(bob, alice, hearsay.StateAlive)
	bob.handleFrame(roomSetFrame(signedRoomSet(alice, 5, lobby)), alice.ID)
	views := bob.stats.memberViews.Load
	members := func() map[string]uint64 {
		r.mu.Lock()
		defer r.mu.Unlock()
		return maps.Clone(r.members)
	}

	bob.syncMembers(r)
	before := views()
	for range 5 {
		bob.syncMembers(r)
	}
	if got := views() - before; got != 0 {
		t.Fatalf("%d member views computed with nothing changed, want 0", got)
	}
	if _, ok := members()[alice.ID]; !ok {
		t.Fatalf("alice not a member of the lobby: %v", members())
	}

	// A new member's room set: computed again (by the sync its arrival
	// makes, or the next one), then no more.
	before = views()
	setMemberState(bob, carol, hearsay.StateAlive)
	bob.handleFrame(roomSetFrame(signedRoomSet(carol, 5, lobby)), carol.ID)
	bob.syncMembers(r)
	if views() == before {
		t.Fatal("no member view computed after a new member and its room set")
	}
	before = views()
	bob.syncMembers(r)
	bob.syncMembers(r)
	if got := views() - before; got != 0 {
		t.Fatalf("%d member views computed after the change was applied, want 0", got)
	}
	if _, ok := members()[carol.ID]; !ok {
		t.Fatalf("carol not a member after her room set: %v", members())
	}

	// A room set that parts the lobby: a change of the held sets alone.
	bob.handleFrame(roomSetFrame(signedRoomSet(carol, 6)), carol.ID)
	bob.syncMembers(r)
	if _, ok := members()[carol.ID]; ok {
		t.Fatalf("carol still a member after parting: %v", members())
	}

	// alice fails: she votes (the machine keeps her as failed) until
	// FailedVoterTimeout, and then the clock alone changes the view.
	bob.mu.Lock()
	m := bob.members[alice.ID]
	m.State, m.Since = hearsay.StateDead, time.Now()
	bob.membersChangedLocked()
	bob.mu.Unlock()
	bob.syncMembers(r)
	r.mu.Lock()
	voting := r.failed[alice.ID]
	r.mu.Unlock()
	if !voting {
		t.Fatal("alice, failed a moment ago, is not a failed voter")
	}
	before = views()
	bob.syncMembers(r)
	if got := views() - before; got != 0 {
		t.Fatalf("%d member views computed before the voter's timeout, want 0", got)
	}
	// The clock is the input here: once the voter's timeout has passed
	// (r.synced.until), the next sync computes the view without her.
	r.mu.Lock()
	until := r.synced.until
	r.mu.Unlock()
	if until.IsZero() || time.Until(until) > bob.cfg.FailedVoterTimeout {
		t.Fatalf("the view's next change at %v, want within FailedVoterTimeout", until)
	}
	// Instead of waiting FailedVoterTimeout, the test moves every instant
	// the view depends on back by as much (her failure, and the timeout
	// the applied view noted), as if the clock had moved on: no
	// membership change, so only the clock can make the sync compute
	// the view again.
	bob.mu.Lock()
	m.Since = m.Since.Add(-bob.cfg.FailedVoterTimeout)
	bob.mu.Unlock()
	r.mu.Lock()
	r.synced.until = r.synced.until.Add(-bob.cfg.FailedVoterTimeout)
	r.mu.Unlock()
	bob.syncMembers(r)
	r.mu.Lock()
	voting = r.failed[alice.ID]
	r.mu.Unlock()
	if voting {
		t.Fatal("alice still votes after FailedVoterTimeout")
	}
}
