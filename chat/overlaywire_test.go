package chat

import (
	"bytes"
	"strings"
	"testing"

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
		{Kind: overlay.KindGossip, Peer: "00000000000000aa", ID: id, Round: 3, Payload: []byte("payload")},
		{Kind: overlay.KindIHave, Announces: []overlay.Announce{{ID: id, Origin: "00000000000000aa", Round: 2}}},
		{Kind: overlay.KindGraft, Peer: "00000000000000aa", IDs: []overlay.MsgID{id}},
		{Kind: overlay.KindPrune, Peer: "00000000000000aa"},
	}
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
		if !sameOverlay(got, m) {
			t.Errorf("%s: decoded %+v, want %+v", m.Kind, got, m)
		}
	}
	if !isProbe(probeFrame().GetOverlay()) {
		t.Error("a probe is not recognised")
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
	anns := make([]*chatpb.OverlayAnnounce, maxOverlayIDs+1)
	for i := range anns {
		anns[i] = &chatpb.OverlayAnnounce{Id: id, Origin: "a"}
	}
	for name, pb := range map[string]*chatpb.Overlay{
		"nil":              nil,
		"kind 0":           {},
		"unknown kind":     {Kind: uint32(overlay.NumKinds)},
		"huge kind":        {Kind: 1 << 31},
		"long peer":        {Kind: uint32(overlay.KindPrune), Peer: long},
		"ttl over a byte":  {Kind: uint32(overlay.KindForwardJoin), Peer: "a", Ttl: 256},
		"too many peers":   {Kind: uint32(overlay.KindShuffle), Peer: "a", Peers: strings.Split(strings.Repeat("a,", maxOverlayPeers)+"a", ",")},
		"empty peer":       {Kind: uint32(overlay.KindShuffleReply), Peers: []string{""}},
		"long list peer":   {Kind: uint32(overlay.KindShuffleReply), Peers: []string{long}},
		"short gossip id":  {Kind: uint32(overlay.KindGossip), Peer: "a", Id: id[:15]},
		"id on a prune":    {Kind: uint32(overlay.KindPrune), Peer: "a", Id: id},
		"huge payload":     {Kind: uint32(overlay.KindGossip), Peer: "a", Id: id, Payload: make([]byte, maxOverlayPayload+1)},
		"too many ids":     {Kind: uint32(overlay.KindGraft), Peer: "a", Ids: many(maxOverlayIDs+1, id)},
		"short graft id":   {Kind: uint32(overlay.KindGraft), Peer: "a", Ids: many(1, id[:3])},
		"too many ihave":   {Kind: uint32(overlay.KindIHave), Announces: anns},
		"nil announce":     {Kind: uint32(overlay.KindIHave), Announces: []*chatpb.OverlayAnnounce{nil}},
		"announce no orig": {Kind: uint32(overlay.KindIHave), Announces: []*chatpb.OverlayAnnounce{{Id: id}}},
		"probe with kind":  {Kind: uint32(overlay.KindJoin), Probe: true},
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
