package chat

// peerConn is this node's outgoing stream to one peer. Its goroutine dials
// (one gRPC client connection, reused), runs the dialer's side of the
// handshake, then writes queued frames in order; on any error it redials
// with exponential backoff (50 ms doubling to 2 s) until the member dies or
// leaves, or the node shuts down. The queue is bounded (Config.SendQueue):
// when it is full the new frame is dropped and counted, so a slow or
// unreachable peer never blocks Send; a frame in flight when the stream
// breaks is lost too. Anti-entropy (issue 4) repairs both.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
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
	cc, err := grpc.NewClient("passthrough:///"+p.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxFrameBytes), grpc.MaxCallSendMsgSize(maxFrameBytes)),
	)
	if err != nil {
		p.n.emitError("cannot reach %s: %v", p.id, err)
		return
	}
	defer cc.Close()
	client := chatpb.NewChatClient(cc)
	backoff := 50 * time.Millisecond
	for p.ctx.Err() == nil {
		established, err := p.session(client)
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

// session runs one stream: handshake, then send until an error. It
// reports whether the handshake succeeded.
func (p *peerConn) session(client chatpb.ChatClient) (bool, error) {
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	stream, err := client.Connect(ctx, grpc.WaitForReady(false))
	if err != nil {
		return false, fmt.Errorf("open stream: %w", err)
	}
	// The handshake must finish in time; cancelling ctx unblocks Recv.
	hsTimer := time.AfterFunc(p.n.cfg.HandshakeTimeout+time.Second, cancel)
	err = p.handshake(stream)
	stopped := hsTimer.Stop()
	if err != nil {
		return false, err
	}
	if !stopped {
		return false, errors.New("handshake timed out")
	}
	// Our rooms first, so the listener knows at once which rooms to send
	// us (the announcement is repeated every anti-entropy round anyway).
	if rs := p.n.roomSetFrame(); p.n.faults.blocks(p.id) {
		p.n.stats.faultDrops.Add(1)
	} else if err := stream.Send(rs); err != nil {
		return false, fmt.Errorf("send rooms: %w", err)
	} else {
		p.n.stats.aeBytes.Add(uint64(proto.Size(rs)))
	}
	p.connected.Store(true)
	defer func() {
		p.downSince.Store(time.Now().UnixNano())
		p.connected.Store(false)
	}()

	recvErr := make(chan error, 1)
	p.n.wg.Add(1)
	go func() {
		defer p.n.wg.Done()
		recvErr <- p.readLoop(stream)
	}()
	defer func() {
		cancel()
		<-recvErr
	}()
	// Without fault injection frames go out in queue order; with it they
	// may be dropped or wait in a delay line (see faults.go).
	var line delayLine
	var lineSeq uint64
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	send := func(f *chatpb.Frame) error {
		if err := stream.Send(f); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		p.n.stats.framesOut.Add(1)
		return nil
	}
	// dispatch acts on one frame whose fault fate is decided: dropped,
	// sent now (with the envelopes queued behind it, see sendBatched), or
	// put in the delay line.
	var dispatch func(f *chatpb.Frame, drop bool, delay time.Duration) error
	dispatch = func(f *chatpb.Frame, drop bool, delay time.Duration) error {
		switch {
		case drop:
			p.n.stats.faultDrops.Add(1)
		case delay <= 0 && len(line) == 0:
			return p.sendBatched(f, send, dispatch)
		case len(line) >= cap(p.queue):
			p.n.stats.queueDrops.Add(1) // the delay line is bounded like the queue
		default:
			lineSeq++
			line.add(delayedFrame{due: time.Now().Add(delay), seq: lineSeq, f: f})
		}
		return nil
	}
	for {
		var due <-chan time.Time
		if len(line) > 0 {
			timer.Reset(time.Until(line[0].due))
			due = timer.C
		}
		select {
		case <-p.ctx.Done():
			_ = stream.CloseSend()
			return true, nil
		case err := <-recvErr:
			recvErr <- err // for the deferred wait
			return true, fmt.Errorf("stream closed: %w", err)
		case f := <-p.queue:
			drop, delay := p.n.faults.outgoing(p.id)
			if err := dispatch(f, drop, delay); err != nil {
				return true, err
			}
		case <-due:
			for {
				f, ok := line.popDue(time.Now())
				if !ok {
					break
				}
				if err := send(f); err != nil {
					return true, err
				}
			}
		}
		if due != nil && !timer.Stop() {
			select { // drain a fire that was not received
			case <-timer.C:
			default:
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
// that would otherwise queue behind each other). Each queued frame gets
// its own fault decision; the first one that is not an envelope, or that
// fault injection delays, ends the batch and goes to dispatch after it,
// so frames keep their queue order.
func (p *peerConn) sendBatched(f *chatpb.Frame, send func(*chatpb.Frame) error,
	dispatch func(*chatpb.Frame, bool, time.Duration) error) error {
	first := f.GetEnvelope()
	if first == nil {
		return send(f)
	}
	envs := []*chatpb.Envelope{first}
	size := proto.Size(first)
	flush := func() error {
		var err error
		if len(envs) == 1 {
			err = send(&chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: envs[0]}})
		} else {
			err = send(&chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: envs}}})
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
		drop, delay := p.n.faults.outgoing(p.id)
		if drop {
			p.n.stats.faultDrops.Add(1)
			continue
		}
		env := g.GetEnvelope()
		if env == nil || delay > 0 {
			if err := flush(); err != nil {
				return err
			}
			return dispatch(g, false, delay)
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

// handshake runs the dialer's side (see transport.go).
func (p *peerConn) handshake(stream chatpb.Chat_ConnectClient) error {
	n := p.n
	myNonce := newNonce()
	hello := &chatpb.Hello{Protocol: ProtocolVersion, PeerId: n.id.ID, PublicKey: n.id.Pub, Nonce: myNonce, TargetId: p.id}
	if err := stream.Send(&chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	f, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	reply := f.GetHello()
	if err := checkHello(reply, n.id.ID); err != nil {
		n.stats.badFrames.Add(1)
		return fmt.Errorf("peer hello: %w", err)
	}
	if reply.PeerId != p.id || !bytes.Equal(reply.PublicKey, p.pub) {
		n.stats.badFrames.Add(1)
		return fmt.Errorf("%s answers as %s: stale address?", p.addr, reply.PeerId)
	}
	if !ed25519.Verify(p.pub, helloSigningBytes("listener", n.id.ID, p.id, myNonce, reply.Nonce), reply.Signature) {
		n.stats.badFrames.Add(1)
		return fmt.Errorf("peer %s: bad hello signature", p.id)
	}
	auth := &chatpb.Auth{Signature: n.id.Sign(helloSigningBytes("dialer", n.id.ID, p.id, myNonce, reply.Nonce))}
	if err := stream.Send(&chatpb.Frame{Msg: &chatpb.Frame_Auth{Auth: auth}}); err != nil {
		return fmt.Errorf("send auth: %w", err)
	}
	return nil
}

// readLoop reads what the listener sends back (pongs) until the stream
// ends.
func (p *peerConn) readLoop(stream chatpb.Chat_ConnectClient) error {
	for {
		f, err := stream.Recv()
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
	return p.request(ctx, "ping", func(nonce uint64) *chatpb.Frame {
		return &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: nonce}}}
	})
}

// bye announces a graceful leave and waits until the peer recorded it.
func (p *peerConn) bye(ctx context.Context) error {
	_, err := p.request(ctx, "bye", func(nonce uint64) *chatpb.Frame {
		return &chatpb.Frame{Msg: &chatpb.Frame_Bye{Bye: &chatpb.Bye{Nonce: nonce}}}
	})
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
