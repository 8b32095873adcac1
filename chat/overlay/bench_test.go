package overlay

import (
	"testing"
	"time"
)

// BenchmarkGossipStep measures one peer's cost to take a payload in a
// built tree: duplicate check, delivery, push to the eager neighbours
// and the lazy announcements (what a chat driver would pay per message
// before signatures and storage).
func BenchmarkGossipStep(b *testing.B) {
	cfg := DefaultConfig("me", 1)
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c", "d", "e"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	n.Step(0, "d", Message{Kind: KindPrune, Peer: "a"})
	n.Step(0, "e", Message{Kind: KindPrune, Peer: "a"})
	n.Ready()
	payload := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var id MsgID
		id[0], id[1], id[2], id[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
		now := time.Duration(i) * time.Millisecond
		n.Step(now, "a", Message{Kind: KindGossip, Peer: "a", ID: id, Round: 3, Payload: payload})
		n.Tick(now + cfg.LazyInterval)
		n.Ready()
	}
}
