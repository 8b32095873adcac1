package transport

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// BenchmarkTLSDial measures a chat connection's set-up on loopback: TCP,
// the TLS 1.3 handshake (X25519MLKEM768, Ed25519 certificates both ways),
// the hello with its cluster-key proof when there is a key, the
// listener's admission, and close. The listener's accepted connections
// stay counted against its per-address limit until it sees the close, so
// the limit is raised for the benchmark.
func BenchmarkTLSDial(b *testing.B) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{
		{"open", nil},
		{"cluster-key", bytes.Repeat([]byte{7}, 32)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tune := func(c *TLSConfig) {
				c.ClusterKey = tc.key
				c.MaxConnsPerIP = 1 << 20
				c.MaxConns = 1 << 20
				c.HandshakeTimeout = 10 * time.Second
			}
			l, lp, _ := listen(b, tune)
			d := dialer(b, tune)
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := d.Dial(ctx, l.Addr(), lp.Public())
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
		})
	}
}
