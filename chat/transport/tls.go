package transport

// The network transport: one TLS 1.3 connection per stream, both
// ends authenticated by their Ed25519 identity keys, and frames written
// directly on the connection (a 4-byte big-endian length, then the encoded
// chatpb.Frame). chat.proto describes the wire format; this file is its
// implementation.
//
//	dialer   ── TCP, TLS 1.3 (both send a self-signed certificate of their key)
//	dialer   → Hello{protocol, id, target, cluster_proof}
//	listener ← Hello{protocol, id, target, cluster_proof}   (after Handler.Admit)
//	          or Hello{protocol, refused: why}, then close
//
// Why not gRPC, which carried protocols 1 and 2: HTTP/2 puts two goroutine
// hand-offs on every frame (its writer and its reader), keeps idle
// connections open, and buffers the frames of a stream whose dialer has not
// yet authenticated; here the goroutine that reads a connection is the one
// that handles its frames, a connection that does not finish its
// handshake in time is closed, and nothing past the dialer's Hello is read
// before Handler.Admit says yes.
//
// What an outsider meets before authentication is bounded: at most
// MaxHandshakes connections in the handshake at once (MaxHandshakesPerIP
// from one address), each closed at HandshakeTimeout, reading at most a
// Hello's worth of frame; admitted connections count against MaxConns,
// and all of one address's against MaxConnsPerIP. A connection over a
// bound is closed before the TLS handshake, so it costs a descriptor and
// an accept, nothing more.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// TLSConfig configures a TLS transport.
type TLSConfig struct {
	// Local is this peer's identity; its key is the TLS certificate's.
	Local Local
	// Protocol is the chat protocol version this peer speaks; a
	// connection between peers of different versions is refused with an
	// error that names both.
	Protocol uint32
	// PeerID derives a peer ID from a public key.
	PeerID func(ed25519.PublicKey) string
	// ClusterKey, when set, must be held by both ends: each proves it with
	// an HMAC bound to the TLS session (chat.proto, Hello.cluster_proof).
	ClusterKey []byte
	// MaxFrameBytes bounds one encoded frame in both directions.
	MaxFrameBytes int
	// HandshakeTimeout bounds the handshake on both sides, from the TCP
	// connection to the last Hello (Handler.Admit included).
	HandshakeTimeout time.Duration
	// IdleTimeout closes an accepted connection on which no frame arrived
	// for this long (0: 2 minutes). The dialer of a live stream must send
	// something more often (the chat node refreshes its room set every few
	// anti-entropy intervals on the links it keeps).
	IdleTimeout time.Duration
	// WriteTimeout bounds one Send (0: 30 s): a peer that stops reading
	// ends its stream instead of holding the writer for ever.
	WriteTimeout time.Duration
	// MaxHandshakes bounds the inbound connections in the handshake at
	// once (0: 64); MaxHandshakesPerIP the ones from one IP address (0: 8);
	// MaxConns the inbound connections, in the handshake or admitted (0:
	// 1024); MaxConnsPerIP those from one IP address (0: 256: a member
	// keeps one inbound stream, so this is room for 256 peers behind one
	// address, a NAT or one machine running a benchmark). A connection
	// over a bound is closed at once.
	MaxHandshakes      int
	MaxHandshakesPerIP int
	MaxConns           int
	MaxConnsPerIP      int
	// Logger gets refused handshakes; nil discards them.
	Logger *log.Logger
	// OnRefused, when not nil, is called for every refused inbound
	// connection (bounds, failed handshakes and Handler.Admit's refusals),
	// to count them.
	OnRefused func(error)
	// CheckFrame, when not nil, is called with the bytes of every frame
	// received, before they are decoded: a frame it refuses (an error) is
	// dropped and Recv reads the next one. Decoding allocates every entry
	// of a repeated field before the receiver can check how many there
	// are; this is where their number is bounded (the chat node counts
	// every bounded repeated field, chat/framebounds.go).
	CheckFrame func(b []byte) error
}

