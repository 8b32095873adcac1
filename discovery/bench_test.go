package discovery_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/discovery"
)

// BenchmarkConvergeAfterPartition measures how long a group of 4 takes,
// after a partition {p0,p1}|{p2,p3} heals, until every member holds every
// message sent on both sides during it (10 per side), with the default
// anti-entropy interval (1 s). "short": healed before memberlist declared
// the other side dead; "long": healed after, so the sides must first find
// each other again through the discovery agents' rejoin of failed members
// (a round every 1 s here; 10 s by default; no bootstrap service answers).
// ms/heal is the figure.
func BenchmarkConvergeAfterPartition(b *testing.B) {
	for _, long := range []bool{false, true} {
		name := "short"
		if long {
			name = "long"
		}
		b.Run(name, func(b *testing.B) {
			var total time.Duration
			heals := 0
			for b.Loop() {
				total += convergeOnce(b, long)
				heals++
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(heals), "ms/heal")
		})
	}
}

func convergeOnce(b *testing.B, long bool) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	peers := chattest.Cluster(b, 4, func(i int, cfg *chat.Config) {
		cfg.Faults = &chat.Faults{Seed: int64(i + 1)}
	})
	var agents []*discovery.Agent
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, a := range agents {
			_ = a.Close(ctx)
		}
		for _, p := range peers {
			_ = p.Shutdown()
		}
	}()
	for _, p := range peers {
		cfg := downService(b)
		cfg.DataDir = b.TempDir()
		cfg.RejoinInterval = time.Second
		a, err := discovery.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		agents = append(agents, a)
		_, _ = a.Register(context.Background(), p.Node) // no service: the error is expected
	}
	left, right := peers[:2], peers[2:]
	for _, a := range left {
		for _, c := range right {
			_ = a.Partition(c.ID())
			_ = c.Partition(a.ID())
		}
	}
	if long {
		chattest.WaitFor(b, timeout, func() bool { return chattest.AliveCount(peers[0].Node) == 2 }, "partition not detected")
	}
	var sent []string
	for i := range 10 {
		for _, p := range []*chattest.Peer{left[i%2], right[i%2]} {
			id, err := p.Send(context.Background(), "", fmt.Sprintf("during %d", i))
			if err != nil {
				b.Fatal(err)
			}
			sent = append(sent, id.String())
		}
	}
	start := time.Now()
	for _, p := range peers {
		_ = p.Heal()
	}
	chattest.WaitFor(b, timeout, func() bool {
		for _, p := range peers {
			got := map[string]bool{}
			for _, id := range chattest.HistoryIDs(b, p.Node, chat.DefaultRoom) {
				got[id] = true
			}
			for _, id := range sent {
				if !got[id] {
					return false
				}
			}
		}
		return true
	}, "no convergence after the heal")
	return time.Since(start)
}
