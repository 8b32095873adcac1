package chat

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// overlaySamples are one message of each kind, as the machine sends them.
func overlaySamples() []overlay.Message {
	id := overlayMsgID("lobby", "00000000000000aa", 7)
	return []overlay.Message{
		{Kind: overlay.KindJoin},
		{Kind: overlay.KindForwardJoin, Peer: "00000000000000bb", TTL: 6},
		{Kind: overlay.KindNeighbor, High: true},
		{Kind: overlay.KindNeighborReply, Accept: true},
		{Kind: overlay.KindDisconnect},
		{Kind: overlay.KindShuffle, Peer: "00000000000000bb", TTL: 3, Peers: []string{"00000000000000bb", "00000000000000cc"}},
		{Kind: overlay.KindShuffleReply, Peers: []string{"00000000000000dd"}},
		{Kind: overlay.KindShuffleReply, Peer: "00000000000000bb", Peers: []string{"00000000000000dd"}},
		{Kind: overlay.KindGossip, Peer: "00000000000000aa", ID: id, Round: 3, Payload: gossipPayload("lobby", "00000000000000aa", 7)},
		{Kind: overlay.KindGossip, Peer: "00000000000000aa", ID: id, Round: 3, Payload: gossipPayload("lobby", "00000000000000aa", 7), Repaired: true},
		{Kind: overlay.KindIHave, Announces: []overlay.Announce{{ID: id, Origin: "00000000000000aa", Round: 2}}},
		{Kind: overlay.KindIHave, Announces: []overlay.Announce{
			{ID: id, Origin: "00000000000000aa", Round: 2},
			{ID: overlayMsgID("lobby", "00000000000000aa", 8), Origin: "00000000000000aa", Round: 2},
			{ID: overlayMsgID("lobby", "00000000000000bb", 1), Origin: "00000000000000bb", Round: 1},
			{ID: overlayMsgID("lobby", "00000000000000aa", 9), Origin: "00000000000000aa", Round: 4},
		}},
		{Kind: overlay.KindGraft, Peer: "00000000000000aa", IDs: []overlay.MsgID{id}},
		{Kind: overlay.KindPrune, Peer: "00000000000000aa"},
	}
}