func (c *TLSConfig) setDefaults() error {
	if c.PeerID == nil || len(c.Local.Key) != ed25519.PrivateKeySize {
		return errors.New("tls transport: local identity and PeerID are required")
	}
	if c.MaxFrameBytes <= 0 || c.HandshakeTimeout <= 0 {
		return errors.New("tls transport: frame limit and handshake timeout must be positive")
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = 64
	}
	if c.MaxHandshakesPerIP <= 0 {
		c.MaxHandshakesPerIP = 8
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1024
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = 256
	}
	if c.Logger == nil {
		c.Logger = log.New(io.Discard, "", 0)
	}
	return nil
}

// Refusal kinds, for OnRefused's counters (errors.Is): ErrBusy is a
// connection closed over a bound, before its TLS handshake (it cost an
// accept); ErrNotAdmitted one whose dialer Handler.Admit refused after the
// handshake (it cost a handshake at both ends). Other refusals are failed
// handshakes or Hellos.
var (
	ErrBusy        = errors.New("busy")
	ErrNotAdmitted = errors.New("not admitted")
)

// maxHelloBytes bounds the Hello frame: the only frame read from a peer
// that is not yet admitted.
const maxHelloBytes = 1024

// frameHeader is the length prefix of every frame.
const frameHeader = 4

// TLS is the network transport. Create it with ListenTLS.
type TLS struct {
	cfg  TLSConfig
	lis  net.Listener
	cert tls.Certificate

	mu         sync.Mutex
	handler    Handler
	closed     bool
	handshakes int
	perIP      map[string]int        // handshakes in flight per remote IP
	connsPerIP map[string]int        // inbound connections per remote IP, any state
	conns      map[net.Conn]struct{} // every inbound connection, in handshake or served
	admitted   int
	dialed     int            // dialed connections not yet closed
	wg         sync.WaitGroup // connection goroutines
	done       chan struct{}
	ctx        context.Context // ends at Close
	cancel     context.CancelFunc
}

var (
	_ Transport   = (*TLS)(nil)
	_ ConnCounter = (*TLS)(nil)
)

// OpenConns returns the connections open now: dialed and not yet closed,
// and accepted past the handshake.
func (t *TLS) OpenConns() ConnCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return ConnCounts{Dialed: t.dialed, Accepted: t.admitted}
}

// ListenTLS listens on addr ("host:port", port 0 for a free one). The
// transport accepts nothing until Serve.
func ListenTLS(addr string, cfg TLSConfig) (*TLS, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	cert, err := selfSigned(cfg.Local)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("chat listener: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &TLS{cfg: cfg, lis: lis, cert: cert, perIP: make(map[string]int), connsPerIP: make(map[string]int),
		conns: make(map[net.Conn]struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel}, nil
}

// selfSigned makes the certificate of local's key. Nobody checks its
// names or dates: a peer accepts it when its key is the one it expects.
func selfSigned(local Local) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(100 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	tmpl.Subject.CommonName = local.ID
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, local.Key.Public(), local.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("identity certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: local.Key}, nil
}

// peerKey returns the Ed25519 key of the peer's certificate.
func peerKey(cs tls.ConnectionState) (ed25519.PublicKey, error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, errors.New("no certificate")
	}
	k, ok := cs.PeerCertificates[0].PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("certificate key is %T, not Ed25519", cs.PeerCertificates[0].PublicKey)
	}
	return k, nil
}

func (t *TLS) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		// The certificates are self-signed: the chain is not verified,
		// the key is (VerifyConnection, on both sides). With no curve
		// preferences Go negotiates the hybrid X25519MLKEM768 exchange.
		InsecureSkipVerify: true,
		ClientAuth:         tls.RequireAnyClientCert,
	}
}

// Addr returns the bound address (host:port).
func (t *TLS) Addr() string { return t.lis.Addr().String() }

