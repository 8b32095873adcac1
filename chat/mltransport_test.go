package chat_test

// Attacks on the memberlist port (finding 5 of the security review), on
// real sockets against a peer of a group with a cluster key.

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/internal/heapwatch"
)

// flood opens conns TCP connections to addr at once; each sends head and
// then up to body bytes (from one shared buffer) until the peer stops
// reading or closes. It returns when every connection has ended.
func flood(t *testing.T, addr string, conns int, head []byte, body int) {
	t.Helper()
	chunk := make([]byte, 64<<10)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			// The peer's own deadline ends a stream it keeps reading; this
			// one only keeps a test from hanging.
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(head); err != nil {
				return
			}
			for sent := 0; sent < body; sent += len(chunk) {
				if _, err := c.Write(chunk[:min(len(chunk), body-sent)]); err != nil {
					return
				}
			}
			c.Read(make([]byte, 1)) // until the peer answers or closes
		}()
	}
	wg.Wait()
}

// encryptedHead is memberlist's header of an encrypted stream announcing
// n bytes of ciphertext.
func encryptedHead(n uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{10}, n)
}

// 40 connections announcing 20 MB of encrypted payload took a peer to
// 1.2 GB in a second; 40 announcing just under the guard's per-stream
// limit and sending it all must stay within the shared budget; plaintext
// in a keyed group is cut at its first byte. The peer's heap stays within
// a bound, the refusals are counted, and the group still works: a new
// member joins through the victim and chats.
func TestMemberlistPortFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of MB of traffic")
	}
	key := chat.ClusterKeyFromPassphrase("flood")
	peers := chattest.Cluster(t, 2, func(_ int, cfg *chat.Config) { cfg.ClusterKey = key })
	victim := peers[0]
	addr := victim.AdvertiseAddr()
	const bound = 128 << 20

	cases := []struct {
		name    string
		head    []byte
		body    int
		refused bool // by the guard, whatever the timing
	}{
		{"announcing 20 MB", encryptedHead(20 << 20), 20 << 20, true},
		// How many the shared budget cuts depends on how the streams
		// overlap: the heap bound is the claim.
		{"just under the stream limit", encryptedHead(4<<20 - 6), 4<<20 - 6, false},
		// memberlist refuses plaintext in a keyed group after one byte.
		{"plaintext push/pull", []byte{6, 0x83}, 4 << 20, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := victim.Stats().MLRefused
			stop := heapwatch.Peak(10 * time.Millisecond)
			flood(t, addr, 40, tc.head, tc.body)
			grew := stop()
			t.Logf("40 streams %s: the heap grew by %.1f MB at its peak; %d refused",
				tc.name, float64(grew)/(1<<20), victim.Stats().MLRefused-before)
			if grew > bound {
				t.Errorf("heap grew by %d MB, bound %d MB", grew>>20, bound>>20)
			}
			if tc.refused && victim.Stats().MLRefused-before < 40 {
				t.Errorf("%d of 40 streams refused", victim.Stats().MLRefused-before)
			}
		})
	}

	// Legitimate encrypted streams still pass the guard: a new member
	// joins through the victim (a push/pull over TCP) and chats.
	cfg := chattest.Config(t, "late")
	cfg.ClusterKey = key
	late := chattest.Start(t, cfg)
	chattest.Join(t, late, victim)
	chattest.WaitConverged(t, append(peers, late)...)
	send(t, late, "after the flood")
	victim.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "after the flood" }, "message after the flood")
}

// pushPullHead is memberlist's header of a plaintext push/pull, encoded
// as memberlist encodes it.
func pushPullHead(t *testing.T, nodes, userState int) []byte {
	t.Helper()
	var out []byte
	h := struct {
		Nodes        int
		UserStateLen int
		Join         bool
	}{nodes, userState, false}
	if err := codec.NewEncoderBytes(&out, &codec.MsgpackHandle{}).Encode(h); err != nil {
		t.Fatal(err)
	}
	return append([]byte{6}, out...)
}

// In an open group memberlist trusts a plaintext push/pull header and
// allocates what it announces before reading it (20 MB of user state, or
// a million node entries). The guard refuses such headers: 40 streams
// announcing them leave the heap within the bound, and the group works.
func TestMemberlistPortFloodOpenGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("hundreds of MB of traffic")
	}
	peers := chattest.Cluster(t, 2, nil)
	victim := peers[0]
	const bound = 128 << 20
	for _, tc := range []struct {
		name string
		head []byte
	}{
		{"20 MB of user state", pushPullHead(t, 0, 20<<20)},
		{"a million nodes", pushPullHead(t, 1<<20, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := victim.Stats().MLRefused
			stop := heapwatch.Peak(10 * time.Millisecond)
			flood(t, victim.AdvertiseAddr(), 40, tc.head, 1<<20)
			grew := stop()
			refused := victim.Stats().MLRefused - before
			t.Logf("40 push/pulls announcing %s: the heap grew by %.1f MB at its peak; %d refused", tc.name, float64(grew)/(1<<20), refused)
			if grew > bound {
				t.Errorf("heap grew by %d MB, bound %d MB", grew>>20, bound>>20)
			}
			if refused < 40 {
				t.Errorf("%d of 40 streams refused", refused)
			}
		})
	}
	send(t, peers[1], "still open")
	victim.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "still open" }, "message after the flood")
}

// A contact may be any address a bootstrap service names: one that
// answers a join with a push/pull announcing a million nodes (memberlist
// would allocate about 100 MB for them before reading one) is refused at
// the header, and the joiner's heap stays small.
func TestMemberlistJoinToHostileContact(t *testing.T) {
	p := chattest.Start(t, chattest.Config(t, "joiner"))
	head := pushPullHead(t, 1<<20, 0)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after the listeners close: cleanups run last first
	var addrs []string
	for range 5 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, lis.Addr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := lis.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					c.SetDeadline(time.Now().Add(timeout))
					if _, err := c.Write(head); err == nil {
						c.Write(make([]byte, 64<<10))
					}
					io.Copy(io.Discard, c)
				}()
			}
		}()
		t.Cleanup(func() { lis.Close() })
	}
	before := p.Stats().MLRefused
	stop := heapwatch.Peak(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := p.Join(ctx, addrs)
	grew := stop()
	t.Logf("join to 5 hostile contacts: %v; the heap grew by %.1f MB at its peak", err, float64(grew)/(1<<20))
	if err == nil {
		t.Fatal("the join succeeded")
	}
	if grew > 64<<20 {
		t.Errorf("heap grew by %d MB, bound 64 MB", grew>>20)
	}
	if r := p.Stats().MLRefused - before; r < 5 {
		t.Errorf("%d of 5 answers refused", r)
	}
}

// One address cannot hold more than 32 memberlist streams open: the rest
// are closed before memberlist reads a byte.
func TestMemberlistStreamsPerIP(t *testing.T) {
	p := chattest.Start(t, chattest.Config(t, "victim"))
	var held []net.Conn
	for range 40 {
		c, err := net.DialTimeout("tcp", p.AdvertiseAddr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	chattest.WaitFor(t, timeout, func() bool { return p.Stats().MLRefused >= 8 },
		"streams over the per-address bound were not refused: %+v", p.Stats())
	closed := 0
	for _, c := range held[:] {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closed++
			}
		}
	}
	if closed < 8 {
		t.Errorf("%d of 40 silent streams closed at once, want at least 8", closed)
	}
}
