package chat_test

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

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
