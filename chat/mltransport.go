package chat

// The guard in front of memberlist's TCP port. memberlist reads an inbound
// stream before it can authenticate it: an encrypted stream announces its
// length (up to 20 MB) and memberlist buffers the whole ciphertext before
// AES-GCM tells it whether the sender holds the cluster key, on a
// goroutine per connection with no bound on their number. Forty
// connections announcing 20 MB took a peer to 1.2 GB in a second.
//
// streamGuard wraps memberlist's transport (memberlist.Config.Transport)
// and hands memberlist guarded connections instead of raw ones:
//
//   - at most maxStreams inbound streams are open at once, and
//     maxStreamsPerIP from one address; a connection over a bound is
//     closed before memberlist sees it;
//   - a stream delivers at most maxStreamBytes, and all open streams
//     together at most maxBufferedBytes (what memberlist may be holding
//     in memory for streams it has not yet authenticated);
//   - the stream's header is read as it passes: a stream whose encrypted
//     payload announces more than maxStreamBytes fails at its first
//     bytes, before memberlist buffers anything (a plaintext stream in a
//     group with a cluster key memberlist refuses itself after its first
//     byte, with an answer that tells an honest peer to use the key); in
//     an open group, a plaintext push/pull or user message whose header
//     announces more user state than maxStreamBytes or more than
//     maxPushPullNodes nodes fails before memberlist allocates for it;
//   - a stream's deadline is never later than streamTimeout after it was
//     accepted, whatever memberlist sets;
//   - the answers to streams this peer opens (joins, push/pulls) are read
//     under the same byte and header rules: a contact is whatever address
//     a bootstrap service or gossip named.
//
// What upstream still does past the guard is in docs/SECURITY.md.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// memberlist's stream framing (net.go and label.go of memberlist v0.7):
// an optional label header [244, len, label...], then a message type; an
// encrypted message is [10, uint32 big-endian length, ciphertext]; a
// plaintext push/pull [6, msgpack pushPullHeader, ...] and a user message
// [8, msgpack userMsgHeader, ...].
const (
	mlHasLabelMsg  = 244
	mlEncryptMsg   = 10
	mlPushPullMsg  = 6
	mlUserMsg      = 8
	maxPlainHeader = 1024 // memberlist's own headers take about 40 bytes
	// maxPushPullNodes bounds the node entries a plaintext push/pull may
	// announce: memberlist allocates them all on the header's word (up to
	// 1,048,576), before reading one.
	maxPushPullNodes = 16384
)

// mlPushPullHeader and mlUserMsgHeader are memberlist's pushPullHeader and
// userMsgHeader, decoded with the same msgpack codec memberlist uses, so
// the guard reads exactly what memberlist will.
type mlPushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type mlUserMsgHeader struct {
	UserMsgLen int
}

// streamLimits bounds memberlist's inbound streams.
type streamLimits struct {
	maxStreams       int           // open inbound streams
	maxStreamsPerIP  int           // open inbound streams from one IP address
	maxStreamBytes   int64         // bytes delivered per stream
	maxBufferedBytes int64         // bytes delivered to all open streams
	streamTimeout    time.Duration // lifetime of a stream
}

// defaultStreamLimits returns the limits for a memberlist configuration.
// A legitimate push/pull carries the node states (under 600 bytes each
// with a full node meta) and the kv state (maxKVState, about 530 KB):
// about 1.1 MB for a group of a thousand, well under maxStreamBytes.
func defaultStreamLimits(mlc *memberlist.Config) streamLimits {
	return streamLimits{
		maxStreams:       128, // memberlist serves at most 128 push/pulls at once anyway
		maxStreamsPerIP:  32,
		maxStreamBytes:   4 << 20,
		maxBufferedBytes: 16 << 20,
		streamTimeout:    max(mlc.TCPTimeout, time.Second),
	}
}

// streamGuard is a memberlist.NodeAwareTransport that guards the inbound
// streams of the transport it wraps. Safe for concurrent use.
type streamGuard struct {
	memberlist.NodeAwareTransport
	lim     streamLimits
	streams chan net.Conn
	logger  interface{ Printf(string, ...any) }
	onDrop  func() // counts a refused stream; never nil

	buffered atomic.Int64 // bytes delivered to open streams

	mu    sync.Mutex
	open  int
	perIP map[string]int

	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*streamGuard)(nil)

// newStreamGuard wraps inner and starts the goroutine that screens its
// streams; Shutdown stops it. Packets pass as inner hands them over: it
// must hand each in a buffer of its own size (our transport does,
// packetOf), as memberlist holds a packet's buffer for each of its
// messages it queues.
func newStreamGuard(inner memberlist.NodeAwareTransport, lim streamLimits, logger interface{ Printf(string, ...any) }, onDrop func()) *streamGuard {
	if onDrop == nil {
		onDrop = func() {}
	}
	g := &streamGuard{NodeAwareTransport: inner, lim: lim, streams: make(chan net.Conn),
		logger: logger, onDrop: onDrop, perIP: make(map[string]int), done: make(chan struct{})}
	g.wg.Add(1)
	go g.pump()
	return g
}

