package transport

// Attacks on the TLS transport, each as an outsider or a stranger would
// try it on loopback.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

const testFrame = 1 << 16

func testPeerID(k ed25519.PublicKey) string {
	s := sha256.Sum256(k)
	return hex.EncodeToString(s[:8])
}

func newTestLocal(t testing.TB) Local {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Local{ID: testPeerID(pub), Key: priv}
}

// recorder is a Handler that admits everyone (or refuses with admitErr),
// keeps the frames it receives and counts refusals.
type recorder struct {
	admitErr error
	mu       sync.Mutex
	frames   []*chatpb.Frame
	got      chan *chatpb.Frame
	refused  chan error
}

func newRecorder() *recorder {
	return &recorder{got: make(chan *chatpb.Frame, 64), refused: make(chan error, 64)}
}

func (r *recorder) Admit(context.Context, Peer) error { return r.admitErr }

func (r *recorder) ServeConn(c Conn) {
	for {
		f, err := c.Recv()
		if err != nil {
			return
		}
		r.got <- f
	}
}

func listen(t testing.TB, tune func(*TLSConfig)) (*TLS, Local, *recorder) {
	t.Helper()
	local := newTestLocal(t)
	rec := newRecorder()
	cfg := TLSConfig{Local: local, Protocol: 3, PeerID: testPeerID, MaxFrameBytes: testFrame,
		HandshakeTimeout: 2 * time.Second, OnRefused: func(err error) {
			select {
			case rec.refused <- err:
			default:
			}
		}}
	if tune != nil {
		tune(&cfg)
	}
	l, err := ListenTLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve(rec) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return l, local, rec
}

func dialer(t testing.TB, tune func(*TLSConfig)) *TLS {
	t.Helper()
	cfg := TLSConfig{Local: newTestLocal(t), Protocol: 3, PeerID: testPeerID, MaxFrameBytes: testFrame, HandshakeTimeout: 2 * time.Second}
	if tune != nil {
		tune(&cfg)
	}
	d, err := ListenTLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitRefused(t *testing.T, rec *recorder, says string) {
	t.Helper()
	select {
	case err := <-rec.refused:
		if !strings.Contains(err.Error(), says) {
			t.Errorf("refused with %q, want it to say %q", err, says)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing refused (want %q)", says)
	}
}

func envelopeFrame(body string) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{Room: "#lobby", Body: []byte(body)}}}
}

// proxy forwards TCP between a dialer and addr, copying what flows
// dialer→listener into seen; inject, when sent to, writes its bytes into
// that direction as if they came from the dialer.
type proxy struct {
	lis    net.Listener
	mu     sync.Mutex
	seen   bytes.Buffer
	inject chan []byte
}

func newProxy(t *testing.T, addr string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis, inject: make(chan []byte, 1)}
	var wg sync.WaitGroup
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", addr)
			if err != nil {
				in.Close()
				return
			}
			wg.Add(3)
			go func() { defer wg.Done(); <-t.Context().Done(); in.Close(); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
			go func() {
				defer wg.Done()
				defer out.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := in.Read(buf)
					p.mu.Lock()
					p.seen.Write(buf[:n])
					p.mu.Unlock()
					select {
					case b := <-p.inject:
						out.Write(b)
					default:
					}
					if _, werr := out.Write(buf[:n]); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *proxy) saw(b []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Contains(p.seen.Bytes(), b)
}

// Nothing a peer sends is readable on the wire, the key exchange is the
// hybrid post-quantum one, and bytes injected into the TCP stream (the
// attack that worked on plaintext HTTP/2) break the stream instead of
// reaching the handler.
func TestTLSEncryptsAndRejectsInjection(t *testing.T) {
	l, lp, rec := listen(t, nil)
	p := newProxy(t, l.Addr())
	d := dialer(t, nil)
	c, err := d.Dial(testCtx(t), p.lis.Addr().String(), lp.Public())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id := c.(*tlsConn).tc.ConnectionState().CurveID; id != tls.X25519MLKEM768 {
		t.Errorf("key exchange %v, want X25519MLKEM768", id)
	}
	if _, err := c.Send(envelopeFrame("SECRET-MARKER-1")); err != nil {
		t.Fatal(err)
	}
	if f := <-rec.got; string(f.GetEnvelope().GetBody()) != "SECRET-MARKER-1" {
		t.Fatalf("got %v", f)
	}
	if p.saw([]byte("SECRET-MARKER")) || p.saw([]byte("#lobby")) {
		t.Fatal("message text is readable on the wire")
	}
	if !p.saw([]byte{0x17, 0x03, 0x03}) { // TLS application data records
		t.Fatal("the proxy saw no TLS records: the test does not test")
	}

	// An outsider's plaintext frame, spliced into the stream.
	forged, _ := proto.Marshal(envelopeFrame("INJECTED"))
	hdr := binary.BigEndian.AppendUint32(nil, uint32(len(forged)))
	p.inject <- append(hdr, forged...)
	if _, err := c.Send(envelopeFrame("after")); err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	go func() { _, err := c.Recv(); ended <- err }()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-rec.got:
			if b := string(f.GetEnvelope().GetBody()); b == "INJECTED" {
				t.Fatal("an injected frame reached the handler")
			} else if b == "after" {
				t.Fatal("the stream survived corruption: injection was not detected")
			}
		case err := <-ended:
			if err == nil {
				t.Fatal("the dialer received a frame")
			}
			return // the listener ended the corrupted stream
		case <-deadline:
			t.Fatal("the corrupted stream did not end")
		}
	}
}

