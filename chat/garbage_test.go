package chat_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// Garbage on the memberlist and chat ports never crashes a peer, is
// counted, and leaves the group working.
func TestGarbageOnPorts(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	victim, other := peers[0], peers[1]

	// memberlist UDP: random datagrams, and memberlist user messages (type
	// 8) that carry garbage for the node's own decoder.
	udp, err := net.Dial("udp", victim.AdvertiseAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for i := 0; i < 50; i++ {
		_, _ = udp.Write(randomBytes(t, 1+i*20))
		_, _ = udp.Write(append([]byte{8, 1}, randomBytes(t, 1+i)...)) // user msg, kv type, junk
		_, _ = udp.Write(append([]byte{8, 77}, randomBytes(t, 5)...))  // user msg, unknown type
	}
	chattest.WaitFor(t, timeout, func() bool { st := victim.Stats(); return st.KVDrops > 0 && st.BadFrames > 0 },
		"garbage user messages were not seen by the node: %+v", victim.Stats())

	// memberlist TCP and chat TCP: random streams, and an HTTP/2 preface
	// followed by junk on the chat port.
	for _, addr := range []string{victim.AdvertiseAddr(), victim.ChatAddr()} {
		for i := 0; i < 5; i++ {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write(randomBytes(t, 4096))
			c.Close()
		}
	}
	c, err := net.DialTimeout("tcp", victim.ChatAddr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write(append([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), randomBytes(t, 2048)...))
	c.Close()

	// Every garbage connection is refused and counted (6 on the chat port).
	chattest.WaitFor(t, timeout, func() bool { return victim.Stats().Refused >= 6 },
		"garbage chat connections were not refused: %+v", victim.Stats())

	// Well-formed TLS from a stranger with its own key: refused, with the
	// reason in the dialer's error.
	before := victim.Stats().Refused
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := transport.ListenTLS("127.0.0.1:0", transport.TLSConfig{
		Local: transport.Local{ID: chat.PeerIDFromKey(pub), Key: priv}, Protocol: chat.ProtocolVersion,
		PeerID:        func(k ed25519.PublicKey) string { return chat.PeerIDFromKey(k) },
		MaxFrameBytes: 1 << 16, HandshakeTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	victimKey := victim.PublicKey()
	attempts := []struct {
		want transport.Peer
		says string
	}{
		{transport.Peer{ID: "nobody", Key: victimKey}, "hello for"},          // wrong target
		{transport.Peer{ID: victim.ID(), Key: victimKey}, "is not a member"}, // not a member
	}
	for i, a := range attempts {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		c, err := st.Dial(ctx, victim.ChatAddr(), a.want)
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("attempt %d: a stranger was admitted", i)
		}
		if !strings.Contains(err.Error(), a.says) {
			t.Errorf("attempt %d: error %q does not say %q", i, err, a.says)
		}
	}
	// The listener counts a refusal after sending it: the dialer's error
	// may come first.
	chattest.WaitFor(t, timeout, func() bool { return victim.Stats().Refused-before >= uint64(len(attempts)) },
		"%d bad handshakes were not all counted", len(attempts))
	if got := victim.Stats().Refused - before; got != uint64(len(attempts)) {
		t.Errorf("bad handshakes counted %d, want %d", got, len(attempts))
	}

	// The group still works both ways.
	send(t, other, "still there?")
	victim.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "still there?" }, "message after garbage")
	send(t, victim, "yes")
	other.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "yes" }, "reply after garbage")
	if n := chattest.AliveCount(victim.Node); n != 2 {
		t.Errorf("victim sees %d alive members, want 2", n)
	}
}
