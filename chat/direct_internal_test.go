package chat

import (
	"crypto/hpke"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// directNode is an unstarted node (no network) for feeding frames to, with
// a data directory when dir is not empty.
func directNode(tb testing.TB, nick, dir string, dc DirectConfig) *Node {
	tb.Helper()
	n, err := New(Config{Nick: nick, DataDir: dir, EventBuffer: 1024, Direct: dc})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// sealBody signs body with signer (unless it carries a signature) and seals
// it to pub for sealed recipient to and ID id.
func sealBody(tb testing.TB, signer *Identity, pub hpke.PublicKey, to string, id []byte, body *chatpb.DirectBody) *chatpb.Sealed {
	tb.Helper()
	if body.Signature == nil {
		body.Signature = signer.Sign(directBodySigningBytes(body))
	}
	pt, err := proto.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	ct, err := hpke.Seal(pub, directKDF, directAEAD, sealInfo(to, id), pt)
	if err != nil {
		tb.Fatal(err)
	}
	return &chatpb.Sealed{Id: id, To: to, SentUnixNano: body.SentUnixNano, Ciphertext: ct}
}

func newDirectID(b byte) []byte {
	id := make([]byte, directIDBytes)
	id[0], id[15] = b, b
	return id
}

// genuine is a direct message from sender to n, its ID derived from the
// sender and a nonce made of idb (ownID).
func genuine(tb testing.TB, sender *Identity, n *Node, idb byte, text string) *chatpb.Sealed {
	id, nonce := ownID(sender, idb)
	return sealBody(tb, sender, n.dm.key.priv.PublicKey(), n.ID(), id, &chatpb.DirectBody{
		Origin: sender.ID, OriginKey: sender.Pub, To: n.ID(), Id: id, Nonce: nonce, SentUnixNano: time.Now().UnixNano(), Nick: "alice", Text: text})
}

// ownID returns a message ID of sender's and its nonce (made of b).
func ownID(sender *Identity, b byte) (id, nonce []byte) {
	nonce = newDirectID(b)
	return deriveDirectID(sender.ID, nonce), nonce
}

func directFrom(s *chatpb.Sealed, hold bool) *chatpb.Frame { return directFrame(s, hold) }

func testID(tb testing.TB) *Identity {
	tb.Helper()
	id, err := NewIdentity()
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func TestDirectKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadOrCreateDirectKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadOrCreateDirectKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(k1.pub) != string(k2.pub) || k1.issued != k2.issued || len(k1.pub) != encKeyBytes {
		t.Fatalf("reloaded key differs (%d bytes)", len(k1.pub))
	}
	path := filepath.Join(dir, DirectKeyFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateDirectKey(dir); err == nil {
		t.Fatal("a key file readable by others was accepted")
	}
}

func TestCheckEncKey(t *testing.T) {
	id, other := testID(t), testID(t)
	k, err := newDirectKey()
	if err != nil {
		t.Fatal(err)
	}
	good := signEncKey(id, "alice", k)
	if err := checkEncKey(good); err != nil {
		t.Fatalf("genuine key: %v", err)
	}
	tests := []struct {
		name   string
		change func(*chatpb.EncKey)
		want   error
	}{
		{"key swapped", func(e *chatpb.EncKey) { e.EncKey = append([]byte{}, e.EncKey...); e.EncKey[7] ^= 1 }, ErrForged},
		{"nick changed", func(e *chatpb.EncKey) { e.Nick = "mallory" }, ErrForged},
		{"other identity", func(e *chatpb.EncKey) { e.IdentityKey = other.Pub }, ErrForged},
		{"signed by other", func(e *chatpb.EncKey) {
			e.PeerId, e.IdentityKey = other.ID, other.Pub
			e.Signature = id.Sign(encKeySigningBytes(e))
		}, ErrForged},
		{"short key", func(e *chatpb.EncKey) { e.EncKey = e.EncKey[:32] }, ErrInvalid},
		{"no signature", func(e *chatpb.EncKey) { e.Signature = nil }, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := proto.Clone(good).(*chatpb.EncKey)
			tt.change(e)
			if err := checkEncKey(e); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// A stranger's key (a valid signature by an identity that is no member)
// is not learnt; a member's is, and persists.
func TestHandleEncKeys(t *testing.T) {
	dir := t.TempDir()
	n := directNode(t, "bob", dir, DirectConfig{})
	member, stranger := testID(t), testID(t)
	if err := n.speakers.add(member.Pub); err != nil {
		t.Fatal(err)
	}
	k1, _ := newDirectKey()
	k2, _ := newDirectKey()
	n.handleEncKeys(&chatpb.EncKeys{Keys: []*chatpb.EncKey{signEncKey(member, "alice", k1), signEncKey(stranger, "eve", k2)}}, member.ID)
	if !n.HasEncKey(member.ID) || n.HasEncKey(stranger.ID) {
		t.Fatalf("member key known %v (want true), stranger's %v (want false)", n.HasEncKey(member.ID), n.HasEncKey(stranger.ID))
	}
	if got := n.Stats().DirectInvalid; got != 1 {
		t.Errorf("DirectInvalid = %d, want 1 (the stranger's key)", got)
	}
	_ = n.Shutdown()
	n2 := directNode(t, "bob", dir, DirectConfig{})
	if !n2.HasEncKey(member.ID) {
		t.Error("member key not kept across a restart")
	}
}

// TestDirectRecipientAttacks: a recipient shows a genuine message once and
// refuses replays, altered copies (a holder that flips a byte),
// misaddressed ones (a recipient re-sealing what it got to someone else),
// forged signatures and strangers, counting each.
func TestDirectRecipientAttacks(t *testing.T) {
	bob := directNode(t, "bob", "", DirectConfig{})
	alice, carol, stranger := testID(t), testID(t), testID(t)
	for _, id := range []*Identity{alice, carol} {
		if err := bob.speakers.add(id.Pub); err != nil {
			t.Fatal(err)
		}
	}
	pub := bob.dm.key.priv.PublicKey()
	good := genuine(t, alice, bob, 1, "hello bob")

	altered := proto.Clone(good).(*chatpb.Sealed)
	altered.Ciphertext[len(altered.Ciphertext)-20] ^= 1

	// carol got a message from alice and re-seals it to bob.
	cid := newDirectID(2)
	moved := sealBody(t, alice, pub, bob.ID(), cid, &chatpb.DirectBody{
		Origin: alice.ID, OriginKey: alice.Pub, To: carol.ID, Id: cid, SentUnixNano: 1, Text: "for carol"})
	// Same ID as sealed, but the body names another ID.
	sid := newDirectID(3)
	otherID := sealBody(t, alice, pub, bob.ID(), sid, &chatpb.DirectBody{
		Origin: alice.ID, OriginKey: alice.Pub, To: bob.ID(), Id: newDirectID(9), SentUnixNano: 1, Text: "id swap"})
	// Signed by carol in alice's name.
	fid := newDirectID(4)
	fb := &chatpb.DirectBody{Origin: alice.ID, OriginKey: alice.Pub, To: bob.ID(), Id: fid, SentUnixNano: 1, Text: "forged"}
	fb.Signature = carol.Sign(directBodySigningBytes(fb))
	forged := sealBody(t, carol, pub, bob.ID(), fid, fb)
	// A stranger's valid signature.
	strange := genuine(t, stranger, bob, 5, "who am i")
	// carol, a holder of good, delivers a message of her own under its
	// ID first, so that alice's would be taken for a replay.
	shadow := sealBody(t, carol, pub, bob.ID(), good.Id, &chatpb.DirectBody{
		Origin: carol.ID, OriginKey: carol.Pub, To: bob.ID(), Id: good.Id, Nonce: newDirectID(1), SentUnixNano: 1, Text: "shadow"})
	// An ID without its nonce.
	nid := newDirectID(7)
	noNonce := sealBody(t, alice, pub, bob.ID(), nid, &chatpb.DirectBody{
		Origin: alice.ID, OriginKey: alice.Pub, To: bob.ID(), Id: nid, SentUnixNano: 1, Text: "no nonce"})
	// For someone else, pushed as if to its recipient.
	elsewhere := proto.Clone(good).(*chatpb.Sealed)
	elsewhere.To = carol.ID
	// Sealed with info naming another ID (ciphertext moved to another ID).
	movedID := proto.Clone(good).(*chatpb.Sealed)
	movedID.Id = newDirectID(6)

	steps := []struct {
		name  string
		s     *chatpb.Sealed
		check func(hearsay.Stats) uint64
	}{
		{"another sender's ID", shadow, func(s hearsay.Stats) uint64 { return s.DirectForged }},
		{"ID without its nonce", noNonce, func(s hearsay.Stats) uint64 { return s.DirectForged }},
		{"genuine", good, func(s hearsay.Stats) uint64 { return s.DirectReceived }},
		{"replay", good, func(s hearsay.Stats) uint64 { return s.DirectReplays }},
		{"altered by a holder", altered, func(s hearsay.Stats) uint64 { return s.DirectForged }},
		{"re-sealed to another recipient", moved, func(s hearsay.Stats) uint64 { return s.DirectMisaddressed }},
		{"body names another ID", otherID, func(s hearsay.Stats) uint64 { return s.DirectMisaddressed }},
		{"signed by another member", forged, func(s hearsay.Stats) uint64 { return s.DirectForged }},
		{"stranger", strange, func(s hearsay.Stats) uint64 { return s.DirectInvalid }},
		{"for someone else", elsewhere, func(s hearsay.Stats) uint64 { return s.DirectMisaddressed }},
		{"ciphertext under another ID", movedID, func(s hearsay.Stats) uint64 { return s.DirectForged }},
	}
	for _, st := range steps {
		before := st.check(bob.Stats())
		bob.handleFrame(directFrom(st.s, false), carol.ID)
		if got := st.check(bob.Stats()); got != before+1 {
			t.Errorf("%s: counter %d → %d, want +1", st.name, before, got)
		}
	}
	if got := bob.Stats().DirectReceived; got != 1 {
		t.Errorf("DirectReceived = %d, want 1", got)
	}
	h, err := bob.dm.conversation(alice.ID, 0)
	if err != nil || len(h) != 1 || h[0].Text != "hello bob" {
		t.Errorf("bob's conversation with alice = %v, %v; want the genuine message only", h, err)
	}
}

// addOutgoing stores an own message to peer `to` as SendDirect does,
// without a network.
func addOutgoing(tb testing.TB, n *Node, to string, idb byte) []byte {
	tb.Helper()
	id := newDirectID(idb)
	rec := &chatpb.DirectRecord{Id: id, Peer: to, Outgoing: true, Text: "x", State: statePending, StoredUnixNano: time.Now().UnixNano(),
		Sealed: &chatpb.Sealed{Id: id, To: to, Ciphertext: []byte{1}}}
	n.dm.mu.Lock()
	defer n.dm.mu.Unlock()
	if err := n.dm.putRecordLocked(rec, true); err != nil {
		tb.Fatal(err)
	}
	n.dm.out[string(id)] = newOutMsg(rec)
	return id
}

func receipt(id *Identity, to string, msg []byte, state uint32) *chatpb.Receipt {
	r := &chatpb.Receipt{Origin: id.ID, OriginKey: id.Pub, To: to, Id: msg, State: state, UnixNano: 1}
	r.Signature = id.Sign(receiptSigningBytes(r))
	return r
}

func receiptMsg(r *chatpb.Receipt) *chatpb.Frame { return receiptFrame(r) }

// TestDirectReceiptAttacks: a sender moves its message's state only on
// the recipient's genuine receipt and acks from the peers concerned;
// forged, replayed and misaddressed receipts and acks are refused and
// counted.
func TestDirectReceiptAttacks(t *testing.T) {
	alice := directNode(t, "alice", "", DirectConfig{})
	bob, carol := testID(t), testID(t)
	msg := addOutgoing(t, alice, bob.ID, 1)
	state := func() uint32 {
		r, err := alice.dm.record(msg)
		if err != nil || r == nil {
			t.Fatalf("record: %v", err)
		}
		return r.State
	}
	forged := receipt(bob, alice.ID(), msg, stateDelivered)
	forged.Signature[3] ^= 1
	notAlice := receipt(bob, carol.ID, msg, stateDelivered)
	mis := func(s hearsay.Stats) uint64 { return s.DirectMisaddressed }
	replays := func(s hearsay.Stats) uint64 { return s.DirectReplays }
	forgedN := func(s hearsay.Stats) uint64 { return s.DirectForged }
	steps := []struct {
		name  string
		f     *chatpb.Frame
		from  string
		check func(hearsay.Stats) uint64
		delta uint64 // the counter's growth
		want  uint32 // the message's state after the step
	}{
		{"ack stored by someone else", directAckFrame(msg, ackStored, 0), carol.ID, mis, 1, statePending},
		{"ack held by an unasked peer", directAckFrame(msg, ackHeld, 0), carol.ID, mis, 1, statePending},
		{"forged receipt", receiptMsg(forged), bob.ID, forgedN, 1, statePending},
		{"receipt by carol", receiptMsg(receipt(carol, alice.ID(), msg, stateRead)), carol.ID, mis, 1, statePending},
		{"receipt for another sender", receiptMsg(notAlice), bob.ID, mis, 1, statePending},
		{"receipt for an unknown message", receiptMsg(receipt(bob, alice.ID(), newDirectID(7), stateDelivered)), bob.ID, mis, 1, statePending},
		{"ack stored by bob", directAckFrame(msg, ackStored, 0), bob.ID, mis, 0, stateSent},
		{"genuine receipt", receiptMsg(receipt(bob, alice.ID(), msg, stateDelivered)), bob.ID, mis, 0, stateDelivered},
		{"replayed receipt", receiptMsg(receipt(bob, alice.ID(), msg, stateDelivered)), bob.ID, replays, 1, stateDelivered},
		{"read receipt", receiptMsg(receipt(bob, alice.ID(), msg, stateRead)), bob.ID, mis, 0, stateRead},
		{"older receipt after read", receiptMsg(receipt(bob, alice.ID(), msg, stateDelivered)), bob.ID, replays, 1, stateRead},
	}
	for _, st := range steps {
		before := st.check(alice.Stats())
		alice.handleFrame(st.f, st.from)
		if after := st.check(alice.Stats()); after != before+st.delta || state() != st.want {
			t.Errorf("%s: state %d (want %d), counter %d → %d (want +%d)", st.name, state(), st.want, before, after, st.delta)
		}
	}
	if und := alice.Undelivered(); len(und) != 0 {
		t.Errorf("undelivered = %v, want none", und)
	}
}

// TestHoldQuotas: a flood from one submitter fills its quota and no more;
// another submitter is still held until the recipient's quota; the held
// messages and their counts survive a restart; retention drops them.
func TestHoldQuotas(t *testing.T) {
	dir := t.TempDir()
	dc := DirectConfig{MaxHeldPerSender: 5, MaxHeldPerRecipient: 8, MaxHeld: 100}
	h := directNode(t, "holder", dir, dc)
	const offline = "00000000000000aa"
	seal := func(i int) *chatpb.Sealed {
		return &chatpb.Sealed{Id: newDirectID(byte(i)), To: offline, SentUnixNano: 1, Ciphertext: make([]byte, 1200)}
	}
	for i := range 50 {
		h.handleFrame(directFrom(seal(i), true), "0000000000000001")
	}
	if st := h.Stats(); st.DirectHeld != 5 || st.DirectHoldRefused != 45 {
		t.Fatalf("after a flood of 50: held %d (want 5), refused %d (want 45)", st.DirectHeld, st.DirectHoldRefused)
	}
	for i := 100; i < 110; i++ {
		h.handleFrame(directFrom(seal(i), true), "0000000000000002")
	}
	if st := h.Stats(); st.DirectHeld != 8 {
		t.Fatalf("held %d, want the recipient's quota 8", st.DirectHeld)
	}
	// The same message again is held (once); another under its ID, or
	// for another recipient, is not: its sender is told to ask another.
	refused := h.Stats().DirectHoldRefused
	h.handleFrame(directFrom(seal(100), true), "0000000000000003")
	other := seal(100)
	other.Ciphertext[0] = 1
	h.handleFrame(directFrom(other, true), "0000000000000003")
	moved := seal(101)
	moved.To = "00000000000000bb"
	h.handleFrame(directFrom(moved, true), "0000000000000003")
	if st := h.Stats(); st.DirectHeld != 8 || st.DirectHoldRefused != refused+2 {
		t.Fatalf("resubmissions: held %d (want 8), refused %d more (want 2)", st.DirectHeld, st.DirectHoldRefused-refused)
	}
	b, err := h.dm.store.get(bucketHeld, newDirectID(100))
	var kept chatpb.HeldRecord
	if err != nil || proto.Unmarshal(b, &kept) != nil || kept.Sealed.Ciphertext[0] != 0 {
		t.Fatalf("held message %d replaced by another under its ID (%v)", 100, err)
	}
	// A message too large is refused before anything is stored.
	big := seal(200)
	big.Ciphertext = make([]byte, maxSealedBytes+1)
	h.handleFrame(directFrom(big, true), "0000000000000003")
	if st := h.Stats(); st.DirectHeld != 8 || st.DirectInvalid != 1 {
		t.Fatalf("oversized: held %d invalid %d", st.DirectHeld, st.DirectInvalid)
	}
	_ = h.Shutdown()

	dc.Retention = time.Hour
	h2 := directNode(t, "holder", dir, dc)
	if st := h2.Stats(); st.DirectHeld != 8 {
		t.Fatalf("after restart: held %d, want 8", st.DirectHeld)
	}
	h2.handleFrame(directFrom(seal(120), true), "0000000000000004")
	if st := h2.Stats(); st.DirectHeld != 8 {
		t.Fatalf("recipient quota not kept across a restart: held %d", st.DirectHeld)
	}
	// Age them past retention.
	h2.dm.mu.Lock()
	for _, m := range h2.dm.held {
		m.stored = time.Now().Add(-2 * time.Hour).UnixNano()
	}
	h2.dm.mu.Unlock()
	h2.pushHeld()
	if st := h2.Stats(); st.DirectHeld != 0 {
		t.Fatalf("after retention: held %d, want 0", st.DirectHeld)
	}
}

// FuzzDirectFrames feeds arbitrary direct-message frames to a node: it
// never panics, never holds beyond its quotas, and shows a message only
// when it opens and verifies.
func FuzzDirectFrames(f *testing.F) {
	n := directNode(f, "bob", "", DirectConfig{MaxHeldPerSender: 4, MaxHeldPerRecipient: 4, MaxHeld: 8})
	alice := testID(f)
	if err := n.speakers.add(alice.Pub); err != nil {
		f.Fatal(err)
	}
	k, _ := newDirectKey()
	msg := genuine(f, alice, n, 1, "hello")
	for _, fr := range []*chatpb.Frame{
		directFrame(msg, false),
		directFrame(&chatpb.Sealed{Id: newDirectID(2), To: "00000000000000aa", Ciphertext: []byte("x")}, true),
		directAckFrame(newDirectID(1), ackStored, 0),
		directAckFrame(newDirectID(1), ackReceipt, stateRead),
		receiptFrame(receipt(alice, n.ID(), newDirectID(1), stateDelivered)),
		{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: []*chatpb.EncKey{signEncKey(alice, "alice", k)}}}},
	} {
		raw, _ := proto.Marshal(fr)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr chatpb.Frame
		if proto.Unmarshal(b, &fr) != nil {
			return
		}
		before := n.Stats().DirectReceived
		n.handleFrame(&fr, alice.ID)
		st := n.Stats()
		if st.DirectHeld > 8 {
			t.Fatalf("holds %d, over MaxHeld 8", st.DirectHeld)
		}
		if st.DirectReceived > before {
			if _, err := openSealed(n.dm.key.priv, n.ID(), fr.GetDirect().GetSealed()); err != nil {
				t.Fatalf("accepted a message that does not open: %v", err)
			}
		}
	})
}

func lobbyChat(id *Identity, seq uint64, sent time.Time, text string) *chatpb.Envelope {
	e := &chatpb.Envelope{Seq: seq, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, SentUnixNano: sent.UnixNano(), Body: []byte(text), Nick: "alice"}
	SignEnvelope(id, e)
	return e
}

// nextMessage returns the next message event of n (the test fails after a
// deadline).
func nextMessage(t *testing.T, n *Node) hearsay.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-n.Events():
			if ev.Type == hearsay.EventMessage {
				return ev
			}
		case <-deadline:
			t.Fatal("no message event")
		}
	}
}

