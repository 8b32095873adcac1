package chat_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/internal/allocs"
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
	if a := allocs.MinPerRun(3, 10, func() { _ = chat.CheckFrameBoundsForTest(huge) }); a != 0 {
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

// boundedField is a repeated field checkFrameBounds bounds: a frame of n
// entries of it, as a peer could send it, and the field's length in a
// decoded frame.
type boundedField struct {
	name  string
	max   int
	frame func(n int) *chatpb.Frame
	len   func(f *chatpb.Frame) int
	// perEntry: the bound holds in each entry of a list of messages (an
	// envelope's deps in a batch), so two occurrences do not add up.
	perEntry bool
}

// envelopeLists is a field of an envelope bounded by validateEnvelope.
type envelopeList struct {
	name string
	max  int
	env  func(n int) *chatpb.Envelope
	len  func(e *chatpb.Envelope) int
}

var envelopeLists = []envelopeList{
	{"deps", chat.MaxDeps,
		func(n int) *chatpb.Envelope {
			ds := empties[chatpb.Dep](n)
			return &chatpb.Envelope{Deps: ds}
		},
		func(e *chatpb.Envelope) int { return len(e.GetDeps()) }},
	{"stamped", chat.MaxStamped,
		func(n int) *chatpb.Envelope {
			rs := empties[chatpb.MsgRef](n)
			return &chatpb.Envelope{Kind: chatpb.Kind_KIND_STAMP, Stamped: rs}
		},
		func(e *chatpb.Envelope) int { return len(e.GetStamped()) }},
}

// envelopeFields are the envelope lists of envelopeLists in each place a
// frame carries an envelope: Frame.envelope, whose occurrences merge, and
// an entry of Batch.envelopes or Repair.envelopes (a valid empty envelope
// before it, so the bound is not only checked on the first).
func envelopeFields() []boundedField {
	var out []boundedField
	maxOf := func(es []*chatpb.Envelope, l func(*chatpb.Envelope) int) int {
		k := 0
		for _, e := range es {
			k = max(k, l(e))
		}
		return k
	}
	for _, el := range envelopeLists {
		out = append(out,
			boundedField{name: "envelope " + el.name, max: el.max,
				frame: func(n int) *chatpb.Frame { return &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: el.env(n)}} },
				len:   func(f *chatpb.Frame) int { return el.len(f.GetEnvelope()) }},
			boundedField{name: "batch envelope " + el.name, max: el.max, perEntry: true,
				frame: func(n int) *chatpb.Frame {
					return &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: []*chatpb.Envelope{{}, el.env(n)}}}}
				},
				len: func(f *chatpb.Frame) int { return maxOf(f.GetBatch().GetEnvelopes(), el.len) }},
			boundedField{name: "repair envelope " + el.name, max: el.max, perEntry: true,
				frame: func(n int) *chatpb.Frame {
					return &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: []*chatpb.Envelope{{}, el.env(n)}}}}
				},
				len: func(f *chatpb.Frame) int { return maxOf(f.GetRepair().GetEnvelopes(), el.len) }},
		)
	}
	return out
}

// spreadLists returns envelopes holding n empty deps and stamped messages
// in all, each within its own bounds (MaxDeps deps, then MaxStamped
// stamped messages, per envelope).
func spreadLists(n int) []*chatpb.Envelope {
	var envs []*chatpb.Envelope
	for n > 0 {
		e := &chatpb.Envelope{Kind: chatpb.Kind_KIND_STAMP}
		for range min(n, chat.MaxDeps) {
			e.Deps = append(e.Deps, &chatpb.Dep{})
			n--
		}
		for range min(n, chat.MaxStamped) {
			e.Stamped = append(e.Stamped, &chatpb.MsgRef{})
			n--
		}
		envs = append(envs, e)
	}
	return envs
}

