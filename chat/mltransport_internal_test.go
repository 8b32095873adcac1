package chat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log"
	"net"
	"strings"
	"testing"
	"time"
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

// The header reader takes any bytes, in any pieces, without panicking,
// and refuses exactly the streams whose announced encrypted length is over
// the limit.
func FuzzGuardHeader(f *testing.F) {
	f.Add([]byte{mlEncryptMsg, 0, 0, 0, 10}, uint8(1))
	f.Add(append([]byte{mlHasLabelMsg, 1, 'x', mlEncryptMsg}, 0xff, 0xff, 0xff, 0xff), uint8(3))
	f.Add([]byte{mlHasLabelMsg, 0}, uint8(1))
	f.Add([]byte{6, 0x83}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		g := testGuard(streamLimits{maxStreams: 1, maxStreamsPerIP: 1, maxStreamBytes: 1 << 20, maxBufferedBytes: 1 << 20})
		c := &guardedConn{g: g}
		n := max(int(step), 1)
		var err error
		for rest := data; len(rest) > 0 && err == nil; {
			k := min(n, len(rest))
			err = c.inspect(rest[:k])
			rest = rest[k:]
		}
		// The reference: the same framing read in one go.
		p := data
		if len(p) >= 2 && p[0] == mlHasLabelMsg {
			p = p[min(len(p), 2+int(p[1])):]
		}
		over := len(p) >= 5 && p[0] == mlEncryptMsg && int64(binary.BigEndian.Uint32(p[1:5])) > (1<<20)-5
		if (err != nil) != over {
			t.Fatalf("inspect(%x) in steps of %d: %v, want refused=%v", data, n, err, over)
		}
	})
}
