package peerster

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The golden encodings below were worked out by hand from the rules in
// wire.go, not produced by our encoder, so a test failure means the
// encoder (or decoder) disagrees with dedis/protobuf's rules:
//
//	tag = field<<3 | wire type: 0x0a = field 1 bytes, 0x10 = field 2
//	varint, 0x12 = field 2 bytes, 0x1a = field 3 bytes.
var goldens = []struct {
	name string
	pkt  GossipPacket
	hex  string
}{
	{
		// SimpleMessage body: 0a 01 "A" | 12 09 "1.2.3.4:5" | 1a 02 "hi"
		// = 3 + 11 + 4 = 18 (0x12) bytes, embedded as field 1.
		name: "simple",
		pkt:  GossipPacket{Simple: &SimpleMessage{OriginalName: "A", RelayPeerAddr: "1.2.3.4:5", Contents: "hi"}},
		hex:  "0a12" + "0a0141" + "1209312e322e332e343a35" + "1a026869",
	},
	{
		// Plain fields are written even when zero: three empty fields.
		name: "simple zero",
		pkt:  GossipPacket{Simple: &SimpleMessage{}},
		hex:  "0a06" + "0a00" + "1200" + "1a00",
	},
	{
		// RumorMessage body: 0a 01 "E" | 10 01 | 1a 02 "hi" = 9 bytes,
		// embedded as field 2.
		name: "rumor",
		pkt:  GossipPacket{Rumor: &RumorMessage{Origin: "E", ID: 1, Text: "hi"}},
		hex:  "1209" + "0a0145" + "1001" + "1a026869",
	},
	{
		// ID 300 = 0b1_0010_1100: low seven bits 0x2c with the
		// continuation bit (0xac), then 0x02.
		name: "rumor id 300",
		pkt:  GossipPacket{Rumor: &RumorMessage{Origin: "nodeA", ID: 300, Text: "Hello"}},
		hex:  "1211" + "0a056e6f646541" + "10ac02" + "1a0548656c6c6f",
	},
	{
		// 2^32-1 as a varint: five bytes, ff ff ff ff 0f.
		name: "rumor max id",
		pkt:  GossipPacket{Rumor: &RumorMessage{ID: 0xffffffff}},
		hex:  "120a" + "0a00" + "10ffffffff0f" + "1a00",
	},
	{
		// Want [{E,2},{B,1}]: each PeerStatus 0a 01 X 10 N (5 bytes) is
		// embedded as field 1 of StatusPacket (7 bytes each, 14 = 0x0e),
		// and StatusPacket as field 3.
		name: "status",
		pkt:  GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{Identifier: "E", NextID: 2}, {Identifier: "B", NextID: 1}}}},
		hex:  "1a0e" + "0a050a01451002" + "0a050a01421001",
	},
	{
		// An empty vector: the non-nil pointer is written as an empty
		// embedded message; the empty slice writes nothing.
		name: "status empty",
		pkt:  GossipPacket{Status: &StatusPacket{}},
		hex:  "1a00",
	},
}

func TestGoldenEncoding(t *testing.T) {
	for _, tc := range goldens {
		t.Run(tc.name, func(t *testing.T) {
			got := hex.EncodeToString(tc.pkt.Marshal())
			if got != tc.hex {
				t.Errorf("encode: got %s, want %s", got, tc.hex)
			}
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			var p GossipPacket
			if err := p.Unmarshal(b); err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			want := tc.pkt
			if want.Status != nil && want.Status.Want == nil {
				want.Status = &StatusPacket{}
			}
			if !reflect.DeepEqual(p, want) {
				t.Errorf("decode: got %+v, want %+v", p, want)
			}
		})
	}
}

func TestGoldenClientMessage(t *testing.T) {
	// Message{Text: "Hello"}: 0a 05 "Hello".
	const golden = "0a0548656c6c6f"
	m := Message{Text: "Hello"}
	if got := hex.EncodeToString(m.Marshal()); got != golden {
		t.Errorf("encode: got %s, want %s", got, golden)
	}
	b, _ := hex.DecodeString(golden)
	var d Message
	if err := d.Unmarshal(b); err != nil || d.Text != "Hello" {
		t.Errorf("decode: got %+v, %v", d, err)
	}
	// Zero value still written.
	if got := hex.EncodeToString((&Message{}).Marshal()); got != "0a00" {
		t.Errorf("encode empty: got %s, want 0a00", got)
	}
}

