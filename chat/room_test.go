package chat

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// A room's lifecycle is one state value: a deferred room refuses to number
// messages until its restore has run and caught up, and a parted room
// refuses everything, whatever stage it was at.
func TestRoomLifecycle(t *testing.T) {
	n, err := New(Config{Nick: "life", EventBuffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	ctx := context.Background()
	n.joinMu.Lock()
	r, err := n.openRoom(ctx, msglog.RoomInfo{Name: "tot", Mode: hearsay.OrderTotal.String(), Joined: time.Now()}, true)
	n.joinMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if r.state != roomDeferred {
		t.Fatalf("deferred open: state %s, want deferred", r.state)
	}
	if _, err := r.send(ctx, "too early"); !errors.Is(err, ErrRestoring) {
		t.Fatalf("send to a deferred room: %v, want ErrRestoring", err)
	}
	// restoreRoom only acts on a queued restore.
	n.restoreRoom(r)
	if r.state != roomDeferred {
		t.Fatalf("restore without a queue: state %s, want deferred", r.state)
	}
	r.mu.Lock()
	r.state = roomRestoreQueued
	r.mu.Unlock()
	n.restoreRoom(r) // no members: the catch-up has nothing to wait for
	if r.state != roomLive {
		t.Fatalf("after restore: state %s, want live", r.state)
	}
	if _, err := r.send(ctx, "now"); err != nil {
		t.Fatalf("send after restore: %v", err)
	}
	r.part() // what PartRoom does to the room (PartRoom itself needs a started node)
	if r.state != roomParted {
		t.Fatalf("after part: state %s, want parted", r.state)
	}
	if _, err := r.send(ctx, "gone"); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("send on a parted room: %v, want ErrNotJoined", err)
	}
	n.restoreRoom(r)
	if r.state != roomParted {
		t.Fatalf("restore of a parted room changed it to %s", r.state)
	}
	for s := roomDeferred; s <= roomParted; s++ {
		if s.String() == "unknown" {
			t.Errorf("state %d has no name", s)
		}
	}
}