// TestBacklogMarks: an old message that arrives in a repair is marked
// backlog; a fresh one pushed live is not, nor a fresh one repaired (a
// lost frame).
func TestBacklogMarks(t *testing.T) {
	n := lobbyNode(t, "bob", 64)
	alice := testID(t)
	if err := n.speakers.add(alice.Pub); err != nil {
		t.Fatal(err)
	}
	old := lobbyChat(alice, 1, time.Now().Add(-time.Hour), "from before")
	n.handleFrame(repairFrame(&chatpb.Repair{Room: DefaultRoom, Envelopes: []*chatpb.Envelope{old}}), alice.ID)
	if ev := nextMessage(t, n); !ev.Backlog || ev.Text != "from before" {
		t.Errorf("repaired old message: %+v, want backlog", ev)
	}
	n.handleFrame(repairFrame(&chatpb.Repair{Room: DefaultRoom, Envelopes: []*chatpb.Envelope{lobbyChat(alice, 2, time.Now(), "just lost")}}), alice.ID)
	if ev := nextMessage(t, n); ev.Backlog {
		t.Errorf("repaired fresh message marked backlog: %+v", ev)
	}
	n.handleFrame(envelopeFrame(lobbyChat(alice, 3, time.Now().Add(-time.Hour), "live")), alice.ID)
	if ev := nextMessage(t, n); ev.Backlog {
		t.Errorf("pushed message marked backlog: %+v", ev)
	}
}

