package chat

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// flakySync is a message log whose Sync fails while failing is set.
type flakySync struct {
	msglog.Log
	failing atomic.Bool
}

var errNoDisk = errors.New("disk gone")

func (l *flakySync) Sync(ctx context.Context) error {
	if l.failing.Load() {
		return errNoDisk
	}
	return l.Log.Sync(ctx)
}

// A Send whose fsync fails keeps its message in the outbox (it must not
// leave before it is on disk); later Sends refuse to number more while
// the fsync keeps failing, and the first one that succeeds releases the
// waiting message in order.
func TestSendAfterFailedSync(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nick = "solo"
	cfg.BindAddr = "127.0.0.1:0"
	cfg.MemberlistProfile = ProfileLocal
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakySync{Log: n.log}
	n.log = flaky // before Start: nothing else reads it yet
	n.env.log = flaky
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })

	flaky.failing.Store(true)
	first, err := n.Send(ctx, "", "one")
	if !errors.Is(err, errNoDisk) {
		t.Fatalf("Send with a failing fsync: %v, want the fsync error", err)
	}
	r := n.joinedRoom(DefaultRoom)
	r.mu.Lock()
	waiting := len(r.outbox)
	r.mu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d messages in the outbox after the failed fsync, want 1", waiting)
	}
	if _, err := n.Send(ctx, "", "two"); !errors.Is(err, errNoDisk) {
		t.Fatalf("Send behind a failed fsync: %v, want the fsync error", err)
	}
	if last, err := n.log.LastSeq(ctx, DefaultRoom, n.ID()); err != nil || last != first.Seq {
		t.Fatalf("last seq %d (%v), want %d: a refused Send numbered a message", last, err, first.Seq)
	}

	flaky.failing.Store(false)
	second, err := n.Send(ctx, "", "three")
	if err != nil {
		t.Fatalf("Send once fsync works again: %v", err)
	}
	if second.Seq != first.Seq+1 {
		t.Fatalf("seq %d after %d: want the next one", second.Seq, first.Seq)
	}
	r.mu.Lock()
	waiting = len(r.outbox)
	r.mu.Unlock()
	if waiting != 0 {
		t.Fatalf("%d messages still in the outbox", waiting)
	}
}

// A status answer never carries our messages that wait in the outbox for
// their fsync.
func TestRepairHoldsBackUnsyncedOwn(t *testing.T) {
	n, err := New(Config{Nick: "holder", EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	r := &room{env: n.env}
	vv := msglog.VersionVector{n.id.ID: 7, "0000000000000002": 9}
	r.clampUnsyncedLocked(vv)
	if vv[n.id.ID] != 7 {
		t.Fatalf("empty outbox: own entry %d, want 7", vv[n.id.ID])
	}
	r.outbox = []outEntry{{env: &chatpb.Envelope{Seq: 5}}, {env: &chatpb.Envelope{Seq: 6}}}
	r.clampUnsyncedLocked(vv)
	if vv[n.id.ID] != 4 || vv["0000000000000002"] != 9 {
		t.Fatalf("outbox from seq 5: vector %v, want own 4 and the other origin untouched", vv)
	}
}
