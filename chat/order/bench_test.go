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
