package chat_test

import (
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// A copy of a stored message is dropped as a duplicate before its
// signature is checked (so an altered copy counts as a duplicate, not as
// forged, and is never shown), while an altered new message is still
// refused as forged.
func TestDuplicateDroppedBeforeVerify(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a, b := peers[0], peers[1]
	signed := func(text string, seq uint64) *chatpb.Envelope { return signedLobby(a, text, seq) }
	next := a.NextSeqForTest("lobby")
	good := signed("genuine", next)
	if !a.SendEnvelopeForTest(b.ID(), good) {
		t.Fatal("could not queue test envelope")
	}
	chattest.WaitFor(t, timeout, func() bool { return len(b.Rec.Messages()) == 1 }, "b shows %d messages, want 1", len(b.Rec.Messages()))
	before := b.Stats()
	alteredCopy := signed("genuine", next)
	alteredCopy.Body = []byte("altered copy")
	alteredNew := signed("new", next+1)
	alteredNew.Body = []byte("altered new")
	for _, e := range []*chatpb.Envelope{alteredCopy, good, alteredNew} {
		if !a.SendEnvelopeForTest(b.ID(), e) {
			t.Fatal("could not queue test envelope")
		}
	}
	chattest.WaitFor(t, timeout, func() bool {
		st := b.Stats()
		return st.Duplicates-before.Duplicates+st.Forged-before.Forged == 3
	}, "b handled only part of 3 envelopes: %+v", b.Stats())
	st := b.Stats()
	if st.Duplicates-before.Duplicates != 2 || st.Forged-before.Forged != 1 {
		t.Errorf("stats %+v (before %+v): want 2 more duplicates and 1 more forged", st, before)
	}
	if msgs := b.Rec.Messages(); len(msgs) != 1 || msgs[0].Text != "genuine" {
		t.Errorf("messages shown: %+v, want only the genuine one", msgs)
	}
}

// A receiver that sees a gap in an origin's seqs asks for the missing
// messages at once: with anti-entropy rounds an hour apart, a dropped
// message still arrives as soon as the next one shows the gap.
func TestGapPulledAtOnce(t *testing.T) {
	peers := chattest.Cluster(t, 2, func(_ int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour
		cfg.Faults = &chat.Faults{Seed: 1}
	})
	a, b := peers[0], peers[1]
	if err := a.SetFaults(chat.Faults{DropRatio: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	first := send(t, a, "dropped on the way")
	chattest.WaitFor(t, timeout, func() bool { return a.Stats().FaultDrops > 0 }, "a dropped nothing: %+v", a.Stats())
	if err := a.SetFaults(chat.Faults{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	second := send(t, a, "shows the gap")
	chattest.WaitFor(t, timeout, func() bool { return len(b.Rec.Messages()) == 2 },
		"b shows %d of 2 messages: %+v", len(b.Rec.Messages()), b.Stats())
	msgs := b.Rec.Messages()
	if msgs[0].ID != first.String() || msgs[1].ID != second.String() {
		t.Errorf("b shows %s, %s; want %s then %s", msgs[0].ID, msgs[1].ID, first, second)
	}
	if st := b.Stats(); st.GapPulls == 0 || st.Repaired == 0 {
		t.Errorf("b stats %+v: want a gap pull and a repaired message", st)
	}
}
