package chat

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// Every decoder of network input runs under the fuzzer: whatever the bytes,
// it returns an error or a value that passes its own checks, and never
// panics. Seeds make plain `go test` run each target on valid and broken
// inputs.

func seedIdentity(f *testing.F) *Identity {
	f.Helper()
	id, err := NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	return id
}

func FuzzDecodeEnvelope(f *testing.F) {
	id := seedIdentity(f)
	good := signedChat(id, "hello")
	raw, _ := proto.Marshal(good)
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	direct := &chatpb.Envelope{Seq: 1, Room: "x", Kind: chatpb.Kind_KIND_DIRECT, To: "00000000000000aa", Body: []byte("hi")}
	SignEnvelope(id, direct)
	raw, _ = proto.Marshal(direct)
	f.Add(raw)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeChecked(b)
		if err != nil {
			return
		}
		// Accepted: it must be self-consistent and re-verify after a
		// re-encoding (what a forwarder does).
		if PeerIDFromKey(e.OriginKey) != e.Origin || len(e.Body) > MaxBodyBytes {
			t.Fatalf("accepted an inconsistent envelope: %v", e)
		}
		again, err := proto.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeChecked(again); err != nil {
			t.Fatalf("accepted envelope fails after re-encoding: %v", err)
		}
	})
}

func FuzzDecodeMeta(f *testing.F) {
	id := seedIdentity(f)
	good, _ := encodeMeta(peerMeta{Protocol: ProtocolVersion, ID: id.ID, Nick: "alice", Pub: id.Pub, ChatAddr: "127.0.0.1:4000"})
	f.Add(good, id.ID)
	f.Add(good[:10], id.ID)
	f.Add([]byte{}, "")
	f.Add([]byte("\x12\x10"), "x")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		m, err := decodeMeta(b, name)
		if err != nil {
			return
		}
		if m.ID != name || PeerIDFromKey(m.Pub) != m.ID || ValidateNick(m.Nick) != nil {
			t.Fatalf("accepted inconsistent meta %+v for %q", m, name)
		}
		if enc, err := encodeMeta(m); err != nil || len(enc) > 512 {
			t.Fatalf("accepted meta does not re-encode under 512 bytes: %v", err)
		}
	})
}

func FuzzDecodeKVEntry(f *testing.F) {
	id := seedIdentity(f)
	e := &chatpb.KVEntry{Key: "topic", Value: "gossip", Version: 3, Origin: id.ID, OriginKey: id.Pub}
	e.Signature = id.Sign(kvSigningBytes(e))
	raw, _ := proto.Marshal(e)
	f.Add(raw)
	f.Add(raw[1:])
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeKVEntry(b)
		if err != nil {
			return
		}
		if ValidateKVKey(e.Key) != nil || len(e.Value) > MaxKVValueBytes || e.Version == 0 {
			t.Fatalf("accepted invalid entry %v", e)
		}
	})
}

// FuzzDecodeKVState: DecodeKVState, which counts a state's entries
// before it decodes them, refuses every state that decodes to more than
// MaxKVEntries entries, and decodes any other within maxKVState as
// proto.Unmarshal does.
func FuzzDecodeKVState(f *testing.F) {
	id := seedIdentity(f)
	e := &chatpb.KVEntry{Key: "topic", Value: "gossip", Version: 3, Origin: id.ID, OriginKey: id.Pub}
	e.Signature = id.Sign(kvSigningBytes(e))
	raw, _ := proto.Marshal(&chatpb.KVState{Entries: []*chatpb.KVEntry{e, e}})
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add(kvStateOf(MaxKVEntries))
	f.Add(kvStateOf(MaxKVEntries + 1))
	f.Add(append(kvStateOf(MaxKVEntries), 0x08, 0x01)) // field 1 as a varint: unknown, not an entry
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeKVState(b)
		var want chatpb.KVState
		werr := proto.Unmarshal(b, &want)
		switch {
		case err == nil && len(st.Entries) > MaxKVEntries:
			t.Fatalf("accepted a state of %d entries", len(st.Entries))
		case err == nil && (werr != nil || !proto.Equal(st, &want)):
			t.Fatalf("decoded %v, proto.Unmarshal %v (%v)", st, &want, werr)
		case err != nil && werr == nil && len(b) <= maxKVState && len(want.Entries) <= MaxKVEntries:
			t.Fatalf("refused a state of %d bytes, %d entries: %v", len(b), len(want.Entries), err)
		}
	})
}

