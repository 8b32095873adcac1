package chat_test

// The group boundary between real peers (findings 1 and 2 of the security
// review): what an outsider on the path sees and can do, and what a
// process without the cluster key gets from a peer's ports.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// tap is a TCP proxy on 127.0.0.1 that records every byte in both
// directions (a packet capture of the streams it carries) and can splice
// bytes into the dialer→listener direction of its live connections.
type tap struct {
	lis    net.Listener
	target chan string // the listener's address, once known

	mu      sync.Mutex
	up      bytes.Buffer // dialer → listener, every connection
	down    bytes.Buffer // listener → dialer
	live    map[net.Conn]*sync.Mutex
	accepts int
	ended   int
}

func newTap(t *testing.T) *tap {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tap{lis: lis, target: make(chan string, 1), live: make(map[net.Conn]*sync.Mutex)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		lis.Close()
		p.mu.Lock()
		for c := range p.live {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		target := <-p.target
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			wmu := new(sync.Mutex)
			p.mu.Lock()
			p.accepts++
			p.live[out] = wmu
			p.mu.Unlock()
			var pair sync.WaitGroup
			pair.Add(2)
			wg.Add(2)
			copyRec := func(dst, src net.Conn, rec *bytes.Buffer, lock *sync.Mutex) {
				defer wg.Done()
				defer pair.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						p.mu.Lock()
						rec.Write(buf[:n])
						p.mu.Unlock()
						lock.Lock()
						_, werr := dst.Write(buf[:n])
						lock.Unlock()
						if werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				in.Close()
				out.Close()
			}
			go copyRec(out, in, &p.up, wmu)
			go copyRec(in, out, &p.down, new(sync.Mutex))
			wg.Add(1)
			go func() {
				defer wg.Done()
				pair.Wait()
				p.mu.Lock()
				delete(p.live, out)
				p.ended++
				p.mu.Unlock()
			}()
		}
	}()
	return p
}

func (p *tap) addr() string { return p.lis.Addr().String() }

// saw reports whether s crossed the proxy in either direction.
func (p *tap) saw(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Contains(p.up.Bytes(), []byte(s)) || bytes.Contains(p.down.Bytes(), []byte(s))
}

func (p *tap) counts() (accepts, ended, captured int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepts, p.ended, p.up.Len() + p.down.Len()
}

// inject writes b into every live connection towards the listener, as an
// outsider on the path would; it returns how many it reached.
func (p *tap) inject(b []byte) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := 0
	for out, wmu := range p.live {
		wmu.Lock()
		if _, err := out.Write(b); err == nil {
			k++
		}
		wmu.Unlock()
	}
	return k
}

// addrAs is a transport that advertises another address than its own:
// the tap in front of it.
type addrAs struct {
	transport.Transport
	addr string
}

func (a addrAs) Addr() string { return a.addr }

// behindTap makes cfg's node listen with the real TLS transport behind p.
func behindTap(cfg *chat.Config, p *tap) {
	base := *cfg
	cfg.ChatTransport = func(local transport.Local) (transport.Transport, error) {
		tr, err := transport.ListenTLS("127.0.0.1:0", chat.TLSTransportConfigForTest(base, local))
		if err != nil {
			return nil, err
		}
		p.target <- tr.Addr()
		return addrAs{Transport: tr, addr: p.addr()}, nil
	}
}

// serverHelloGroup finds the key exchange group the listener chose in the
// captured listener→dialer bytes: the key_share extension of the TLS 1.3
// ServerHello, which is sent in the clear (RFC 8446, 4.1.3 and 4.2.8).
func serverHelloGroup(b []byte) (tls.CurveID, error) {
	if len(b) < 5 || b[0] != 22 { // handshake record
		return 0, errors.New("the capture does not start with a TLS handshake record")
	}
	rec := b[5:min(len(b), 5+int(binary.BigEndian.Uint16(b[3:5])))]
	if len(rec) < 4 || rec[0] != 2 { // ServerHello
		return 0, errors.New("no ServerHello")
	}
	m := rec[4:]
	skip := func(n int) bool {
		if len(m) < n {
			return false
		}
		m = m[n:]
		return true
	}
	if !skip(2+32) || len(m) < 1 || !skip(1+int(m[0])) || !skip(2+1) || len(m) < 2 {
		return 0, errors.New("truncated ServerHello")
	}
	m = m[2:min(len(m), 2+int(binary.BigEndian.Uint16(m)))]
	for len(m) >= 4 {
		typ, n := binary.BigEndian.Uint16(m), int(binary.BigEndian.Uint16(m[2:]))
		if len(m) < 4+n {
			break
		}
		if typ == 51 && n >= 2 { // key_share
			return tls.CurveID(binary.BigEndian.Uint16(m[4:])), nil
		}
		m = m[4+n:]
	}
	return 0, errors.New("no key_share in the ServerHello")
}

