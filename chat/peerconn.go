package chat

// peerConn is this node's outgoing stream to one peer. Its goroutine dials
// an authenticated stream through the node's transport (chat/transport),
// then writes queued frames in order; on any error it redials
// with exponential backoff (50 ms doubling to 2 s) until the member dies or
// leaves, or the node shuts down. The queue is bounded (Config.SendQueue):
// when it is full the new frame is dropped and counted, so a slow or
// unreachable peer never blocks Send; a frame in flight when the stream
// breaks is lost too. Anti-entropy (issue 4) repairs both.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

type peerConn struct {
	n    *Node
	id   string
	addr string
	pub  ed25519.PublicKey

	queue  chan *chatpb.Frame
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	connected atomic.Bool
	downSince atomic.Int64 // unix nanoseconds when the stream was last not established

	mu    sync.Mutex
	pings map[uint64]chan struct{} // pending pings by nonce, closed on pong
}

func newPeerConn(n *Node, id, addr string, pub ed25519.PublicKey) *peerConn {
	ctx, cancel := context.WithCancel(n.ctx)
	return &peerConn{
		n: n, id: id, addr: addr, pub: pub,
		queue:  make(chan *chatpb.Frame, n.cfg.SendQueue),
		ctx:    ctx,
		cancel: cancel,
		done:   make(chan struct{}),
		pings:  make(map[uint64]chan struct{}),
	}
}

// unreachableFor returns how long the stream has not been established (0
// when it is).
func (p *peerConn) unreachableFor() time.Duration {
	if p.connected.Load() {
		return 0
	}
	return time.Since(time.Unix(0, p.downSince.Load()))
}

func (p *peerConn) start() {
	p.downSince.Store(time.Now().UnixNano())
	p.n.wg.Add(1)
	go func() {
		defer p.n.wg.Done()
		defer close(p.done)
		p.run()
	}()
}

// stop ends the connection and waits for its goroutine.
func (p *peerConn) stop() {
	p.cancel()
	<-p.done
}

// enqueue queues f without blocking; it reports false (and counts a drop)
// when the queue is full or the connection is stopping.
func (p *peerConn) enqueue(f *chatpb.Frame) bool {
	if p.ctx.Err() != nil {
		return false
	}
	select {
	case p.queue <- f:
		return true
	default:
		p.n.stats.queueDrops.Add(1)
		return false
	}
}

