package chat

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

func testIdentity(tb testing.TB) *Identity {
	tb.Helper()
	id, err := NewIdentity()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func signedChat(id *Identity, body string) *chatpb.Envelope {
	e := &chatpb.Envelope{
		Seq: 7, Room: "lobby", Kind: chatpb.Kind_KIND_CHAT, Lamport: 3, SentUnixNano: 1_700_000_000_000_000_000,
		Body: []byte(body), Nick: "alice",
		Deps: []*chatpb.Dep{{Origin: "0000000000000001", Seq: 4}, {Origin: "00000000000000ff", Seq: 9}},
	}
	SignEnvelope(id, e)
	return e
}

func TestEnvelopeSignVerify(t *testing.T) {
	id := testIdentity(t)
	e := signedChat(id, "hello")
	if err := CheckEnvelope(e); err != nil {
		t.Fatalf("genuine envelope: %v", err)
	}
	// Survives a protobuf round trip (what a forwarder or a store does).
	b, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeChecked(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !proto.Equal(back, e) {
		t.Error("round trip changed the envelope")
	}
}

func TestEnvelopeAlteredFieldsAreForged(t *testing.T) {
	id := testIdentity(t)
	other := testIdentity(t)
	alterations := []struct {
		name  string
		alter func(e *chatpb.Envelope)
	}{
		{"seq", func(e *chatpb.Envelope) { e.Seq++ }},
		{"room", func(e *chatpb.Envelope) { e.Room = "other" }},
		{"kind", func(e *chatpb.Envelope) { e.Kind = chatpb.Kind_KIND_SYSTEM }},
		{"lamport", func(e *chatpb.Envelope) { e.Lamport++ }},
		{"dep seq", func(e *chatpb.Envelope) { e.Deps[0].Seq++ }},
		{"dep dropped", func(e *chatpb.Envelope) { e.Deps = e.Deps[1:] }},
		{"sent time", func(e *chatpb.Envelope) { e.SentUnixNano-- }},
		{"body", func(e *chatpb.Envelope) { e.Body = []byte("hellO") }},
		{"nick", func(e *chatpb.Envelope) { e.Nick = "mallory" }},
		{"signature bit", func(e *chatpb.Envelope) { e.Signature[0] ^= 1 }},
		{"signature cut", func(e *chatpb.Envelope) { e.Signature = e.Signature[:10] }},
		{"other origin key", func(e *chatpb.Envelope) { e.OriginKey = other.Pub }},
		{"other origin", func(e *chatpb.Envelope) { e.Origin = other.ID }},
		{"resigned by other", func(e *chatpb.Envelope) { e.Signature = other.Sign(SigningBytes(e)) }},
	}
	for _, tc := range alterations {
		t.Run(tc.name, func(t *testing.T) {
			e := signedChat(id, "hello")
			tc.alter(e)
			if err := CheckEnvelope(e); !errors.Is(err, ErrForged) {
				t.Errorf("got %v, want ErrForged", err)
			}
		})
	}
	// The sequencer fields, on the kinds that carry them.
	peer := "00000000000000aa"
	stamp := func() *chatpb.Envelope {
		e := &chatpb.Envelope{Seq: 9, Room: "dev", Kind: chatpb.Kind_KIND_STAMP, Epoch: 2, Prev: peer, Cut: 4, Global: 10,
			Stamped: []*chatpb.MsgRef{{Origin: peer, Seq: 5}, {Origin: peer, Seq: 6}}}
		SignEnvelope(id, e)
		return e
	}
	sync := func() *chatpb.Envelope {
		e := &chatpb.Envelope{Seq: 9, Room: "dev", Kind: chatpb.Kind_KIND_SYNC, Epoch: 2, Prev: peer, Cut: 4, Candidate: "00000000000000bb"}
		SignEnvelope(id, e)
		return e
	}
	for name, e := range map[string]*chatpb.Envelope{
		"stamp epoch":  func() *chatpb.Envelope { e := stamp(); e.Epoch++; return e }(),
		"stamp prev":   func() *chatpb.Envelope { e := stamp(); e.Prev = "00000000000000cc"; return e }(),
		"stamp cut":    func() *chatpb.Envelope { e := stamp(); e.Cut++; return e }(),
		"stamp global": func() *chatpb.Envelope { e := stamp(); e.Global++; return e }(),
		"stamped order": func() *chatpb.Envelope {
			e := stamp()
			e.Stamped[0], e.Stamped[1] = e.Stamped[1], e.Stamped[0]
			return e
		}(),
		"stamped dropped": func() *chatpb.Envelope { e := stamp(); e.Stamped = e.Stamped[:1]; return e }(),
		"sync candidate":  func() *chatpb.Envelope { e := sync(); e.Candidate = "00000000000000cc"; return e }(),
		"sync cut":        func() *chatpb.Envelope { e := sync(); e.Cut--; return e }(),
		"direct recipient": func() *chatpb.Envelope {
			e := &chatpb.Envelope{Seq: 3, Room: "lobby", Kind: chatpb.Kind_KIND_DIRECT, To: peer, Body: []byte("psst")}
			SignEnvelope(id, e)
			e.To = "00000000000000cc"
			return e
		}(),
		"ack ref": func() *chatpb.Envelope {
			e := &chatpb.Envelope{Seq: 3, Room: "lobby", Kind: chatpb.Kind_KIND_ACK, Ref: &chatpb.MsgRef{Origin: peer, Seq: 2}}
			SignEnvelope(id, e)
			e.Ref.Seq = 3
			return e
		}(),
		"stamp unchanged": nil,
	} {
		if e == nil {
			if err := CheckEnvelope(stamp()); err != nil {
				t.Errorf("genuine stamp: %v", err)
			}
			continue
		}
		if err := CheckEnvelope(e); !errors.Is(err, ErrForged) {
			t.Errorf("%s: got %v, want ErrForged", name, err)
		}
	}
}

func TestEnvelopeInvalid(t *testing.T) {
	id := testIdentity(t)
	cases := []struct {
		name  string
		alter func(e *chatpb.Envelope)
	}{
		{"version", func(e *chatpb.Envelope) { e.Version = 2 }},
		{"seq zero", func(e *chatpb.Envelope) { e.Seq = 0 }},
		{"empty room", func(e *chatpb.Envelope) { e.Room = "" }},
		{"room with space", func(e *chatpb.Envelope) { e.Room = "a b" }},
		{"room too long", func(e *chatpb.Envelope) { e.Room = strings.Repeat("r", 65) }},
		{"unknown kind", func(e *chatpb.Envelope) { e.Kind = 99 }},
		{"unspecified kind", func(e *chatpb.Envelope) { e.Kind = chatpb.Kind_KIND_UNSPECIFIED }},
		{"body too large", func(e *chatpb.Envelope) { e.Body = make([]byte, MaxBodyBytes+1) }},
		{"body not utf8", func(e *chatpb.Envelope) { e.Body = []byte{0xff, 0xfe} }},
		{"deps unsorted", func(e *chatpb.Envelope) { e.Deps[0], e.Deps[1] = e.Deps[1], e.Deps[0] }},
		{"deps repeated", func(e *chatpb.Envelope) { e.Deps[1].Origin = e.Deps[0].Origin }},
		{"dep bad origin", func(e *chatpb.Envelope) { e.Deps[0].Origin = "zz" }},
		{"too many deps", func(e *chatpb.Envelope) { e.Deps = make([]*chatpb.Dep, MaxDeps+1) }},
		{"bad origin", func(e *chatpb.Envelope) { e.Origin = "ALICE" }},
		{"bad nick", func(e *chatpb.Envelope) { e.Nick = "a b" }},
		{"chat with recipient", func(e *chatpb.Envelope) { e.To = "0000000000000001" }},
		{"direct without recipient", func(e *chatpb.Envelope) { e.Kind = chatpb.Kind_KIND_DIRECT }},
		{"receipt with body", func(e *chatpb.Envelope) {
			e.Kind, e.To, e.Ref = chatpb.Kind_KIND_RECEIPT, "0000000000000001", &chatpb.MsgRef{Origin: "0000000000000001", Seq: 1}
		}},
		{"receipt without ref", func(e *chatpb.Envelope) { e.Kind, e.Body, e.To = chatpb.Kind_KIND_RECEIPT, nil, "0000000000000001" }},
		{"chat with ref", func(e *chatpb.Envelope) { e.Ref = &chatpb.MsgRef{Origin: "0000000000000001", Seq: 1} }},
		{"ref seq 0", func(e *chatpb.Envelope) {
			e.Kind, e.Body, e.Ref = chatpb.Kind_KIND_ACK, nil, &chatpb.MsgRef{Origin: "0000000000000001"}
		}},
		{"stamp without epoch", func(e *chatpb.Envelope) { e.Kind, e.Body, e.Global = chatpb.Kind_KIND_STAMP, nil, 1 }},
		{"stamp without global", func(e *chatpb.Envelope) {
			e.Kind, e.Body, e.Epoch, e.Stamped = chatpb.Kind_KIND_STAMP, nil, 1, []*chatpb.MsgRef{{Origin: "0000000000000001", Seq: 1}}
		}},
		{"stamp with bad entry", func(e *chatpb.Envelope) {
			e.Kind, e.Body, e.Global, e.Stamped = chatpb.Kind_KIND_STAMP, nil, 1, []*chatpb.MsgRef{{Origin: "x", Seq: 1}}
		}},
		{"too many stamped", func(e *chatpb.Envelope) {
			e.Kind, e.Body, e.Global = chatpb.Kind_KIND_STAMP, nil, 1
			for i := 0; i <= MaxStamped; i++ {
				e.Stamped = append(e.Stamped, &chatpb.MsgRef{Origin: "0000000000000001", Seq: uint64(i + 1)})
			}
		}},
		{"chat with epoch", func(e *chatpb.Envelope) { e.Epoch = 1 }},
		{"chat with global", func(e *chatpb.Envelope) { e.Global = 1 }},
		{"sync without candidate", func(e *chatpb.Envelope) { e.Kind, e.Body = chatpb.Kind_KIND_SYNC, nil }},
		{"chat with candidate", func(e *chatpb.Envelope) { e.Candidate = "0000000000000001" }},
		{"bad prev", func(e *chatpb.Envelope) {
			e.Kind, e.Body, e.Candidate, e.Prev = chatpb.Kind_KIND_SYNC, nil, "0000000000000001", "p"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := signedChat(id, "hello")
			tc.alter(e)
			e.Signature = id.Sign(SigningBytes(e)) // validly signed, still refused
			if err := CheckEnvelope(e); !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v, want ErrInvalid", err)
			}
		})
	}
	if err := CheckEnvelope(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil envelope: %v", err)
	}
}

func TestEnvelopeKindsThatFit(t *testing.T) {
	id := testIdentity(t)
	peer := "00000000000000aa"
	ref := &chatpb.MsgRef{Origin: peer, Seq: 3}
	for _, e := range []*chatpb.Envelope{
		{Seq: 1, Room: "lobby", Kind: chatpb.Kind_KIND_DIRECT, To: peer, Body: []byte("psst")},
		{Seq: 2, Room: "lobby", Kind: chatpb.Kind_KIND_RECEIPT, To: peer, Ref: ref},
		{Seq: 3, Room: "dev", Kind: chatpb.Kind_KIND_ACK, Ref: ref, Lamport: 9},
		{Seq: 4, Room: "dev", Kind: chatpb.Kind_KIND_ACK, Lamport: 10},
		{Seq: 6, Room: "dev", Kind: chatpb.Kind_KIND_STAMP, Epoch: 2, Prev: peer, Cut: 7, Global: 12, Stamped: []*chatpb.MsgRef{ref, {Origin: peer, Seq: 4}}},
		{Seq: 7, Room: "dev", Kind: chatpb.Kind_KIND_SYNC, Epoch: 2, Prev: peer, Cut: 7, Candidate: "00000000000000bb"},
		{Seq: 5, Room: "dev", Kind: chatpb.Kind_KIND_SYSTEM, Body: []byte("joined #dev")},
	} {
		SignEnvelope(id, e)
		if err := CheckEnvelope(e); err != nil {
			t.Errorf("%v: %v", e.Kind, err)
		}
	}
}

// The canonical encoding must not let two different envelopes share
// signing bytes (e.g. by moving bytes between adjacent strings).
func TestSigningBytesUnambiguous(t *testing.T) {
	a := &chatpb.Envelope{Room: "ab", Nick: "c"}
	b := &chatpb.Envelope{Room: "a", Nick: "bc"}
	if string(SigningBytes(a)) == string(SigningBytes(b)) {
		t.Error("room/nick boundary is ambiguous")
	}
	c := &chatpb.Envelope{Deps: []*chatpb.Dep{{Origin: "x", Seq: 1}}}
	d := &chatpb.Envelope{Ref: &chatpb.MsgRef{Origin: "x", Seq: 1}}
	e := &chatpb.Envelope{Stamped: []*chatpb.MsgRef{{Origin: "x", Seq: 1}}}
	if string(SigningBytes(c)) == string(SigningBytes(d)) || string(SigningBytes(d)) == string(SigningBytes(e)) {
		t.Error("deps, ref and stamped are ambiguous")
	}
	f := &chatpb.Envelope{Prev: "ab", Candidate: "c"}
	g := &chatpb.Envelope{Prev: "a", Candidate: "bc"}
	if string(SigningBytes(f)) == string(SigningBytes(g)) {
		t.Error("prev/candidate boundary is ambiguous")
	}
}

func TestNormalizeRoom(t *testing.T) {
	for in, want := range map[string]string{"": "lobby", "#Dev": "dev", " lobby ": "lobby", "a.b_c-1": "a.b_c-1"} {
		got, err := NormalizeRoom(in)
		if err != nil || got != want {
			t.Errorf("NormalizeRoom(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"a b", "é", strings.Repeat("x", 65), "a/b", "##dev"} {
		if got, err := NormalizeRoom(bad); err == nil {
			t.Errorf("NormalizeRoom(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseMsgID(t *testing.T) {
	id := hearsay.MsgID{Origin: "0123456789abcdef", Seq: 42}
	back, err := hearsay.ParseMsgID(id.String())
	if err != nil || back != id {
		t.Fatalf("round trip %v: %v, %v", id, back, err)
	}
	for _, bad := range []string{"", "x/1", "0123456789abcdef/0", "0123456789abcdef/-1", "0123456789abcdef", "0123456789abcdef/1/2"} {
		if _, err := hearsay.ParseMsgID(bad); err == nil {
			t.Errorf("hearsay.ParseMsgID(%q) accepted", bad)
		}
	}
}

func BenchmarkEnvelopeSign(b *testing.B) {
	id := testIdentity(b)
	body := []byte(strings.Repeat("a typical chat line ", 5))
	b.ReportAllocs()
	for b.Loop() {
		e := &chatpb.Envelope{Seq: 1, Room: "lobby", Kind: chatpb.Kind_KIND_CHAT, Lamport: 1, Body: body, Nick: "alice"}
		SignEnvelope(id, e)
		if _, err := proto.Marshal(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeVerify(b *testing.B) {
	id := testIdentity(b)
	e := signedChat(id, strings.Repeat("a typical chat line ", 5))
	raw, err := proto.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeChecked(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// decodeChecked decodes a received envelope as the receive pipeline
// does: the stored-form checks (decodeStored), then the signature.
func decodeChecked(b []byte) (*chatpb.Envelope, error) {
	e, err := decodeStored(b)
	if err != nil {
		return nil, err
	}
	if err := CheckEnvelope(e); err != nil {
		return nil, err
	}
	return e, nil
}

// A message stored under the nick rule of protocol 3 stays readable from
// the log, while the same envelope arriving now is refused.
func TestStoredEnvelopeKeepsOldNickRule(t *testing.T) {
	id := testIdentity(t)
	e := signedChat(id, "hi")
	e.Nick = "bоb" // Cyrillic о: letters only (protocol 3), mixed scripts (now)
	SignEnvelope(id, e)
	raw, err := proto.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckEnvelope(e); err == nil {
		t.Fatal("an arriving envelope with a mixed-script nick was accepted")
	}
	got, err := decodeStored(raw)
	if err != nil {
		t.Fatalf("stored envelope with an old-rule nick: %v", err)
	}
	if got.Nick != e.Nick || string(got.Body) != "hi" {
		t.Errorf("decoded nick %q body %q, want %q %q", got.Nick, got.Body, e.Nick, "hi")
	}
	e.Nick = "b\u200bob" // never a valid nick: still refused from the log
	raw, _ = proto.Marshal(e)
	if _, err := decodeStored(raw); err == nil {
		t.Error("a stored nick with a zero-width space decoded")
	}
}
