package chat_test

import (
	"context"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
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

	// Well-formed gRPC from a stranger: wrong handshakes are refused.
	before := victim.Stats().Refused
	stranger, err := chat.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("passthrough:///"+victim.ChatAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := chatpb.NewChatClient(cc)
	attempts := []*chatpb.Frame{
		{}, // no message at all
		{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{}}}, // no handshake
		{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{Protocol: chat.ProtocolVersion, PeerId: stranger.ID, PublicKey: stranger.Pub, Nonce: make([]byte, 16), TargetId: "nobody"}}},    // wrong target
		{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{Protocol: chat.ProtocolVersion, PeerId: other.ID(), PublicKey: stranger.Pub, Nonce: make([]byte, 16), TargetId: victim.ID()}}},  // stolen ID
		{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{Protocol: chat.ProtocolVersion, PeerId: stranger.ID, PublicKey: stranger.Pub, Nonce: make([]byte, 16), TargetId: victim.ID()}}}, // not a member
	}
	for i, f := range attempts {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		stream, err := client.Connect(ctx)
		if err != nil {
			cancel()
			t.Fatalf("attempt %d: open stream: %v", i, err)
		}
		if err := stream.Send(f); err != nil {
			cancel()
			t.Fatalf("attempt %d: send: %v", i, err)
		}
		if _, err := stream.Recv(); err == nil {
			t.Errorf("attempt %d: the listener answered a bad handshake", i)
		}
		cancel()
	}
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