// frameListFields: the deps and stamped messages of a batch's or a
// repair's envelopes, bounded in all (each envelope within its bounds).
func frameListFields() []boundedField {
	return []boundedField{
		{"batch deps and stamped in all", chat.MaxFrameListEntriesForTest,
			func(n int) *chatpb.Frame {
				return &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: spreadLists(n)}}}
			},
			func(f *chatpb.Frame) int { return chat.ListEntriesForTest(f.GetBatch().GetEnvelopes()) }, false},
		{"repair deps and stamped in all", chat.MaxFrameListEntriesForTest,
			func(n int) *chatpb.Frame {
				return &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: spreadLists(n)}}}
			},
			func(f *chatpb.Frame) int { return chat.ListEntriesForTest(f.GetRepair().GetEnvelopes()) }, false},
	}
}

// empties returns n empty messages: the cheapest entries of a repeated
// field, which cost the decoder an allocation each.
func empties[T any](n int) []*T {
	out := make([]*T, n)
	for i := range out {
		out[i] = new(T)
	}
	return out
}

func boundedFields() []boundedField {
	overlayHaves := func(f *chatpb.Frame) []*chatpb.OverlayHave { return f.GetOverlay().GetHaves() }
	return append(append(envelopeFields(), frameListFields()...), []boundedField{
		// A missing seq is 1 byte on the wire and 8 decoded.
		{"status missing seqs", chat.MaxPullSeqsForTest,
			func(n int) *chatpb.Frame {
				return &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Missing: make([]uint64, n)}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetStatus().GetMissing()) }, false},
		{"status vector", chat.MaxVectorForTest,
			func(n int) *chatpb.Frame {
				vs := empties[chatpb.Dep](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: vs}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetStatus().GetVector()) }, false},
		{"repair floors", chat.MaxVectorForTest,
			func(n int) *chatpb.Frame {
				fl := empties[chatpb.Dep](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Floors: fl}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetRepair().GetFloors()) }, false},
		{"repair envelopes", chat.MaxRepairEnvelopesTest,
			func(n int) *chatpb.Frame {
				es := empties[chatpb.Envelope](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: es}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetRepair().GetEnvelopes()) }, false},
		{"room set rooms", chat.MaxRoomsForTest,
			func(n int) *chatpb.Frame {
				rs := empties[chatpb.RoomMembership](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_RoomSet{RoomSet: &chatpb.RoomSet{Version: 1, Rooms: rs}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetRoomSet().GetRooms()) }, false},
		{"batch envelopes", chat.MaxBatchEnvelopesForTest,
			func(n int) *chatpb.Frame {
				es := empties[chatpb.Envelope](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: es}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetBatch().GetEnvelopes()) }, false},
		{"enc keys", chat.MaxEncKeysForTest,
			func(n int) *chatpb.Frame {
				ks := empties[chatpb.EncKey](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: ks}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetEncKeys().GetKeys()) }, false},
		{"overlay peers", chat.MaxOverlayPeersForTest,
			func(n int) *chatpb.Frame {
				ps := make([]string, n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 6, Peers: ps}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetOverlay().GetPeers()) }, false},
		{"overlay announces", 0,
			func(n int) *chatpb.Frame {
				as := empties[chatpb.OverlayAnnounce](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Announces: as}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetOverlay().GetAnnounces()) }, false},
		{"overlay graft ids", chat.MaxOverlayIDsForTest,
			func(n int) *chatpb.Frame {
				return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 10, Ids: make([][]byte, n)}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetOverlay().GetIds()) }, false},
		{"overlay haves", chat.MaxOverlayIDsForTest,
			func(n int) *chatpb.Frame {
				hs := empties[chatpb.OverlayHave](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Haves: hs}}}
			},
			func(f *chatpb.Frame) int { return len(overlayHaves(f)) }, false},
		// Rounds over every origin of an ihave: two haves of about half.
		{"overlay have rounds", chat.MaxOverlayIDsForTest,
			func(n int) *chatpb.Frame {
				hs := []*chatpb.OverlayHave{
					{Origin: "00000000000000aa", Rounds: make([]uint32, n/2)},
					{Origin: "00000000000000bb", Rounds: make([]uint32, n-n/2)},
				}
				return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Haves: hs}}}
			},
			func(f *chatpb.Frame) int {
				k := 0
				for _, h := range overlayHaves(f) {
					k += len(h.GetRounds())
				}
				return k
			}, false},
		{"room set digest held", chat.MaxDigestHeldForTest,
			func(n int) *chatpb.Frame {
				hs := empties[chatpb.RoomSetVersion](n)
				return &chatpb.Frame{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Request: true, Held: hs}}}
			},
			func(f *chatpb.Frame) int { return len(f.GetRoomSetDigest().GetHeld()) }, false},
	}...)
}

