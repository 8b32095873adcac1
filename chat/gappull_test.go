package chat_test

import (
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// A gap pull names the seqs it lacks below the highest one it holds, and
// its answer carries those and nothing else (protocol 9): b holds 2 and 4
// of a's 6 messages when it pulls, so a repairs 1 and 3, not 5 and 6
// (still on their way, as a rule, when a pull is made) and not 2 and 4
// again. Before, the pull said only where the gap starts, and the answer
// carried all six: 4 copies of 6 messages that were already there or
// coming. Anti-entropy rounds are an hour apart, so only the pull repairs.
func TestGapPullAnswerCarriesOnlyMissing(t *testing.T) {
	peers := chattest.Cluster(t, 2, func(_ int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = time.Hour
		cfg.Faults = &chat.Faults{Seed: 1}
	})
	a, b := peers[0], peers[1]
	if err := a.SetFaults(chat.Faults{DropRatio: 1, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three", "four", "five", "six"} {
		send(t, a, text)
	}
	// All six stored at a (Send returns once they are queued) and every
	// frame carrying them dropped: two pings behind them, and once the
	// writer has taken the second the frames before the first are through
	// the fault layer (a batch of envelopes ends at the first ping, which
	// goes after it).
	stored := a.EnvelopesForTest("lobby", a.ID())
	if len(stored) != 6 {
		t.Fatalf("a stored %d of 6 messages", len(stored))
	}
	if !a.SendPingForTest(b.ID(), 1) || !a.SendPingForTest(b.ID(), 2) {
		t.Fatal("could not queue the pings")
	}
	chattest.WaitFor(t, timeout, func() bool {
		link, ok := a.LinkForTest(b.ID())
		return ok && link.Queued == 0
	}, "a's link to b still has frames queued")
	if err := a.SetFaults(chat.Faults{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Rec.Messages()); n != 0 {
		t.Fatalf("b shows %d messages before the pull, want 0", n)
	}
	before, bBefore := a.Stats(), b.Stats()
	if !a.SendBatchForTest(b.ID(), []*chatpb.Envelope{stored[1], stored[3]}) {
		t.Fatal("could not queue the batch")
	}
	chattest.WaitFor(t, timeout, func() bool { return len(b.Rec.Messages()) >= 4 }, "b shows fewer than 4 messages")
	shown := b.Rec.Messages()
	if len(shown) != 4 {
		t.Errorf("b shows %d messages, want 4 (seqs %d to %d)", len(shown), stored[0].Seq, stored[3].Seq)
	}
	for i, m := range shown[:min(len(shown), 4)] {
		if want := (hearsay.MsgID{Origin: a.ID(), Seq: stored[i].Seq}).String(); m.ID != want {
			t.Errorf("b shows %s at %d, want %s", m.ID, i, want)
		}
	}
	st, bst := a.Stats(), b.Stats()
	if got := st.RepairSent - before.RepairSent; got != 2 {
		t.Errorf("a repaired %d messages, want 2 (seqs %d and %d); a %+v, b %+v", got, stored[0].Seq, stored[2].Seq, st, bst)
	}
	if got := bst.GapPulls - bBefore.GapPulls; got != 1 {
		t.Errorf("b made %d gap pulls, want 1", got)
	}
	if got := bst.Duplicates - bBefore.Duplicates; got != 0 {
		t.Errorf("b got %d duplicates, want none", got)
	}
}
