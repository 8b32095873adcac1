package chat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

func testGuard(lim streamLimits) *streamGuard {
	return &streamGuard{lim: lim, logger: log.New(io.Discard, "", 0), onDrop: func() {}, perIP: make(map[string]int)}
}

// guarded returns a guarded stream whose peer writes data and closes.
func guarded(t *testing.T, g *streamGuard, data []byte) *guardedConn {
	t.Helper()
	srv, cli := net.Pipe()
	t.Cleanup(func() { srv.Close(); cli.Close() })
	go func() { cli.Write(data); cli.Close() }()
	gc, err := g.admit(srv)
	if err != nil {
		t.Fatal(err)
	}
	return gc
}

func testLimits() streamLimits {
	return streamLimits{maxStreams: 4, maxStreamsPerIP: 2, maxStreamBytes: 1000, maxBufferedBytes: 1500, streamTimeout: time.Minute}
}

// plainHead encodes a plaintext memberlist stream header as memberlist
// does (its msgpack codec, default handle).
func plainHead(t testing.TB, typ byte, h any) []byte {
	t.Helper()
	var out []byte
	if err := codec.NewEncoderBytes(&out, &codec.MsgpackHandle{}).Encode(h); err != nil {
		t.Fatal(err)
	}
	return append([]byte{typ}, out...)
}

// paddedHead is a push/pull header whose first key is a 2 KB unknown
// field (memberlist's decoder skips it) before a 20 MB UserStateLen.
func paddedHead(t testing.TB) []byte {
	t.Helper()
	var out []byte
	h := map[string]any{"Pad": strings.Repeat("x", 2048), "UserStateLen": 20 << 20}
	mh := &codec.MsgpackHandle{}
	mh.Canonical = true // "Pad" first
	if err := codec.NewEncoderBytes(&out, mh).Encode(h); err != nil {
		t.Fatal(err)
	}
	return append([]byte{mlPushPullMsg}, out...)
}

// The header check reads memberlist's framing with and without a label,
// however the bytes are split, and refuses an announced length over the
// stream limit before the payload is read.
func TestGuardHeader(t *testing.T) {
	enc := func(n uint32) []byte { return binary.BigEndian.AppendUint32([]byte{mlEncryptMsg}, n) }
	label := append([]byte{mlHasLabelMsg, 5}, "group"...)
	cases := []struct {
		name   string
		stream []byte
		refuse bool
	}{
		{"encrypted, small", append(enc(10), make([]byte, 10)...), false},
		{"encrypted, at the limit", append(enc(995), make([]byte, 995)...), false},
		{"encrypted, announcing too much", enc(996), true},
		{"encrypted, announcing 20 MB", enc(20 << 20), true},
		{"label, then too much", append(append([]byte{}, label...), enc(1<<31)...), true},
		{"label, then small", append(append(append([]byte{}, label...), enc(3)...), 1, 2, 3), false},
		{"plaintext", []byte{6, 0x83, 1, 2}, false},
		{"push/pull, small", plainHead(t, mlPushPullMsg, mlPushPullHeader{Nodes: 3, UserStateLen: 100}), false},
		{"push/pull, a million nodes", plainHead(t, mlPushPullMsg, mlPushPullHeader{Nodes: 1 << 20}), true},
		{"push/pull, 20 MB of user state", plainHead(t, mlPushPullMsg, mlPushPullHeader{UserStateLen: 20 << 20}), true},
		{"push/pull, negative", plainHead(t, mlPushPullMsg, mlPushPullHeader{UserStateLen: -1}), true},
		{"label, then push/pull too big", append(append([]byte{}, label...), plainHead(t, mlPushPullMsg, mlPushPullHeader{UserStateLen: 1001})...), true},
		{"user message, small", plainHead(t, mlUserMsg, mlUserMsgHeader{UserMsgLen: 10}), false},
		{"user message, 20 MB", plainHead(t, mlUserMsg, mlUserMsgHeader{UserMsgLen: 20 << 20}), true},
		{"a header padded past 1 KiB", paddedHead(t), true},
		{"plaintext longer than a stream", bytes.Repeat([]byte{6}, 1001), true},
	}
	for _, tc := range cases {
		for _, split := range []int{1, 2, 3, 7, 4096} {
			g := testGuard(testLimits())
			gc := guarded(t, g, tc.stream)
			var err error
			buf := make([]byte, split)
			for err == nil {
				_, err = gc.Read(buf)
			}
			refused := errors.Is(err, errStreamRefused)
			if refused != tc.refuse {
				t.Errorf("%s, read %d at a time: ended with %v, want refused=%v", tc.name, split, err, tc.refuse)
			}
			gc.Close()
			if g.open != 0 || g.buffered.Load() != 0 || len(g.perIP) != 0 {
				t.Errorf("%s: after close %d open, %d buffered, %v", tc.name, g.open, g.buffered.Load(), g.perIP)
			}
		}
	}
}

// Open streams share one byte budget; closing a stream returns its share.
func TestGuardSharedBudget(t *testing.T) {
	g := testGuard(testLimits())
	a := guarded(t, g, make([]byte, 900))
	b := guarded(t, g, make([]byte, 900))
	if _, err := io.ReadFull(a, make([]byte, 900)); err != nil {
		t.Fatal(err)
	}
	_, err := io.ReadFull(b, make([]byte, 900))
	if err == nil || !strings.Contains(err.Error(), "unauthenticated streams hold") {
		t.Fatalf("a second stream read past the shared budget: %v", err)
	}
	a.Close()
	c := guarded(t, g, make([]byte, 900))
	if _, err := io.ReadFull(c, make([]byte, 900)); err != nil {
		t.Fatalf("the budget was not returned at close: %v", err)
	}
}