// Serve accepts connections until Close.
func (t *TLS) Serve(h Handler) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	if t.handler != nil {
		t.mu.Unlock()
		return errors.New("tls transport: Serve called twice")
	}
	t.handler = h
	t.mu.Unlock()
	var delay time.Duration
	for {
		c, err := t.lis.Accept()
		if err != nil {
			select {
			case <-t.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors or a transient error: back off, as
				// net/http does, instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				t.cfg.Logger.Printf("chat listener: %v; retrying in %v", err, delay)
				select {
				case <-time.After(delay):
				case <-t.done:
					return nil
				}
				continue
			}
			return fmt.Errorf("chat listener: %w", err)
		}
		delay = 0
		if err := t.reserve(c); err != nil {
			c.Close()
			t.refused(c.RemoteAddr(), err)
			continue
		}
		go t.serveConn(c, h)
	}
}

// reserve counts c as a handshake in flight, or refuses it over a bound.
// On success the caller owns one t.wg count.
func (t *TLS) reserve(c net.Conn) error {
	ip := hostOf(c.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrClosed
	case t.handshakes >= t.cfg.MaxHandshakes:
		return fmt.Errorf("%w: %d handshakes in flight", ErrBusy, t.handshakes)
	case t.perIP[ip] >= t.cfg.MaxHandshakesPerIP:
		return fmt.Errorf("%w: %d handshakes in flight from %s", ErrBusy, t.perIP[ip], ip)
	case t.admitted+t.handshakes >= t.cfg.MaxConns:
		return fmt.Errorf("%w: %d connections open", ErrBusy, t.admitted+t.handshakes)
	case t.connsPerIP[ip] >= t.cfg.MaxConnsPerIP:
		return fmt.Errorf("%w: %d connections open from %s", ErrBusy, t.connsPerIP[ip], ip)
	}
	t.handshakes++
	t.perIP[ip]++
	t.connsPerIP[ip]++
	t.conns[c] = struct{}{}
	t.wg.Add(1)
	return nil
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

func (t *TLS) refused(from net.Addr, err error) {
	t.cfg.Logger.Printf("chat connection from %s refused: %v", from, err)
	if t.cfg.OnRefused != nil {
		t.cfg.OnRefused(err)
	}
}

// serveConn runs the listener's side of the handshake and then the
// handler, on the goroutine that owns c.
func (t *TLS) serveConn(raw net.Conn, h Handler) {
	defer t.wg.Done()
	ip := hostOf(raw.RemoteAddr())
	inHandshake := true
	defer func() {
		raw.Close()
		t.mu.Lock()
		delete(t.conns, raw)
		if t.connsPerIP[ip]--; t.connsPerIP[ip] == 0 {
			delete(t.connsPerIP, ip)
		}
		if inHandshake {
			t.handshakes--
			if t.perIP[ip]--; t.perIP[ip] == 0 {
				delete(t.perIP, ip)
			}
		} else {
			t.admitted--
		}
		t.mu.Unlock()
	}()
	c, err := t.accept(raw, h)
	if err != nil {
		t.refused(raw.RemoteAddr(), err)
		return
	}
	t.mu.Lock()
	t.handshakes--
	if t.perIP[ip]--; t.perIP[ip] == 0 {
		delete(t.perIP, ip)
	}
	t.admitted++
	inHandshake = false
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return
	}
	h.ServeConn(c)
}

