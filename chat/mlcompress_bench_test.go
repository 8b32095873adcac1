//go:build unix

package chat_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// BenchmarkMemberlistCompressionCPU measures what memberlist's packet
// compression costs a group: N peers on 127.0.0.1 with the test timers
// (gossip every 20 ms, a probe every 200 ms), with enable_compression on
// and off, reporting the process's CPU time (user and system) per peer
// and second of an idle, converged group. Every probe, ack and gossip
// packet is compressed with a new lzw.Writer when it is on.
func BenchmarkMemberlistCompressionCPU(b *testing.B) {
	const n = 10
	const window = 2 * time.Second
	for _, compress := range []bool{true, false} {
		b.Run(fmt.Sprintf("compression=%v", compress), func(b *testing.B) {
			var perPeer float64
			for b.Loop() {
				b.StopTimer()
				peers := chattest.Cluster(b, n, func(_ int, cfg *chat.Config) {
					s := *cfg.Memberlist
					s.EnableCompression = compress
					cfg.Memberlist = &s
				})
				cpu0, start := chat.ProcessCPUForTest(b), time.Now()
				t := time.NewTimer(window) // the measurement window itself
				<-t.C
				used := chat.ProcessCPUForTest(b) - cpu0
				perPeer = used.Seconds() / time.Since(start).Seconds() / n
				for _, p := range peers {
					_ = p.Shutdown()
				}
				b.StartTimer()
			}
			b.ReportMetric(perPeer*1e3, "cpu-ms/s/peer")
		})
	}
}