// TestDirectEnvelopeInRoomRefused: a plaintext direct envelope (what
// protocol 4 would have sent to a room) is refused, not stored.
func TestDirectEnvelopeInRoomRefused(t *testing.T) {
	n := lobbyNode(t, "bob", 64)
	alice := testID(t)
	if err := n.speakers.add(alice.Pub); err != nil {
		t.Fatal(err)
	}
	e := &chatpb.Envelope{Seq: 1, Room: DefaultRoom, Kind: chatpb.Kind_KIND_DIRECT, To: n.ID(), SentUnixNano: 1, Body: []byte("psst")}
	SignEnvelope(alice, e)
	before := n.Stats()
	n.handleFrame(envelopeFrame(e), alice.ID)
	st := n.Stats()
	if st.Invalid != before.Invalid+1 || st.Stored != before.Stored {
		t.Errorf("invalid %d → %d, stored %d → %d; want refused", before.Invalid, st.Invalid, before.Stored, st.Stored)
	}
}

// FuzzOpenSealed seals arbitrary plaintexts with the recipient's real key,
// so the body decoder and its checks (not only HPKE) see fuzzed bytes:
// whatever it accepts names the recipient and the ID and verifies.
func FuzzOpenSealed(f *testing.F) {
	k, err := newDirectKey()
	if err != nil {
		f.Fatal(err)
	}
	alice := testID(f)
	const self = "00000000000000bb"
	id := newDirectID(1)
	body := &chatpb.DirectBody{Origin: alice.ID, OriginKey: alice.Pub, To: self, Id: id, SentUnixNano: 5, Nick: "alice", Text: "hi"}
	body.Signature = alice.Sign(directBodySigningBytes(body))
	good, _ := proto.Marshal(body)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pt []byte) {
		ct, err := hpke.Seal(k.priv.PublicKey(), directKDF, directAEAD, sealInfo(self, id), pt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := openSealed(k.priv, self, &chatpb.Sealed{Id: id, To: self, Ciphertext: ct})
		if err != nil {
			return
		}
		if b.To != self || string(b.Id) != string(id) || PeerIDFromKey(b.OriginKey) != b.Origin || len(b.Text) > MaxBodyBytes {
			t.Fatalf("accepted an inconsistent body: %v", b)
		}
	})
}

