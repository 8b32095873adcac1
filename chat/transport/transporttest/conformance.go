// Package transporttest is the conformance suite every implementation of
// transport.Transport passes (as testing/fstest is for file systems), and
// test helpers for identities.
package transporttest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// PeerID derives the test identities' peer IDs from their keys (the same
// rule as the chat package's: the first 8 bytes of SHA-256, in hex).
func PeerID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// NewLocal returns a fresh identity.
func NewLocal(tb testing.TB) transport.Local {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return transport.Local{ID: PeerID(priv.Public().(ed25519.PublicKey)), Key: priv}
}

// Factory creates a transport for local; the suite closes it. maxFrame is
// the frame limit the transport must enforce.
type Factory func(tb testing.TB, local transport.Local) transport.Transport

// MaxFrame is the frame limit the suite expects a Factory to configure.
const MaxFrame = 64 << 10

// Run runs the conformance suite against the transports mk creates.
func Run(t *testing.T, mk Factory) {
	t.Run("Exchange", func(t *testing.T) { testExchange(t, mk) })
	t.Run("WrongIdentity", func(t *testing.T) { testWrongIdentity(t, mk) })
	t.Run("AdmitRefused", func(t *testing.T) { testAdmitRefused(t, mk) })
	t.Run("DialerClose", func(t *testing.T) { testDialerClose(t, mk) })
	t.Run("TransportClose", func(t *testing.T) { testTransportClose(t, mk) })
	t.Run("OversizedFrame", func(t *testing.T) { testOversized(t, mk) })
}

// echo is a Handler that answers every ping with a pong of the same
// nonce and records what it saw.
type echo struct {
	admit   func(transport.Peer) error
	mu      sync.Mutex
	peers   []transport.Peer
	served  chan transport.Peer // one value per ServeConn start
	stopped chan error          // one value per ServeConn end: the Recv error
}

func newEcho() *echo {
	return &echo{served: make(chan transport.Peer, 8), stopped: make(chan error, 8)}
}

func (e *echo) Admit(ctx context.Context, p transport.Peer) error {
	e.mu.Lock()
	e.peers = append(e.peers, p)
	e.mu.Unlock()
	if e.admit != nil {
		return e.admit(p)
	}
	return nil
}

func (e *echo) ServeConn(c transport.Conn) {
	e.served <- c.Peer()
	for {
		f, err := c.Recv()
		if err != nil {
			e.stopped <- err
			return
		}
		if p := f.GetPing(); p != nil {
			if _, err := c.Send(&chatpb.Frame{Msg: &chatpb.Frame_Pong{Pong: &chatpb.Pong{Nonce: p.Nonce}}}); err != nil {
				e.stopped <- err
				return
			}
		}
	}
}

type pair struct {
	a, b   transport.Transport
	la, lb transport.Local
	h      *echo
}

func start(t *testing.T, mk Factory) *pair {
	t.Helper()
	p := &pair{la: NewLocal(t), lb: NewLocal(t), h: newEcho()}
	p.a = mk(t, p.la)
	p.b = mk(t, p.lb)
	for _, tr := range []transport.Transport{p.a, p.b} {
		done := make(chan error, 1)
		h := transport.Handler(p.h)
		if tr == p.a {
			h = newEcho()
		}
		go func() { done <- tr.Serve(h) }()
		t.Cleanup(func() {
			if err := tr.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve after Close: %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Serve did not return after Close")
			}
		})
	}
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// dial dials b from a, retrying while b's Serve is not yet running (it is
// started on a goroutine).
func (p *pair) dial(t *testing.T) (transport.Conn, error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := p.a.Dial(ctx(t), p.b.Addr(), p.lb.Public())
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "not serving") {
			return c, err
		}
		time.Sleep(10 * time.Millisecond) // polling for Serve to start, with a deadline
	}
}

func ping(n uint64) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: n}}}
}