// taps are the taps in front of every peer of a test: since protocol 6 a
// pair of peers shares one connection, dialed by either end, so a capture
// of the pair's traffic needs a tap in front of both listeners.
type taps []*tap

func (ts taps) saw(s string) bool {
	for _, p := range ts {
		if p.saw(s) {
			return true
		}
	}
	return false
}

func (ts taps) counts() (accepts, ended, captured int) {
	for _, p := range ts {
		a, e, c := p.counts()
		accepts, ended, captured = accepts+a, ended+e, captured+c
	}
	return accepts, ended, captured
}

func (ts taps) inject(b []byte) int {
	k := 0
	for _, p := range ts {
		k += p.inject(b)
	}
	return k
}

// Finding 1, as a packet capture: between two real peers of a keyed group
// no message text, nick or room name crosses the wire in the clear, the
// key exchange is X25519MLKEM768, and bytes an outsider splices into the
// TCP stream break the connection instead of delivering an envelope.
func TestChatWireIsEncryptedBetweenPeers(t *testing.T) {
	key := chat.ClusterKeyFromPassphrase("capture")
	ts := taps{newTap(t), newTap(t)}
	acfg := chattest.Config(t, "zebulon")
	acfg.ClusterKey = key
	behindTap(&acfg, ts[0])
	bcfg := chattest.Config(t, "yolanda")
	bcfg.ClusterKey = key
	behindTap(&bcfg, ts[1])
	a, b := chattest.Start(t, acfg), chattest.Start(t, bcfg)
	chattest.Join(t, b, a)
	chattest.WaitConverged(t, a, b)
	ctx := context.Background()
	for _, n := range []*chattest.Peer{a, b} {
		if _, err := n.JoinRoom(ctx, "quuxroom", hearsay.OrderCausal); err != nil {
			t.Fatal(err)
		}
	}
	chattest.WaitRoomMembers(t, "quuxroom", a, b)
	sendTo(t, a, "quuxroom", "MARKER-plover-xyzzy")
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "MARKER-plover-xyzzy" }, "message through the tap")

	// a's frames to b (envelopes, room sets, status) all went through
	// the taps: they carried a TLS stream and nothing readable.
	accepts, _, captured := ts.counts()
	if accepts == 0 || captured < 4096 {
		t.Fatalf("the taps carried %d connections, %d bytes: the test does not test", accepts, captured)
	}
	for _, s := range []string{"MARKER-plover", "zebulon", "yolanda", "quuxroom", "lobby"} {
		if ts.saw(s) {
			t.Errorf("%q is readable on the wire", s)
		}
	}
	for i, p := range ts {
		p.mu.Lock()
		down := p.down.Bytes()
		var group tls.CurveID
		var err error
		if len(down) > 0 {
			group, err = serverHelloGroup(down)
		}
		p.mu.Unlock()
		if len(down) == 0 {
			continue // nobody dialed through this tap
		}
		if err != nil {
			t.Fatalf("tap %d: %v", i, err)
		}
		if group != tls.X25519MLKEM768 {
			t.Errorf("the peers negotiated %v, want X25519MLKEM768", group)
		}
	}

	// An outsider's plaintext frame, spliced into the live stream.
	forged, _ := proto.Marshal(&chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{
		Room: "lobby", Origin: a.ID(), Seq: 99, Kind: chatpb.Kind_KIND_CHAT, Body: []byte("INJECTED")}}})
	_, endedBefore, _ := ts.counts()
	if k := ts.inject(append(binary.BigEndian.AppendUint32(nil, uint32(len(forged))), forged...)); k == 0 {
		t.Fatal("no live stream to inject into")
	}
	chattest.WaitFor(t, timeout, func() bool { _, ended, _ := ts.counts(); return ended > endedBefore },
		"the stream carried on after bytes were injected into it")
	// The pair reconnects through a tap; a's next message arrives, the
	// injected one never did.
	send(t, a, "after the injection")
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "after the injection" }, "message after the injection")
	if evs := b.Rec.Filter(func(ev hearsay.Event) bool { return strings.Contains(ev.Text, "INJECTED") }); len(evs) > 0 {
		t.Fatalf("an injected frame was delivered: %+v", evs[0])
	}
}