// accept authenticates the dialer on raw: TLS, its Hello, Handler.Admit,
// our Hello.
func (t *TLS) accept(raw net.Conn, h Handler) (*tlsConn, error) {
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	_ = raw.SetDeadline(deadline)
	// A peer of protocol 2 or older opens plaintext HTTP/2; say so rather
	// than report a malformed TLS record. The reader stays under the TLS
	// connection for its whole life, so it holds only the peek: crypto/tls
	// reads records in 512-byte steps or more, which go past a buffer this
	// small straight into its own (bufio does not copy reads at least as
	// large as its buffer), where a 4 KB one cost every accepted
	// connection 4 KB for nothing.
	br := bufio.NewReaderSize(raw, peekBytes)
	if b, err := br.Peek(len(http2Preface)); err == nil && string(b) == http2Preface {
		return nil, errors.New("the dialer speaks the plaintext chat protocol 2 or older (gRPC): it must be upgraded")
	}
	var dialerKey ed25519.PublicKey
	cfg := t.tlsConfig()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		k, err := peerKey(cs)
		if err != nil {
			return err
		}
		dialerKey = k
		return nil
	}
	tc := tls.Server(bufferedConn{Conn: raw, r: br}, cfg)
	// Close cancels t.ctx: an Admit waiting for gossip returns at once.
	ctx, cancel := context.WithDeadline(t.ctx, deadline)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	c := t.newConn(tc, Peer{Key: dialerKey, ID: t.cfg.PeerID(dialerKey)})
	f, err := c.readFrame(maxHelloBytes)
	if err != nil {
		return nil, fmt.Errorf("read hello: %w", err)
	}
	hello := f.GetHello()
	if err := t.checkHello(hello, c.peer.ID, t.cfg.Local.ID, tc, "dialer"); err != nil {
		t.refuse(c, err)
		return nil, fmt.Errorf("peer %s: %w", c.peer.ID, err)
	}
	// Admit may wait for gossip; it gets three quarters of the handshake
	// time, so that a refusal still reaches the dialer before its own
	// deadline and it learns why.
	actx, acancel := context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)*3/4))
	err = h.Admit(actx, c.peer)
	acancel()
	if err != nil {
		t.refuse(c, err)
		return nil, fmt.Errorf("peer %s: %w: %w", c.peer.ID, ErrNotAdmitted, err)
	}
	if _, err := c.Send(t.hello(tc, c.peer.ID, "listener")); err != nil {
		return nil, fmt.Errorf("send hello: %w", err)
	}
	_ = raw.SetDeadline(time.Time{})
	c.idle = t.cfg.IdleTimeout
	return c, nil
}

// http2Preface opens every HTTP/2 connection (RFC 9113, 3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// peekBytes is the accept reader's buffer: room for http2Preface.
const peekBytes = 64

// refuse tells the dialer why, best effort: the connection closes anyway.
func (t *TLS) refuse(c *tlsConn, why error) {
	_, _ = c.Send(&chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{
		Protocol: t.cfg.Protocol, PeerId: t.cfg.Local.ID, Refused: why.Error(),
	}}})
}

// hello builds this end's Hello on tc.
func (t *TLS) hello(tc *tls.Conn, target, role string) *chatpb.Frame {
	h := &chatpb.Hello{Protocol: t.cfg.Protocol, PeerId: t.cfg.Local.ID, TargetId: target}
	if len(t.cfg.ClusterKey) > 0 {
		h.ClusterProof = clusterProof(t.cfg.ClusterKey, tc, role, t.cfg.Local.ID)
	}
	return &chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: h}}
}

// clusterProof is the HMAC of chat.proto's Hello.cluster_proof. The TLS
// exporter is the same at both ends of one session and differs on every
// other, so the proof cannot be replayed.
func clusterProof(key []byte, tc *tls.Conn, role, id string) []byte {
	cs := tc.ConnectionState()
	ekm, err := cs.ExportKeyingMaterial("hearsay cluster proof", nil, 32)
	if err != nil {
		return nil // not TLS 1.3: no proof, which the other end refuses
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("hearsay/cluster-proof/v1/" + role + "\n" + id + "\n"))
	m.Write(ekm)
	return m.Sum(nil)
}

