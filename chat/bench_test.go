package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// waitDelivered waits until every peer has shown message id, looking at
// their events from index start[i] on.
func waitDelivered(b *testing.B, id string, start []int, peers ...*chattest.Peer) {
	b.Helper()
	for i, p := range peers {
		p.Rec.WaitEventAfter(b, timeout, start[i], func(ev hearsay.Event) bool { return ev.ID == id }, "message "+id)
	}
}

// BenchmarkMessageToTwoPeers measures the latency of one message from its
// origin until both other members of a group of 3 have shown it (signing,
// two streams, verification, dedup, event delivery).
func BenchmarkMessageToTwoPeers(b *testing.B) {
	peers := chattest.Cluster(b, 3, nil)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		start := []int{peers[1].Rec.Len(), peers[2].Rec.Len()}
		id, err := peers[0].Send(ctx, "lobby", fmt.Sprintf("message %d", i))
		if err != nil {
			b.Fatal(err)
		}
		waitDelivered(b, id.String(), start, peers[1], peers[2])
	}
}

// BenchmarkStartToFirstMessage measures, for a group of 3 on this machine,
// the time from New of the first peer until the first message has been
// shown by the two others: three peers created and started, two joins,
// membership and chat streams converged, one message delivered. "local" is
// the test profile (fast timers); "lan" is the default profile.
func BenchmarkStartToFirstMessage(b *testing.B) {
	for _, profile := range []string{"local", "lan"} {
		b.Run(profile, func(b *testing.B) {
			for b.Loop() {
				startToFirstMessage(b, profile)
			}
		})
	}
}

func startToFirstMessage(b *testing.B, profile string) {
	var peers []*chattest.Peer
	for i := 0; i < 3; i++ {
		cfg := chattest.Config(b, fmt.Sprintf("p%d", i))
		if profile == "lan" {
			cfg.MemberlistProfile, cfg.Memberlist = chat.ProfileLAN, nil
		}
		peers = append(peers, chattest.Start(b, cfg))
	}
	for _, p := range peers[1:] {
		chattest.Join(b, p, peers[0])
	}
	chattest.WaitConverged(b, peers...)
	id, err := peers[0].Send(context.Background(), "lobby", "first")
	if err != nil {
		b.Fatal(err)
	}
	waitDelivered(b, id.String(), []int{0, 0}, peers[1], peers[2])
	b.StopTimer()
	for _, p := range peers {
		_ = p.Shutdown()
	}
	b.StartTimer()
}

// BenchmarkConvergeAfterPartition measures how long a group of 4 takes,
// after a partition {p0,p1}|{p2,p3} heals, until every member holds every
// message sent on both sides during it (10 per side), with the default
// anti-entropy interval (1 s). "short": healed before memberlist declared
// the other side dead; "long": healed after, so the sides must first find
// each other again through the rejoin of their discovery agents (every
// 200 ms here, chattest.RejoinInterval; 10 s by default). ms/heal is the
// figure.
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
	defer func() {
		for _, p := range peers {
			_ = p.Shutdown()
		}
	}()
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

// BenchmarkAntiEntropyIdleTraffic measures what anti-entropy costs when
// nothing is missing: N peers in the lobby, each of which has sent one
// message (so vectors have N entries), default interval (1 s), a 5 s
// window; B/s/peer counts the status and room-set frames a peer sends
// (protobuf bytes, plus 26 bytes of framing per frame: the 4-byte length
// and one TLS 1.3 record's header, content type and AEAD tag; TCP/IP
// headers not included).
func BenchmarkAntiEntropyIdleTraffic(b *testing.B) {
	for _, n := range []int{3, 5, 10} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			var rate float64
			for b.Loop() {
				b.StopTimer()
				peers := chattest.Cluster(b, n, nil)
				// One message per peer first, so that every version vector
				// has N entries (the steady state of a room that talks).
				for _, p := range peers {
					if _, err := p.Send(context.Background(), "", "hello"); err != nil {
						b.Fatal(err)
					}
				}
				chattest.WaitFor(b, timeout, func() bool {
					for _, p := range peers {
						if len(chattest.HistoryIDs(b, p.Node, chat.DefaultRoom)) != n {
							return false
						}
					}
					return true
				}, "first messages not everywhere")
				before := make([]hearsay.Stats, n)
				for i, p := range peers {
					before[i] = p.Stats()
				}
				start := time.Now()
				window := time.NewTimer(5 * time.Second) // the measurement window itself
				<-window.C
				elapsed := time.Since(start).Seconds()
				var bytes float64
				for i, p := range peers {
					st := p.Stats()
					bytes += float64(st.AntiEntropyBytes-before[i].AntiEntropyBytes) + 26*float64(st.FramesOut-before[i].FramesOut)
					if st.RepairSent != before[i].RepairSent {
						b.Errorf("peer %d repaired %d messages in an idle group", i, st.RepairSent-before[i].RepairSent)
					}
				}
				rate = bytes / elapsed / float64(n)
				for _, p := range peers {
					_ = p.Shutdown()
				}
				b.StartTimer()
			}
			b.ReportMetric(rate, "B/s/peer")
		})
	}
}
