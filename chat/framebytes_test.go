package chat_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"unicode"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// recvTally adds up what a node's connections read, per sending peer and
// frame kind: the frame as the receiver decoded it, sized again from that
// decode, with its 4-byte length prefix and one TLS 1.3 record's overhead
// (5-byte header, content type, 16-byte tag; the test's frames are all
// under a record's 16 KB). It is independent of the sender: what the
// sender's counters say it wrote must be what its peers read.
type recvTally struct {
	mu     sync.Mutex
	frames map[string]uint64            // by sender
	bytes  map[string]map[string]uint64 // by sender, then kind
}

func (r *recvTally) add(from string, f *chatpb.Frame) {
	n := uint64(proto.Size(f) + 4 + 22)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.frames == nil {
		r.frames, r.bytes = map[string]uint64{}, map[string]map[string]uint64{}
	}
	if r.bytes[from] == nil {
		r.bytes[from] = map[string]uint64{}
	}
	r.frames[from]++
	r.bytes[from][snake(frameKind(f))] += n
}

// from adds to frames and bytes what the connections read from sender.
func (r *recvTally) from(sender string, frames *uint64, bytes map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	*frames += r.frames[sender]
	for k, v := range r.bytes[sender] {
		bytes[k] += v
	}
}

// tallyTLS is the node's TLS chat transport with every connection's
// frames read counted in tally, dialed or accepted.
type tallyTLS struct {
	*transport.TLS
	tally *recvTally
}

func (t *tallyTLS) Dial(ctx context.Context, addr string, want transport.Peer) (transport.Conn, error) {
	c, err := t.TLS.Dial(ctx, addr, want)
	if err != nil {
		return nil, err
	}
	return tallyConn{Conn: c, tally: t.tally}, nil
}

func (t *tallyTLS) Serve(h transport.Handler) error {
	return t.TLS.Serve(tallyHandler{Handler: h, tally: t.tally})
}

type tallyHandler struct {
	transport.Handler
	tally *recvTally
}

func (h tallyHandler) ServeConn(c transport.Conn) {
	h.Handler.ServeConn(tallyConn{Conn: c, tally: h.tally})
}

type tallyConn struct {
	transport.Conn
	tally *recvTally
}

func (c tallyConn) Recv() (*chatpb.Frame, error) {
	f, err := c.Conn.Recv()
	if err == nil {
		c.tally.add(c.Peer().ID, f)
	}
	return f, err
}

// snake turns a Frame's Go case name ("RoomSet") into a Stats.FrameBytes
// key ("room_set").
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Stats.FrameBytes adds up to the frames the links wrote, kind by kind,
// and FramesOut to their number, as the peers' connections read them: a
// three-peer group exchanging room sets, keys, messages and anti-entropy
// statuses.
func TestFrameBytesAddUp(t *testing.T) {
	tallies := make([]*recvTally, 3)
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		tallies[i] = &recvTally{}
		c := *cfg
		cfg.ChatTransport = func(local transport.Local) (transport.Transport, error) {
			tr, err := transport.ListenTLS("127.0.0.1:0", chat.TLSTransportConfigForTest(c, local))
			if err != nil {
				return nil, err
			}
			return &tallyTLS{TLS: tr, tally: tallies[i]}, nil
		}
	})
	chattest.JoinRoom(t, "bytes", hearsay.OrderCausal, peers...)
	for i, p := range peers {
		if _, err := p.Send(context.Background(), "bytes", strings.Repeat("x", 100*(i+1))); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool { return len(p.Rec.RoomMessages("bytes")) == len(peers) }, "%s did not deliver every message", p.Nick())
	}
	for _, p := range peers {
		// Frames keep flowing (statuses, refreshes): poll until a
		// snapshot of the sender's counters and one of what the others
		// read agree, the reads coming after the counters for each frame
		// (or before them: the counters follow a write that returned).
		var st hearsay.Stats
		var frames uint64
		var read map[string]uint64
		ok := chattest.Poll(timeout, func() bool {
			st = p.Stats()
			frames, read = 0, map[string]uint64{}
			for _, tl := range tallies {
				tl.from(p.ID(), &frames, read)
			}
			return st.FramesOut == frames && maps.Equal(st.FrameBytes, read)
		})
		if !ok {
			t.Fatalf("%s: FramesOut %d, FrameBytes %v; its peers read %d frames, %v", p.Nick(), st.FramesOut, st.FrameBytes, frames, read)
		}
		for _, k := range []string{"envelope", "room_set", "enc_keys"} {
			if st.FrameBytes[k] == 0 {
				t.Errorf("%s: no %s bytes counted (%v)", p.Nick(), k, st.FrameBytes)
			}
		}
		t.Logf("%s: %d frames, %v", p.Nick(), frames, st.FrameBytes)
	}
}