// StreamCh returns the guarded inbound streams.
func (g *streamGuard) StreamCh() <-chan net.Conn { return g.streams }

// DialAddressTimeout opens a stream this peer starts (a join, a push/pull,
// a TCP ping). Its answer is read under the same rules, bytes and header,
// as an inbound stream: the contact may be any address a bootstrap
// service or gossip named. It does not count against the stream bounds,
// which memberlist's own schedule keeps small.
func (g *streamGuard) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := g.NodeAwareTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &guardedConn{Conn: c, g: g, outbound: true}, nil
}

// DialTimeout is DialAddressTimeout for a bare address.
func (g *streamGuard) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return g.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// Shutdown stops the wrapped transport first and the pump after: the
// wrapped transport's accept loop blocks until its stream is taken, and
// memberlist keeps reading StreamCh until Shutdown returns.
func (g *streamGuard) Shutdown() error {
	err := g.NodeAwareTransport.Shutdown()
	g.once.Do(func() { close(g.done) })
	g.wg.Wait()
	return err
}

// pump admits or closes each inbound stream. It never reads from a
// connection: that happens on memberlist's goroutine for the stream.
func (g *streamGuard) pump() {
	defer g.wg.Done()
	in := g.NodeAwareTransport.StreamCh()
	for {
		select {
		case c := <-in:
			gc, err := g.admit(c)
			if err != nil {
				g.logger.Printf("memberlist stream from %s refused: %v", c.RemoteAddr(), err)
				g.onDrop()
				c.Close()
				continue
			}
			select {
			case g.streams <- gc:
			case <-g.done:
				gc.Close()
				return
			}
		case <-g.done:
			return
		}
	}
}

// admit counts c against the bounds and wraps it.
func (g *streamGuard) admit(c net.Conn) (*guardedConn, error) {
	ip := hostOf(c.RemoteAddr())
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.open >= g.lim.maxStreams:
		return nil, fmt.Errorf("%d streams open", g.open)
	case g.perIP[ip] >= g.lim.maxStreamsPerIP:
		return nil, fmt.Errorf("%d streams open from %s", g.perIP[ip], ip)
	}
	g.open++
	g.perIP[ip]++
	hard := time.Now().Add(g.lim.streamTimeout)
	_ = c.SetDeadline(hard)
	return &guardedConn{Conn: c, g: g, ip: ip, hard: hard}, nil
}