// FuzzDirectKeyFile: whatever direct.key holds, loading it fails or gives
// a usable key; it never panics.
func FuzzDirectKeyFile(f *testing.F) {
	dir := f.TempDir()
	if _, err := loadOrCreateDirectKey(dir); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, DirectKeyFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("-----BEGIN HEARSAY HPKE PRIVATE KEY-----\nIssued: x\n\nAAAA\n-----END HEARSAY HPKE PRIVATE KEY-----\n"))
	d := f.TempDir() // one per fuzzing process: the file is rewritten each time
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(d, DirectKeyFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := loadOrCreateDirectKey(d)
		if err != nil {
			return
		}
		if len(k.pub) != encKeyBytes {
			t.Fatalf("loaded a key with a %d-byte public key", len(k.pub))
		}
	})
}

// TestReceiptsExpire: a receipt for a sender that never comes back is
// dropped after the retention, so the receipts kept stay bounded.
func TestReceiptsExpire(t *testing.T) {
	n := directNode(t, "bob", "", DirectConfig{Retention: time.Hour})
	alice := testID(t)
	count := func() int {
		k := 0
		_ = n.dm.store.each(bucketRcpt, nil, func(_, _ []byte) error { k++; return nil })
		return k
	}
	for i, age := range []time.Duration{2 * time.Hour, time.Minute} {
		rec := &chatpb.DirectRecord{Id: newDirectID(byte(i + 1)), Peer: alice.ID}
		op, _, err := receiptOp(n.id, rec, stateDelivered)
		if err != nil {
			t.Fatal(err)
		}
		var r chatpb.Receipt
		if err := proto.Unmarshal(op.val, &r); err != nil {
			t.Fatal(err)
		}
		r.UnixNano = time.Now().Add(-age).UnixNano()
		r.Signature = n.id.Sign(receiptSigningBytes(&r))
		if op.val, err = proto.Marshal(&r); err != nil {
			t.Fatal(err)
		}
		if err := n.dm.store.apply(op); err != nil {
			t.Fatal(err)
		}
	}
	if got := count(); got != 2 {
		t.Fatalf("%d receipts stored, want 2", got)
	}
	n.sendReceipts("")
	if got := count(); got != 1 {
		t.Errorf("%d receipts after the retention pass, want 1 (the fresh one)", got)
	}
}

