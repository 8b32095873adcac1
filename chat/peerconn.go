package chat

// peerConn is this node's link to one peer: since protocol 6 a pair of
// peers shares ONE chat connection, used in both directions (before, each
// peer dialed the other for its own outgoing frames: N(N-1) connections in
// a group of N, 80,000 sockets for 200 peers in one process).
//
// A link has a bounded queue of frames to send and one writer goroutine
// (run) that dials when the link has no connection and is wanted (kept by
// membership, or used recently), then writes queued frames in order on the
// link's current connection, batching envelopes; on any error it redials
// with exponential backoff (50 ms doubling to 2 s, each wait jittered by
// ±50 %) until the link is stopped (the member dies or leaves, the node
// shuts down) or, when not kept, falls idle (links.go). The queue is bounded (Config.SendQueue):
// when it is full the new frame is dropped and counted, so a slow or
// unreachable peer never blocks Send; a frame in flight when the
// connection breaks is lost too. Anti-entropy repairs both.
//
// Every connection of the link, dialed by this node or accepted from the
// peer, has one reader (serveLink, receive.go) that hands every frame to
// the same handling, whichever end dialed: frames are valid in both
// directions. Readers never write: a Pong they owe goes to the writer
// through a small reply channel, so two peers whose readers both wait to
// write cannot deadlock each other.
//
// When both ends dial at once, a pair briefly holds two connections. Both
// ends keep the one DIALED BY THE SMALLER PEER ID and retire the other
// (install): each end applies the same rule, so they agree without a
// message. A retired connection is no longer written to, but its reader
// keeps processing what already arrived on it until linkRetireGrace has
// passed (time for frames in flight to land) and it is closed. A newer
// connection in the same direction as the current one replaces it: its
// dialer dials only when it has no connection left, so the old one is dead
// on its side.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// linkRetireGrace is how long a connection that lost the rule is still
// read before it is closed: the frames the peer wrote on it before it
// switched (one round trip and a socket buffer's worth) land and are
// processed; later ones would be repaired by anti-entropy anyway.
const linkRetireGrace = time.Second

// maxReplies bounds the Pongs a link's readers can owe its writer; more
// are dropped (counted as queue drops: the pinger times out).
const maxReplies = 16

type peerConn struct {
	n    *Node
	id   string
	addr string
	pub  ed25519.PublicKey

	// queue holds the frames to send, for the link's writer: a ring
	// whose slice grows with what is queued and is let go once drained
	// (fifo.go), where a channel allocated its whole bound (SendQueue
	// pointers: 8 KB at the default 1,024) for every link up front, and a
	// group of 200 peers in one process holds thousands of links, nearly
	// all with an empty queue.
	queue   *signalQueue[*chatpb.Frame]
	replies chan *chatpb.Frame // Pongs from the readers; written before the queue
	kick    chan struct{}      // wakes the writer: the connection or kept changed
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	connected  atomic.Bool
	downSince  atomic.Int64 // unix nanoseconds when the link was last not established
	lastActive atomic.Int64 // unix nanoseconds of the last frame queued or received
	// keyQueued and roomsQueued record that our own encryption key or
	// room set was queued on the link as a request or an answer and not
	// yet written (linkConn.keyOut, roomsOut then record it): a link made
	// on demand sends them only when the peer shows it needs them, once
	// per connection (greetings.go).
	keyQueued   atomic.Bool
	roomsQueued atomic.Bool
	// digestsOut counts the room set digests greeted on the link whose
	// request is still to be answered; digestAnswered is when the last
	// of the peer's digests was compared with ours (unix nanoseconds):
	// roomsetdigest.go.
	digestsOut     atomic.Int32
	digestAnswered atomic.Int64
	// digestServed is when the last request was answered with sets: a
	// peer that flips the kept mark earns a credit per greeting, and
	// an empty request brings every held set (~42 KB at 200 members),
	// so answers too go at most once per digestAnswerEvery.
	digestServed atomic.Int64

	mu      sync.Mutex
	pings   map[uint64]chan struct{} // pending pings by nonce, closed on pong
	cur     *linkConn                // the connection frames go out on, or nil
	conns   map[*linkConn]struct{}   // every connection whose reader runs: cur and retired ones
	kept    bool                     // dialed and redialed while the member lives (links.go)
	keptGen uint64                   // counts kept's turns from false to true: each gets a greeting (greetings.go)
	stopped bool                     // the writer has ended: no connection is installed any more
}

