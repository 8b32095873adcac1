package transport

// The in-memory transport: a MemNetwork connects the transports created on
// it by address, without sockets. Each frame is encoded and decoded as on
// the wire (so the frame limit holds and no pointer is shared between
// peers), and a stream delivers its frames in order with a bounded buffer
// per direction, so a sender that outruns its receiver blocks as it would
// on flow control. Identities are taken as given: a MemNetwork is for
// tests and the simulator, not for untrusted peers.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// memStreamBuffer is how many frames one direction of a stream holds.
const memStreamBuffer = 256

// MemNetwork is an in-memory network of transports. Safe for concurrent
// use.
type MemNetwork struct {
	// MaxFrameBytes bounds one encoded frame (0: no bound).
	MaxFrameBytes int

	mu    sync.Mutex
	next  int
	nodes map[string]*MemTransport
}

// NewMemNetwork returns an empty network whose frames are bounded by
// maxFrameBytes (0: no bound).
func NewMemNetwork(maxFrameBytes int) *MemNetwork {
	return &MemNetwork{MaxFrameBytes: maxFrameBytes, nodes: make(map[string]*MemTransport)}
}

// Listen creates a transport for local at a new address. Addresses look
// like sockets in TEST-NET-1 ("192.0.2.1:1", "192.0.2.1:2", …; RFC 5737,
// never routed) because a node advertises its chat address in its node
// meta, which must hold an IP address and a port; no socket is opened.
func (nw *MemNetwork) Listen(local Local) *MemTransport {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.next++
	t := &MemTransport{nw: nw, local: local, addr: net.JoinHostPort("192.0.2.1", strconv.Itoa(nw.next)), done: make(chan struct{}), conns: make(map[*memConn]struct{})}
	nw.nodes[t.addr] = t
	return t
}

func (nw *MemNetwork) lookup(addr string) *MemTransport {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.nodes[addr]
}

func (nw *MemNetwork) remove(t *MemTransport) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.nodes[t.addr] == t {
		delete(nw.nodes, t.addr)
	}
}

// MemTransport is one peer's transport on a MemNetwork.
type MemTransport struct {
	nw    *MemNetwork
	local Local
	addr  string

	mu      sync.Mutex
	handler Handler
	closed  bool
	conns   map[*memConn]struct{} // accepted streams, closed by Close
	wg      sync.WaitGroup        // ServeConn calls
	done    chan struct{}
}

var _ Transport = (*MemTransport)(nil)

// Addr returns the transport's address on its network.
func (t *MemTransport) Addr() string { return t.addr }

// Serve hands accepted streams to h until Close.
func (t *MemTransport) Serve(h Handler) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil // closed before it served: nothing to accept
	}
	if t.handler != nil {
		t.mu.Unlock()
		return errors.New("mem transport: Serve called twice")
	}
	t.handler = h
	t.mu.Unlock()
	<-t.done
	return nil
}

// Close removes the transport from its network, ends its accepted streams
// and waits for their handlers.
func (t *MemTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	t.nw.remove(t)
	for c := range conns {
		c.Close()
	}
	t.wg.Wait()
	return nil
}

// Dial connects to the transport at addr, which must belong to want.
func (t *MemTransport) Dial(ctx context.Context, addr string, want Peer) (Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	l := t.nw.lookup(addr)
	if l == nil {
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}
	if l.local.ID != want.ID || !l.local.Public().Key.Equal(want.Key) {
		return nil, fmt.Errorf("%s answers as %s, not %s: stale address?", addr, l.local.ID, want.ID)
	}
	l.mu.Lock()
	h := l.handler
	l.mu.Unlock()
	if h == nil {
		return nil, fmt.Errorf("dial %s: connection refused (not serving)", addr)
	}
	if err := h.Admit(ctx, t.local.Public()); err != nil {
		return nil, fmt.Errorf("dial %s: handshake: %w", addr, err)
	}
	ab, ba := newMemPipe(), newMemPipe()
	dialed := &memConn{nw: t.nw, peer: want, out: ab, in: ba}
	accepted := &memConn{nw: t.nw, peer: t.local.Public(), out: ba, in: ab}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}
	l.conns[accepted] = struct{}{}
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		h.ServeConn(accepted)
		accepted.Close()
		l.mu.Lock()
		delete(l.conns, accepted)
		l.mu.Unlock()
	}()
	return dialed, nil
}

// memPipe is one direction of a stream.
type memPipe struct {
	frames chan []byte
	done   chan struct{} // closed when either end closes the stream
	once   sync.Once
}

func newMemPipe() *memPipe {
	return &memPipe{frames: make(chan []byte, memStreamBuffer), done: make(chan struct{})}
}

func (p *memPipe) close() { p.once.Do(func() { close(p.done) }) }

// memConn is one end of an in-memory stream.
type memConn struct {
	nw   *MemNetwork
	peer Peer
	out  *memPipe
	in   *memPipe
}

func (c *memConn) Peer() Peer { return c.peer }

func (c *memConn) Send(f *chatpb.Frame) (int, error) {
	b, err := proto.Marshal(f)
	if err != nil {
		return 0, fmt.Errorf("encode frame: %w", err)
	}
	if c.nw.MaxFrameBytes > 0 && len(b) > c.nw.MaxFrameBytes {
		return 0, fmt.Errorf("frame of %d bytes exceeds the limit of %d", len(b), c.nw.MaxFrameBytes)
	}
	select {
	case <-c.out.done:
		return 0, ErrClosed
	default:
	}
	select {
	case c.out.frames <- b:
		return len(b), nil
	case <-c.out.done:
		return 0, ErrClosed
	}
}

// Recv returns the frames sent before the stream closed, then io.EOF.
func (c *memConn) Recv() (*chatpb.Frame, error) {
	var b []byte
	select {
	case b = <-c.in.frames:
	case <-c.in.done:
		select {
		case b = <-c.in.frames:
		default:
			return nil, io.EOF
		}
	}
	f := new(chatpb.Frame)
	if err := proto.Unmarshal(b, f); err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	return f, nil
}

// Close ends both directions.
func (c *memConn) Close() error {
	c.out.close()
	c.in.close()
	return nil
}
