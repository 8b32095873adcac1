package bench

// The naive baseline is cli-chat's design, the floor any design must beat:
// every peer knows every member's address (as a bootstrap list would give
// it); to send a message it opens a new TCP connection to each other
// member in turn, writes the message, and closes. Nothing is acknowledged,
// retried or repaired: a connection that fails or a frame that is dropped
// is a message lost for that member.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Naive is the naive baseline System. The zero value is ready to Start.
type Naive struct {
	// DialTimeout bounds each connection attempt (default 2 s).
	DialTimeout time.Duration

	obs   Observer
	drop  float64
	peers []*naivePeer
	wg    sync.WaitGroup

	copies, wire atomic.Uint64
	// Lost counts per-member sends that failed (dial or write).
	lost atomic.Uint64

	stopOnce sync.Once
}

var _ System = (*Naive)(nil)

type naivePeer struct {
	idx int
	ln  net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// maxNaiveFrame bounds a frame read from the network.
const maxNaiveFrame = 1 << 20

// Name implements System.
func (n *Naive) Name() string { return "naive" }

// Start implements System: it opens one listener per peer on 127.0.0.1.
// Membership is the static list of their addresses, so it is settled at
// once. Drop is supported: a received frame is discarded with that
// probability.
func (n *Naive) Start(ctx context.Context, cfg SystemConfig, obs Observer) error {
	if n.DialTimeout <= 0 {
		n.DialTimeout = 2 * time.Second
	}
	n.obs, n.drop = obs, cfg.Drop
	var lc net.ListenConfig
	for i := 0; i < cfg.Peers; i++ {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			n.Stop()
			return fmt.Errorf("naive peer %d: listen: %w", i, err)
		}
		p := &naivePeer{idx: i, ln: ln, conns: make(map[net.Conn]struct{})}
		n.peers = append(n.peers, p)
		n.wg.Add(1)
		go n.accept(p)
	}
	return nil
}

// accept serves p's listener until it is closed.
func (n *Naive) accept(p *naivePeer) {
	defer n.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		n.wg.Add(1)
		go n.serve(p, c)
	}
}

// serve reads frames (4-byte big-endian length, then the payload) from one
// connection until EOF and delivers them.
func (n *Naive) serve(p *naivePeer, c net.Conn) {
	defer n.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	var hdr [4]byte
	buf := make([]byte, 0, 512)
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > maxNaiveFrame {
			return // not a frame of ours: drop the connection
		}
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		n.wire.Add(uint64(4 + size))
		n.copies.Add(1)
		if n.drop > 0 && rand.Float64() < n.drop {
			continue
		}
		n.obs.Deliver(p.idx, buf)
	}
}

// Send implements System: one new connection per other member, in turn,
// as cli-chat does. A member that cannot be reached misses the message
// (counted in Lost); Send fails only when ctx ends.
func (n *Naive) Send(ctx context.Context, from int, payload []byte) error {
	if from < 0 || from >= len(n.peers) {
		return fmt.Errorf("naive: no peer %d", from)
	}
	frame := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(frame, uint32(len(payload)))
	copy(frame[4:], payload)
	d := net.Dialer{Timeout: n.DialTimeout}
	for i, p := range n.peers {
		if i == from {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := d.DialContext(ctx, "tcp", p.ln.Addr().String())
		if err != nil {
			n.lost.Add(1)
			continue
		}
		if _, err := c.Write(frame); err != nil {
			n.lost.Add(1)
		}
		c.Close()
	}
	return nil
}

// Lost returns the number of per-member sends that failed.
func (n *Naive) Lost() uint64 { return n.lost.Load() }

// Counters implements System. WireBytes are the frame bytes the peers read
// (TCP payload; handshakes not included).
func (n *Naive) Counters() Counters {
	return Counters{Copies: n.copies.Load(), WireBytes: n.wire.Load(), WireKnown: true}
}

// Stop implements System: it closes the listeners and open connections and
// waits for the goroutines.
func (n *Naive) Stop() error {
	var errs []error
	n.stopOnce.Do(func() {
		for _, p := range n.peers {
			p.mu.Lock()
			p.closed = true
			for c := range p.conns {
				c.Close()
			}
			p.mu.Unlock()
			if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
		n.wg.Wait()
	})
	return errors.Join(errs...)
}
