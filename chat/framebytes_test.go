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
)

// byteTally adds up, independently of the node's counters, what its links
// wrote: per frame kind, the encoded frame, its 4-byte length prefix and
// one TLS 1.3 record's overhead (5-byte header, content type, 16-byte tag;
// the test's frames are all under a record's 16 KB).
type byteTally struct {
	mu     sync.Mutex
	frames uint64
	bytes  map[string]uint64
}

func (b *byteTally) hook(_ string, f *chatpb.Frame) {
	raw, err := proto.Marshal(f)
	if err != nil {
		panic(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bytes == nil {
		b.bytes = map[string]uint64{}
	}
	b.frames++
	b.bytes[snake(frameKind(f))] += uint64(len(raw) + 4 + 22)
}

func (b *byteTally) snapshot() (uint64, map[string]uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.frames, maps.Clone(b.bytes)
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
// and FramesOut to their number: a three-peer group exchanging room sets,
// keys, messages and anti-entropy statuses.
func TestFrameBytesAddUp(t *testing.T) {
	tallies := make([]*byteTally, 3)
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		tallies[i] = &byteTally{}
		chat.SetFrameHookForTest(cfg, tallies[i].hook)
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
	for i, p := range peers {
		// Frames keep flowing (statuses, refreshes): poll until a
		// snapshot of the counters and one of the tally agree, the hook
		// running just after the counters for each frame.
		var st hearsay.Stats
		var frames uint64
		var tally map[string]uint64
		ok := chattest.Poll(timeout, func() bool {
			st = p.Stats()
			frames, tally = tallies[i].snapshot()
			return st.FramesOut == frames && maps.Equal(st.FrameBytes, tally)
		})
		if !ok {
			t.Fatalf("%s: FramesOut %d, FrameBytes %v; the links wrote %d frames, %v", p.Nick(), st.FramesOut, st.FrameBytes, frames, tally)
		}
		for _, k := range []string{"envelope", "room_set", "enc_keys"} {
			if st.FrameBytes[k] == 0 {
				t.Errorf("%s: no %s bytes counted (%v)", p.Nick(), k, st.FrameBytes)
			}
		}
		t.Logf("%s: %d frames, %v", p.Nick(), frames, st.FrameBytes)
	}
}