// rawTLS opens a TLS connection to l with key local and returns it with a
// frame reader, for handshakes the transport itself would never send.
func rawTLS(t *testing.T, l *TLS, local Local) (*tls.Conn, *tlsConn) {
	t.Helper()
	cert, err := selfSigned(local)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", l.Addr(), &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return tc, &tlsConn{tc: tc, r: bufio.NewReader(tc), maxFrame: testFrame, writeTimeout: time.Second}
}

// Handshakes that lie are refused, and the dialer is told why.
func TestTLSForgedHandshakes(t *testing.T) {
	l, lp, rec := listen(t, nil)
	stranger, victim := newTestLocal(t), newTestLocal(t)
	cases := []struct {
		name  string
		frame *chatpb.Frame
		says  string
	}{
		{"stolen peer ID", &chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{Protocol: 3, PeerId: victim.ID, TargetId: lp.ID}}}, "its certificate is"},
		{"wrong target", &chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{Protocol: 3, PeerId: stranger.ID, TargetId: "nobody"}}}, "hello for"},
		{"old protocol", &chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{Protocol: 2, PeerId: stranger.ID, TargetId: lp.ID}}}, "protocol 2, this peer speaks 3"},
		{"no hello", envelopeFrame("before hello"), "expected hello"},
		{"protocol 2 auth", &chatpb.Frame{Msg: &chatpb.Frame_Auth{Auth: &chatpb.Auth{Signature: []byte{1}}}}, "expected hello"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := rawTLS(t, l, stranger)
			if _, err := c.Send(tc.frame); err != nil {
				t.Fatal(err)
			}
			f, err := c.readFrame(maxHelloBytes)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if h := f.GetHello(); h == nil || !strings.Contains(h.Refused, tc.says) {
				t.Errorf("answer %v, want a refusal saying %q", f, tc.says)
			}
			waitRefused(t, rec, tc.says)
			if _, err := c.readFrame(testFrame); err == nil {
				t.Error("the connection stayed open after a refusal")
			}
		})
	}
	// A Hello larger than a Hello can be is refused before it is read.
	t.Run("oversized hello", func(t *testing.T) {
		tc, c := rawTLS(t, l, stranger)
		if _, err := tc.Write(binary.BigEndian.AppendUint32(nil, maxHelloBytes+1)); err != nil {
			t.Fatal(err)
		}
		waitRefused(t, rec, "exceeds the limit")
		if _, err := c.readFrame(testFrame); err == nil {
			t.Error("the connection stayed open")
		}
	})
	select {
	case f := <-rec.got:
		t.Fatalf("a refused dialer's frame reached the handler: %v", f)
	default:
	}
}

// The dialer checks the listener's key: an address that answers with
// another identity is refused.
func TestTLSDialerChecksListenerKey(t *testing.T) {
	l, _, _ := listen(t, nil)
	d := dialer(t, nil)
	other := newTestLocal(t)
	_, err := d.Dial(testCtx(t), l.Addr(), other.Public())
	if err == nil || !strings.Contains(err.Error(), "stale address") {
		t.Fatalf("dial of the wrong identity: %v", err)
	}
}

// With a cluster key both ends prove it on this session; a peer without it
// or with another is refused, and the dialer's error says so.
func TestTLSClusterKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	l, lp, rec := listen(t, func(c *TLSConfig) { c.ClusterKey = key })
	ok := dialer(t, func(c *TLSConfig) { c.ClusterKey = key })
	c, err := ok.Dial(testCtx(t), l.Addr(), lp.Public())
	if err != nil {
		t.Fatalf("same key: %v", err)
	}
	c.Close()
	for _, tc := range []struct {
		name string
		key  []byte
		says string
	}{
		{"no key", nil, "no cluster key proof"},
		{"other key", bytes.Repeat([]byte{8}, 32), "wrong cluster key proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dialer(t, func(c *TLSConfig) { c.ClusterKey = tc.key })
			_, err := d.Dial(testCtx(t), l.Addr(), lp.Public())
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("dial: %v, want %q", err, tc.says)
			}
			waitRefused(t, rec, tc.says)
		})
	}
	// A listener with a key is refused by a dialer without one too.
	l2, lp2, _ := listen(t, nil)
	_, err = ok.Dial(testCtx(t), l2.Addr(), lp2.Public())
	if err == nil || !strings.Contains(err.Error(), "cluster key") {
		t.Fatalf("keyed dialer to keyless listener: %v", err)
	}
}