// TestEncKeysFrameRelaysOfflineKeys: a kept link's greeting carries our
// key and the keys of peers we know that are not live members (a sender
// may need them); live members' keys are theirs to give, whether or not we
// have a link to them (a large group keeps few: they answer a request).
func TestEncKeysFrameRelaysOfflineKeys(t *testing.T) {
	n := directNode(t, "alice", "", DirectConfig{})
	live, offline := testID(t), testID(t)
	for _, id := range []*Identity{live, offline} {
		if err := n.speakers.add(id.Pub); err != nil {
			t.Fatal(err)
		}
		k, _ := newDirectKey()
		if err := n.dm.learnKey(signEncKey(id, "x", k)); err != nil {
			t.Fatal(err)
		}
	}
	n.mu.Lock()
	n.members[live.ID] = &memberInfo{ID: live.ID, Valid: true, State: hearsay.StateAlive}
	n.members[offline.ID] = &memberInfo{ID: offline.ID, Valid: true, State: hearsay.StateDead}
	n.membersChangedLocked()
	n.mu.Unlock()
	var got []string
	for _, k := range n.encKeysFrame("0000000000000001").GetEncKeys().GetKeys() {
		got = append(got, k.PeerId)
	}
	if want := []string{n.ID(), offline.ID}; !slices.Equal(got, want) {
		t.Errorf("keys sent %v, want ours and the offline peer's %v", got, want)
	}
}