// checkHello validates the Hello of the peer whose certificate gave id,
// sent in role ("dialer" or "listener") and addressed to target.
func (t *TLS) checkHello(h *chatpb.Hello, id, target string, tc *tls.Conn, role string) error {
	if h == nil {
		return errors.New("expected hello")
	}
	if h.Protocol != t.cfg.Protocol {
		return fmt.Errorf("protocol %d, this peer speaks %d", h.Protocol, t.cfg.Protocol)
	}
	if h.Refused != "" {
		return fmt.Errorf("refused: %s", h.Refused)
	}
	if h.PeerId != id {
		return fmt.Errorf("hello names peer %q, its certificate is %q's", h.PeerId, id)
	}
	if h.TargetId != target {
		return fmt.Errorf("hello for %q, this is %q", h.TargetId, target)
	}
	if len(t.cfg.ClusterKey) > 0 {
		want := clusterProof(t.cfg.ClusterKey, tc, role, id)
		if len(h.ClusterProof) == 0 {
			return errors.New("no cluster key proof: this group needs its cluster key")
		}
		if !hmac.Equal(h.ClusterProof, want) {
			return errors.New("wrong cluster key proof: another cluster key")
		}
	}
	return nil
}

// Dial opens a connection to want at addr and runs the dialer's side of
// the handshake.
func (t *TLS) Dial(ctx context.Context, addr string, want Peer) (Conn, error) {
	select {
	case <-t.done:
		return nil, ErrClosed
	default:
	}
	// A second more than the listener's bound, so that the listener's
	// refusal (after its Admit gave up) arrives before this deadline.
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout+time.Second)
	defer cancel()
	d := net.Dialer{KeepAlive: 15 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	cfg := t.tlsConfig()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		k, err := peerKey(cs)
		if err != nil {
			return err
		}
		if !bytes.Equal(k, want.Key) {
			return fmt.Errorf("%s answers with the key of %s, not %s: stale address?", addr, t.cfg.PeerID(k), want.ID)
		}
		return nil
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			return nil, fmt.Errorf("handshake with %s: it does not speak TLS (a peer of chat protocol 2 or older?): %w", addr, err)
		}
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	c := t.newConn(tc, want)
	if _, err := c.Send(t.hello(tc, want.ID, "dialer")); err != nil {
		c.Close()
		return nil, fmt.Errorf("send hello to %s: %w", addr, err)
	}
	f, err := c.readFrame(maxHelloBytes)
	if err != nil {
		c.Close()
		if errors.Is(err, io.EOF) {
			err = errors.New("closed before its hello")
		}
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	if err := t.checkHello(f.GetHello(), want.ID, t.cfg.Local.ID, tc, "listener"); err != nil {
		c.Close()
		return nil, fmt.Errorf("peer %s at %s: %w", want.ID, addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	t.mu.Lock()
	t.dialed++
	t.mu.Unlock()
	c.onClose = func() {
		t.mu.Lock()
		t.dialed--
		t.mu.Unlock()
	}
	return c, nil
}

// Close stops the listener and every inbound connection, and waits for
// their goroutines.
func (t *TLS) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	t.cancel()
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.lis.Close()
	t.wg.Wait()
	return nil
}

func (t *TLS) newConn(tc *tls.Conn, p Peer) *tlsConn {
	return &tlsConn{tc: tc, r: tc, peer: p, maxFrame: t.cfg.MaxFrameBytes, writeTimeout: t.cfg.WriteTimeout, check: t.cfg.CheckFrame}
}

// Frame buffers. A connection holds no buffer of its own between frames:
// a group of 200 peers in one process holds thousands of connection ends,
// most of them idle most of the time, and the 16 KB read buffer, the
// frame buffer and the write buffer each connection used to keep (up to
// 64 KB for writes, 256 KB for reads, after one large frame) made their
// memory grow with the connections instead of with the frames in flight.
// Reads go straight to the TLS connection, which holds a whole record
// (16 KB at most) already, so a small read costs no system call; frames
// are read into and encoded in buffers shared by every connection of the
// process (bufPool), which proto.Unmarshal copies out of.
var bufPool sync.Pool // of *[]byte

// maxPooledBuf bounds a buffer put back in bufPool: one huge frame does
// not pin its buffer for the process's life.
const maxPooledBuf = 256 << 10

// getBuf returns a buffer of length n from the pool, or a new one when
// the pool has none large enough.
func getBuf(n int) *[]byte {
	if bp, _ := bufPool.Get().(*[]byte); bp != nil {
		if cap(*bp) >= n {
			*bp = (*bp)[:n]
			return bp
		}
		bufPool.Put(bp) // too small for this frame: leave it for a smaller one
	}
	b := make([]byte, n, max(n, minPooledBuf))
	return &b
}

// minPooledBuf is the smallest buffer getBuf makes: most frames are a few
// hundred bytes, and a buffer that fits them all is reused for all.
const minPooledBuf = 4 << 10

// putBuf gives bp back to the pool, unless it is larger than maxPooledBuf.
func putBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		*bp = (*bp)[:0]
		bufPool.Put(bp)
	}
}