// linkConn is one connection of a link.
type linkConn struct {
	c      transport.Conn
	dialed bool          // this node dialed it
	gone   chan struct{} // closed when its reader has returned
	retire *time.Timer   // closes it linkRetireGrace after it lost the rule
	// keyOut and roomsOut record that our own encryption key or room set
	// was written on this connection: what the peer at its other end has
	// (ownSent). They belong to the connection, not to the link: a peer
	// that restarted dials a new one, and has none of it.
	keyOut   atomic.Bool
	roomsOut atomic.Bool
}

func newPeerConn(n *Node, id, addr string, pub ed25519.PublicKey) *peerConn {
	ctx, cancel := context.WithCancel(n.ctx)
	p := &peerConn{
		n: n, id: id, addr: addr, pub: pub,
		queue:   newSignalQueue[*chatpb.Frame](n.cfg.SendQueue),
		replies: make(chan *chatpb.Frame, maxReplies),
		kick:    make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
		pings:   make(map[uint64]chan struct{}),
		conns:   make(map[*linkConn]struct{}),
	}
	p.touch()
	return p
}

// unreachableFor returns how long the link has not been established (0
// when it is).
func (p *peerConn) unreachableFor() time.Duration {
	if p.connected.Load() {
		return 0
	}
	return time.Since(time.Unix(0, p.downSince.Load()))
}

// touch records activity on the link (a frame queued or received).
func (p *peerConn) touch() { p.lastActive.Store(time.Now().UnixNano()) }

