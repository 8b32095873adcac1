package chat

import (
	"fmt"
	"testing"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// BenchmarkCheckEnvelopes is the signature check of a received frame of
// 1, 4, 16 and 64 envelopes from 9 origins (keys cached), per envelope;
// BenchmarkCheckEnvelope is the single check with crypto/ed25519's
// cost for comparison (CheckEnvelope: no key cache).
func BenchmarkCheckEnvelopes(b *testing.B) {
	var ids []*Identity
	for range 9 {
		id, err := NewIdentity()
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, n := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			envs := make([]*chatpb.Envelope, n)
			for i := range envs {
				envs[i] = benchChat(ids[i%len(ids)], "bench", uint64(i+1), "a chat message of a typical length, about sixty bytes")
			}
			var keys keyCache
			for b.Loop() {
				for _, err := range checkEnvelopes(&keys, envs) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e3, "µs/envelope")
		})
	}
}

func BenchmarkCheckEnvelope(b *testing.B) {
	id, err := NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	e := benchChat(id, "bench", 1, "a chat message of a typical length, about sixty bytes")
	for b.Loop() {
		if err := CheckEnvelope(e); err != nil {
			b.Fatal(err)
		}
	}
}
