package chat_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// Issue 11, finding 9: held-back messages are bounded on disk per origin.
// Over a real stream, a sends bob 160 signed messages of its own, seqs
// 2…301 (seq 1 never comes): bob stores at most MaxHeldAhead of them and
// counts the others in HeldDiskDrops. carol has all 161; anti-entropy
// then brings bob every one of them, in order.
func TestHeldBackBoundedOnDisk(t *testing.T) {
	const ahead, total = 32, 161
	peers := chattest.Cluster(t, 3, func(_ int, cfg *chat.Config) {
		cfg.MaxHeldAhead = ahead
		cfg.AntiEntropyBatch = ahead
		cfg.AntiEntropyInterval = 250 * time.Millisecond
	})
	a, b, c := peers[0], peers[1], peers[2]
	body := strings.Repeat("x", 512)
	envs := make([]*chatpb.Envelope, total)
	for i := range envs {
		envs[i] = signedLobby(a, body, uint64(i+1))
	}
	for _, e := range envs[1:] {
		if !a.SendEnvelopeForTest(b.ID(), e) {
			t.Fatal("could not queue test envelope")
		}
	}
	chattest.WaitFor(t, timeout, func() bool {
		return b.Stats().Received >= total-1 && b.Stats().Stored+b.Stats().HeldDiskDrops >= total-1
	},
		"bob handled only part of %d envelopes: %+v", total-1, b.Stats())
	// Seqs 2…ahead are within the bound of an origin with nothing
	// contiguous; the rest are dropped.
	if n := b.StoredForTest("lobby", a.ID()); n != ahead-1 {
		t.Errorf("bob stores %d held-back messages of one origin, want %d", n, ahead-1)
	}
	if got, want := b.Stats().HeldDiskDrops, uint64(total-ahead); got != want {
		t.Errorf("HeldDiskDrops = %d, want %d", got, want)
	}
	if n := len(b.Rec.Messages()); n != 0 {
		t.Fatalf("bob shows %d messages before seq 1", n)
	}

	start := time.Now()
	for _, e := range envs {
		if !a.SendEnvelopeForTest(c.ID(), e) {
			t.Fatal("could not queue test envelope")
		}
	}
	// Repair takes a few anti-entropy rounds, each to a random member:
	// give it more time than one exchange on a loaded machine.
	if !chattest.Poll(3*timeout, func() bool { return len(b.Rec.Messages()) == total }) {
		t.Fatalf("bob shows %d of %d messages: %+v; carol %+v", len(b.Rec.Messages()), total, b.Stats(), c.Stats())
	}
	t.Logf("repaired in %v: %+v", time.Since(start), b.Stats())
	for i, ev := range b.Rec.Messages() {
		if want := (hearsay.MsgID{Origin: a.ID(), Seq: uint64(i + 1)}).String(); ev.ID != want {
			t.Fatalf("message %d is %s, want %s", i, ev.ID, want)
		}
	}
}