func (g *streamGuard) release(c *guardedConn) {
	g.buffered.Add(-c.delivered.Load())
	if c.outbound {
		return
	}
	ip := c.ip
	g.mu.Lock()
	g.open--
	if g.perIP[ip]--; g.perIP[ip] == 0 {
		delete(g.perIP, ip)
	}
	g.mu.Unlock()
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// maxGuardedRead bounds one Read, so that what it reserves of the shared
// budget is small.
const maxGuardedRead = 64 << 10

// guardedConn is one inbound stream under the guard. memberlist reads it
// on one goroutine; Close may come from any.
type guardedConn struct {
	net.Conn
	g        *streamGuard
	ip       string
	hard     time.Time // the deadline no Set*Deadline may pass (inbound)
	outbound bool      // dialed by this peer: not counted in the stream bounds

	delivered atomic.Int64 // bytes returned by Read
	hdr       header
	failed    error

	closeOnce sync.Once
}

// header follows memberlist's stream header as its bytes pass.
type header struct {
	state int // 0 first byte, 1 label length, 2 label, 3 type, 4 length, 5 done, 6 plaintext header
	skip  int // label bytes left
	n     int
	buf   [4]byte
	typ   byte   // the plaintext message type
	plain []byte // the plaintext header so far
}

// errStreamRefused marks a stream the guard ended.
var errStreamRefused = errors.New("memberlist stream refused")

// Read delivers the stream's bytes within the bounds.
func (c *guardedConn) Read(p []byte) (int, error) {
	if c.failed != nil {
		return 0, c.failed
	}
	room := c.g.lim.maxStreamBytes - c.delivered.Load()
	if room <= 0 {
		// A stream of exactly the limit ends cleanly; one byte more
		// ends it.
		var one [1]byte
		if n, err := c.Conn.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, c.fail(fmt.Errorf("stream exceeds %d bytes", c.g.lim.maxStreamBytes))
	}
	p = p[:min(int64(len(p)), room, maxGuardedRead)]
	if len(p) == 0 {
		return 0, nil
	}
	// Reserve what this read may deliver; give back what it did not.
	want := int64(len(p))
	if c.g.buffered.Add(want) > c.g.lim.maxBufferedBytes {
		c.g.buffered.Add(-want)
		return 0, c.fail(fmt.Errorf("unauthenticated streams hold %d bytes", c.g.lim.maxBufferedBytes))
	}
	n, err := c.Conn.Read(p)
	c.g.buffered.Add(int64(n) - want)
	c.delivered.Add(int64(n))
	if herr := c.inspect(p[:n]); herr != nil {
		return 0, c.fail(herr)
	}
	return n, err
}

// inspect advances the header state over b and refuses a stream whose
// header announces more than the stream may carry.
func (c *guardedConn) inspect(b []byte) error {
	h := &c.hdr
	for len(b) > 0 && h.state != 5 {
		switch h.state {
		case 0:
			if b[0] == mlHasLabelMsg {
				h.state = 1
				b = b[1:]
				continue
			}
			h.state = 3
		case 1:
			h.skip, h.state = int(b[0]), 2
			b = b[1:]
		case 2:
			k := min(h.skip, len(b))
			h.skip -= k
			b = b[k:]
			if h.skip == 0 {
				h.state = 3
			}
		case 3:
			switch b[0] {
			case mlEncryptMsg:
				h.state = 4
			case mlPushPullMsg, mlUserMsg:
				h.state, h.typ = 6, b[0]
			default:
				h.state = 5 // a ping, or memberlist refuses it
			}
			b = b[1:]
		case 4:
			k := copy(h.buf[h.n:], b)
			h.n += k
			b = b[k:]
			if h.n == len(h.buf) {
				h.state = 5
				// The 5 bytes of type and length are part of the stream.
				if n := int64(binary.BigEndian.Uint32(h.buf[:])); n > c.g.lim.maxStreamBytes-5 {
					return fmt.Errorf("stream announces %d encrypted bytes, limit %d", n, c.g.lim.maxStreamBytes-5)
				}
			}
		case 6:
			k := min(len(b), maxPlainHeader-len(h.plain))
			h.plain = append(h.plain, b[:k]...)
			b = b[k:]
			done, err := c.checkPlain(h.typ, h.plain)
			if err != nil {
				return err
			}
			if done {
				h.state, h.plain = 5, nil
			} else if len(h.plain) == maxPlainHeader {
				return fmt.Errorf("no memberlist header in the first %d bytes", maxPlainHeader)
			}
		}
	}
	return nil
}

// checkPlain decodes the plaintext header of type typ from the bytes so
// far: done once it decodes, an error if what it announces is over the
// bounds.
func (c *guardedConn) checkPlain(typ byte, b []byte) (done bool, err error) {
	dec := codec.NewDecoderBytes(b, &codec.MsgpackHandle{})
	limit := c.g.lim.maxStreamBytes
	if typ == mlUserMsg {
		var h mlUserMsgHeader
		if dec.Decode(&h) != nil {
			return false, nil // incomplete (or invalid: memberlist refuses it)
		}
		if h.UserMsgLen < 0 || int64(h.UserMsgLen) > limit {
			return true, fmt.Errorf("user message announces %d bytes, limit %d", h.UserMsgLen, limit)
		}
		return true, nil
	}
	var h mlPushPullHeader
	if dec.Decode(&h) != nil {
		return false, nil
	}
	if h.Nodes < 0 || h.Nodes > maxPushPullNodes {
		return true, fmt.Errorf("push/pull announces %d nodes, limit %d", h.Nodes, maxPushPullNodes)
	}
	if h.UserStateLen < 0 || int64(h.UserStateLen) > limit {
		return true, fmt.Errorf("push/pull announces %d bytes of user state, limit %d", h.UserStateLen, limit)
	}
	return true, nil
}

// fail ends the stream with err.
func (c *guardedConn) fail(err error) error {
	c.failed = fmt.Errorf("%w: %w", errStreamRefused, err)
	c.g.logger.Printf("memberlist stream from %s: %v", c.RemoteAddr(), err)
	c.g.onDrop()
	c.Conn.Close()
	return c.failed
}

// Close closes the connection and frees its place under the bounds.
func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	// memberlist closes a stream on the goroutine that reads it, after
	// its last Read: what it delivered is final here.
	c.closeOnce.Do(func() { c.g.release(c) })
	return err
}

func (c *guardedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *guardedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *guardedConn) clamp(t time.Time) time.Time {
	if c.hard.IsZero() { // outbound: memberlist's own deadlines
		return t
	}
	if t.IsZero() || t.After(c.hard) {
		return c.hard
	}
	return t
}

// memberlistTransport binds memberlist's network transport itself (as
// memberlist would), wraps it for fault injection when enabled, and puts
// the stream guard in front; it sets mlc.Transport and the ports.
func (n *Node) memberlistTransport(mlc *memberlist.Config, host string, port int, advHost string) (memberlist.NodeAwareTransport, error) {
	var nt *mlNetTransport
	var err error
	for try := 0; try < 10; try++ { // a free port for UDP may be taken for TCP: retry, as memberlist does
		nt, err = newMLNetTransport(host, port, mlc.Logger)
		if err == nil || port != 0 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("start memberlist transport on %s: %w", n.cfg.BindAddr, err)
	}
	mlc.BindPort = nt.Port()
	mlc.AdvertisePort = mlc.BindPort
	mlc.AdvertiseAddr = advHost
	var inner memberlist.NodeAwareTransport = nt
	if n.faults != nil {
		ft, err := newFaultTransport(n, nt)
		if err != nil {
			_ = nt.Shutdown()
			return nil, err
		}
		inner = ft
	}
	g := newStreamGuard(inner, defaultStreamLimits(mlc), mlc.Logger, func() { n.stats.mlRefused.Add(1) })
	mlc.Transport = g
	return g, nil
}