// A holder drops a held message the recipient refused (it does not
// decrypt or verify: kept, it would be pushed again every retry for the
// whole retention time), keeps one the recipient cannot take yet (an
// unknown sender) and ignores a refusal from anyone but the recipient.
func TestHolderDropsWhatTheRecipientRefuses(t *testing.T) {
	h := directNode(t, "holder", t.TempDir(), DirectConfig{})
	const recipient, other = "00000000000000aa", "00000000000000bb"
	seal := func(i byte) *chatpb.Sealed {
		return &chatpb.Sealed{Id: newDirectID(i), To: recipient, SentUnixNano: 1, Ciphertext: make([]byte, 1200)}
	}
	for i := byte(1); i <= 3; i++ {
		h.handleFrame(directFrom(seal(i), true), "0000000000000001")
	}
	if st := h.Stats(); st.DirectHeld != 3 {
		t.Fatalf("held %d, want 3", st.DirectHeld)
	}
	h.handleFrame(directAckFrame(newDirectID(1), ackRefused, 0), other) // not the recipient's word
	h.handleFrame(directAckFrame(newDirectID(2), ackLater, 0), recipient)
	if st := h.Stats(); st.DirectHeld != 3 {
		t.Fatalf("held %d after a stranger's refusal and a not-now, want 3", st.DirectHeld)
	}
	h.handleFrame(directAckFrame(newDirectID(1), ackRefused, 0), recipient)
	if st := h.Stats(); st.DirectHeld != 2 {
		t.Fatalf("held %d after the recipient refused one, want 2", st.DirectHeld)
	}
}