// idleFor returns how long the link has seen no frame either way.
func (p *peerConn) idleFor() time.Duration {
	return time.Since(time.Unix(0, p.lastActive.Load()))
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

// stop ends the link, closes its connections (a Send blocked on a peer
// that stopped reading returns at once) and waits for its writer. The
// readers of dialed connections end with them (the node's WaitGroup owns
// them); an accepted connection's reader returns to the transport.
func (p *peerConn) stop() {
	// The queue closes before the context ends: a frame enqueue pushes
	// after that is refused, and sendFrame tries a new link, instead of
	// being accepted onto a queue no writer will read.
	p.queue.close()
	p.cancel()
	p.closeAll()
	<-p.done
}

// wake nudges the writer without blocking.
func (p *peerConn) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// enqueue queues f without blocking; it reports false when the queue is
// full (counting a drop) or the link is stopping (its queue closed by
// dropIdleLink or stop, or its context ended).
func (p *peerConn) enqueue(f *chatpb.Frame) bool {
	if p.ctx.Err() != nil {
		return false
	}
	if h := p.n.cfg.beforeEnqueue; h != nil {
		h(p.id, f)
	}
	switch p.queue.push(f) {
	case pushFull:
		p.n.stats.queueDrops.Add(1)
		return false
	case pushClosed:
		return false
	}
	p.touch()
	return true
}

// reply hands a frame a reader owes the peer (a Pong) to the writer,
// without blocking.
func (p *peerConn) reply(f *chatpb.Frame) {
	select {
	case p.replies <- f:
	default:
		p.n.stats.queueDrops.Add(1)
	}
}

// current returns the connection frames go out on, or nil.
func (p *peerConn) current() *linkConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// ownSent reports whether our own encryption key (key) or room set is
// queued on the link or was written on a connection whose other end is
// the peer we talk to now: the current one, or one that the rule retired
// while both ends dialed at once (read by the peer until it closes: a
// frame on it and the answer on the other cross). A connection that a
// newer one in the same direction replaced does not count: its dialer
// dials only when it lost it, and may have restarted since. With no
// connection, nothing counts: the next one starts afresh. Safe for
// concurrent use.
func (p *peerConn) ownSent(key bool) bool {
	if (key && p.keyQueued.Load()) || (!key && p.roomsQueued.Load()) {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return false
	}
	for lc := range p.conns {
		if lc != p.cur && lc.dialed == p.cur.dialed {
			continue
		}
		if (key && lc.keyOut.Load()) || (!key && lc.roomsOut.Load()) {
			return true
		}
	}
	return false
}

// wrote records on lc that f, just written on it (or lost in the attempt:
// err), carried our own key or room set (ownSent).
func (p *peerConn) wrote(lc *linkConn, f *chatpb.Frame, err error) {
	switch m := f.GetMsg().(type) {
	case *chatpb.Frame_EncKeys:
		for _, k := range m.EncKeys.GetKeys() {
			if k.GetPeerId() == p.n.id.ID {
				// The mark first: ownSent must not see neither.
				if err == nil {
					lc.keyOut.Store(true)
				}
				p.keyQueued.Store(false)
				return
			}
		}
	case *chatpb.Frame_RoomSet:
		if m.RoomSet.GetOrigin() == p.n.id.ID {
			if err == nil {
				lc.roomsOut.Store(true)
			}
			p.roomsQueued.Store(false)
		}
	}
}

// dialedWins reports which connection the rule keeps when both ends
// dialed: the one dialed by the smaller peer ID.
func (p *peerConn) dialedWins() bool { return p.n.id.ID < p.id }

// install adds an established connection to the link and applies the
// rule: it becomes the current one when there is none, when it runs in
// the same direction as the current one (the newer wins), or when the
// rule prefers its direction; the connection that loses is retired. It
// returns nil when the link has stopped (c is closed then). Safe for
// concurrent use (the writer installs what it dials, the transport's
// goroutine what it accepts).
func (p *peerConn) install(c transport.Conn, dialed bool) *linkConn {
	lc := &linkConn{c: c, dialed: dialed, gone: make(chan struct{})}
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		c.Close()
		return nil
	}
	p.conns[lc] = struct{}{}
	old := p.cur
	if old == nil || old.dialed == dialed || dialed == p.dialedWins() {
		p.cur = lc
		if old != nil {
			p.retireLocked(old)
		}
	} else {
		p.retireLocked(lc)
	}
	p.mu.Unlock()
	p.touch()
	p.wake()
	return lc
}

// retireLocked stops writing on lc (it is not current) and closes it
// after linkRetireGrace; its reader keeps processing until then. Caller
// holds p.mu.
func (p *peerConn) retireLocked(lc *linkConn) {
	p.n.stats.linkSwaps.Add(1)
	if lc.retire == nil {
		lc.retire = time.AfterFunc(linkRetireGrace, func() { lc.c.Close() })
	}
}

// drop closes lc after a write error; the link has no connection until
// the next one is installed.
func (p *peerConn) drop(lc *linkConn) {
	p.mu.Lock()
	if p.cur == lc {
		p.cur = nil
	}
	p.mu.Unlock()
	lc.c.Close()
}

// readerDone is called by lc's reader when it returns.
func (p *peerConn) readerDone(lc *linkConn) {
	p.mu.Lock()
	delete(p.conns, lc)
	if p.cur == lc {
		p.cur = nil
	}
	if lc.retire != nil {
		lc.retire.Stop()
	}
	p.mu.Unlock()
	lc.c.Close() // ours when dialed; the transport closes an accepted one again, harmlessly
	close(lc.gone)
	p.wake()
}

// closeAll stops installing and closes every connection of the link. The
// writer calls it as it ends.
func (p *peerConn) closeAll() {
	p.mu.Lock()
	p.stopped = true
	p.cur = nil
	conns := make([]*linkConn, 0, len(p.conns))
	for lc := range p.conns {
		conns = append(conns, lc)
		if lc.retire != nil {
			lc.retire.Stop()
		}
	}
	p.mu.Unlock()
	for _, lc := range conns {
		lc.c.Close()
	}
}

// setUp and setDown are the link's state changes: the connected flag, then
// the node's reaction (linkUp, linkDown in links.go). Only the writer
// calls them.
func (p *peerConn) setUp() {
	if !p.connected.Swap(true) {
		p.n.linkUp(p.id)
	}
}

