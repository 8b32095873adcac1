package chat_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// TestTuneChatTransport: the bounds Config.TuneChatTransport sets are the
// ones the chat listener enforces. With one handshake allowed per address,
// a second connection from 127.0.0.1 that has not finished its handshake is
// refused (counted in Stats.Refused); the default bound (8) would take it.
func TestTuneChatTransport(t *testing.T) {
	called := false
	c := chat.DefaultConfig()
	c.Nick = "tuned"
	c.TuneChatTransport = func(tc *transport.TLSConfig) {
		called = true
		tc.MaxHandshakesPerIP = 1
	}
	n, err := chat.New(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	if !called {
		t.Fatal("TuneChatTransport was not called")
	}
	var d net.Dialer
	for i := range 2 {
		conn, err := d.DialContext(ctx, "tcp", n.ChatAddr())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	for n.Stats().Refused == 0 {
		if ctx.Err() != nil {
			t.Fatal("the second pending handshake from one address was not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