// Every bounded field: a frame at its bound passes checkFrameBounds (it
// is the handler's to judge), one entry over is refused, and so is the
// bound's worth spread over two occurrences of the message (the decoder
// merges them; not for a bound of each entry of a list), without an
// allocation.
func TestCheckFrameBoundsEveryField(t *testing.T) {
	for _, bf := range boundedFields() {
		t.Run(bf.name, func(t *testing.T) {
			at := mustMarshal(t, bf.frame(bf.max))
			if err := chat.CheckFrameBoundsForTest(at); err != nil {
				t.Errorf("frame of %d entries, the bound, refused: %v", bf.max, err)
			}
			over := mustMarshal(t, bf.frame(bf.max+1))
			if err := chat.CheckFrameBoundsForTest(over); !errors.Is(err, chat.ErrInvalid) {
				t.Errorf("frame of %d entries, over the bound, not refused as invalid: %v", bf.max+1, err)
			}
			if bf.max > 0 && !bf.perEntry {
				half := mustMarshal(t, bf.frame(bf.max/2+1))
				if chat.CheckFrameBoundsForTest(append(half, half...)) == nil {
					t.Errorf("two occurrences of %d entries each, %d merged, accepted", bf.max/2+1, 2*(bf.max/2+1))
				}
			}
			if a := allocs.MinPerRun(3, 10, func() { _ = chat.CheckFrameBoundsForTest(over) }); a != 0 {
				t.Errorf("checkFrameBounds allocates %v times a run", a)
			}
		})
	}
}

// A frame one entry over the bound of a repeated field is refused on its
// bytes, never decoded, counted as a bad frame, and the link goes on: the
// ping after it arrives on the same connection (the sender dials no
// other). One subtest per field.
func TestFrameBoundsRefusedBeforeDecode(t *testing.T) {
	fields := boundedFields()
	var mu sync.Mutex
	decoded := map[string]int{} // over-bound frames that reached the node, by field
	pings := map[uint64]bool{}
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		if i != 1 {
			return
		}
		chat.SetFrameReceivedHookForTest(cfg, func(_ string, f *chatpb.Frame) {
			mu.Lock()
			defer mu.Unlock()
			for _, bf := range fields {
				if k := bf.len(f); k > bf.max {
					decoded[bf.name] = k
				}
			}
			if p := f.GetPing(); p != nil {
				pings[p.GetNonce()] = true
			}
		})
	})
	from, to := peers[0], peers[1]
	ping := func(nonce uint64) {
		t.Helper()
		if !from.SendFrameRawForTest(to.ID(), &chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: nonce}}}) {
			t.Fatal("ping not queued")
		}
		chattest.WaitFor(t, timeout, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return pings[nonce]
		}, "the ping did not arrive")
	}
	ping(0x1000) // the link is up
	dials := from.Stats().LinkDials
	for i, bf := range fields {
		t.Run(bf.name, func(t *testing.T) {
			before := to.Stats().BadFrames
			if !from.SendFrameRawForTest(to.ID(), bf.frame(bf.max+1)) {
				t.Fatal("frame not queued")
			}
			ping(0x1001 + uint64(i))
			mu.Lock()
			k, ok := decoded[bf.name]
			mu.Unlock()
			if ok {
				t.Errorf("a frame of %d %s was decoded", k, bf.name)
			}
			if got := to.Stats().BadFrames - before; got < 1 {
				t.Error("the frame was not counted as bad")
			}
		})
	}
	if got := from.Stats().LinkDials; got != dials {
		t.Errorf("the sender dialed %d links more: a refused frame cost the connection", got-dials)
	}
}