// sameAnnounces reports whether a and b hold the same announcements, in
// any order (an IHave is grouped by origin on the wire).
func sameAnnounces(a, b []overlay.Announce) bool {
	key := func(x overlay.Announce) string { return fmt.Sprintf("%x/%s/%d", x.ID, x.Origin, x.Round) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

// gossipPayload is an envelope's encoding naming room, origin and seq
// (not signed: the wire tests do not verify it).
func gossipPayload(room, origin string, seq uint64) []byte {
	b, err := proto.Marshal(&chatpb.Envelope{Origin: origin, Room: room, Seq: seq, Body: []byte("hello")})
	if err != nil {
		panic(err)
	}
	return b
}

func sameOverlay(a, b overlay.Message) bool {
	ea, _ := proto.Marshal(overlayFrame(&a))
	eb, _ := proto.Marshal(overlayFrame(&b))
	return bytes.Equal(ea, eb)
}

// Every kind survives encoding and decoding unchanged.
func TestOverlayFrameRoundTrip(t *testing.T) {
	for _, m := range overlaySamples() {
		raw, err := proto.Marshal(overlayFrame(&m))
		if err != nil {
			t.Fatal(err)
		}
		var f chatpb.Frame
		if err := proto.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		got, err := decodeOverlay(f.GetOverlay())
		if err != nil {
			t.Fatalf("%s: %v", m.Kind, err)
		}
		if !sameOverlay(got, m) || got.Peer != m.Peer || got.ID != m.ID || got.Repaired != m.Repaired {
			t.Errorf("%s: decoded %+v, want %+v", m.Kind, got, m)
		}
		if m.Kind == overlay.KindIHave && !sameAnnounces(got.Announces, m.Announces) {
			t.Errorf("ihave: decoded %+v, want %+v", got.Announces, m.Announces)
		}
	}
	if !isProbe(probeFrame().GetOverlay()) {
		t.Error("a probe is not recognised")
	}
	if isProbe(&chatpb.Overlay{Probe: true, Repaired: true}) {
		t.Error("a probe with the repaired flag set is taken for a probe")
	}
}

// Each bound refuses the frame before the machine's copy is allocated.
func TestOverlayFrameBounds(t *testing.T) {
	id := make([]byte, 16)
	long := strings.Repeat("a", overlay.MaxPeerIDLen+1)
	many := func(k int, v []byte) [][]byte {
		out := make([][]byte, k)
		for i := range out {
			out[i] = v
		}
		return out
	}
	have := func(origin string, ids int, rounds ...uint32) *chatpb.OverlayHave {
		return &chatpb.OverlayHave{Origin: origin, Ids: make([]byte, 16*ids), Rounds: rounds}
	}
	manyHaves := make([]*chatpb.OverlayHave, maxOverlayIDs+1)
	for i := range manyHaves {
		manyHaves[i] = have("a", 1, 0)
	}
	good := gossipPayload("lobby", "00000000000000aa", 7)
	ihave := func(h ...*chatpb.OverlayHave) *chatpb.Overlay {
		return &chatpb.Overlay{Kind: uint32(overlay.KindIHave), Haves: h}
	}
	for name, pb := range map[string]*chatpb.Overlay{
		"nil":                               nil,
		"kind 0":                            {},
		"unknown kind":                      {Kind: uint32(overlay.NumKinds)},
		"huge kind":                         {Kind: 1 << 31},
		"long peer":                         {Kind: uint32(overlay.KindPrune), Peer: long},
		"ttl over a byte":                   {Kind: uint32(overlay.KindForwardJoin), Peer: "a", Ttl: 256},
		"too many peers":                    {Kind: uint32(overlay.KindShuffle), Peer: "a", Peers: strings.Split(strings.Repeat("a,", maxOverlayPeers)+"a", ",")},
		"empty peer":                        {Kind: uint32(overlay.KindShuffleReply), Peers: []string{""}},
		"long list peer":                    {Kind: uint32(overlay.KindShuffleReply), Peers: []string{long}},
		"gossip id (protocol 6)":            {Kind: uint32(overlay.KindGossip), Id: id, Payload: good},
		"gossip origin (protocol 6)":        {Kind: uint32(overlay.KindGossip), Peer: "00000000000000aa", Payload: good},
		"id on a prune":                     {Kind: uint32(overlay.KindPrune), Peer: "a", Id: id},
		"huge payload":                      {Kind: uint32(overlay.KindGossip), Payload: append(slices.Clone(good), make([]byte, maxOverlayPayload)...)},
		"gossip payload not protobuf":       {Kind: uint32(overlay.KindGossip), Payload: []byte{0xff, 0xff, 0xff}},
		"gossip payload truncated":          {Kind: uint32(overlay.KindGossip), Payload: good[:len(good)-3]},
		"gossip payload without origin":     {Kind: uint32(overlay.KindGossip), Payload: gossipPayload("lobby", "", 1)},
		"gossip payload long origin":        {Kind: uint32(overlay.KindGossip), Payload: gossipPayload("lobby", long, 1)},
		"gossip without payload":            {Kind: uint32(overlay.KindGossip)},
		"too many ids":                      {Kind: uint32(overlay.KindGraft), Peer: "a", Ids: many(maxOverlayIDs+1, id)},
		"short graft id":                    {Kind: uint32(overlay.KindGraft), Peer: "a", Ids: many(1, id[:3])},
		"protocol 6 announce":               {Kind: uint32(overlay.KindIHave), Announces: []*chatpb.OverlayAnnounce{{Id: id, Origin: "a"}}},
		"ids over the bound":                ihave(have("a", maxOverlayIDs+1, 0)),
		"ids over the bound in two origins": ihave(have("a", maxOverlayIDs/2, 0), have("b", maxOverlayIDs/2+1, 0)),
		"too many origins":                  ihave(manyHaves...),
		"huge ids field":                    ihave(&chatpb.OverlayHave{Origin: "a", Ids: make([]byte, maxFrameBytes), Rounds: []uint32{0}}),
		"nil have":                          ihave(nil),
		"have no origin":                    ihave(have("", 1, 0)),
		"have long origin":                  ihave(have(long, 1, 0)),
		"have no ids":                       ihave(have("a", 0, 0)),
		"have partial id":                   ihave(&chatpb.OverlayHave{Origin: "a", Ids: make([]byte, 17), Rounds: []uint32{0}}),
		"have no round":                     ihave(have("a", 2)),
		"have too few rounds":               ihave(have("a", 3, 1, 2)),
		"have too many rounds":              ihave(have("a", 1, 1, 2)),
		"haves on a graft":                  {Kind: uint32(overlay.KindGraft), Peer: "a", Haves: []*chatpb.OverlayHave{have("a", 1, 0)}},
		"probe with kind":                   {Kind: uint32(overlay.KindJoin), Probe: true},
		"probe with repaired":               {Probe: true, Repaired: true},
		"repaired on an ihave":              {Kind: uint32(overlay.KindIHave), Haves: []*chatpb.OverlayHave{have("a", 1, 0)}, Repaired: true},
		"repaired on a graft":               {Kind: uint32(overlay.KindGraft), Peer: "a", Ids: many(1, id), Repaired: true},
	} {
		if _, err := decodeOverlay(pb); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The message ID depends on each of room, origin and seq, and no two
// triples share an encoding (length prefixes).
func TestOverlayMsgID(t *testing.T) {
	base := overlayMsgID("ab", "c", 1)
	for _, other := range []overlay.MsgID{
		overlayMsgID("a", "bc", 1), overlayMsgID("ab", "c", 2), overlayMsgID("ab", "d", 1), overlayMsgID("ac", "c", 1),
	} {
		if other == base {
			t.Error("two messages share an overlay ID")
		}
	}
	if overlayMsgID("ab", "c", 1) != base {
		t.Error("the ID is not a function of (room, origin, seq)")
	}
}

// The driver's configuration is valid (newOverlayDriver would disable the
// overlay otherwise).
func TestOverlayConfig(t *testing.T) {
	n, err := New(Config{Nick: "a", BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown()
	if n.ovl.m == nil {
		t.Fatal("overlay machine not built")
	}
}

func FuzzOverlayFrame(f *testing.F) {
	for _, m := range overlaySamples() {
		raw, _ := proto.Marshal(overlayFrame(&m))
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	raw, _ := proto.Marshal(probeFrame())
	f.Add(raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr chatpb.Frame
		if proto.Unmarshal(b, &fr) != nil || fr.GetOverlay() == nil {
			return
		}
		pb := fr.GetOverlay()
		if isProbe(pb) {
			return
		}
		m, err := decodeOverlay(pb)
		if err != nil {
			return
		}
		// Accepted: within every bound, and the same after re-encoding.
		if m.Kind == 0 || int(m.Kind) >= overlay.NumKinds || len(m.Peer) > overlay.MaxPeerIDLen ||
			len(m.Peers) > maxOverlayPeers || len(m.Payload) > maxOverlayPayload ||
			len(m.Announces) > maxOverlayIDs || len(m.IDs) > maxOverlayIDs {
			t.Fatalf("accepted out of bounds: %+v", m)
		}
		again, err := proto.Marshal(overlayFrame(&m))
		if err != nil {
			t.Fatal(err)
		}
		var fr2 chatpb.Frame
		if err := proto.Unmarshal(again, &fr2); err != nil {
			t.Fatal(err)
		}
		m2, err := decodeOverlay(fr2.GetOverlay())
		if err != nil {
			t.Fatalf("accepted frame fails after re-encoding: %v", err)
		}
		if !sameOverlay(m, m2) {
			t.Fatalf("re-encoding changed %+v into %+v", m, m2)
		}
	})
}

// An IHave costs little per announced message: one sender's 20 messages
// per second reach a lazy neighbour batched over overlayLazyInterval,
// grouped by origin, IDs packed. Protocol 6 sent each message in an IHave
// of its own (a 50 ms batch) at about 71 bytes on the wire; this bounds
// it at 40 (measured: about 28).
func TestOverlayIHaveBytesPerAnnouncement(t *testing.T) {
	ids := []string{"00000000000000a0", "00000000000000a1", "00000000000000a2", "00000000000000a3", "00000000000000a4", "00000000000000a5"}
	nodes := map[string]*overlay.Node{}
	for i, id := range ids {
		cfg := overlay.DefaultConfig(id, uint64(i+1))
		cfg.ActiveSize = overlayActiveSize
		cfg.LazyInterval = overlayLazyInterval
		m, err := overlay.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = m
	}
	type sent struct {
		from string
		env  overlay.Envelope
	}
	var queue []sent
	var now time.Duration
	var ihaveBytes, announced int
	collect := func(id string) {
		for _, e := range nodes[id].Ready().Messages {
			queue = append(queue, sent{id, e})
		}
	}
	run := func() {
		for steps := 0; len(queue) > 0; steps++ {
			if steps > 100_000 {
				t.Fatal("the overlay did not quiesce")
			}
			q := queue[0]
			queue = queue[1:]
			// Through the wire encoding, as the driver sends it.
			raw, err := proto.Marshal(overlayFrame(&q.env.Msg))
			if err != nil {
				t.Fatal(err)
			}
			var f chatpb.Frame
			if err := proto.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			m, err := decodeOverlay(f.GetOverlay())
			if err != nil {
				t.Fatalf("%s frame does not decode: %v", q.env.Msg.Kind, err)
			}
			if m.Kind == overlay.KindIHave {
				// The frame, its 4-byte length, and a TLS 1.3 record's
				// header, content type and tag.
				ihaveBytes += len(raw) + 4 + 5 + 1 + 16
				announced += len(m.Announces)
			}
			nodes[q.env.To].Step(now, q.from, m)
			collect(q.env.To)
		}
	}
	tick := func(d time.Duration) {
		for end := now + d; now < end; {
			now += 10 * time.Millisecond
			for _, id := range ids {
				nodes[id].Tick(now)
				collect(id)
			}
			run()
		}
	}
	for _, id := range ids[1:] {
		nodes[id].Join(now, ids[0])
		collect(id)
		run()
	}
	tick(3 * time.Second)
	sender := ids[0]
	bcast := func(seq uint64) {
		id := overlayMsgID("lobby", sender, seq)
		if !nodes[sender].Broadcast(now, id, gossipPayload("lobby", sender, seq)) {
			t.Fatalf("broadcast %d refused", seq)
		}
		collect(sender)
		run()
	}
	// The first message builds the sender's tree (duplicates prune the
	// links that are not in it); then count what the lazy links cost.
	bcast(1)
	tick(time.Second)
	ihaveBytes, announced = 0, 0
	for seq := uint64(2); seq < 42; seq++ {
		bcast(seq)
		tick(50 * time.Millisecond)
	}
	tick(time.Second)
	if announced == 0 {
		t.Fatal("no announcement sent: no lazy link in the tree")
	}
	per := float64(ihaveBytes) / float64(announced)
	t.Logf("%d announcements in %d IHave bytes: %.1f bytes each", announced, ihaveBytes, per)
	if per > 40 {
		t.Errorf("an announcement costs %.1f bytes on the wire, want at most 40", per)
	}
}

// A gossip frame carries the payload and its hop count: the origin and
// the message ID are read from the payload (gossipKey), where protocol 6
// sent them beside it (36 bytes a copy).
func TestOverlayGossipFrameCarriesPayloadOnly(t *testing.T) {
	payload := gossipPayload("lobby", "00000000000000aa", 7)
	m := overlay.Message{Kind: overlay.KindGossip, Peer: "00000000000000aa", ID: overlayMsgID("lobby", "00000000000000aa", 7), Round: 3, Payload: payload}
	f := overlayFrame(&m)
	if size, max := proto.Size(f), len(payload)+10; size > max {
		t.Errorf("gossip frame of %d bytes for a %d-byte payload, want at most %d", size, len(payload), max)
	}
	got, err := decodeOverlay(f.GetOverlay())
	if err != nil {
		t.Fatal(err)
	}
	if got.Peer != m.Peer || got.ID != m.ID {
		t.Errorf("decoded origin %q id %x, want %q %x", got.Peer, got.ID, m.Peer, m.ID)
	}
}

// gossipKey reads what the protobuf decoder reads, also with a field
// repeated (the last wins) and unknown fields around.
func TestGossipKeyAgreesWithDecoder(t *testing.T) {
	var b []byte
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, "00000000000000bb")
	b = protowire.AppendTag(b, 99, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1)
	b = append(b, gossipPayload("lobby", "00000000000000aa", 7)...)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 9)
	origin, id, err := gossipKey(b)
	if err != nil || origin != "00000000000000aa" || id != overlayMsgID("lobby", "00000000000000aa", 9) {
		t.Errorf("gossipKey read %q %x (%v), want the last origin and seq", origin, id, err)
	}
	checkGossipKey(t, b)
	var env chatpb.Envelope
	if err := proto.Unmarshal(b, &env); err != nil || env.Seq != 9 || env.Origin != "00000000000000aa" {
		t.Fatalf("test payload decodes to %v (%v)", &env, err)
	}
}

func checkGossipKey(t *testing.T, b []byte) {
	t.Helper()
	origin, id, err := gossipKey(b)
	var env chatpb.Envelope
	if proto.Unmarshal(b, &env) != nil || err != nil {
		return
	}
	if origin != env.Origin || id != overlayMsgID(env.Room, env.Origin, env.Seq) {
		t.Fatalf("gossipKey read %q %x, the decoder %q/%s/%d", origin, id, env.Origin, env.Room, env.Seq)
	}
}

// FuzzGossipKey: wherever both gossipKey and the protobuf decoder accept
// a payload, they read the same origin, room and seq.
func FuzzGossipKey(f *testing.F) {
	f.Add(gossipPayload("lobby", "00000000000000aa", 7))
	f.Add(gossipPayload("", "a", 0))
	f.Add([]byte{0x12, 0x01, 'a', 0x12, 0x01, 'b', 0x18, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) { checkGossipKey(t, b) })
}

// FuzzOverlayHaves: an accepted ihave is within its bounds and packs
// back into the same announcements.
func FuzzOverlayHaves(f *testing.F) {
	pack := func(anns ...overlay.Announce) []byte {
		b, _ := proto.Marshal(&chatpb.Overlay{Kind: uint32(overlay.KindIHave), Haves: packHaves(anns)})
		return b
	}
	id := overlayMsgID("lobby", "00000000000000aa", 7)
	f.Add(pack(overlay.Announce{ID: id, Origin: "a", Round: 1}))
	f.Add(pack(overlay.Announce{ID: id, Origin: "a", Round: 1}, overlay.Announce{ID: id, Origin: "b", Round: 2},
		overlay.Announce{ID: id, Origin: "a", Round: 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var pb chatpb.Overlay
		if proto.Unmarshal(b, &pb) != nil {
			return
		}
		anns, err := unpackHaves(pb.Haves)
		if err != nil {
			return
		}
		if len(anns) > maxOverlayIDs {
			t.Fatalf("%d announcements accepted, bound %d", len(anns), maxOverlayIDs)
		}
		again, err := unpackHaves(packHaves(anns))
		if err != nil || !sameAnnounces(again, anns) {
			t.Fatalf("repacked %+v into %+v (%v)", anns, again, err)
		}
	})
}

// What the lazy links cost per delivery, on the wire, with the driver's
// machine settings and links whose frames take 1 to 20 ms (a loaded
// machine's scheduling, as chat peers see it): both ends of a lazy link
// hold most messages, and an announcement to a neighbour that announced
// the same message to us is not sent (overlay.Node's skipHolders). 30
// peers, one sender at 20 msgs/s: 41 bytes of IHave per delivery before
// that, about 25 after.
func TestOverlayIHaveBytesPerDelivery(t *testing.T) {
	const peers = 30
	ids := make([]string, peers)
	nodes := map[string]*overlay.Node{}
	for i := range ids {
		ids[i] = fmt.Sprintf("%016x", uint64(i+1)*0x9e3779b97f4a7c15)
		// As newOverlayDriver configures the machine.
		cfg := overlay.DefaultConfig(ids[i], uint64(i+1))
		cfg.ActiveSize = overlayActiveSize
		cfg.GraftTimeout, cfg.GraftRetry = 2*time.Second, time.Second
		cfg.OptimizeThreshold = 0
		cfg.LazyInterval = overlayLazyInterval
		m, err := overlay.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nodes[ids[i]] = m
	}
	type inFlight struct {
		at   time.Duration
		from string
		env  overlay.Envelope
	}
	var queue []inFlight
	var now time.Duration
	var seed uint64 = 1
	delay := func() time.Duration { // 1 to 20 ms, deterministic
		seed = seed*6364136223846793005 + 1442695040888963407
		return time.Duration(1+(seed>>33)%20) * time.Millisecond
	}
	var ihaveBytes, deliveries int
	collect := func(id string) {
		rd := nodes[id].Ready()
		deliveries += len(rd.Deliveries)
		for _, e := range rd.Messages {
			raw, err := proto.Marshal(overlayFrame(&e.Msg))
			if err != nil {
				t.Fatal(err)
			}
			if e.Msg.Kind == overlay.KindIHave {
				ihaveBytes += len(raw) + 4 + 5 + 1 + 16 // length, TLS record header, type, tag
			}
			var f chatpb.Frame
			if err := proto.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			m, err := decodeOverlay(f.GetOverlay())
			if err != nil {
				t.Fatalf("%s frame does not decode: %v", e.Msg.Kind, err)
			}
			// Frames of one link keep their order (TCP).
			at := now + delay()
			for _, q := range queue {
				if q.from == id && q.env.To == e.To && q.at > at {
					at = q.at
				}
			}
			queue = append(queue, inFlight{at: at, from: id, env: overlay.Envelope{To: e.To, Msg: m}})
		}
	}
	step := func(d time.Duration, each func()) {
		for end := now + d; now < end; {
			now += time.Millisecond
			if each != nil {
				each()
			}
			for len(queue) > 0 {
				i := slices.IndexFunc(queue, func(q inFlight) bool { return q.at <= now })
				if i < 0 {
					break
				}
				q := queue[i]
				queue = slices.Delete(queue, i, i+1)
				nodes[q.env.To].Step(now, q.from, q.env.Msg)
				collect(q.env.To)
			}
			for _, id := range ids {
				if dl := nodes[id].NextDeadline(); dl != 0 && dl <= now {
					nodes[id].Tick(now)
					collect(id)
				}
			}
		}
	}
	for i, id := range ids[1:] {
		nodes[id].Join(now, ids[i/2])
		collect(id)
		step(20*time.Millisecond, nil)
	}
	step(5*time.Second, nil)
	sender := ids[0]
	seq := uint64(0)
	bcast := func() {
		seq++
		if !nodes[sender].Broadcast(now, overlayMsgID("lobby", sender, seq), gossipPayload("lobby", sender, seq)) {
			t.Fatalf("broadcast %d refused", seq)
		}
		collect(sender)
	}
	// The first messages build the sender's tree; then count.
	bcast()
	step(2*time.Second, nil)
	ihaveBytes, deliveries = 0, 0
	k := 0
	step(5*time.Second, func() {
		if k++; k%50 == 0 { // 20 msgs/s
			bcast()
		}
	})
	step(3*time.Second, nil)
	if want := 100 * (peers - 1); deliveries != want {
		t.Fatalf("%d deliveries, want %d", deliveries, want)
	}
	per := float64(ihaveBytes) / float64(deliveries)
	var skipped uint64
	for _, m := range nodes {
		skipped += m.Stats().LazySkipped
	}
	t.Logf("%d IHave bytes for %d deliveries: %.1f per delivery (%d announcements skipped)", ihaveBytes, deliveries, per, skipped)
	if per > 55 {
		t.Errorf("IHave costs %.1f bytes on the wire per delivery, want at most 55", per)
	}
}
