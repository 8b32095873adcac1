package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
	"github.com/hearsay-chat/hearsay/chat/transport/transporttest"
)

func tlsFactory(tb testing.TB, local transport.Local) transport.Transport {
	tb.Helper()
	g, err := transport.ListenTLS("127.0.0.1:0", transport.TLSConfig{
		Local: local, Protocol: 9, PeerID: transporttest.PeerID,
		MaxFrameBytes: transporttest.MaxFrame, HandshakeTimeout: 2 * time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

func TestTLSConformance(t *testing.T) { transporttest.Run(t, tlsFactory) }

func TestMemConformance(t *testing.T) {
	nw := transport.NewMemNetwork(transporttest.MaxFrame)
	transporttest.Run(t, func(tb testing.TB, l transport.Local) transport.Transport { return nw.Listen(l) })
}

// Faults with nothing in force must not change a transport's behaviour.
func TestFaultsConformance(t *testing.T) {
	nw := transport.NewMemNetwork(transporttest.MaxFrame)
	transporttest.Run(t, func(tb testing.TB, l transport.Local) transport.Transport {
		return transport.WithFaults(nw.Listen(l), transport.NewInjector(transport.FaultSettings{Seed: 1}))
	})
}

// A peer of another protocol version is refused with an error naming both.
func TestTLSProtocolMismatch(t *testing.T) {
	la, lb := transporttest.NewLocal(t), transporttest.NewLocal(t)
	a := tlsFactory(t, la)
	defer a.Close()
	b, err := transport.ListenTLS("127.0.0.1:0", transport.TLSConfig{
		Local: lb, Protocol: 10, PeerID: transporttest.PeerID,
		MaxFrameBytes: transporttest.MaxFrame, HandshakeTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	go b.Serve(nopHandler{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.Dial(ctx, b.Addr(), lb.Public())
	if err == nil {
		c.Close()
		t.Fatal("dial across protocol versions succeeded")
	}
	if got := err.Error(); !contains(got, "protocol") {
		t.Errorf("error %q does not name the protocol versions", got)
	}
}

type nopHandler struct{}

func (nopHandler) Admit(context.Context, transport.Peer) error { return nil }
func (nopHandler) ServeConn(c transport.Conn) {
	for {
		if _, err := c.Recv(); err != nil {
			return
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// collect is a handler that passes received nonces to a channel.
type collect struct{ got chan uint64 }

func (collect) Admit(context.Context, transport.Peer) error { return nil }
func (h collect) ServeConn(c transport.Conn) {
	for {
		f, err := c.Recv()
		if err != nil {
			return
		}
		h.got <- f.GetPing().GetNonce()
	}
}

func memPair(t *testing.T, inj *transport.Injector) (transport.Conn, chan uint64, transport.Local) {
	t.Helper()
	nw := transport.NewMemNetwork(0)
	la, lb := transporttest.NewLocal(t), transporttest.NewLocal(t)
	a := transport.WithFaults(nw.Listen(la), inj)
	b := nw.Listen(lb)
	h := collect{got: make(chan uint64, 1024)}
	served := make(chan struct{})
	go func() { close(served); b.Serve(h) }()
	<-served
	t.Cleanup(func() { a.Close(); b.Close() })
	var c transport.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c, err = a.Dial(context.Background(), b.Addr(), lb.Public()); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling for Serve to register, with a deadline
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, h.got, lb
}

func ping(n uint64) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: n}}}
}

// Dropped frames are counted and the others arrive in order.
func TestFaultsDrop(t *testing.T) {
	inj := transport.NewInjector(transport.FaultSettings{DropRatio: 0.5, Seed: 42})
	c, got, _ := memPair(t, inj)
	const n = 400
	for i := uint64(1); i <= n; i++ {
		if _, err := c.Send(ping(i)); err != nil {
			t.Fatal(err)
		}
	}
	c.Send(ping(0)) // may be dropped too; a closing sentinel is not needed with counts
	drops := inj.Drops()
	if drops < n/4 || drops > 3*n/4 {
		t.Fatalf("%d of %d frames dropped at ratio 0.5", drops, n+1)
	}
	want := n + 1 - int(drops)
	last := uint64(0)
	for i := 0; i < want; i++ {
		select {
		case v := <-got:
			if v != 0 && v <= last {
				t.Fatalf("frame %d after %d: order broken without jitter", v, last)
			}
			if v != 0 {
				last = v
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d frames", i, want)
		}
	}
}

// Jitter delays frames and reorders them; every frame still arrives.
func TestFaultsJitterReorders(t *testing.T) {
	inj := transport.NewInjector(transport.FaultSettings{Jitter: 20 * time.Millisecond, Seed: 7})
	c, got, _ := memPair(t, inj)
	const n = 200
	for i := uint64(1); i <= n; i++ {
		if _, err := c.Send(ping(i)); err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[uint64]bool)
	inversions := 0
	var last uint64
	for len(seen) < n {
		select {
		case v := <-got:
			if v < last {
				inversions++
			}
			last = v
			seen[v] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d delayed frames", len(seen), n)
		}
	}
	if inversions == 0 {
		t.Error("20 ms of jitter over 200 frames reordered none")
	}
}

// A partition cuts a peer's frames until Heal.
func TestFaultsPartition(t *testing.T) {
	inj := transport.NewInjector(transport.FaultSettings{})
	c, got, lb := memPair(t, inj)
	inj.Partition(lb.ID, "127.0.0.1:1")
	if !inj.BlocksAddr("127.0.0.1:1") || !inj.Blocks(lb.ID) {
		t.Fatal("partitioned peer not blocked")
	}
	c.Send(ping(1))
	if inj.Drops() != 1 {
		t.Fatalf("drops = %d, want 1", inj.Drops())
	}
	inj.Heal()
	if len(inj.Partitioned()) != 0 {
		t.Fatal("Heal left a partition")
	}
	c.Send(ping(2))
	select {
	case v := <-got:
		if v != 2 {
			t.Fatalf("got frame %d, want 2 (1 was cut)", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("frame after Heal did not arrive")
	}
}
