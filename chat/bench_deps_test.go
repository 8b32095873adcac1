package chat

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// BenchmarkCausalEnvelopeSize measures our own envelope in a causal lobby
// of n authors where one other author spoke since our previous message:
// its encoded size (B/msg, what every member receives and stores) and its
// deps (deps/msg), and the cost of Send. Deps name only what is new since
// our previous message (protocol 4), not the whole delivered vector.
func BenchmarkCausalEnvelopeSize(b *testing.B) {
	ctx := context.Background()
	for _, authors := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(authors), func(b *testing.B) {
			n := lobbyNode(b, "bench", 16)
			ids := make([]*Identity, authors)
			seqs := make([]uint64, authors)
			msg := func(i int) *chatpb.Envelope {
				seqs[i]++
				e := &chatpb.Envelope{Seq: seqs[i], Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: seqs[i],
					SentUnixNano: time.Now().UnixNano(), Body: []byte("hello there"), Nick: "n"}
				SignEnvelope(ids[i], e)
				return e
			}
			for i := range ids {
				id, err := NewIdentity()
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = id
				benchAddMember(b, n, id)
				n.handleFrame(envFrame(msg(i)), id.ID)
			}
			r := n.joinedRoom(DefaultRoom)
			if _, err := r.send(ctx, "first"); err != nil {
				b.Fatal(err)
			}
			// Envelopes signed ahead, so the loop measures Send.
			incoming := make([]*chatpb.Envelope, b.N)
			for i := range incoming {
				incoming[i] = msg(i % authors)
			}
			var size, deps int
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				n.handleFrame(envFrame(incoming[i]), incoming[i].Origin)
				b.StartTimer()
				id, err := r.send(ctx, "a reply of some words")
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				rec, err := n.log.Get(ctx, DefaultRoom, n.id.ID, id.Seq)
				if err != nil {
					b.Fatal(err)
				}
				e, err := decodeStored(rec.Data)
				if err != nil {
					b.Fatal(err)
				}
				size += len(rec.Data)
				deps += len(e.Deps)
				b.StartTimer()
			}
			b.ReportMetric(float64(size)/float64(b.N), "B/msg")
			b.ReportMetric(float64(deps)/float64(b.N), "deps/msg")
		})
	}
}
