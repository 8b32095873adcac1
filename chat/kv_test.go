package chat_test

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// signedKV returns a key/value entry signed by id.
func signedKV(id *chat.Identity, key, value string, version uint64) *chatpb.KVEntry {
	e := &chatpb.KVEntry{Key: key, Value: value, Version: version, Origin: id.ID, OriginKey: id.Pub}
	e.Signature = id.Sign(chat.KVSigningBytesForTest(e))
	return e
}

// Issue 11, finding 8: a key/value entry with version 2^64-1, sent over
// memberlist, no longer owns its key for ever, and entries from 1,100
// fresh keys no longer fill the store: members can still set keys, and
// the errors say which bound is reached.
func TestKVBoundsHold(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a, b := peers[0], peers[1]
	handled := func() uint64 { st := b.Stats(); return st.KVDrops + st.KVUpdates }

	// A version far ahead of the clock, over memberlist's TCP stream.
	mallory, err := chat.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	before := handled()
	if err := a.SendUserPacketForTest(b.ID(), chat.KVPacketForTest(signedKV(mallory, "topic", "mine for ever", math.MaxUint64))); err != nil {
		t.Fatal(err)
	}
	chattest.WaitFor(t, timeout, func() bool { return handled() > before }, "b did not handle the entry: %+v", b.Stats())
	if err := b.KVSet("topic", "still mine to set"); err != nil {
		t.Fatalf("set after a version 2^64-1 entry: %v", err)
	}
	// A version a little ahead (clock skew) is taken, and a later change
	// still wins over it.
	skewed := uint64(time.Now().Add(time.Minute).UnixMilli())
	b.NotifyMsgForTest(chat.KVPacketForTest(signedKV(a.Identity(), "clock", "skewed", skewed)))
	if got := b.KVList()["clock"]; got != "skewed" {
		t.Errorf("entry a minute ahead: clock = %q, want it taken", got)
	}
	if err := b.KVSet("clock", "later"); err != nil || b.KVList()["clock"] != "later" {
		t.Errorf("change after a skewed entry: %v, clock = %q", err, b.KVList()["clock"])
	}

	// 1,100 entries from fresh keys, each a valid signed entry.
	for i := range 1100 {
		id, err := chat.NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		b.NotifyMsgForTest(chat.KVPacketForTest(signedKV(id, "k"+strconv.Itoa(i), "spam", uint64(time.Now().UnixMilli()))))
	}
	strangers := 0
	for o, k := range b.KVOriginsForTest() {
		if o != a.ID() && o != b.ID() {
			strangers += k
		}
	}
	if strangers > chat.MaxKVStrangers {
		t.Errorf("strangers hold %d entries, bound %d", strangers, chat.MaxKVStrangers)
	}
	if err := b.KVSet("after", "the flood"); err != nil {
		t.Fatalf("set after 1,100 strangers' entries: %v", err)
	}

	// One member alone cannot fill the store, and the error says so.
	var last error
	for i := 0; i <= chat.MaxKVPerOrigin && last == nil; i++ {
		last = a.KVSet("a"+strconv.Itoa(i), "v")
	}
	if last == nil || !strings.Contains(last.Error(), "this peer holds") || !strings.Contains(last.Error(), "per peer") {
		t.Errorf("set beyond %d entries of one peer: err %v, want one that says the per-peer bound", chat.MaxKVPerOrigin, last)
	}
	if n := a.KVOriginsForTest()[a.ID()]; n > chat.MaxKVPerOrigin {
		t.Errorf("a holds %d entries, bound %d", n, chat.MaxKVPerOrigin)
	}
	if err := a.KVDel("a0"); err != nil {
		t.Fatal(err)
	}
	if err := a.KVSet("a-new", "v"); err != nil { // a's own tombstone makes room
		t.Errorf("set after a delete: %v", err)
	}
}