// TestReceiptsBoundPerSender: a sender that never acks its receipts gets
// "not now" past DirectConfig.MaxReceiptsPerSender (nothing stored, the
// message stays with its holders), across a restart; an ack makes room;
// receipts stored under protocol 5's key are moved under the sender's.
func TestReceiptsBoundPerSender(t *testing.T) {
	dir := t.TempDir()
	cfg := DirectConfig{MaxReceiptsPerSender: 3}
	bob := directNode(t, "bob", dir, cfg)
	alice, carol := testID(t), testID(t)
	for _, id := range []*Identity{alice, carol} {
		if err := bob.speakers.add(id.Pub); err != nil {
			t.Fatal(err)
		}
	}
	for i := range byte(4) {
		bob.handleFrame(directFrom(genuine(t, alice, bob, i+1, "flood"), false), alice.ID)
	}
	if s := bob.Stats(); s.DirectReceived != 3 || s.DirectDeferred != 1 {
		t.Fatalf("received %d, deferred %d; want 3 and 1", s.DirectReceived, s.DirectDeferred)
	}
	// Another sender is not held back by alice's flood.
	bob.handleFrame(directFrom(genuine(t, carol, bob, 1, "hi"), false), carol.ID)
	if s := bob.Stats(); s.DirectReceived != 4 {
		t.Fatalf("carol's message: received %d, want 4", s.DirectReceived)
	}
	// Only alice may ack alice's receipts.
	first, _ := ownID(alice, 1)
	bob.handleFrame(directAckFrame(first, ackReceipt, stateDelivered), carol.ID)
	if s := bob.Stats(); s.DirectMisaddressed != 1 {
		t.Fatalf("carol acked alice's receipt: misaddressed %d, want 1", s.DirectMisaddressed)
	}
	fourth := genuine(t, alice, bob, 4, "flood")
	if err := bob.Shutdown(); err != nil {
		t.Fatal(err)
	}

	// Put one receipt back under protocol 5's key (ID and state).
	st, err := openDirectStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	k := rcptKey(alice.ID, first, stateDelivered)
	v, err := st.get(bucketRcpt, k)
	if err != nil || v == nil {
		t.Fatalf("receipt for alice's first message: %v, %v", v, err)
	}
	if err := st.apply(storeOp{bucket: bucketRcpt, key: k}, storeOp{bucket: bucketRcpt, key: k[len(alice.ID):], val: v}); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}

	bob = directNode(t, "bob", dir, cfg)
	if err := bob.speakers.add(alice.Pub); err != nil {
		t.Fatal(err)
	}
	bob.handleFrame(directFrom(fourth, false), alice.ID)
	if s := bob.Stats(); s.DirectReceived != 0 || s.DirectDeferred != 1 {
		t.Fatalf("after a restart: received %d, deferred %d; want 0 and 1", s.DirectReceived, s.DirectDeferred)
	}
	// alice acks one (the moved one): room for one more.
	bob.handleFrame(directAckFrame(first, ackReceipt, stateDelivered), alice.ID)
	bob.handleFrame(directFrom(fourth, false), alice.ID)
	if s := bob.Stats(); s.DirectReceived != 1 {
		t.Fatalf("after alice's ack: received %d, want 1", s.DirectReceived)
	}
}

