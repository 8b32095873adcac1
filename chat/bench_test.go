package chat_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// waitDelivered waits until every peer has shown message id, looking at
// their events from index start[i] on.
func waitDelivered(b *testing.B, id string, start []int, peers ...*chattest.Peer) {
	b.Helper()
	for i, p := range peers {
		p.Rec.WaitEventAfter(b, timeout, start[i], func(ev chat.Event) bool { return ev.ID == id }, "message "+id)
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