func (p *peerConn) setDown() {
	p.downSince.Store(time.Now().UnixNano())
	if p.connected.Swap(false) {
		p.n.linkDown(p.id)
	}
}

// run is the link's writer: it dials when the link wants a connection and
// has none, and writes on the current connection. When the link falls
// idle without being kept it removes itself from the node (links.go).
func (p *peerConn) run() {
	defer func() {
		p.closeAll()
		p.setDown()
	}()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for p.ctx.Err() == nil {
		lc := p.current()
		if lc != nil {
			err := p.session(lc)
			if p.ctx.Err() != nil {
				return
			}
			if p.current() == nil {
				p.setDown()
				if err != nil {
					p.n.logger.Printf("chat link to %s (%s): %v", p.id, p.addr, err)
				}
			}
			backoff = minBackoff
			continue
		}
		if !p.wanted() {
			if p.n.dropIdleLink(p) {
				return
			}
			continue // used again meanwhile
		}
		if !p.isKept() && p.queue.len() == 0 {
			// Used lately but nothing to send: a connection that closed
			// (typically the peer's end idled out a moment before ours)
			// is not dialed again for nothing. A new connection counts as
			// activity, so the pair's ends took turns: a dial every idle
			// timeout, a TLS handshake each, for as long as the link was
			// there; at 100 peers the links of the start's full mesh
			// dialed about 2,000 times in 10 s, more than half of the
			// bytes on the wire per delivery. A frame queued, an accepted
			// connection or kept wakes the writer; else the link idles out.
			if !p.wait(p.n.linkIdleTimeout()-p.idleFor(), true) {
				return
			}
			continue
		}
		p.n.stats.linkDials.Add(1)
		conn, err := p.n.tr.Dial(p.ctx, p.addr, transport.Peer{ID: p.id, Key: p.pub})
		if p.ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err != nil {
			// Jitter: when a listener refuses handshakes over its
			// bound, or a peer starts and many links dial it at once,
			// retries in lockstep would meet the same bound again; a
			// random half to one and a half of the backoff spreads them.
			wait := backoff/2 + rand.N(backoff+1)
			p.n.logger.Printf("chat link to %s (%s): %v; retrying in %v", p.id, p.addr, err, wait)
			// An accepted connection installed meanwhile wakes us early;
			// a frame queued does not (it would dial again at once).
			if !p.wait(wait, false) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if lc := p.install(conn, true); lc != nil {
			p.n.wg.Add(1) // the writer's own count is held: no race with Shutdown's Wait
			go func() {
				defer p.n.wg.Done()
				p.n.serveLink(p, lc)
			}()
		}
	}
}

// wait waits for a kick or d, and also for a frame queued when frames is
// set; false when the link is stopping. A ready token it takes is put
// back for the session.
func (p *peerConn) wait(d time.Duration, frames bool) bool {
	var ready chan struct{} // nil: never ready
	if frames {
		ready = p.queue.ready
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-p.ctx.Done():
		return false
	case <-ready:
		p.queue.signal()
	case <-p.kick:
	case <-t.C:
	}
	return true
}

// wanted reports whether the link should have a connection: it is kept,
// a frame waits, or it was used within the idle timeout.
func (p *peerConn) wanted() bool {
	return p.isKept() || p.queue.len() > 0 || p.idleFor() < p.n.linkIdleTimeout()
}

// isKept reports whether membership (or the overlay) keeps the link.
func (p *peerConn) isKept() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kept
}

// keptState returns kept and keptGen.
func (p *peerConn) keptState() (bool, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kept, p.keptGen
}

// sent counts f, which the link's writer wrote in an encoding of size
// bytes (what Conn.Send reported). Anti-entropy's bytes are counted here,
// from that size, not where its frames are queued: a frame queued and
// never written (its link dropped) costs nothing, and none is encoded a
// second time to be sized (proto.Size walks a status of up to 2,048
// entries).
func (p *peerConn) sent(f *chatpb.Frame, size int) {
	st := &p.n.stats
	st.framesOut.Add(1)
	if st.frameBytes.add(f, size).antiEntropy() {
		st.aeBytes.Add(uint64(size))
	}
	if h := p.n.cfg.frameSent; h != nil {
		h(p.id, f)
	}
}