// readAllFrames decodes length-prefixed frames from r until it ends.
func readAllFrames(t *testing.T, r io.Reader) ([]*chatpb.Frame, int) {
	t.Helper()
	br := bufio.NewReader(r)
	var frames []*chatpb.Frame
	total := 0
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return frames, total
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > 1<<16 {
			t.Fatalf("a frame of %d bytes to a stranger", n)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return frames, total
		}
		total += 4 + int(n)
		f := new(chatpb.Frame)
		if err := proto.Unmarshal(body, f); err != nil {
			t.Fatalf("undecodable frame: %v", err)
		}
		frames = append(frames, f)
	}
}

// Finding 2: without the cluster key a process gets no byte of room data,
// neither by joining memberlist nor by dialing the chat port with a valid
// identity of its own, nor with the wrong key; it learns only why it was
// refused.
func TestNoClusterKeyNoRoomData(t *testing.T) {
	key := chat.ClusterKeyFromPassphrase("members only")
	peers := chattest.Cluster(t, 2, func(_ int, cfg *chat.Config) { cfg.ClusterKey = key })
	victim := peers[0]
	send(t, peers[1], "HISTORY-gazebo")
	victim.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "HISTORY-gazebo" }, "history")

	// A node without the key cannot join memberlist.
	stranger := chattest.Start(t, chattest.Config(t, "stranger"))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := stranger.Join(ctx, []string{victim.AdvertiseAddr()}); !errors.Is(err, chat.ErrClusterKey) {
		t.Fatalf("join without the key: %v, want ErrClusterKey", err)
	}

	// A TLS connection with a fresh identity and a Hello without a proof:
	// the only frame back is the refusal.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	id := chat.PeerIDFromKey(pub)
	tc := rawTLSTo(t, victim.ChatAddr(), priv)
	hello, _ := proto.Marshal(&chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: &chatpb.Hello{
		Protocol: chat.ProtocolVersion, PeerId: id, TargetId: victim.ID()}}})
	if _, err := tc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(hello))), hello...)); err != nil {
		t.Fatal(err)
	}
	tc.SetReadDeadline(time.Now().Add(timeout))
	frames, total := readAllFrames(t, tc)
	if len(frames) != 1 || !strings.Contains(frames[0].GetHello().GetRefused(), "no cluster key proof") {
		t.Fatalf("a stranger without the key got %d frames (%d bytes): %v", len(frames), total, frames)
	}

	// The same through the transport, without a key and with another.
	for _, k := range [][]byte{nil, chat.ClusterKeyFromPassphrase("guess")} {
		cfg := transport.TLSConfig{Local: transport.Local{ID: id, Key: priv}, Protocol: chat.ProtocolVersion,
			PeerID: func(k ed25519.PublicKey) string { return chat.PeerIDFromKey(k) }, ClusterKey: k,
			MaxFrameBytes: 1 << 16, HandshakeTimeout: 2 * time.Second}
		d, err := transport.ListenTLS("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Dial(ctx, victim.ChatAddr(), transport.Peer{ID: victim.ID(), Key: victim.PublicKey()})
		d.Close()
		if err == nil {
			c.Close()
			t.Fatalf("a dialer with key %x was admitted", k)
		}
		if !strings.Contains(err.Error(), "cluster key proof") {
			t.Errorf("dial with key %x: %v, want a cluster key refusal", k, err)
		}
	}
	if evs := stranger.Rec.Filter(func(ev hearsay.Event) bool { return strings.Contains(ev.Text, "HISTORY") }); len(evs) > 0 {
		t.Fatalf("the stranger got room data: %+v", evs[0])
	}
	if n := chattest.AliveCount(victim.Node); n != 2 {
		t.Errorf("the group sees %d members, want 2", n)
	}
}

// rawTLSTo opens a TLS 1.3 connection to addr with a self-signed
// certificate of priv, as any stranger can.
func rawTLSTo(t *testing.T, addr string, priv ed25519.PrivateKey) *tls.Conn {
	t.Helper()
	cert := selfSignedCert(t, priv)
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return tc
}

func selfSignedCert(t *testing.T, priv ed25519.PrivateKey) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}
