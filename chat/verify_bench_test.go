package chat

import (
	"fmt"
	"testing"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// BenchmarkCheckEnvelopes is the signature check of a received frame of
// 1, 4, 16 and 64 envelopes from 9 origins (keys cached), per envelope,
// and of frames of 16 from 200 origins in turn (more than the key cache
// holds: each key is expanded again);
// BenchmarkCheckEnvelope is the single check with crypto/ed25519's
// cost for comparison (CheckEnvelope: no key cache).
func BenchmarkCheckEnvelopes(b *testing.B) {
	var ids []*Identity
	for range 200 {
		id, err := NewIdentity()
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id)
	}
	frames := func(n, origins int) [][]*chatpb.Envelope {
		var out [][]*chatpb.Envelope
		for f := 0; f == 0 || (f*n)%origins != 0; f++ {
			envs := make([]*chatpb.Envelope, n)
			for i := range envs {
				k := f*n + i
				envs[i] = benchChat(ids[k%origins], "bench", uint64(k+1), "a chat message of a typical length, about sixty bytes")
			}
			out = append(out, envs)
		}
		return out
	}
	run := func(name string, n int, fs [][]*chatpb.Envelope) {
		b.Run(name, func(b *testing.B) {
			var keys keyCache
			i := 0
			for b.Loop() {
				for _, err := range checkEnvelopes(&keys, fs[i%len(fs)]) {
					if err != nil {
						b.Fatal(err)
					}
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e3, "µs/envelope")
		})
	}
	for _, n := range []int{1, 4, 16, 64} {
		run(fmt.Sprint(n), n, frames(n, 9)[:1])
	}
	run("16-of-200-origins", 16, frames(16, 200))
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