// session greets the peer on lc when the link is kept (each end does
// when a connection becomes its link's, and again whenever the link
// becomes kept: greetings.go), then sends queued frames until an error,
// until another connection replaces lc, until the link, not kept, has
// been idle for linkIdleTimeout, or until the link stops. A nil error
// means lc was replaced or closed for idleness.
func (p *peerConn) session(lc *linkConn) error {
	send := func(f *chatpb.Frame) error {
		n, err := lc.c.Send(f)
		p.wrote(lc, f, err)
		if err != nil {
			return fmt.Errorf("send: %w", err)
		}
		p.sent(f, n)
		return nil
	}
	fail := func(err error) error {
		p.drop(lc)
		return err
	}
	// What this connection's greetings carried: a link kept again on it
	// gets only what changed since (greetings.go).
	var greeted greeting
	greetIfKept := func() error {
		kept, gen := p.keptState()
		if !kept || gen == greeted.gen {
			return nil
		}
		err := p.n.greet(p, &greeted, send)
		greeted.gen = gen
		if h := p.n.cfg.greetedHook; h != nil && err == nil {
			h(p.id, gen)
		}
		return err
	}
	if err := greetIfKept(); err != nil {
		return fail(err)
	}
	p.setUp()

	// A link that is not kept checks for idleness; a kept one has no timer.
	var idleT *time.Ticker
	var idle <-chan time.Time
	defer func() {
		if idleT != nil {
			idleT.Stop()
		}
	}()
	armIdle := func() {
		if idleT == nil && !p.isKept() {
			idleT = time.NewTicker(max(p.n.linkIdleTimeout()/4, time.Millisecond))
			idle = idleT.C
		}
	}
	armIdle()
	for {
		select {
		case <-p.ctx.Done():
			return nil
		case <-lc.gone:
			return fail(errors.New("connection closed"))
		case <-p.kick:
			if p.current() != lc {
				return nil // replaced: the writer continues on the new one
			}
			// The link may have become kept (a new neighbour's link is
			// often made on demand a moment before).
			if err := greetIfKept(); err != nil {
				return fail(err)
			}
			armIdle()
		case <-idle:
			if !p.isKept() && p.idleFor() >= p.n.linkIdleTimeout() {
				p.drop(lc)
				return nil
			}
		case f := <-p.replies:
			if err := send(f); err != nil {
				return fail(err)
			}
		case <-p.queue.ready:
			f, ok := p.queue.pop()
			if !ok {
				continue
			}
			if err := p.sendBatched(f, send); err != nil {
				return fail(err)
			}
			// One frame (or batch) per turn, as a channel would, so
			// that replies and kicks are not held behind a long
			// queue: come back for the rest.
			p.queue.signal()
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
		g, ok := p.queue.pop()
		if !ok {
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

// gotPong completes the request waiting for nonce, if any.
func (p *peerConn) gotPong(nonce uint64) {
	p.mu.Lock()
	if ch := p.pings[nonce]; ch != nil {
		close(ch)
		delete(p.pings, nonce)
	}
	p.mu.Unlock()
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

// ping measures the round trip of the link.
func (p *peerConn) ping(ctx context.Context) (time.Duration, error) {
	return p.request(ctx, "ping", pingFrame)
}

// bye announces a graceful leave and waits until the peer recorded it.
func (p *peerConn) bye(ctx context.Context) error {
	_, err := p.request(ctx, "bye", byeFrame)
	return err
}

// Ping measures the round trip to a peer (by peer ID, ID prefix, nick or
// display name) over its chat link, including queueing behind messages
// already sent to it; a member with no link gets one. It blocks until the
// pong or ctx's end; give ctx a deadline.
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
	p := n.link(m.ID, true)
	if p == nil {
		return 0, fmt.Errorf("ping %s: no chat connection (state %s)", who, m.State)
	}
	return p.ping(ctx)
}
