package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// BenchmarkDirectLive measures one direct message between two live peers:
// from SendDirect (sign, seal with MLKEM768X25519, store, push) until the
// recipient shows it (open, verify, store, event), one message at a
// time (the next starts once the receipt is back). It also reports the
// sealed message's size on the wire and what a holder keeps, for a
// 100-byte text.
func BenchmarkDirectLive(b *testing.B) {
	peers := chattest.Cluster(b, 2, directConfig)
	alice, bob := peers[0], peers[1]
	ctx := context.Background()
	text := strings.Repeat("x", 100)
	i := 0
	for b.Loop() {
		i++
		start := bob.Rec.Len()
		id, err := alice.SendDirect(ctx, bob.ID(), fmt.Sprintf("%03d", i%1000)+text[3:])
		if err != nil {
			b.Fatal(err)
		}
		bob.Rec.WaitEventAfter(b, chattest.DefaultTimeout, start, func(ev hearsay.Event) bool { return ev.ID == id }, "direct message")
		// Not timed: the sender records the ack and the receipt (two
		// more commits), so that the next message starts on idle peers.
		b.StopTimer()
		alice.Rec.WaitEvent(b, chattest.DefaultTimeout, isState(id, hearsay.StateDelivered), "delivered")
		b.StartTimer()
	}
	wire, held := chat.DirectSizes(len(text))
	b.ReportMetric(float64(wire), "wire-B/DM")
	b.ReportMetric(float64(held), "held-B/DM")
}

// BenchmarkDirectReturn measures the time from an offline recipient's
// return (its Join call) until it shows a message two holders kept for
// it (run it with -benchtime 1x: each iteration restarts a peer).
func BenchmarkDirectReturn(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		cfgs := make([]chat.Config, 4)
		peers := make([]*chattest.Peer, 4)
		for i := range peers {
			cfgs[i] = chattest.Config(b, fmt.Sprintf("p%d", i))
			directConfig(i, &cfgs[i])
			peers[i] = chattest.Start(b, cfgs[i])
			if i > 0 {
				chattest.Join(b, peers[i], peers[0])
			}
		}
		chattest.WaitConverged(b, peers...)
		alice, bob := peers[0], peers[1]
		bobID := bob.ID()
		chattest.WaitFor(b, chattest.DefaultTimeout, func() bool { return alice.HasEncKey(bobID) }, "bob's key")
		if err := bob.Shutdown(); err != nil {
			b.Fatal(err)
		}
		chattest.WaitFor(b, chattest.DefaultTimeout, func() bool { return chattest.AliveCount(alice.Node) == 3 }, "bob gone")
		id, err := alice.SendDirect(context.Background(), bobID, "while you were away")
		if err != nil {
			b.Fatal(err)
		}
		for _, h := range peers[2:] {
			chattest.WaitFor(b, chattest.DefaultTimeout, func() bool { return h.Stats().DirectHeld == 1 }, "held")
		}
		bob = chattest.Start(b, cfgs[1])
		b.StartTimer()
		t0 := time.Now()
		chattest.Join(b, bob, peers[2])
		bob.Rec.WaitEvent(b, chattest.DefaultTimeout, func(ev hearsay.Event) bool { return ev.ID == id }, "held message")
		b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "ms-to-delivery")
	}
}