// listAttack is a frame at the frame limit of envelopes each within its
// own bounds, 1,000 empty deps (2 bytes each on the wire), ~62,000 in all:
// what the per-envelope bounds let through before the frame-wide budget.
func listAttack(t testing.TB, repair bool) []byte {
	t.Helper()
	envs := make([]*chatpb.Envelope, 62)
	for i := range envs {
		envs[i] = &chatpb.Envelope{Deps: make([]*chatpb.Dep, 1000)}
		for j := range envs[i].Deps {
			envs[i].Deps[j] = &chatpb.Dep{}
		}
	}
	f := &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: envs}}}
	if repair {
		f = &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: envs}}}
	}
	raw := mustMarshal(t, f)
	if len(raw) > chat.MaxFrameBytesTest {
		t.Fatalf("attack frame of %d bytes over the limit", len(raw))
	}
	return raw
}

// A batch or repair of envelopes each within its own bounds but carrying
// ~62,000 empty deps in all is refused on its bytes without an allocation
// (decoding it makes a Dep of each); before the frame-wide budget
// checkFrameBounds passed it.
func TestFrameBoundsListAttackRefused(t *testing.T) {
	for _, repair := range []bool{false, true} {
		raw := listAttack(t, repair)
		if err := chat.CheckFrameBoundsForTest(raw); !errors.Is(err, chat.ErrInvalid) {
			t.Fatalf("repair %v: attack frame of %d bytes not refused as invalid: %v", repair, len(raw), err)
		}
		if a := allocs.MinPerRun(3, 10, func() { _ = chat.CheckFrameBoundsForTest(raw) }); a != 0 {
			t.Errorf("repair %v: checkFrameBounds allocates %v times a run", repair, a)
		}
		decode := testing.AllocsPerRun(1, func() {
			var f chatpb.Frame
			if err := proto.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("repair %v: %d bytes refused, 0 allocations; decoding them made %.0f allocations", repair, len(raw), decode)
	}
}

// legitListFrame is a batch (or repair) as dense in deps and stamped
// messages as a valid frame can be: signed, valid envelopes of MaxDeps
// deps (and stamps of MaxStamped stamped messages besides), each entry the
// fewest bytes a valid one takes (a 16-character origin, a 1-byte seq),
// as many as fit under the frame limit.
func legitListFrame(t testing.TB, repair bool) (*chatpb.Frame, []byte) {
	t.Helper()
	id, err := chat.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	deps := make([]*chatpb.Dep, chat.MaxDeps)
	stamped := make([]*chatpb.MsgRef, chat.MaxStamped)
	for i := range deps {
		deps[i] = &chatpb.Dep{Origin: fmt.Sprintf("%016x", i+1), Seq: 1}
	}
	for i := range stamped {
		stamped[i] = &chatpb.MsgRef{Origin: fmt.Sprintf("%016x", i+1), Seq: 1}
	}
	wrap := func(envs []*chatpb.Envelope) *chatpb.Frame {
		if repair {
			return &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: envs}}}
		}
		return &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: envs}}}
	}
	var envs []*chatpb.Envelope
	env := func(seq uint64, deps []*chatpb.Dep, stamped []*chatpb.MsgRef) *chatpb.Envelope {
		e := &chatpb.Envelope{Seq: seq, Room: "lobby", Kind: chatpb.Kind_KIND_CHAT, Lamport: seq, Deps: deps}
		if len(stamped) > 0 {
			e.Kind, e.Epoch, e.Global, e.Stamped = chatpb.Kind_KIND_STAMP, 1, seq, stamped
		}
		chat.SignEnvelope(id, e)
		if err := chat.CheckEnvelope(e); err != nil {
			t.Fatalf("envelope %d: %v", seq, err)
		}
		return e
	}
	fits := func(e *chatpb.Envelope) bool { return proto.Size(wrap(append(envs, e))) <= chat.MaxFrameBytesTest }
	seq := uint64(1)
	for ; ; seq++ {
		e := env(seq, deps, nil)
		if seq%2 == 0 {
			e = env(seq, deps, stamped)
		}
		if !fits(e) {
			break
		}
		envs = append(envs, e)
	}
	// The rest of the frame: envelopes of as many deps as fit.
	for ; ; seq++ {
		lo, hi := 0, chat.MaxDeps // env(seq, deps[:lo]) fits, deps[:hi+1] does not
		for lo < hi {
			if mid := (lo + hi + 1) / 2; fits(env(seq, deps[:mid], nil)) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		if lo == 0 {
			break
		}
		envs = append(envs, env(seq, deps[:lo], nil))
	}
	f := wrap(envs)
	return f, mustMarshal(t, f)
}