func (p *peerConn) run() {
	backoff := 50 * time.Millisecond
	for p.ctx.Err() == nil {
		established, err := p.session()
		if p.ctx.Err() != nil {
			return
		}
		if established {
			backoff = 50 * time.Millisecond
		}
		p.n.logger.Printf("chat stream to %s (%s): %v; retrying in %v", p.id, p.addr, err, backoff)
		select {
		case <-time.After(backoff):
		case <-p.ctx.Done():
			return
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// session dials one authenticated stream, then sends queued frames until
// an error. It reports whether the stream was established.
func (p *peerConn) session() (bool, error) {
	conn, err := p.n.tr.Dial(p.ctx, p.addr, transport.Peer{ID: p.id, Key: p.pub})
	if err != nil {
		return false, err
	}
	// Closing the stream unblocks the reader and a blocked Send.
	defer conn.Close()
	// Our rooms first, so the listener knows at once which rooms to send
	// us (the announcement is repeated every anti-entropy round anyway).
	rs := p.n.roomSetAnnouncement()
	if err := conn.Send(rs); err != nil {
		return false, fmt.Errorf("send rooms: %w", err)
	}
	p.n.stats.aeBytes.Add(uint64(proto.Size(rs)))
	// Our encryption key (and others we know) before any direct message,
	// then the direct-message loop may deliver to this peer (direct.go).
	if err := conn.Send(p.n.encKeysFrame(p.id)); err != nil {
		return false, fmt.Errorf("send encryption keys: %w", err)
	}
	p.connected.Store(true)
	p.n.dm.wake()
	defer func() {
		p.downSince.Store(time.Now().UnixNano())
		p.connected.Store(false)
	}()

	recvErr := make(chan error, 1)
	p.n.wg.Add(1)
	go func() {
		defer p.n.wg.Done()
		recvErr <- p.readLoop(conn)
	}()
	defer func() {
		conn.Close()
		<-recvErr
	}()
	send := func(f *chatpb.Frame) error {
		if err := conn.Send(f); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		p.n.stats.framesOut.Add(1)
		return nil
	}
	for {
		select {
		case <-p.ctx.Done():
			return true, nil
		case err := <-recvErr:
			recvErr <- err // for the deferred wait
			return true, fmt.Errorf("stream closed: %w", err)
		case f := <-p.queue:
			if err := p.sendBatched(f, send); err != nil {
				return true, err
			}
		}
	}
}

// maxBatchEnvelopes bounds the envelopes of one Batch frame (a receiver
// refuses a larger batch as a bad frame).
const maxBatchEnvelopes = 1024

// batchBytes bounds the encoded envelopes of one Batch frame, below the
// frame limit with room for the frame's own tags and lengths.
const batchBytes = maxFrameBytes - 1024

// sendBatched sends f; when f carries an envelope, the envelopes already
// waiting in the queue behind it go in the same Batch frame (it never
// waits for more: batching only shares the per-frame cost among messages
// that would otherwise queue behind each other). The first queued frame
// that is not an envelope ends the batch and is sent after it, so frames
// keep their queue order; what follows it stays queued.
func (p *peerConn) sendBatched(f *chatpb.Frame, send func(*chatpb.Frame) error) error {
	first := f.GetEnvelope()
	if first == nil {
		return send(f)
	}
	envs := []*chatpb.Envelope{first}
	size := proto.Size(first)
	flush := func() error {
		var err error
		if len(envs) == 1 {
			err = send(envelopeFrame(envs[0]))
		} else {
			err = send(batchFrame(envs))
			if err == nil {
				p.n.stats.batchesOut.Add(1)
			}
		}
		envs, size = nil, 0
		return err
	}
	for {
		var g *chatpb.Frame
		select {
		case g = <-p.queue:
		default:
			return flush()
		}
		env := g.GetEnvelope()
		if env == nil {
			if err := flush(); err != nil {
				return err
			}
			return send(g)
		}
		gs := proto.Size(env) + 8 // the envelope's tag and length in the batch
		if len(envs) == maxBatchEnvelopes || size+gs > batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		envs = append(envs, env)
		size += gs
	}
}

// readLoop reads what the listener sends back (pongs) until the stream
// ends.
func (p *peerConn) readLoop(conn transport.Conn) error {
	for {
		f, err := conn.Recv()
		if err != nil {
			return err
		}
		pong := f.GetPong()
		if pong == nil {
			p.n.stats.badFrames.Add(1)
			continue
		}
		p.mu.Lock()
		if ch := p.pings[pong.Nonce]; ch != nil {
			close(ch)
			delete(p.pings, pong.Nonce)
		}
		p.mu.Unlock()
	}
}

// request queues the frame built by mk(nonce) and waits for the Pong with
// that nonce, returning the round trip.
func (p *peerConn) request(ctx context.Context, what string, mk func(nonce uint64) *chatpb.Frame) (time.Duration, error) {
	nonce := p.n.pingNonce.Add(1)
	ch := make(chan struct{})
	p.mu.Lock()
	p.pings[nonce] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pings, nonce)
		p.mu.Unlock()
	}()
	start := time.Now()
	if !p.enqueue(mk(nonce)) {
		return 0, fmt.Errorf("%s %s: send queue full or closing", what, p.id)
	}
	select {
	case <-ch:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("%s %s: %w", what, p.id, ctx.Err())
	case <-p.ctx.Done():
		return 0, fmt.Errorf("%s %s: connection closed", what, p.id)
	}
}

// ping measures the round trip of the stream.
func (p *peerConn) ping(ctx context.Context) (time.Duration, error) {
	return p.request(ctx, "ping", pingFrame)
}

// bye announces a graceful leave and waits until the peer recorded it.
func (p *peerConn) bye(ctx context.Context) error {
	_, err := p.request(ctx, "bye", byeFrame)
	return err
}

// Ping measures the round trip to a peer (by peer ID, ID prefix, nick or
// display name) over its chat stream, including queueing behind messages
// already sent to it. It blocks until the pong or ctx's end; give ctx a
// deadline.
func (n *Node) Ping(ctx context.Context, who string) (time.Duration, error) {
	if _, err := n.active(); err != nil {
		return 0, err
	}
	m, err := n.resolvePeer(who)
	if err != nil {
		return 0, err
	}
	if m.ID == n.id.ID {
		return 0, errors.New("ping: that is this peer")
	}
	n.mu.Lock()
	p := n.peers[m.ID]
	n.mu.Unlock()
	if p == nil {
		return 0, fmt.Errorf("ping %s: no chat connection (state %s)", who, m.State)
	}
	return p.ping(ctx)
}
