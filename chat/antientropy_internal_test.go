package chat

import (
	"context"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// A round's status is answered without the messages stored in the last
// inFlightAge intervals (most likely still on their way to the peer by
// push or tree: repairing them only made duplicates), a pull and a join's
// catch-up with everything the peer lacks.
func TestRepairLeavesOutMessagesInFlight(t *testing.T) {
	n := benchNode(t)
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	const room = "lobby"
	now := time.Now()
	var envs []*chatpb.Envelope
	for seq := uint64(1); seq <= 5; seq++ {
		envs = append(envs, benchChat(id, room, seq, "m"))
	}
	// Seqs 1 to 3 stored a minute ago, 4 and 5 just now.
	for _, part := range []struct {
		envs []*chatpb.Envelope
		at   time.Time
	}{{envs[:3], now.Add(-time.Minute)}, {envs[3:], now}} {
		recs, err := recordsOf(part.envs, part.at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.log.AppendBatchDeferred(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(rps []*chatpb.Repair) []uint64 {
		var out []uint64
		for _, rp := range rps {
			for _, e := range rp.Envelopes {
				out = append(out, e.Seq)
			}
		}
		return out
	}
	miss := []msglog.SeqRange{{Origin: id.ID, From: 1, To: 5}}
	lo, hi := pullRange(id.ID)
	for _, tc := range []struct {
		name  string
		st    *chatpb.Status
		round bool
	}{
		{"whole vector", &chatpb.Status{Room: room}, true},
		{"slice", &chatpb.Status{Room: room, FromOrigin: "0", UntilOrigin: "8"}, true},
		{"reply", &chatpb.Status{Room: room, Reply: true}, true},
		{"catch-up", &chatpb.Status{Room: room, WantReply: true}, false},
		{"hot origin", &chatpb.Status{Room: room, FromOrigin: lo, UntilOrigin: hi}, true},
		{"pull", &chatpb.Status{Room: room, FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isRound(tc.st); got != tc.round {
				t.Fatalf("isRound = %v, want %v", got, tc.round)
			}
			var fresh time.Time
			want := 5
			if tc.round {
				fresh = now.Add(-inFlightAge * n.cfg.AntiEntropyInterval)
				want = 3
			}
			reps, _ := n.buildRepair(room, miss, fresh)
			got := seqs(reps)
			if len(got) != want {
				t.Fatalf("repair carries seqs %v, want 1 to %d", got, want)
			}
			for i, s := range got {
				if s != uint64(i+1) {
					t.Fatalf("repair carries seqs %v, want 1 to %d in order", got, want)
				}
			}
		})
	}
}

// A repair of more than maxRepairEnvelopes envelopes is a bad frame,
// none of its envelopes run through the pipeline (the in-memory transport
// of tests and the simulator hands it over decoded, past checkFrameBounds).
func TestRepairEnvelopesBounded(t *testing.T) {
	n := benchNode(t)
	envs := make([]*chatpb.Envelope, maxRepairEnvelopes+1)
	for i := range envs {
		envs[i] = &chatpb.Envelope{}
	}
	bad, received, unjoined := n.stats.badFrames.Load(), n.stats.received.Load(), n.stats.unjoined.Load()
	n.handleRepair(&chatpb.Repair{Room: "lobby", Envelopes: envs}, "00000000000000aa")
	if got := n.stats.badFrames.Load() - bad; got != 1 {
		t.Errorf("%d bad frames counted, want 1", got)
	}
	if got := n.stats.received.Load() - received; got != 0 {
		t.Errorf("%d envelopes of the repair received", got)
	}
	if got := n.stats.unjoined.Load() - unjoined; got != 0 {
		t.Errorf("the repair was judged by its room (%d unjoined), not refused for its size", got)
	}
}

// A batch or repair whose envelopes carry more than maxFrameListEntries
// deps and stamped messages in all, each envelope within its own bounds,
// is a bad frame handed over decoded too (the in-memory transport), none
// of its envelopes run through the pipeline; one at the budget is not
// refused for it.
func TestFrameListBudgetDecoded(t *testing.T) {
	n := benchNode(t)
	spread := func(k int) []*chatpb.Envelope {
		var envs []*chatpb.Envelope
		for k > 0 {
			e := &chatpb.Envelope{Deps: make([]*chatpb.Dep, min(k, MaxDeps))}
			k -= len(e.Deps)
			envs = append(envs, e)
		}
		return envs
	}
	const from = "00000000000000aa"
	for _, tc := range []struct {
		name   string
		handle func(envs []*chatpb.Envelope)
	}{
		{"batch", func(envs []*chatpb.Envelope) { n.handleBatch(&chatpb.Batch{Envelopes: envs}, from) }},
		{"repair", func(envs []*chatpb.Envelope) { n.handleRepair(&chatpb.Repair{Room: "lobby", Envelopes: envs}, from) }},
	} {
		bad, received := n.stats.badFrames.Load(), n.stats.received.Load()
		tc.handle(spread(maxFrameListEntries + 1))
		if got := n.stats.badFrames.Load() - bad; got != 1 {
			t.Errorf("%s over the budget: %d bad frames counted, want 1", tc.name, got)
		}
		if got := n.stats.received.Load() - received; got != 0 {
			t.Errorf("%s over the budget: %d envelopes received", tc.name, got)
		}
		bad = n.stats.badFrames.Load()
		tc.handle(spread(maxFrameListEntries))
		if got := n.stats.badFrames.Load() - bad; got != 0 {
			t.Errorf("%s at the budget: %d bad frames counted, want 0", tc.name, got)
		}
	}
}