// TestHeldDropsUnknownFields: a holder keeps only the sealed message's
// known fields, so padding in unknown ones does not pass the quota's
// size reckoning.
func TestHeldDropsUnknownFields(t *testing.T) {
	h := directNode(t, "holder", t.TempDir(), DirectConfig{})
	b, err := proto.Marshal(&chatpb.Sealed{Id: newDirectID(1), To: "00000000000000aa", SentUnixNano: 1, Ciphertext: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendBytes(b, make([]byte, 50_000))
	var s chatpb.Sealed
	if err := proto.Unmarshal(b, &s); err != nil || len(s.ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("padded message: %v, unknown %d bytes", err, len(s.ProtoReflect().GetUnknown()))
	}
	h.handleFrame(directFrom(&s, true), "0000000000000001")
	v, err := h.dm.store.get(bucketHeld, newDirectID(1))
	if err != nil || v == nil {
		t.Fatalf("not held: %v", err)
	}
	if len(v) > 1000 {
		t.Fatalf("held record is %d bytes: the unknown field was kept", len(v))
	}
}

// TestFullHolderAskedAgain: a holder that answered "full" is left alone
// for fullRetryRounds retry intervals, then may be asked again, and its
// "held" then makes it a holder; a "full" it repeats unasked changes
// nothing. Before, a holder full once was never asked again for that
// message.
func TestFullHolderAskedAgain(t *testing.T) {
	alice := directNode(t, "alice", "", DirectConfig{RetryInterval: time.Second})
	bob, carol := testID(t), testID(t)
	msg := addOutgoing(t, alice, bob.ID, 1)
	// The outMsg's fields are read and written under alice.dm.mu; the
	// record is not replaced, so the pointer is taken once.
	alice.dm.mu.Lock()
	o := alice.dm.out[string(msg)]
	alice.dm.mu.Unlock()
	locked := func(f func()) {
		alice.dm.mu.Lock()
		defer alice.dm.mu.Unlock()
		f()
	}
	ask := func() { locked(func() { o.asked[carol.ID] = time.Now() }) }
	fullNow := func(at time.Time) (full bool) {
		locked(func() { full = o.fullNow(carol.ID, at, alice.dm.cfg.RetryInterval) })
		return full
	}
	listed := func() (holder, full bool) {
		locked(func() { holder, full = slices.Contains(o.rec.Holders, carol.ID), slices.Contains(o.rec.Full, carol.ID) })
		return holder, full
	}
	ask()
	alice.handleFrame(directAckFrame(msg, ackFull, 0), carol.ID)
	if _, full := listed(); !full || !fullNow(time.Now()) {
		t.Fatalf("carol's full answer not recorded")
	}
	replays := alice.Stats().DirectReplays
	alice.handleFrame(directAckFrame(msg, ackFull, 0), carol.ID)
	if got := alice.Stats().DirectReplays; got != replays+1 {
		t.Errorf("a repeated unasked full: replays %d → %d, want +1", replays, got)
	}
	if !fullNow(time.Now().Add((fullRetryRounds - 1) * time.Second)) {
		t.Errorf("carol may be asked again before %d retry intervals", fullRetryRounds)
	}
	if fullNow(time.Now().Add((fullRetryRounds + 1) * time.Second)) {
		t.Fatalf("carol is still full after %d retry intervals: never asked again", fullRetryRounds+1)
	}
	if _, full := listed(); full {
		t.Errorf("carol still listed full")
	}
	ask()
	alice.handleFrame(directAckFrame(msg, ackHeld, 0), carol.ID)
	if holder, full := listed(); !holder || full {
		t.Errorf("after carol held it: holder %v, full %v", holder, full)
	}
}
