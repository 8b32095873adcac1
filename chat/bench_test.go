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