// A flood of connections that never finish a handshake holds at most
// MaxHandshakes slots; the rest are closed at once, the held ones at the
// handshake timeout, and a real peer gets through afterwards.
func TestTLSHandshakeFlood(t *testing.T) {
	l, lp, rec := listen(t, func(c *TLSConfig) {
		c.MaxHandshakes, c.MaxHandshakesPerIP = 4, 4
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	var conns []net.Conn
	for range 20 {
		c, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// 16 are refused for the bound, 4 at the handshake timeout.
	for range 16 {
		waitRefused(t, rec, "handshakes in flight")
	}
	l.mu.Lock()
	held := l.handshakes
	l.mu.Unlock()
	if held > 4 {
		t.Fatalf("%d handshakes held, bound 4", held)
	}
	for range 4 {
		waitRefused(t, rec, "tls handshake")
	}
	closed := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			closed++
		}
	}
	if closed != len(conns) {
		t.Fatalf("%d of %d idle connections closed", closed, len(conns))
	}
	d := dialer(t, nil)
	c, err := d.Dial(testCtx(t), l.Addr(), lp.Public())
	if err != nil {
		t.Fatalf("a real peer after the flood: %v", err)
	}
	c.Close()
}

// An admitted connection that stays silent past the idle timeout is
// closed by the listener.
func TestTLSIdleTimeout(t *testing.T) {
	l, lp, _ := listen(t, func(c *TLSConfig) { c.IdleTimeout = 200 * time.Millisecond })
	d := dialer(t, nil)
	c, err := d.Dial(testCtx(t), l.Addr(), lp.Public())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() { _, err := c.Recv(); errc <- err }()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Recv returned a frame")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an idle connection was not closed")
	}
}

// A frame whose length exceeds the limit ends the stream before its body
// is read.
func TestTLSOversizedLengthPrefix(t *testing.T) {
	l, lp, _ := listen(t, nil)
	d := dialer(t, nil)
	c, err := d.Dial(testCtx(t), l.Addr(), lp.Public())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.(*tlsConn).tc.Write([]byte{0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); err == nil {
		t.Fatal("the stream survived a 4 GiB length prefix")
	}
	if _, err := c.Send(&chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{Body: make([]byte, testFrame)}}}); err == nil ||
		!strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("sending an oversized frame: %v", err)
	}
}

// Peers of protocol 2 (plaintext gRPC) and protocol 3 meet with an error
// that says what is wrong, on both sides.
func TestTLSMeetsPlaintextPeer(t *testing.T) {
	l, _, rec := listen(t, nil)
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(http2Preface))
	waitRefused(t, rec, "plaintext chat protocol 2 or older")

	// A plaintext HTTP/2 server answering our ClientHello.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		s, err := plain.Accept()
		if err != nil {
			return
		}
		defer s.Close()
		s.Write([]byte{0, 0, 18, 4, 0, 0, 0, 0, 0}) // an HTTP/2 SETTINGS frame header
		io.Copy(io.Discard, s)
	}()
	d := dialer(t, nil)
	_, err = d.Dial(testCtx(t), plain.Addr().String(), newTestLocal(t).Public())
	if err == nil || !strings.Contains(err.Error(), "does not speak TLS") {
		t.Fatalf("dial of a plaintext peer: %v", err)
	}
}

// Close ends accepted streams, handshakes in flight and an Admit that is
// waiting, without waiting for the handshake timeout.
func TestTLSCloseDuringAdmit(t *testing.T) {
	local := newTestLocal(t)
	admitting := make(chan struct{})
	h := admitFunc(func(ctx context.Context, p Peer) error {
		close(admitting)
		<-ctx.Done()
		return ctx.Err()
	})
	l, err := ListenTLS("127.0.0.1:0", TLSConfig{Local: local, Protocol: 3, PeerID: testPeerID, MaxFrameBytes: testFrame, HandshakeTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve(h) }()
	d := dialer(t, nil)
	dialed := make(chan error, 1)
	go func() { _, err := d.Dial(context.Background(), l.Addr(), local.Public()); dialed <- err }()
	<-admitting
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a handshake's timeout")
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := <-dialed; err == nil {
		t.Fatal("dial succeeded against a closed transport")
	}
}

type admitFunc func(context.Context, Peer) error

func (f admitFunc) Admit(ctx context.Context, p Peer) error { return f(ctx, p) }
func (admitFunc) ServeConn(c Conn)                          {}

// The frame decoder takes anything and either returns a frame within the
// limit or an error.
func FuzzReadFrame(f *testing.F) {
	good, _ := proto.Marshal(envelopeFrame("hi"))
	f.Add(append(binary.BigEndian.AppendUint32(nil, uint32(len(good))), good...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 3, 1, 2})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &tlsConn{r: bufio.NewReader(bytes.NewReader(data)), maxFrame: 1024}
		for range 4 {
			fr, err := c.readFrame(c.maxFrame)
			if err != nil {
				if fr != nil {
					t.Fatal("frame with an error")
				}
				return
			}
			if proto.Size(fr) > 1024 {
				// A frame decodes to at most its encoded size plus
				// unknown fields it carried: still bounded by the input.
				b, _ := proto.Marshal(fr)
				if len(b) > len(data) {
					t.Fatalf("decoded frame of %d bytes from %d", len(b), len(data))
				}
			}
		}
	})
}