// A legitimate batch or repair at the frame limit, of valid envelopes at
// their bounds, passes the frame-wide budget.
func TestFrameBoundsLegitListsPass(t *testing.T) {
	for _, repair := range []bool{false, true} {
		f, raw := legitListFrame(t, repair)
		envs := append(f.GetBatch().GetEnvelopes(), f.GetRepair().GetEnvelopes()...)
		n := chat.ListEntriesForTest(envs)
		if err := chat.CheckFrameBoundsForTest(raw); err != nil {
			t.Errorf("repair %v: legitimate frame of %d bytes, %d envelopes, %d deps and stamped refused: %v", repair, len(raw), len(envs), n, err)
		}
		if n < chat.MaxFrameListEntriesForTest*9/10 {
			t.Errorf("repair %v: the frame carries only %d deps and stamped messages", repair, n)
		}
		t.Logf("repair %v: %d bytes, %d envelopes, %d deps and stamped (budget %d)", repair, len(raw), len(envs), n, chat.MaxFrameListEntriesForTest)
	}
}

// overBoundFrames are frames at the frame limit filled with empty
// entries of one bounded list (2 bytes each on the wire).
func overBoundFrames(b *testing.B) map[string][]byte {
	n := (chat.MaxFrameBytesTest - 64) / 2
	floors := empties[chatpb.Dep](n)
	envs := make([]*chatpb.Envelope, n-8)
	for i := range envs {
		envs[i] = &chatpb.Envelope{}
	}
	frames := map[string][]byte{
		"repair floors":     mustMarshal(b, &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Floors: floors}}}),
		"repair envelopes":  mustMarshal(b, &chatpb.Frame{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: envs}}}),
		"envelope deps":     mustMarshal(b, &chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: &chatpb.Envelope{Deps: floors}}}),
		"batch env deps":    mustMarshal(b, &chatpb.Frame{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: []*chatpb.Envelope{{Deps: floors[:n-8]}}}}}),
		"batch deps in all": listAttack(b, false),
	}
	for name, raw := range frames {
		if len(raw) > chat.MaxFrameBytesTest {
			b.Fatalf("%s: frame of %d bytes over the limit", name, len(raw))
		}
	}
	return frames
}

// BenchmarkOverBoundLists: a frame at the frame limit filled with empty
// entries of a bounded list, decoded as the reader did before
// checkFrameBounds counted the list, and refused by checkFrameBounds as
// it is now.
func BenchmarkOverBoundLists(b *testing.B) {
	for name, raw := range overBoundFrames(b) {
		b.Run(name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var f chatpb.Frame
				if err := proto.Unmarshal(raw, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/check", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				if chat.CheckFrameBoundsForTest(raw) == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