func testExchange(t *testing.T, mk Factory) {
	p := start(t, mk)
	c, err := p.dial(t)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if got := c.Peer(); got.ID != p.lb.ID || !got.Key.Equal(p.lb.Public().Key) {
		t.Errorf("dialed Peer() = %s, want %s", got.ID, p.lb.ID)
	}
	select {
	case got := <-p.h.served:
		if got.ID != p.la.ID || !got.Key.Equal(p.la.Public().Key) {
			t.Errorf("accepted Peer() = %s, want %s", got.ID, p.la.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn was not called")
	}
	const n = 200
	errc := make(chan error, 1)
	go func() {
		for i := uint64(1); i <= n; i++ {
			f := ping(i)
			size, err := c.Send(f)
			if err != nil {
				errc <- err
				return
			}
			// What Send reports is what callers count as sent.
			if want := proto.Size(f); size != want {
				errc <- fmt.Errorf("Send of ping %d reported %d bytes, its encoding has %d", i, size, want)
				return
			}
		}
		errc <- nil
	}()
	for i := uint64(1); i <= n; i++ {
		f, err := c.Recv()
		if err != nil {
			t.Fatalf("recv pong %d: %v", i, err)
		}
		if got := f.GetPong().GetNonce(); got != i {
			t.Fatalf("pong %d: got nonce %d, want frames in order", i, got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
}

func testWrongIdentity(t *testing.T, mk Factory) {
	p := start(t, mk)
	other := NewLocal(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := p.a.Dial(ctx(t), p.b.Addr(), other.Public())
		if err == nil {
			c.Close()
			t.Fatal("dial with the wrong expected identity succeeded")
		}
		if !strings.Contains(err.Error(), "not serving") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case peer := <-p.h.served:
		t.Fatalf("ServeConn called for %s after a failed handshake", peer.ID)
	default:
	}
}

func testAdmitRefused(t *testing.T, mk Factory) {
	p := start(t, mk)
	p.h.admit = func(transport.Peer) error { return errors.New("not a member") }
	c, err := p.dial(t)
	if err == nil {
		// A transport may report the refusal on the first Recv.
		_, err = c.Recv()
		c.Close()
	}
	if err == nil {
		t.Fatal("refused dialer got a working stream")
	}
	p.h.mu.Lock()
	n := len(p.h.peers)
	p.h.mu.Unlock()
	if n != 1 {
		t.Errorf("Admit called %d times, want 1", n)
	}
	select {
	case peer := <-p.h.served:
		t.Fatalf("ServeConn called for refused %s", peer.ID)
	default:
	}
}

func testDialerClose(t *testing.T, mk Factory) {
	p := start(t, mk)
	c, err := p.dial(t)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	<-p.h.served
	c.Close()
	select {
	case <-p.h.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("accepted stream's Recv did not end after the dialer closed")
	}
	if _, err := c.Send(ping(1)); err == nil {
		t.Error("Send after Close succeeded")
	}
	if _, err := c.Recv(); err == nil {
		t.Error("Recv after Close succeeded")
	}
}

func testTransportClose(t *testing.T, mk Factory) {
	p := start(t, mk)
	c, err := p.dial(t)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	<-p.h.served
	if err := p.b.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for ServeConn: it has already reported its end.
	select {
	case <-p.h.stopped:
	default:
		t.Fatal("Close returned before ServeConn did")
	}
	recvErr := make(chan error, 1)
	go func() {
		_, err := c.Recv()
		recvErr <- err
	}()
	select {
	case err := <-recvErr:
		if err == nil {
			t.Error("Recv on a stream to a closed transport returned a frame")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dialer's Recv did not end after the listener closed")
	}
	if c2, err := p.a.Dial(ctx(t), p.b.Addr(), p.lb.Public()); err == nil {
		c2.Close()
		t.Error("dial to a closed transport succeeded")
	}
}

func testOversized(t *testing.T, mk Factory) {
	p := start(t, mk)
	c, err := p.dial(t)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	big := &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{Body: make([]byte, MaxFrame+1)}}}
	if _, err := c.Send(big); err == nil {
		// The limit may be enforced by the receiver, which then ends the
		// stream: no pong may come back.
		if _, err := c.Send(ping(7)); err == nil {
			if f, err := c.Recv(); err == nil {
				t.Fatalf("stream carried on after an oversized frame (got %v)", f)
			}
		}
	}
}