// Streams are bounded per address and in total, and no deadline memberlist
// sets outlives the stream's.
func TestGuardBoundsAndDeadline(t *testing.T) {
	lim := testLimits()
	g := testGuard(lim)
	addr := func(ip string) net.Conn {
		return fakeAddrConn{Conn: nopConn{}, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}}
	}
	if _, err := g.admit(addr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.admit(addr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.admit(addr("10.0.0.1")); err == nil || !strings.Contains(err.Error(), "from 10.0.0.1") {
		t.Fatalf("a third stream from one address: %v", err)
	}
	if _, err := g.admit(addr("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	last, err := g.admit(addr("10.0.0.3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.admit(addr("10.0.0.4")); err == nil || !strings.Contains(err.Error(), "4 streams open") {
		t.Fatalf("a fifth stream: %v", err)
	}
	if d := last.clamp(time.Time{}); !d.Equal(last.hard) {
		t.Errorf("no deadline became %v, want the stream's %v", d, last.hard)
	}
	if d := last.clamp(time.Now().Add(time.Hour)); !d.Equal(last.hard) {
		t.Errorf("a later deadline became %v, want the stream's %v", d, last.hard)
	}
	early := time.Now().Add(time.Second)
	if d := last.clamp(early); !d.Equal(early) {
		t.Errorf("an earlier deadline became %v", d)
	}
}

type nopConn struct{ net.Conn }

func (nopConn) SetDeadline(time.Time) error { return nil }
func (nopConn) Close() error                { return nil }

type fakeAddrConn struct {
	net.Conn
	remote net.Addr
}

func (f fakeAddrConn) RemoteAddr() net.Addr { return f.remote }

// The header reader takes any bytes, in any pieces, without panicking;
// where the bytes are split does not change its verdict; and it refuses
// exactly the encrypted streams whose announced length is over the limit.
func FuzzGuardHeader(f *testing.F) {
	f.Add([]byte{mlEncryptMsg, 0, 0, 0, 10}, uint8(1))
	f.Add(append([]byte{mlHasLabelMsg, 1, 'x', mlEncryptMsg}, 0xff, 0xff, 0xff, 0xff), uint8(3))
	f.Add([]byte{mlHasLabelMsg, 0}, uint8(1))
	f.Add([]byte{6, 0x83}, uint8(2))
	f.Add(plainHead(f, mlPushPullMsg, mlPushPullHeader{Nodes: 2, UserStateLen: 1 << 30}), uint8(5))
	f.Add(plainHead(f, mlUserMsg, mlUserMsgHeader{UserMsgLen: 7}), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		lim := streamLimits{maxStreams: 1, maxStreamsPerIP: 1, maxStreamBytes: 1 << 20, maxBufferedBytes: 1 << 20}
		verdict := func(n int) error {
			c := &guardedConn{g: testGuard(lim)}
			var err error
			for rest := data; len(rest) > 0 && err == nil; {
				k := min(n, len(rest))
				err = c.inspect(rest[:k])
				rest = rest[k:]
			}
			return err
		}
		n := max(int(step), 1)
		stepped, whole := verdict(n), verdict(len(data)+1)
		if (stepped != nil) != (whole != nil) {
			t.Fatalf("inspect(%x): in steps of %d %v, at once %v", data, n, stepped, whole)
		}
		p := data
		if len(p) >= 2 && p[0] == mlHasLabelMsg {
			p = p[min(len(p), 2+int(p[1])):]
		}
		if len(p) == 0 || p[0] != mlEncryptMsg {
			return
		}
		over := len(p) >= 5 && int64(binary.BigEndian.Uint32(p[1:5])) > (1<<20)-5
		if (whole != nil) != over {
			t.Fatalf("inspect(%x): %v, want refused=%v", data, whole, over)
		}
	})
}

// A UDP packet reaches memberlist through the guard in a buffer of its
// own size, not in the 64 KB buffer it was read into (memberlist queues a
// packet's messages as slices of it: 64 KB held per queued message), over
// a real socket with our transport, the one the guard wraps (it passes
// packets on as they are); the guard's pump stops at Shutdown.
func TestGuardPacketsOwnSize(t *testing.T) {
	nt, err := newMLNetTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	g := newStreamGuard(nt, testLimits(), log.New(io.Discard, "", 0), nil)
	defer func() {
		// Read what is still coming, as memberlist does until its
		// transport's Shutdown returns: memberlist's UDP loop blocks on
		// an unbuffered channel, and a resent packet behind the one the
		// test took would otherwise hold Shutdown for ever.
		stop := make(chan struct{})
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				select {
				case <-g.PacketCh():
				case <-stop:
					return
				}
			}
		}()
		if err := g.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		close(stop)
		<-drained
	}()
	c, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", fmt.Sprint(nt.Port())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("a hundred bytes of gossip, or so")
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond) // UDP: resend until one arrives
	defer tick.Stop()
	for {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-g.PacketCh():
			if !bytes.Equal(p.Buf, msg) {
				t.Fatalf("packet %q, want %q", p.Buf, msg)
			}
			if cap(p.Buf) > 2*len(msg) {
				t.Fatalf("a %d-byte packet holds a buffer of %d bytes", len(p.Buf), cap(p.Buf))
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("no packet")
		}
	}
}
