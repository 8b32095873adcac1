package order

import (
	"fmt"
	"testing"
)

// benchRoom measures one member's cost per message in a room of n
// members where every message arrives in order.
func benchRoom(b *testing.B, mode Mode, n int) {
	m, err := New(DefaultConfig("me", mode))
	if err != nil {
		b.Fatal(err)
	}
	origins := make([]string, n)
	for i := range origins {
		origins[i] = fmt.Sprintf("peer-%02d", i)
		m.MemberUp(origins[i], uint64(i+1))
	}
	m.MemberUp("me", uint64(n+1))
	seqs := make([]uint64, n)
	var lamport uint64
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		o := i % n
		seqs[o]++
		lamport++
		msg := Meta{Origin: origins[o], Seq: seqs[o], Kind: KindData, Lamport: lamport}
		if mode == Causal && o > 0 {
			msg.Deps = map[string]uint64{origins[o-1]: seqs[o-1]}
		}
		if _, err := m.Receive(msg); err != nil {
			b.Fatal(err)
		}
		if mode == Total {
			// The others' acks, as a batch.
			acks := make([]Meta, 0, n)
			for p := range n {
				seqs[p]++
				acks = append(acks, Meta{Origin: origins[p], Seq: seqs[p], Kind: KindAck, Lamport: lamport + 1})
			}
			lamport++
			m.Receive(acks...)
		}
	}
	if st := m.Stats(); st.Delivered != uint64(b.N) {
		b.Fatalf("delivered %d of %d", st.Delivered, b.N)
	}
}

func BenchmarkReceiveFIFO10(b *testing.B)   { benchRoom(b, FIFO, 10) }
func BenchmarkReceiveCausal10(b *testing.B) { benchRoom(b, Causal, 10) }
func BenchmarkReceiveTotal10(b *testing.B)  { benchRoom(b, Total, 10) }

// BenchmarkCausalNext measures our own message in a causal room of n
// authors where one other author spoke since our previous message (a
// busy lobby): the Deps it names (deps/msg) and its cost. Deps name only
// what is new (one entry here), not the whole delivered vector (n).
func BenchmarkCausalNext(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m, err := New(DefaultConfig("me", Causal))
			if err != nil {
				b.Fatal(err)
			}
			origins := make([]string, n)
			seqs := make([]uint64, n)
			for i := range origins {
				origins[i] = fmt.Sprintf("peer-%05d", i)
				seqs[i] = 1
				m.Receive(Meta{Origin: origins[i], Seq: 1, Kind: KindData, Lamport: 1})
			}
			if _, _, err := m.Next(); err != nil { // names everyone once
				b.Fatal(err)
			}
			deps := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				o := i % n
				seqs[o]++
				m.Receive(Meta{Origin: origins[o], Seq: seqs[o], Kind: KindData, Lamport: uint64(i + 2)})
				msg, out, err := m.Next()
				if err != nil {
					b.Fatal(err)
				}
				deps += len(msg.Deps)
				for _, c := range out.Send {
					deps += len(c.Deps)
				}
			}
			b.ReportMetric(float64(deps)/float64(b.N), "deps/msg")
		})
	}
}

// BenchmarkCausalDepsInTurn: a room of n speakers who each reply to the
// message before theirs (each names the previous speaker's message in its
// Deps), and we speak once after every n of theirs. Deps/msg is what one
// of our messages names: with compaction by our own stream alone it was n
// (every speaker grew since our last message); naming only what the
// others' messages do not imply, it is the last speaker.
func BenchmarkCausalDepsInTurn(b *testing.B) {
	for _, n := range []int{3, 10, 50, 200} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m, err := New(DefaultConfig("me", Causal))
			if err != nil {
				b.Fatal(err)
			}
			origins := make([]string, n)
			for i := range origins {
				origins[i] = fmt.Sprintf("peer-%05d", i)
			}
			seqs := make([]uint64, n)
			var prev ID
			var lamport uint64
			deps := 0
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i, o := range origins {
					seqs[i]++
					lamport++
					msg := Meta{Origin: o, Seq: seqs[i], Kind: KindData, Lamport: lamport}
					if prev.Origin != "" && prev.Origin != o {
						msg.Deps = map[string]uint64{prev.Origin: prev.Seq}
					}
					if _, err := m.Receive(msg); err != nil {
						b.Fatal(err)
					}
					prev = msg.ID()
				}
				msg, out, err := m.Next()
				if err != nil {
					b.Fatal(err)
				}
				lamport = max(lamport, msg.Lamport)
				deps += len(msg.Deps)
				for _, c := range out.Send {
					deps += len(c.Deps)
				}
			}
			b.ReportMetric(float64(deps)/float64(b.N), "deps/msg")
		})
	}
}
