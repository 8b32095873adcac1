package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// echo is a Handler that sends every frame it receives back.
type echo struct{}

func (echo) Admit(context.Context, Peer) error { return nil }
func (echo) ServeConn(c Conn) {
	for {
		f, err := c.Recv()
		if err != nil {
			return
		}
		if _, err := c.Send(f); err != nil {
			return
		}
	}
}

// echoServer returns a dialer and, for its Dial, the address and
// identity of a listener that echoes; both take frames of up to limit
// bytes.
func echoServer(t testing.TB, limit int) (d *TLS, addr string, want Peer) {
	t.Helper()
	tune := func(c *TLSConfig) { c.MaxFrameBytes = limit; c.HandshakeTimeout = 5 * time.Second }
	local := newTestLocal(t)
	cfg := TLSConfig{Local: local, Protocol: 3, PeerID: testPeerID}
	tune(&cfg)
	l, err := ListenTLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve(echo{}) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return dialer(t, tune), l.Addr(), local.Public()
}

// dialEcho dials the echo listener.
func dialEcho(t testing.TB, d *TLS, addr string, want Peer) Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.Dial(ctx, addr, want)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoPair returns a dialed connection to a listener that echoes.
func echoPair(t testing.TB, limit int) Conn {
	d, addr, want := echoServer(t, limit)
	return dialEcho(t, d, addr, want)
}

// body returns a recognisable body of n bytes for frame k.
func body(k, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(k*31 + i*7)
	}
	return b
}

// Connections keep no frame buffer of their own (frames are read and
// encoded in buffers shared through a pool, and reads go straight to the
// TLS connection): frames of every size, smaller and larger than the
// pooled buffers' first size, than one TLS record, and than the largest
// buffer the pool keeps, interleaved so that a buffer grown for one frame
// serves the next, arrive whole and in order, both ways over real
// sockets.
func TestTLSFramesOfEverySizeWithSharedBuffers(t *testing.T) {
	const limit = 1 << 20
	c := echoPair(t, limit)
	sizes := []int{0, 1, 100, minPooledBuf - 40, minPooledBuf + 1, 17 << 10, 100, maxPooledBuf + 5000, 3, limit - 64, 200, 64 << 10, 1}
	for k, n := range sizes {
		if _, err := c.Send(envelopeFrame(string(body(k, n)))); err != nil {
			t.Fatalf("send frame %d (%d bytes): %v", k, n, err)
		}
	}
	for k, n := range sizes {
		f, err := c.Recv()
		if err != nil {
			t.Fatalf("frame %d (%d bytes) back: %v", k, n, err)
		}
		if got := f.GetEnvelope().GetBody(); !bytes.Equal(got, body(k, n)) {
			t.Fatalf("frame %d: got %d bytes, want the %d sent", k, len(got), n)
		}
	}
}

// Sends from several goroutines on one connection are encoded each in its
// own buffer and written whole, one at a time: no frame is torn or mixed
// with another (the encoding happens outside the write lock).
func TestTLSConcurrentSendsStayWhole(t *testing.T) {
	const limit = 1 << 20
	c := echoPair(t, limit)
	const senders, each = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := s*each + i
				n := (k * 7919) % (40 << 10) // sizes from 0 to 40 KB, mixed
				f := &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{Room: fmt.Sprint(k), Body: body(k, n)}}}
				if _, err := c.Send(f); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	seen := make(map[string]bool)
	for range senders * each {
		f, err := c.Recv()
		if err != nil {
			t.Fatalf("after %d frames: %v", len(seen), err)
		}
		e := f.GetEnvelope()
		var k int
		if _, err := fmt.Sscan(e.GetRoom(), &k); err != nil {
			t.Fatalf("frame with room %q", e.GetRoom())
		}
		if !bytes.Equal(e.GetBody(), body(k, (k*7919)%(40<<10))) || seen[e.GetRoom()] {
			t.Fatalf("frame %d torn or repeated", k)
		}
		seen[e.GetRoom()] = true
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// BenchmarkTLSIdleConnMemory reports the heap an idle connection holds,
// both ends in this process, after a 100 KB frame went each way on it
// (which used to leave a 128 KB read buffer and a 64 KB write buffer on
// each end, besides the 16 KB read buffer every connection had): the
// figure that multiplies with the connections of a large group.
func BenchmarkTLSIdleConnMemory(b *testing.B) {
	const conns = 50
	d, addr, want := echoServer(b, 1<<20)
	for b.Loop() {
		b.StopTimer()
		var cs []Conn
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		for range conns {
			c := dialEcho(b, d, addr, want)
			if _, err := c.Send(envelopeFrame(string(body(1, 100<<10)))); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Recv(); err != nil {
				b.Fatal(err)
			}
			cs = append(cs, c)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/conns, "heap-B/conn")
		for _, c := range cs {
			c.Close()
		}
		b.StartTimer()
	}
}

// Refusals tell their kind to OnRefused: over a bound (ErrBusy, before
// the TLS handshake) or refused by Admit (ErrNotAdmitted, after it).
func TestTLSRefusalKinds(t *testing.T) {
	l, _, rec := listen(t, func(c *TLSConfig) { c.MaxHandshakes, c.HandshakeTimeout = 1, 5*time.Second })
	silent, err := net.Dial("tcp", l.Addr()) // holds the one handshake slot
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { hs, _ := openCounts(l); return hs == 1 }, "the silent connection is not in the handshake")
	over, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if err := recvErr(t, rec.refused); !errors.Is(err, ErrBusy) || errors.Is(err, ErrNotAdmitted) {
		t.Fatalf("over the bound: %v, want ErrBusy", err)
	}
	silent.Close()

	refused := make(chan error, 8)
	local := newTestLocal(t)
	l2, err := ListenTLS("127.0.0.1:0", TLSConfig{Local: local, Protocol: 3, PeerID: testPeerID, MaxFrameBytes: testFrame,
		HandshakeTimeout: 5 * time.Second, OnRefused: func(err error) { refused <- err }})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- l2.Serve(admitFunc(func(context.Context, Peer) error { return errors.New("not a member") }))
	}()
	defer func() {
		l2.Close()
		<-served
	}()
	if _, err := dialer(t, nil).Dial(testCtx(t), l2.Addr(), local.Public()); err == nil {
		t.Fatal("admitted")
	}
	if err := recvErr(t, refused); !errors.Is(err, ErrNotAdmitted) || errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("refused by Admit: %v, want ErrNotAdmitted and Admit's reason", err)
	}
}

// recvErr waits for the refusal the listener reports, failing the test
// after 10 s rather than hanging until the binary's timeout.
func recvErr(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no refusal reported within 10 s")
		return nil
	}
}