func TestDecodeLenient(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want GossipPacket
	}{
		{
			// Field 2 (ID) missing: zero. Unknown field 9 (varint) and
			// 10 (fixed32) skipped.
			name: "missing and unknown fields",
			hex:  "120e" + "0a0145" + "4801" + "5501020304" + "1a026869",
			want: GossipPacket{Rumor: &RumorMessage{Origin: "E", Text: "hi"}},
		},
		{
			// Unknown field 4 of GossipPacket (a future packet type
			// next to a rumor) is skipped.
			name: "unknown packet field",
			hex:  "22020800" + "1209" + "0a0145" + "1001" + "1a026869",
			want: GossipPacket{Rumor: &RumorMessage{Origin: "E", ID: 1, Text: "hi"}},
		},
		{
			// A repeated scalar keeps its last value.
			name: "repeated scalar",
			hex:  "1206" + "0a0141" + "0a0142",
			want: GossipPacket{Rumor: &RumorMessage{Origin: "B"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			var p GossipPacket
			if err := p.Unmarshal(b); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(p, tc.want) {
				t.Errorf("got %+v, want %+v", p, tc.want)
			}
		})
	}
}

func TestDecodeHostile(t *testing.T) {
	manyEntries := strings.Repeat("0a00", MaxStatusEntries+1)
	n := len(manyEntries) / 2
	// Length of the StatusPacket body as a varint (n < 2^14).
	lenVarint := hex.EncodeToString([]byte{byte(n&0x7f | 0x80), byte(n >> 7)})
	for _, tc := range []struct {
		name string
		hex  string
		want error
	}{
		{"empty packet", "", ErrMalformed},
		{"two fields set", "1a00" + "1206" + "0a0010001a00", ErrMalformed},
		{"truncated tag", "12", ErrMalformed},
		{"length past the end", "1209" + "0a0145", ErrMalformed},
		{"varint too long", "1a0b" + "0a09" + "10ffffffffffffffffff", ErrMalformed},
		{"field number zero", "0200", ErrMalformed},
		{"lone end group", "1c", ErrMalformed},
		{"invalid utf-8", "1205" + "0a03ffc041", ErrMalformed},
		{"rumor as varint", "1001", ErrWrongType},
		{"origin as varint", "1202" + "0801", ErrWrongType},
		{"id as string", "1204" + "12024142", ErrWrongType},
		{"id over uint32", "1206" + "108080808010", ErrWrongType},
		{"status entry as fixed32", "1a05" + "0d01020304", ErrWrongType},
		{"next id as fixed64", "1a0b" + "0a09" + "110102030405060708", ErrWrongType},
		{"too many status entries", "1a" + lenVarint + manyEntries, ErrTooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := hex.DecodeString(tc.hex)
			if err != nil {
				t.Fatal(err)
			}
			var p GossipPacket
			err = p.Unmarshal(b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes to the packet decoder: it must never
// panic, and whatever it accepts must survive a round trip through our
// encoder unchanged.
func FuzzDecode(f *testing.F) {
	for _, tc := range goldens {
		f.Add(tc.pkt.Marshal())
	}
	f.Add([]byte{})
	f.Add([]byte{0x1a, 0x05, 0x0d, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p GossipPacket
		if err := p.Unmarshal(b); err != nil {
			return
		}
		var q GossipPacket
		if err := q.Unmarshal(p.Marshal()); err != nil {
			t.Fatalf("re-decode of an accepted packet: %v", err)
		}
		// An empty vector decodes as nil whichever way it was written.
		for _, x := range []*GossipPacket{&p, &q} {
			if x.Status != nil && len(x.Status.Want) == 0 {
				x.Status.Want = nil
			}
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip: got %+v, want %+v", q, p)
		}
		var m Message
		_ = m.Unmarshal(b)
	})
}