// FuzzNotifyMsg feeds arbitrary memberlist user packets and push/pull
// state to a node: nothing may panic, and only valid signed entries may
// land in its key/value state.
func FuzzNotifyMsg(f *testing.F) {
	id := seedIdentity(f)
	e := &chatpb.KVEntry{Key: "k", Value: "v", Version: 1, Origin: id.ID, OriginKey: id.Pub}
	e.Signature = id.Sign(kvSigningBytes(e))
	raw, _ := proto.Marshal(e)
	st, _ := proto.Marshal(&chatpb.KVState{Entries: []*chatpb.KVEntry{e, e}})
	f.Add(append([]byte{packetKV}, raw...))
	f.Add(st)
	f.Add([]byte{})
	f.Add([]byte{9, 1, 2, 3})
	n, err := New(Config{Nick: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = n.Shutdown() })
	f.Fuzz(func(t *testing.T, b []byte) {
		n.handleNotifyMsg(b)
		n.handleMergeRemoteState(b, false)
		n.kv.mu.Lock()
		defer n.kv.mu.Unlock()
		if len(n.kv.m) > MaxKVEntries {
			t.Fatalf("%d kv entries, bound %d", len(n.kv.m), MaxKVEntries)
		}
		for _, e := range n.kv.m {
			if err := checkKVEntry(e); err != nil {
				t.Fatalf("stored an unchecked entry: %v", err)
			}
		}
		if err := n.kv.checkBoundsLocked(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzMemberlistSettings(f *testing.F) {
	f.Add([]byte(`{"profile":"local","gossip_interval":"20ms"}`))
	f.Add([]byte(`{"probe_interval":1000}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeMemberlistSettings(b)
		if err != nil {
			return
		}
		if err := s.validate(); err != nil {
			t.Fatalf("accepted settings fail validation: %v", err)
		}
	})
}

// FuzzMemberKeysFile loads arbitrary member-key files: only well-formed
// keys are taken, never more than maxMemberKeys, and an ID is always the
// one its key derives.
func FuzzMemberKeysFile(f *testing.F) {
	id := seedIdentity(f)
	f.Add([]byte(hex.EncodeToString(id.Pub) + "\n"))
	f.Add([]byte(hex.EncodeToString(id.Pub) + "\nzz\n" + hex.EncodeToString(id.Pub[:16])))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, memberKeysFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := openMemberKeys(dir)
		if err != nil {
			return
		}
		defer k.close()
		if len(k.keys) > maxMemberKeys {
			t.Fatalf("%d keys, bound %d", len(k.keys), maxMemberKeys)
		}
		for id, pub := range k.keys {
			if len(pub) != 32 || PeerIDFromKey([]byte(pub)) != id {
				t.Fatalf("key for %s does not derive it", id)
			}
		}
	})
}

// FuzzHandleFrame runs the receive pipeline on arbitrary chat frames: no
// panic, and only envelopes that verify are ever delivered.
func FuzzHandleFrame(f *testing.F) {
	id := seedIdentity(f)
	good := signedChat(id, "hello")
	raw, _ := proto.Marshal(&chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: good}})
	f.Add(raw)
	ping, _ := proto.Marshal(&chatpb.Frame{Msg: &chatpb.Frame_Ping{Ping: &chatpb.Ping{Nonce: 3}}})
	f.Add(ping)
	f.Add([]byte{0x1a, 0x00})
	for _, fr := range []*chatpb.Frame{
		{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: []*chatpb.Dep{{Origin: id.ID, Seq: 3}}, WantReply: true}}},
		{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: []*chatpb.Dep{{Origin: id.ID, Seq: 3}}, FromOrigin: "0", UntilOrigin: "f"}}},
		{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Digest: []byte("01234567"), FromOrigin: "0", UntilOrigin: "f"}}},
		{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", Vector: []*chatpb.Dep{{Origin: id.ID, Seq: 1}}, FromOrigin: id.ID, UntilOrigin: id.ID + "\x00", Missing: []uint64{2, 4, 1 << 62}}}},
		{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Room: "lobby", FromOrigin: id.ID, UntilOrigin: id.ID + "\x00", Missing: []uint64{3, 2}}}},
		{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Floors: []*chatpb.Dep{{Origin: id.ID, Seq: 1 << 62}, {Origin: "0000000000000001", Seq: 1<<64 - 1}}}}},
		{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: []*chatpb.Envelope{good}, Floors: []*chatpb.Dep{{Origin: id.ID, Seq: 1}}}}},
		{Msg: &chatpb.Frame_RoomSet{RoomSet: &chatpb.RoomSet{Version: 1, Rooms: []*chatpb.RoomMembership{{Name: "lobby", Mode: "causal", JoinedUnixNano: 5}}}}},
		{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: []*chatpb.Envelope{good, forgedCopy(good), signedChatSeq(id, "again", 2)}}}},
		{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Digest: []byte("0123456789abcdef")}}},
		{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Request: true, Held: []*chatpb.RoomSetVersion{{Origin: id.ID, Version: 7}}}}},
	} {
		raw, _ := proto.Marshal(fr)
		f.Add(raw)
	}
	n := lobbyNode(f, "fuzz", 1)
	if err := n.speakers.add(id.Pub); err != nil { // the seeds' origin is a member
		f.Fatal(err)
	}
	const from = "0000000000000001"
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr chatpb.Frame
		if err := proto.Unmarshal(b, &fr); err != nil {
			return
		}
		before := n.Stats()
		// The stream handler's own dispatch (a Bye marks the fuzz peer
		// leaving, which nothing here depends on).
		n.handleFrame(&fr, from)
		if env := fr.GetEnvelope(); env != nil && n.Stats().Delivered > before.Delivered && CheckEnvelope(env) != nil {
			t.Fatalf("delivered an envelope that does not check: %v", env)
		}
		if n.Stats().Stored == before.Stored {
			return
		}
		// Something was stored: everything in the log must verify.
		ctx := context.Background()
		vv, err := n.log.VersionVector(ctx, DefaultRoom)
		if err != nil {
			t.Fatal(err)
		}
		for o := range vv {
			recs, err := n.log.Range(ctx, DefaultRoom, o, 1, msglog.MaxRange)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if _, err := decodeStored(r.Data); err != nil {
					t.Fatalf("stored %s/%d does not verify: %v", r.Origin, r.Seq, err)
				}
			}
		}
	})
}

// FuzzRoomSetDigest: checkRoomSetDigest, the decoder of a RoomSetDigest
// frame from a peer, accepts only what chat.proto allows (a 16-byte
// digest alone, or a request of at most maxDigestHeld distinct origins of
// a peer ID's length at most) and returns exactly the request's list.
func FuzzRoomSetDigest(f *testing.F) {
	for _, m := range []*chatpb.RoomSetDigest{
		{Digest: []byte("0123456789abcdef")},
		{Digest: []byte("short")},
		{Request: true},
		{Request: true, Held: []*chatpb.RoomSetVersion{{Origin: "0000000000000001", Version: 5}, {Origin: "0000000000000002", Version: -1}}},
		{Request: true, Held: []*chatpb.RoomSetVersion{{Origin: "0000000000000001"}, {Origin: "0000000000000001"}}},
		{Request: true, Digest: []byte("0123456789abcdef")},
	} {
		raw, _ := proto.Marshal(m)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m chatpb.RoomSetDigest
		if err := proto.Unmarshal(b, &m); err != nil {
			return
		}
		held, ok := checkRoomSetDigest(&m)
		if !ok {
			return
		}
		if !m.Request {
			if len(m.Digest) != roomSetDigestLen || len(m.Held) != 0 || held != nil {
				t.Fatalf("accepted digest %x with %d held", m.Digest, len(m.Held))
			}
			return
		}
		if len(m.Digest) != 0 || len(m.Held) > maxDigestHeld || len(held) != len(m.Held) {
			t.Fatalf("accepted request: digest %x, %d held, %d distinct", m.Digest, len(m.Held), len(held))
		}
		for _, v := range m.Held {
			if v.Origin == "" || len(v.Origin) > overlay.MaxPeerIDLen || held[v.Origin] != v.Version {
				t.Fatalf("accepted held %q v%d (map: %d)", v.Origin, v.Version, held[v.Origin])
			}
		}
	})
}

// FuzzFrameBounds: a frame checkFrameBounds accepts decodes, when it
// decodes, to no repeated field over its bound (frameOverBound: the
// bounds hold before the decoder allocates), and a marshalled frame over
// any is refused.
func FuzzFrameBounds(f *testing.F) {
	const origin = "00000000000000aa"
	seqs := make([]uint64, maxPullSeqs+1)
	for i := range seqs {
		seqs[i] = uint64(i + 2)
	}
	vector := make([]*chatpb.Dep, maxVector+1)
	for i := range vector {
		vector[i] = &chatpb.Dep{Origin: origin, Seq: uint64(i + 1)}
	}
	for _, st := range []*chatpb.Status{
		{Room: "lobby", FromOrigin: origin, UntilOrigin: origin + "\x00", Missing: seqs[:maxPullSeqs]},
		{Room: "lobby", FromOrigin: origin, UntilOrigin: origin + "\x00", Missing: seqs},
		{Room: "lobby", Missing: []uint64{1 << 62, 1<<64 - 1}},
		{Room: "lobby", Vector: vector[:maxVector]},
		{Room: "lobby", Vector: vector},
		{Room: "lobby", Vector: vector[:2], Missing: seqs[:3]},
	} {
		raw, _ := proto.Marshal(&chatpb.Frame{Msg: &chatpb.Frame_Status{Status: st}})
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	// The other bounded fields, at their bounds and one over.
	rooms := make([]*chatpb.RoomMembership, maxRooms+1)
	envs := make([]*chatpb.Envelope, maxBatchEnvelopes+1)
	keys := make([]*chatpb.EncKey, maxEncKeysPerFrame+1)
	held := make([]*chatpb.RoomSetVersion, maxDigestHeld+1)
	haves := make([]*chatpb.OverlayHave, maxOverlayIDs+1)
	for i := range rooms {
		rooms[i] = &chatpb.RoomMembership{Name: "r"}
	}
	for i := range envs {
		envs[i] = &chatpb.Envelope{}
	}
	for i := range keys {
		keys[i] = &chatpb.EncKey{}
	}
	for i := range held {
		held[i] = &chatpb.RoomSetVersion{Origin: origin}
	}
	for i := range haves {
		haves[i] = &chatpb.OverlayHave{Origin: origin, Ids: make([]byte, 16), Rounds: []uint32{1}}
	}
	peers := make([]string, maxOverlayPeers+1)
	ids := make([][]byte, maxOverlayIDs+1)
	rounds := make([]uint32, maxOverlayIDs+1)
	for _, fr := range []*chatpb.Frame{
		{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Floors: vector[:maxVector]}}},
		{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Floors: vector}}},
		{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: envs[:maxRepairEnvelopes]}}},
		{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: envs[:maxRepairEnvelopes+1]}}},
		{Msg: &chatpb.Frame_RoomSet{RoomSet: &chatpb.RoomSet{Rooms: rooms[:maxRooms]}}},
		{Msg: &chatpb.Frame_RoomSet{RoomSet: &chatpb.RoomSet{Rooms: rooms}}},
		{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: envs[:maxBatchEnvelopes]}}},
		{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: envs}}},
		{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: keys[:maxEncKeysPerFrame]}}},
		{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: keys}}},
		{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Request: true, Held: held[:maxDigestHeld]}}},
		{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Request: true, Held: held}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 6, Peers: peers[:maxOverlayPeers]}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 6, Peers: peers}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Announces: []*chatpb.OverlayAnnounce{{}}}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 10, Ids: ids[:maxOverlayIDs]}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 10, Ids: ids}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Haves: haves[:maxOverlayIDs]}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Haves: haves}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Haves: []*chatpb.OverlayHave{{Origin: origin, Rounds: rounds[:maxOverlayIDs]}}}}},
		{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Kind: 9, Haves: []*chatpb.OverlayHave{{Origin: origin, Rounds: rounds}}}}},
	} {
		raw, _ := proto.Marshal(fr)
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	// Deps and stamped messages over the whole frame: envelopes each
	// within their bounds, at the frame's budget and one over.
	deps := make([]*chatpb.Dep, MaxDeps)
	for i := range deps {
		deps[i] = &chatpb.Dep{}
	}
	for _, k := range []int{maxFrameListEntries, maxFrameListEntries + 1} {
		var listed []*chatpb.Envelope
		for ; k > 0; k -= min(k, MaxDeps) {
			listed = append(listed, &chatpb.Envelope{Deps: deps[:min(k, MaxDeps)]})
		}
		for _, fr := range []*chatpb.Frame{
			{Msg: &chatpb.Frame_Batch{Batch: &chatpb.Batch{Envelopes: listed}}},
			{Msg: &chatpb.Frame_Repair{Repair: &chatpb.Repair{Room: "lobby", Envelopes: listed}}},
		} {
			raw, _ := proto.Marshal(fr)
			f.Add(raw)
			f.Add(raw[:len(raw)/2])
		}
	}
	half, _ := proto.Marshal(&chatpb.Frame{Msg: &chatpb.Frame_Status{Status: &chatpb.Status{Missing: seqs[:maxPullSeqs/2+1]}}})
	f.Add(append(half, half...))                // two occurrences merge
	f.Add([]byte{0x42, 0x04, 0x40, 1, 0x40, 2}) // unpacked missing seqs
	f.Add([]byte{0x42, 0x05, 0x42, 0x03, 1, 2, 0x80})
	f.Add([]byte{0x42, 0x02, 0x12, 0x00, 0x22, 0x00}) // an empty Dep, then a ping
	f.Add([]byte{0x42, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0xf2, 0x01, 0x06, 0x6a, 0x04, 0x1a, 0x02, 1, 2}) // an overlay have's packed rounds
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkFrameBounds(b)
		var fr chatpb.Frame
		if proto.Unmarshal(b, &fr) != nil {
			return
		}
		over := frameOverBound(&fr)
		if err == nil && over != "" {
			t.Fatalf("accepted a frame of %s", over)
		}
		raw, _ := proto.Marshal(&fr)
		if (checkFrameBounds(raw) != nil) != (over != "") {
			t.Fatalf("marshalled frame (%q over): refused %v", over, over == "")
		}
	})
}

// listBound is the bound a handler checks on a list of a frame: over the
// whole frame (the entries of every message holding it, as
// OverlayHave.rounds over an ihave's origins), or in each message holding
// it (each: an envelope's deps, wherever the envelope is).
type listBound struct {
	max  int
	each bool
}

// frameListBounds are the bounds the handlers check, by the path of field
// names from Frame to the list, written from the handlers and not from
// checkFrameBounds' table, so that the fuzzer can find a list missing
// from that table (TestFrameListBoundsCoverSchema keeps this one complete).
var frameListBounds = map[string]listBound{
	"envelope.deps":            {MaxDeps, true},
	"envelope.stamped":         {MaxStamped, true},
	"room_set.rooms":           {maxRooms, false},
	"room_set_digest.held":     {maxDigestHeld, false},
	"status.vector":            {maxVector, false},
	"status.missing":           {maxPullSeqs, false},
	"repair.floors":            {maxVector, false},
	"repair.envelopes":         {maxRepairEnvelopes, false},
	"repair.envelopes.deps":    {MaxDeps, true},
	"repair.envelopes.stamped": {MaxStamped, true},
	"batch.envelopes":          {maxBatchEnvelopes, false},
	"batch.envelopes.deps":     {MaxDeps, true},
	"batch.envelopes.stamped":  {MaxStamped, true},
	"enc_keys.keys":            {maxEncKeysPerFrame, false},
	"overlay.peers":            {maxOverlayPeers, false},
	"overlay.announces":        {0, false}, // protocol 6's: refused whatever its length
	"overlay.ids":              {maxOverlayIDs, false},
	"overlay.haves":            {maxOverlayIDs, false},
	"overlay.haves.rounds":     {maxOverlayIDs, false},
}

// frameListBudget names the lists of frameListBounds that handleBatch and
// handleRepair (and, for one envelope, validateEnvelope) also bound
// together, over the whole frame: an envelope's deps and stamped messages.
var frameListBudget = []string{
	"envelope.deps", "envelope.stamped",
	"repair.envelopes.deps", "repair.envelopes.stamped",
	"batch.envelopes.deps", "batch.envelopes.stamped",
}

// unboundedLarge is the most entries frameOverBound lets a list outside
// frameListBounds have: more means a list a peer can fill that nothing
// bounds before it is decoded.
const unboundedLarge = 16

// frameOverBound names a list of a decoded frame over its bound
// (frameListBounds), the lists of frameListBudget over
// maxFrameListEntries together, or a list without a bound holding more
// than unboundedLarge entries; "" if there is none. It walks every list of
// every message at every depth with protoreflect.
func frameOverBound(fr *chatpb.Frame) string {
	totals := map[string]int{}
	var over []string
	var walk func(m protoreflect.Message, path string)
	walk = func(m protoreflect.Message, path string) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			p := string(fd.Name())
			if path != "" {
				p = path + "." + p
			}
			switch {
			case fd.IsList():
				l := v.List()
				totals[p] += l.Len()
				if b, ok := frameListBounds[p]; ok && b.each && l.Len() > b.max {
					over = append(over, fmt.Sprintf("%d %s in one message", l.Len(), p))
				}
				if fd.Message() != nil {
					for i := range l.Len() {
						walk(l.Get(i).Message(), p)
					}
				}
			case fd.IsMap():
				totals[p] += v.Map().Len()
			case fd.Message() != nil:
				walk(v.Message(), p)
			}
			return true
		})
	}
	walk(fr.ProtoReflect(), "")
	lists := 0
	for _, p := range frameListBudget {
		lists += totals[p]
	}
	if lists > maxFrameListEntries {
		over = append(over, fmt.Sprintf("%d deps and stamped in all", lists))
	}
	for p, n := range totals {
		b, ok := frameListBounds[p]
		switch {
		case !ok && n > unboundedLarge:
			over = append(over, fmt.Sprintf("%d %s, a list without a bound", n, p))
		case ok && !b.each && n > b.max:
			over = append(over, fmt.Sprintf("%d %s", n, p))
		}
	}
	if len(over) == 0 {
		return ""
	}
	slices.Sort(over)
	return over[0]
}

// frameListBounds names every list a Frame can hold, at every depth, and
// nothing else: the fuzzer's oracle knows the bound of each list of the
// schema, and a list added to chat.proto fails here until it has one.
func TestFrameListBoundsCoverSchema(t *testing.T) {
	seen := map[string]bool{}
	var walk func(md protoreflect.MessageDescriptor, path string, depth int)
	walk = func(md protoreflect.MessageDescriptor, path string, depth int) {
		if depth > 8 {
			t.Fatalf("%s: message nesting deeper than 8", path)
		}
		fs := md.Fields()
		for i := range fs.Len() {
			fd := fs.Get(i)
			p := string(fd.Name())
			if path != "" {
				p = path + "." + p
			}
			if fd.IsList() || fd.IsMap() {
				seen[p] = true
				if _, ok := frameListBounds[p]; !ok {
					t.Errorf("list %s has no bound in frameListBounds", p)
				}
			}
			if fd.Message() != nil && !fd.IsMap() {
				walk(fd.Message(), p, depth+1)
			}
		}
	}
	walk((&chatpb.Frame{}).ProtoReflect().Descriptor(), "", 0)
	for p := range frameListBounds {
		if !seen[p] {
			t.Errorf("frameListBounds names %s, not a list of a frame", p)
		}
	}
	for _, p := range frameListBudget {
		if !seen[p] {
			t.Errorf("frameListBudget names %s, not a list of a frame", p)
		}
	}
}
