package chat_test

import (
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// overBoundStatuses are status frames one entry over a bound of
// checkFrameBounds: missing seqs, vector entries, and missing seqs spread
// over two occurrences of Frame.status (the decoder merges them).
func overBoundStatuses(t testing.TB) [][]byte {
	t.Helper()
	seqs := make([]uint64, chat.MaxPullSeqsForTest+1)
	for i := range seqs {
		seqs[i] = uint64(i + 2)
	}
	vector := make([]*chatpb.Dep, chat.MaxVectorForTest+1)
	for i := range vector {
		vector[i] = &chatpb.Dep{Origin: fmt.Sprintf("%016x", i+1), Seq: 1}
	}
	origin := "00000000000000aa"
	missing := mustMarshal(t, &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", FromOrigin: origin, UntilOrigin: origin + "\x00", Missing: seqs}}})
	half := mustMarshal(t, &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Missing: seqs[:len(seqs)/2+1]}}})
	return [][]byte{
		missing,
		mustMarshal(t, &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: vector}}}),
		append(half, half...),
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A status over a bound of its repeated fields (Status.missing,
// Status.vector) is refused on its bytes, counted as a bad frame, and
// never decoded: proto.Unmarshal would allocate all its entries before
// handleStatus could count them (8 bytes a missing seq from 1 byte on the
// wire). The peer's frames after it are handled as before.
func TestStatusBoundsCheckedBeforeDecode(t *testing.T) {
	var mu sync.Mutex
	var decoded []string // over-bound statuses that reached the node
	var sentinel bool
	const nonce = 0x5e7
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		if i != 1 {
			return
		}
		chat.SetFrameReceivedHookForTest(cfg, func(_ string, f *chatpb.Frame) {
			mu.Lock()
			defer mu.Unlock()
			if st := f.GetStatus(); st != nil && (len(st.Missing) > chat.MaxPullSeqsForTest || len(st.Vector) > chat.MaxVectorForTest) {
				decoded = append(decoded, fmt.Sprintf("%d missing, %d vector", len(st.Missing), len(st.Vector)))
			}
			if f.GetPing().GetNonce() == nonce {
				sentinel = true
			}
		})
	})
	from, to := peers[0], peers[1]
	before := to.Stats().BadFrames
	frames := overBoundStatuses(t)
	for _, b := range frames {
		var f chatpb.Frame
		if err := proto.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if !from.SendFrameRawForTest(to.ID(), &f) {
			t.Fatal("frame not queued")
		}
	}
	if !from.SendFrameRawForTest(to.ID(), &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: nonce}}}) {
		t.Fatal("ping not queued")
	}
	chattest.WaitFor(t, timeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return sentinel
	}, "the ping after the statuses did not arrive")
	mu.Lock()
	defer mu.Unlock()
	if len(decoded) > 0 {
		t.Errorf("over-bound statuses were decoded: %v", decoded)
	}
	// The frames above (the third merges into one status) are each
	// counted once.
	if got := to.Stats().BadFrames - before; got < uint64(len(frames)) {
		t.Errorf("%d bad frames counted, want at least %d", got, len(frames))
	}
}

// checkFrameBounds allocates nothing, refuses a frame at the frame limit
// packed with missing seqs (a million of them decoded), and accepts
// statuses at the bounds, packed or not.
func TestCheckFrameBounds(t *testing.T) {
	for i, b := range overBoundStatuses(t) {
		if chat.CheckFrameBoundsForTest(b) == nil {
			t.Errorf("over-bound frame %d accepted", i)
		}
	}
	// A frame at the limit: one status of 1-byte seqs.
	packed := make([]byte, chat.MaxFrameBytesTest-16)
	for i := range packed {
		packed[i] = 1
	}
	var st []byte
	st = protowire.AppendTag(st, 8, protowire.BytesType)
	st = protowire.AppendBytes(st, packed)
	var huge []byte
	huge = protowire.AppendTag(huge, 8, protowire.BytesType)
	huge = protowire.AppendBytes(huge, st)
	if len(huge) > chat.MaxFrameBytesTest {
		t.Fatalf("test frame of %d bytes over the limit", len(huge))
	}
	if chat.CheckFrameBoundsForTest(huge) == nil {
		t.Error("frame of a packed status at the frame limit accepted")
	}
	if a := testing.AllocsPerRun(10, func() { _ = chat.CheckFrameBoundsForTest(huge) }); a != 0 {
		t.Errorf("checkFrameBounds allocates %v times a run", a)
	}

	seqs := make([]uint64, chat.MaxPullSeqsForTest)
	for i := range seqs {
		seqs[i] = uint64(i + 2)
	}
	vector := make([]*chatpb.Dep, chat.MaxVectorForTest)
	for i := range vector {
		vector[i] = &chatpb.Dep{Origin: fmt.Sprintf("%016x", i+1), Seq: 1}
	}
	// Unpacked: each seq with its own tag, as a decoder accepts too.
	var unpacked []byte
	for _, s := range seqs {
		unpacked = protowire.AppendTag(unpacked, 8, protowire.VarintType)
		unpacked = protowire.AppendVarint(unpacked, s)
	}
	var unpackedFrame []byte
	unpackedFrame = protowire.AppendTag(unpackedFrame, 8, protowire.BytesType)
	unpackedFrame = protowire.AppendBytes(unpackedFrame, unpacked)
	for i, b := range [][]byte{
		mustMarshal(t, &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: vector}}}),
		mustMarshal(t, &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: vector[:1], Missing: seqs}}}),
		unpackedFrame,
		mustMarshal(t, &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: 1}}}),
	} {
		if err := chat.CheckFrameBoundsForTest(b); err != nil {
			t.Errorf("frame %d at the bounds refused: %v", i, err)
		}
	}
	// One more unpacked seq is over.
	unpacked = protowire.AppendTag(unpacked, 8, protowire.VarintType)
	unpacked = protowire.AppendVarint(unpacked, 1<<20)
	unpackedFrame = protowire.AppendTag(unpackedFrame[:0], 8, protowire.BytesType)
	unpackedFrame = protowire.AppendBytes(unpackedFrame, unpacked)
	if chat.CheckFrameBoundsForTest(unpackedFrame) == nil {
		t.Error("unpacked missing seqs over the bound accepted")
	}
}
