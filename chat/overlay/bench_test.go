package overlay

import (
	"fmt"
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

// BenchmarkMissingFull measures what a peer with a full missing table
// (MaxMissing announced, not received messages: a busy node behind a
// slow or lossy parent) pays per event: "receipt" takes the payload of
// one missing message (which ends its entry) and an announcement of a
// new one (which refills the table); "deadline" is NextDeadline, asked
// after every input; "tick" a Tick with nothing due.
func BenchmarkMissingFull(b *testing.B) {
	setup := func(b *testing.B) (*Node, Config) {
		cfg := DefaultConfig("me", 1)
		n, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range []string{"a", "b", "c", "d", "e"} {
			n.Step(0, p, Message{Kind: KindNeighbor})
		}
		for k := 0; k < cfg.MaxMissing; k += cfg.MaxIHave {
			anns := make([]Announce, cfg.MaxIHave)
			for j := range anns {
				anns[j] = Announce{ID: benchID(k + j), Origin: "o", Round: 2}
			}
			n.Step(0, "b", Message{Kind: KindIHave, Announces: anns})
		}
		if len(n.tree.missing) != cfg.MaxMissing {
			b.Fatalf("%d missing, want %d", len(n.tree.missing), cfg.MaxMissing)
		}
		n.Ready()
		return n, cfg
	}
	b.Run("receipt", func(b *testing.B) {
		n, cfg := setup(b)
		payload := make([]byte, 100)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			// The middle of the table: a receipt is in no particular order.
			n.Step(0, "a", Message{Kind: KindGossip, Peer: "o", ID: benchID(i + cfg.MaxMissing/2), Round: 1, Payload: payload})
			n.Step(0, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: benchID(i + cfg.MaxMissing), Origin: "o", Round: 2}}})
			n.Ready()
		}
	})
	b.Run("deadline", func(b *testing.B) {
		n, _ := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			n.NextDeadline()
		}
	})
	b.Run("tick", func(b *testing.B) {
		n, _ := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			n.Tick(0)
		}
	})
}

func benchID(i int) MsgID {
	var id MsgID
	id[0], id[1], id[2], id[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
	id[15] = 0xBE
	return id
}

// BenchmarkTreesFull measures a message that names a new origin when
// MaxTrees origins' trees are held (a neighbour naming a fresh origin in
// every Prune): the least recently used tree is forgotten for it.
func BenchmarkTreesFull(b *testing.B) {
	cfg := DefaultConfig("me", 1)
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	n.Step(0, "a", Message{Kind: KindNeighbor})
	origins := make([]string, 2*cfg.MaxTrees)
	for i := range origins {
		origins[i] = fmt.Sprintf("o%d", i)
	}
	for _, o := range origins[:cfg.MaxTrees] {
		n.Step(0, "a", Message{Kind: KindPrune, Peer: o})
	}
	if len(n.tree.trees) != cfg.MaxTrees {
		b.Fatalf("%d trees, want %d", len(n.tree.trees), cfg.MaxTrees)
	}
	n.Ready()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		n.Step(0, "a", Message{Kind: KindPrune, Peer: origins[i%len(origins)]})
	}
}