// Issue 13, bug 6: two peers write the same key at the same moment. Both
// end with the same value (the documented winner: kv.go), and the peer
// whose write lost is told, with an EventKV event naming the winner; the
// winner is not.
func TestKVConcurrentWriteLoserTold(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	values := []string{"99", "1"}
	start := make(chan struct{})
	errs := make(chan error, len(peers))
	for i, p := range peers {
		go func() {
			<-start
			errs <- p.KVSet("a", values[i])
		}()
	}
	close(start)
	for range peers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	chattest.WaitFor(t, timeout, func() bool {
		a, b := peers[0].KVList()["a"], peers[1].KVList()["a"]
		return a != "" && a == b
	}, "the peers did not converge: %v, %v", peers[0].KVList(), peers[1].KVList())
	final := peers[0].KVList()["a"]
	win, lose := 0, 1
	if final != values[0] {
		win, lose = 1, 0
	}
	if final != values[win] {
		t.Fatalf("converged on a = %q, neither write", final)
	}
	isKV := func(e hearsay.Event) bool { return e.Type == hearsay.EventKV }
	ev := peers[lose].Rec.WaitEvent(t, timeout, isKV, "the losing writer's notice")
	want := "your write a = " + values[lose] + " was superseded by " + peers[win].Nick() + "'s a = " + values[win]
	if ev.Text != want || ev.FromID != peers[win].ID() || ev.From != peers[win].Nick() {
		t.Errorf("notice %q from %q (%s), want %q from %q", ev.Text, ev.From, ev.FromID, want, peers[win].Nick())
	}
	if got := peers[win].Rec.Filter(isKV); len(got) != 0 {
		t.Errorf("the winner was told %v", got)
	}
}

// TestKVSupersededNotice: the notice says what replaced what (a value, a
// deletion), and only another peer's entry that wins over this peer's own
// produces one.
func TestKVSupersededNotice(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a, b := peers[0], peers[1]
	isKV := func(e hearsay.Event) bool { return e.Type == hearsay.EventKV }
	if err := b.KVSet("k", "mine"); err != nil {
		t.Fatal(err)
	}
	// An older entry of a's does not win: no notice (checked below).
	b.NotifyMsgForTest(chat.KVPacketForTest(signedKV(a.Identity(), "k", "older", 1)))
	if got := b.KVList()["k"]; got != "mine" {
		t.Fatalf("k = %q after an older entry, want mine", got)
	}
	now := uint64(time.Now().Add(time.Second).UnixMilli())
	del := signedKV(a.Identity(), "k", "", now)
	del.Deleted = true
	del.Signature = a.Identity().Sign(chat.KVSigningBytesForTest(del))
	b.NotifyMsgForTest(chat.KVPacketForTest(del))
	ev := b.Rec.WaitEvent(t, timeout, isKV, "the notice of a deletion")
	if want := "your write k = mine was superseded by " + a.Nick() + "'s deletion of k"; ev.Text != want {
		t.Errorf("notice %q, want %q", ev.Text, want)
	}
	if n := len(b.Rec.Filter(isKV)); n != 1 {
		t.Errorf("%d notices, want 1 (the older entry must not produce one)", n)
	}
	// a's later write replaces a's own deletion: nothing of b's is lost.
	b.NotifyMsgForTest(chat.KVPacketForTest(signedKV(a.Identity(), "k", "again", now+1)))
	if err := b.KVSet("j", "x"); err != nil {
		t.Fatal(err)
	}
	b.NotifyMsgForTest(chat.KVPacketForTest(signedKV(a.Identity(), "j", "y", uint64(time.Now().Add(2*time.Second).UnixMilli()))))
	ev = b.Rec.WaitEventAfter(t, timeout, 0, func(e hearsay.Event) bool { return isKV(e) && e.Text != ev.Text }, "the notice for j")
	if want := "your write j = x was superseded by " + a.Nick() + "'s j = y"; ev.Text != want {
		t.Errorf("notice %q, want %q", ev.Text, want)
	}
	if n := len(b.Rec.Filter(isKV)); n != 2 {
		t.Errorf("%d notices, want 2", n)
	}
}
