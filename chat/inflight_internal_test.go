package chat

import (
	"context"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

func TestTransitTimesCutoff(t *testing.T) {
	const interval = time.Second
	now := time.Unix(1_000_000, 0)
	sentAgo := func(ds ...time.Duration) []int64 {
		out := make([]int64, len(ds))
		for i, d := range ds {
			out[i] = now.Add(-d).UnixNano()
		}
		return out
	}
	repeat := func(d time.Duration, k int) []time.Duration {
		out := make([]time.Duration, k)
		for i := range out {
			out[i] = d
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		samples []int64
		takenAt time.Time // when the samples were noted
		want    time.Duration
	}{
		{"no samples", nil, now, inFlightAge * interval},
		{"a group that keeps up", sentAgo(repeat(5*time.Millisecond, 100)...), now, inFlightAge * interval},
		{"a group behind by 8 s", sentAgo(repeat(8*time.Second, 100)...), now, 16 * time.Second},
		{"the median, not the mean", sentAgo(append(repeat(3*time.Second, 70), repeat(time.Hour, 58)...)...), now, 6 * time.Second},
		{"capped", sentAgo(repeat(time.Hour, 100)...), now, maxInFlightAge * interval},
		{"a clock far behind is capped", []int64{1, 2, 3}, now, maxInFlightAge * interval},
		{"a clock ahead counts as no transit", sentAgo(repeat(-time.Hour, 100)...), now, inFlightAge * interval},
		{"no send time counts as no transit", make([]int64, 100), now, inFlightAge * interval},
		{"old samples are forgotten", sentAgo(repeat(8*time.Second, 100)...), now.Add(-(maxInFlightAge + 1) * interval), inFlightAge * interval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tt transitTimes
			// Samples taken at takenAt of messages sent the same time
			// before it as before now.
			shift := tc.takenAt.Sub(now).Nanoseconds()
			shifted := make([]int64, len(tc.samples))
			for i, s := range tc.samples {
				shifted[i] = s
				if s > 1000 { // the literal clock values stay as they are
					shifted[i] = s + shift
				}
			}
			tt.note(tc.takenAt, shifted...)
			if got := tt.inFlightFor(now, interval); got != tc.want {
				t.Errorf("inFlightFor = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("the latest samples count", func(t *testing.T) {
		var tt transitTimes
		tt.note(now, sentAgo(repeat(10*time.Second, 2*transitSamples)...)...)
		tt.note(now, sentAgo(repeat(time.Millisecond, transitSamples)...)...)
		if got, want := tt.inFlightFor(now, interval), inFlightAge*interval; got != want {
			t.Errorf("inFlightFor = %v after the group caught up, want %v", got, want)
		}
	})
}

// A node whose pushed messages took 8 s to arrive answers a round's
// status without what it stored in the last 16 s (it is on its way to
// the peer that asked, as its own was: repairing it only made a
// duplicate), and a pull with everything; with the fixed cutoff of two
// intervals the round's repair carried the messages stored 10 s ago too.
func TestRoundRepairFollowsTransitTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
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
	// Seqs 1 to 3 stored a minute ago, 4 and 5 ten seconds ago.
	for _, part := range []struct {
		envs []*chatpb.Envelope
		at   time.Time
	}{{envs[:3], now.Add(-time.Minute)}, {envs[3:], now.Add(-10 * time.Second)}} {
		recs, err := recordsOf(part.envs, part.at)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.log.AppendBatchDeferred(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}
	var sent []int64
	for range 100 {
		sent = append(sent, now.Add(-8*time.Second).UnixNano())
	}
	n.transit.note(now, sent...)

	fresh := func(st *chatpb.Status) time.Time {
		if !isRound(st) {
			return time.Time{}
		}
		return now.Add(-n.transit.inFlightFor(now, cfg.AntiEntropyInterval))
	}
	count := func(rps []*chatpb.Repair) int {
		k := 0
		for _, rp := range rps {
			k += len(rp.Envelopes)
		}
		return k
	}
	miss := []msglog.SeqRange{{Origin: id.ID, From: 1, To: 5}}
	lo, hi := pullRange(id.ID)
	if got := count(n.buildRepair(room, miss, fresh(&chatpb.Status{Room: room}))); got != 3 {
		t.Errorf("round repair carries %d messages, want the 3 stored a minute ago", got)
	}
	if got := count(n.buildRepair(room, miss, fresh(&chatpb.Status{Room: room, FromOrigin: lo, UntilOrigin: hi}))); got != 5 {
		t.Errorf("pull repair carries %d messages, want all 5", got)
	}
}