// tlsConn is one authenticated connection, dialed or accepted.
type tlsConn struct {
	tc           *tls.Conn
	r            io.Reader // tc, unbuffered (see bufPool)
	peer         Peer
	maxFrame     int
	writeTimeout time.Duration
	idle         time.Duration      // accepted: the read deadline per frame
	check        func([]byte) error // TLSConfig.CheckFrame

	closeOnce sync.Once
	onClose   func() // dialed: uncounts it (OpenConns), once

	wmu sync.Mutex // one Send at a time: frames are not interleaved
}

func (c *tlsConn) Peer() Peer { return c.peer }

// Send writes f as one length-prefixed frame and returns the length of
// its encoding.
func (c *tlsConn) Send(f *chatpb.Frame) (int, error) {
	bp := getBuf(0)
	defer putBuf(bp)
	b, err := proto.MarshalOptions{}.MarshalAppend(append(*bp, 0, 0, 0, 0), f)
	if err != nil {
		return 0, fmt.Errorf("encode frame: %w", err)
	}
	*bp = b // a grown buffer goes back to the pool
	n := len(b) - frameHeader
	if n > c.maxFrame {
		return 0, fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, c.maxFrame)
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.tc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	if _, err := c.tc.Write(b); err != nil {
		return 0, fmt.Errorf("send frame: %w", err)
	}
	return n, nil
}

// Recv reads the next frame, skipping those CheckFrame refuses.
func (c *tlsConn) Recv() (*chatpb.Frame, error) {
	for {
		if c.idle > 0 {
			_ = c.tc.SetReadDeadline(time.Now().Add(c.idle))
		}
		f, err := c.readFrame(c.maxFrame)
		if errors.Is(err, errFrameRefused) {
			continue
		}
		return f, err
	}
}

// errFrameRefused marks a frame CheckFrame refused: Recv goes on, the
// handshake fails.
var errFrameRefused = errors.New("frame refused")

// readFrame reads one frame of at most limit bytes. The length is checked
// before anything is allocated for the body.
func (c *tlsConn) readFrame(limit int) (*chatpb.Frame, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if int64(n) > int64(limit) {
		return nil, fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, limit)
	}
	// Taken once the length is known and checked: a peer that sends a
	// header and stalls holds a buffer of the length it announced, at
	// most limit, per connection (MaxConns bounds those), as before the
	// buffers were pooled; an idle connection holds none.
	bp := getBuf(int(n))
	defer putBuf(bp)
	if _, err := io.ReadFull(c.r, *bp); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if c.check != nil {
		if err := c.check(*bp); err != nil {
			return nil, fmt.Errorf("%w: %w", errFrameRefused, err)
		}
	}
	f := new(chatpb.Frame)
	if err := proto.Unmarshal(*bp, f); err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	return f, nil
}

// Close ends the connection; a blocked Send or Recv returns.
func (c *tlsConn) Close() error {
	c.closeOnce.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	err := c.tc.NetConn().Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// bufferedConn reads through r, which holds bytes already peeked from
// Conn.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
