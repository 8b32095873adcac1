package chat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/order"
)

// These tests are the attacks of issue 11 (findings 3, 4 and 6), sent as
// raw frames to the frame handler a peer's stream feeds (handleFrame, as
// FuzzHandleFrame does): the sender is an authenticated member, as an
// attacker inside the group would be.

// member returns a fresh identity that n knows as a member.
func member(tb testing.TB, n *Node) *Identity {
	tb.Helper()
	id := testIdentity(tb)
	if err := n.speakers.add(id.Pub); err != nil {
		tb.Fatal(err)
	}
	return id
}

// lobbyMsg is origin id's chat message seq in the lobby (no deps).
func lobbyMsg(id *Identity, seq uint64, body string) *chatpb.Envelope {
	e := &chatpb.Envelope{Seq: seq, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: seq,
		SentUnixNano: time.Now().UnixNano(), Body: []byte(body), Nick: "n"}
	SignEnvelope(id, e)
	return e
}

func repairFloors(floors ...*chatpb.Dep) *chatpb.Frame {
	return repairFrame(&chatpb.Repair{Room: DefaultRoom, Floors: floors})
}

func (n *Node) lobbyWant(origin string) uint64 {
	r := n.joinedRoom(DefaultRoom)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.WantOf(origin)
}

// Finding 3: an unsigned repair floor deleted a member's messages, moved
// the victim's own next seq to 1,000,001, or (2^64-1) left it unable to
// speak. Floors now delete nothing, are refused for our own ID, and skip
// another origin's seqs only below a signed envelope we hold.
func TestUnsignedFloorsCannotRemoveSignedData(t *testing.T) {
	ctx := context.Background()
	bob := lobbyNode(t, "bob", 256)
	alice, carol := member(t, bob), member(t, bob)
	for seq := uint64(1); seq <= 3; seq++ {
		bob.handleFrame(envFrame(lobbyMsg(alice, seq, "hi")), alice.ID)
	}
	r := bob.joinedRoom(DefaultRoom)
	own, err := r.send(ctx, "mine")
	if err != nil {
		t.Fatal(err)
	}
	stored := func(origin string, seq uint64) bool {
		_, err := bob.log.Get(ctx, DefaultRoom, origin, seq)
		return err == nil
	}

	// Carol claims alice's stream and bob's own are pruned far ahead.
	before := bob.Stats()
	bob.handleFrame(repairFloors(&chatpb.Dep{Origin: alice.ID, Seq: 1_000_000}), carol.ID)
	bob.handleFrame(repairFloors(&chatpb.Dep{Origin: bob.id.ID, Seq: 1_000_000}), carol.ID)
	bob.handleFrame(repairFloors(&chatpb.Dep{Origin: bob.id.ID, Seq: math.MaxUint64}, &chatpb.Dep{Origin: alice.ID, Seq: math.MaxUint64}), carol.ID)
	for seq := uint64(1); seq <= 3; seq++ {
		if !stored(alice.ID, seq) {
			t.Fatalf("alice/%d deleted by an unsigned floor", seq)
		}
	}
	if !stored(bob.id.ID, own.Seq) {
		t.Fatal("our own message deleted by an unsigned floor")
	}
	if got := bob.NextSeqForTest(DefaultRoom); got != own.Seq+1 {
		t.Fatalf("our next seq %d after hostile floors, want %d", got, own.Seq+1)
	}
	if w := bob.lobbyWant(alice.ID); w != 4 {
		t.Fatalf("machine wants alice/%d after a floor nothing signed backs, want 4", w)
	}
	if got := bob.Stats().BadFloors - before.BadFloors; got != 2 {
		t.Fatalf("BadFloors +%d, want 2 (the floors over MaxSeq are bad frames)", got)
	}
	next, err := r.send(ctx, "still here")
	if err != nil || next.Seq != own.Seq+1 {
		t.Fatalf("send after hostile floors: %v %v, want seq %d", next, err, own.Seq+1)
	}
	// alice's next message is delivered, not taken for a duplicate.
	bob.handleFrame(envFrame(lobbyMsg(alice, 4, "four")), alice.ID)
	if w := bob.lobbyWant(alice.ID); w != 5 {
		t.Fatalf("alice/4 not taken after the floors: want %d", w)
	}

	// A floor backed by a signed envelope skips the gap below it, and no
	// further: carol repairs alice/10 with a floor of 1,000,000.
	bob.handleFrame(repairFrame(&chatpb.Repair{Room: DefaultRoom, Envelopes: []*chatpb.Envelope{lobbyMsg(alice, 10, "ten")},
		Floors: []*chatpb.Dep{{Origin: alice.ID, Seq: 1_000_000}}}), carol.ID)
	vv, _ := bob.log.VersionVector(ctx, DefaultRoom)
	if vv[alice.ID] != 10 || bob.lobbyWant(alice.ID) != 11 {
		t.Fatalf("after a floor backed by alice/10: vector %d, machine wants %d; want 10 and 11", vv[alice.ID], bob.lobbyWant(alice.ID))
	}
	if last, _ := bob.log.LastSeq(ctx, DefaultRoom, alice.ID); last != 10 {
		t.Fatalf("alice's LastSeq %d, want 10", last)
	}
	for seq := uint64(1); seq <= 4; seq++ {
		if !stored(alice.ID, seq) {
			t.Fatalf("alice/%d deleted by a floor above it", seq)
		}
	}
	// A wire seq over 2^62 is a bad frame, never a floor.
	bf := bob.Stats().BadFrames
	bob.handleFrame(repairFloors(&chatpb.Dep{Origin: alice.ID, Seq: MaxSeq + 1}), carol.ID)
	if bob.Stats().BadFrames == bf {
		t.Fatal("floor over MaxSeq not counted as a bad frame")
	}
}

// Finding 3, on disk: a log holding what hostile floors left (our own
// highest seq at 2^64-1 or 1,000,000) must not make the restart loop or
// allocate without bound (before: order.Machine.Resume filled the gap one
// ack at a time, 5.7 GB in 20 s).
func TestHostileStoredStateRestartsBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		last uint64
	}{{"max", math.MaxUint64}, {"million", 1_000_000}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			id, err := LoadOrCreateIdentity(dir)
			if err != nil {
				t.Fatal(err)
			}
			lc := msglog.DefaultConfig()
			l, err := msglog.OpenBolt(dir+"/"+MessageLogFile, lc)
			if err != nil {
				t.Fatal(err)
			}
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(l.PutRoom(ctx, msglog.RoomInfo{Name: DefaultRoom, Mode: "causal", Created: time.Now(), Joined: time.Now()}))
			e := lobbyMsg(id, 1, "before")
			data, _ := proto.Marshal(e)
			_, err = l.Append(ctx, DefaultRoom, id.ID, 1, msglog.Meta{Lamport: 1, RecvTime: time.Now()}, data)
			must(err)
			_, err = l.Append(ctx, DefaultRoom, id.ID, tt.last, msglog.Meta{Lamport: tt.last, RecvTime: time.Now()}, []byte("junk"))
			must(err)
			must(l.SetFloor(ctx, DefaultRoom, id.ID, 5))
			must(l.SetFloor(ctx, DefaultRoom, "00000000000000aa", math.MaxUint64))
			must(l.Close())

			n, err := New(Config{Nick: "victim", DataDir: dir, EventBuffer: 64})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = n.Shutdown() })
			n.joinMu.Lock()
			info, err := n.log.Room(ctx, DefaultRoom)
			if err == nil {
				_, err = n.openRoom(ctx, info, false) // the restore of loadRooms
			}
			n.joinMu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			r := n.joinedRoom(DefaultRoom)
			id2, err := r.send(ctx, "after")
			switch {
			case tt.last > MaxSeq:
				if !errors.Is(err, order.ErrExhausted) {
					t.Fatalf("send with a stored seq of 2^64-1: %v %v, want ErrExhausted", id2, err)
				}
			case err != nil || id2.Seq != tt.last+1:
				t.Fatalf("send: %v %v, want seq %d", id2, err, tt.last+1)
			}
			r.mu.Lock()
			st := r.m.Stats()
			r.mu.Unlock()
			if st.Exhausted == 0 || st.ControlSent > 0 {
				t.Fatalf("restore stats %+v: want the gap left unfilled and counted", st)
			}
		})
	}
}

// Finding 4: envelopes signed by keys that never were members are
// dropped (before: 1,030 of them made every later lobby message invalid).
// A member's repair vouches for the origins of the history it holds (a
// joiner needs the messages of members that left before it came), at most
// maxVouchedPerPeer of them per member.
func TestStrangersCannotSpeak(t *testing.T) {
	bob := lobbyNode(t, "bob", 16)
	carol, dave := member(t, bob), member(t, bob)
	var envs []*chatpb.Envelope
	for range 40 {
		envs = append(envs, lobbyMsg(testIdentity(t), 1, "from nowhere"))
	}
	before := bob.Stats()
	bob.handleFrame(batchFrame(envs), carol.ID)
	after := bob.Stats()
	if got := after.Strangers - before.Strangers; got != 40 {
		t.Fatalf("Strangers +%d, want 40", got)
	}
	if after.Stored != before.Stored {
		t.Fatalf("stored %d pushed envelopes of strangers", after.Stored-before.Stored)
	}
	// A member's envelope carrying another member's key is refused too.
	wrong := lobbyMsg(carol, 1, "x")
	wrong.OriginKey = dave.Pub
	bob.handleFrame(envFrame(wrong), carol.ID)
	if bob.Stats().Stored != before.Stored {
		t.Fatal("stored an envelope whose key is not its origin's")
	}

	// dave repairs history of maxVouchedPerPeer+5 origins bob never saw:
	// he may vouch for maxVouchedPerPeer of them.
	var hist []*chatpb.Envelope
	for range maxVouchedPerPeer + 5 {
		hist = append(hist, lobbyMsg(testIdentity(t), 1, "old news"))
	}
	before = bob.Stats()
	// In two repairs: one holds at most maxRepairEnvelopes.
	bob.handleFrame(repairFrame(&chatpb.Repair{Room: DefaultRoom, Envelopes: hist[:maxRepairEnvelopes/2]}), dave.ID)
	bob.handleFrame(repairFrame(&chatpb.Repair{Room: DefaultRoom, Envelopes: hist[maxRepairEnvelopes/2:]}), dave.ID)
	after = bob.Stats()
	if got := after.Stored - before.Stored; got != maxVouchedPerPeer {
		t.Fatalf("stored %d repaired envelopes of unknown origins, want dave's quota %d", got, maxVouchedPerPeer)
	}
	if got := after.Strangers - before.Strangers; got != 5 {
		t.Fatalf("Strangers +%d beyond the quota, want 5", got)
	}
	// carol's quota is her own.
	bob.handleFrame(repairFrame(&chatpb.Repair{Room: DefaultRoom, Envelopes: envs[:3]}), carol.ID)
	if got := bob.Stats().Stored - after.Stored; got != 3 {
		t.Fatalf("stored %d of carol's repair, want 3", got)
	}
}

// Finding 4: a room with more authors than an envelope may name keeps
// working. With 1,100 member authors each heard once, our next message
// and the acks before it name at most order.MaxDepsPerMessage each (before:
// 1,100 deps, invalid everywhere), and another member delivers it only
// after every one of them.
func TestManyAuthorsKeepTheRoomAlive(t *testing.T) {
	ctx := context.Background()
	bob, carol := lobbyNode(t, "bob", 4096), lobbyNode(t, "carol", 4096)
	if err := carol.speakers.add(bob.id.Pub); err != nil {
		t.Fatal(err)
	}
	const authors = 1100
	var msgs []*chatpb.Envelope
	for range authors {
		a := member(t, bob)
		if err := carol.speakers.add(a.Pub); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, lobbyMsg(a, 1, "hello"))
	}
	for i := 0; i < authors; i += 100 {
		bob.handleFrame(batchFrame(msgs[i:i+100]), msgs[i].Origin)
	}
	id, err := bob.joinedRoom(DefaultRoom).send(ctx, "to everyone")
	if err != nil {
		t.Fatal(err)
	}
	stream, err := bob.log.Range(ctx, DefaultRoom, bob.id.ID, 1, msglog.MaxRange)
	if err != nil {
		t.Fatal(err)
	}
	if len(stream) != 5 || id.Seq != 5 {
		t.Fatalf("bob's stream has %d messages and the message is seq %d, want 4 acks and the message at 5", len(stream), id.Seq)
	}
	var out []*chatpb.Envelope
	named := map[string]bool{}
	for _, rec := range stream {
		e, err := decodeStored(rec.Data)
		if err != nil {
			t.Fatalf("bob/%d: %v", rec.Seq, err)
		}
		if err := CheckEnvelope(e); err != nil {
			t.Fatalf("bob/%d does not check: %v", rec.Seq, err)
		}
		if len(e.Deps) > order.MaxDepsPerMessage {
			t.Fatalf("bob/%d names %d deps", rec.Seq, len(e.Deps))
		}
		for _, d := range e.Deps {
			named[d.Origin] = true
		}
		out = append(out, e)
	}
	if len(named) != authors {
		t.Fatalf("bob's stream names %d authors, want %d", len(named), authors)
	}

	// Carol has all but one author; bob's message waits for it.
	rec := chattestRecorder(t, carol)
	for i := 0; i < authors-1; i += 100 {
		carol.handleFrame(batchFrame(msgs[i:min(i+100, authors-1)]), bob.id.ID)
	}
	carol.handleFrame(batchFrame(out), bob.id.ID)
	if rec.has(id.String()) {
		t.Fatalf("carol showed %s before its dependency %s/1", id, msgs[authors-1].Origin)
	}
	carol.handleFrame(envFrame(msgs[authors-1]), bob.id.ID)
	if !rec.has(id.String()) {
		t.Fatalf("carol did not show %s once she had every dependency", id)
	}
}

// eventLog drains a node's events as they come (the node is not started,
// so its events are emitted synchronously by handleFrame).
type eventLog struct {
	t testing.TB
	n *Node
}

func chattestRecorder(t testing.TB, n *Node) *eventLog { return &eventLog{t, n} }

// has drains pending events and reports whether a message with id was
// among them (or among earlier ones seen by has).
func (l *eventLog) has(id string) bool {
	for _, ev := range pendingEvents(l.t, l.n) {
		if ev.Type == hearsay.EventMessage && ev.ID == id {
			return true
		}
	}
	return false
}

// Finding 4: with 6,000 origins the status frame was 132,033 bytes
// against a limit of 126,976, so streams broke every round. Statuses now
// cover ranges of origins, repairs count their floors, and no frame
// outgrows the limit whatever the number of origins.
func TestStatusAndRepairFramesStayUnderTheLimit(t *testing.T) {
	ctx := context.Background()
	const origins = 6000
	n := lobbyNode(t, "bob", 16)
	peer := newPeerConn(n, "00000000000000ee", "127.0.0.1:1", nil) // never started: frames stay queued
	n.mu.Lock()
	n.peers[peer.id] = peer
	n.mu.Unlock()
	t.Cleanup(func() { // before Shutdown, which would wait for it to stop
		n.mu.Lock()
		delete(n.peers, peer.id)
		n.mu.Unlock()
	})
	var ids []string
	for i := range origins {
		o := fmt.Sprintf("%016x", 0x1000+i)
		ids = append(ids, o)
		if err := n.log.SetFloor(ctx, DefaultRoom, o, 7); err != nil { // pruned: the repair will be floors only
			t.Fatal(err)
		}
	}
	drain := func() []*chatpb.Frame {
		var fs []*chatpb.Frame
		for {
			f, ok := peer.queue.pop()
			if !ok {
				return fs
			}
			fs = append(fs, f)
		}
	}

	n.sendStatus(peer.id, DefaultRoom, false, true)
	frames := drain()
	covered := map[string]bool{}
	lo := ""
	for i, f := range frames {
		st := f.GetStatus()
		if size := proto.Size(f); size > maxFrameBytes || len(st.Vector) > maxVector {
			t.Fatalf("status frame %d: %d bytes, %d entries (limits %d, %d)", i, size, len(st.Vector), maxFrameBytes, maxVector)
		}
		if st.FromOrigin != lo || !st.WantReply {
			t.Fatalf("status %d covers from %q, want %q (consecutive ranges), want_reply %v", i, st.FromOrigin, lo, st.WantReply)
		}
		lo = st.UntilOrigin
		for _, d := range st.Vector {
			if !inRange(d.Origin, st.FromOrigin, st.UntilOrigin) {
				t.Fatalf("status %d names %s outside its range", i, d.Origin)
			}
			covered[d.Origin] = true
		}
	}
	if len(frames) < 2 || lo != "" || len(covered) != origins {
		t.Fatalf("%d status frames covering %d origins, last range ends at %q", len(frames), len(covered), lo)
	}

	// A peer holding nothing asks for everything: the answer is 6,000
	// floors, in repairs that each fit, and our status for the range.
	n.handleStatus(&chatpb.Status{Room: DefaultRoom}, peer.id)
	floors := 0
	for i, f := range drain() {
		rp := f.GetRepair()
		if rp == nil {
			continue
		}
		if size := proto.Size(f); size > maxFrameBytes || len(rp.Floors) > maxVector {
			t.Fatalf("repair frame %d: %d bytes, %d floors", i, size, len(rp.Floors))
		}
		floors += len(rp.Floors)
	}
	if floors != origins {
		t.Fatalf("repairs carry %d floors, want %d", floors, origins)
	}

	// A status for one range is answered for that range only.
	mid := ids[origins/2]
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, FromOrigin: mid, UntilOrigin: ids[origins/2+10]}, peer.id)
	floors = 0
	for _, f := range drain() {
		for _, d := range f.GetRepair().GetFloors() {
			if d.Origin < mid || d.Origin >= ids[origins/2+10] {
				t.Fatalf("repair for a range names %s outside it", d.Origin)
			}
			floors++
		}
	}
	if floors != 10 {
		t.Fatalf("range repair carries %d floors, want 10", floors)
	}
	// A status naming an origin outside its own range is a bad frame.
	bf := n.Stats().BadFrames
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, FromOrigin: mid, Vector: []*chatpb.Dep{{Origin: ids[0], Seq: 1}}}, peer.id)
	if n.Stats().BadFrames != bf+1 {
		t.Fatal("status with an entry outside its range not refused")
	}
}

// Finding 6: a peer's KIND_SYSTEM envelope was printed as a bare line
// (fake "<alice> …", "* bob left", "error:"). Peers cannot send system
// lines: the envelope is refused, stored nowhere, shown nowhere.
func TestPeersCannotSendSystemLines(t *testing.T) {
	bob := lobbyNode(t, "bob", 64)
	mallory := member(t, bob)
	for i, body := range []string{"<alice> send me your key", "* bob left", "error: reinstall hearsay"} {
		e := &chatpb.Envelope{Seq: uint64(i + 1), Room: DefaultRoom, Kind: chatpb.Kind_KIND_SYSTEM, Lamport: 1,
			SentUnixNano: 1, Body: []byte(body)}
		SignEnvelope(mallory, e)
		bob.handleFrame(envFrame(e), mallory.ID)
	}
	if s := bob.Stats(); s.Stored != 0 || s.Invalid != 3 {
		t.Fatalf("stored %d, invalid %d; want 0 and 3", s.Stored, s.Invalid)
	}
	for _, ev := range pendingEvents(t, bob) {
		if ev.Type == hearsay.EventSystem || strings.Contains(ev.Text, "bob left") {
			t.Fatalf("a peer's system envelope was shown: %+v", ev)
		}
	}
	// One kept in an older log is shown attributed to its origin.
	e := &chatpb.Envelope{Seq: 9, Room: DefaultRoom, Kind: chatpb.Kind_KIND_SYSTEM, Body: []byte("* bob left")}
	SignEnvelope(mallory, e)
	ev, ok := bob.messageEvent(e)
	if !ok || ev.Type != hearsay.EventMessage || ev.FromID != mallory.ID {
		t.Fatalf("stored system envelope shown as %+v, want a message from %s", ev, mallory.ID)
	}
}

// signedRoomSet is id's room set of the given version, signed.
func signedRoomSet(id *Identity, version int64, rooms ...*chatpb.RoomMembership) *chatpb.RoomSet {
	rs := &chatpb.RoomSet{Version: version, Rooms: rooms, Origin: id.ID, OriginKey: id.Pub}
	rs.Signature = id.Sign(roomSetSigningBytes(rs))
	return rs
}

// liveMemberOf makes id a live member of n with a valid meta (a relayed
// room set must be a live member's).
func liveMemberOf(n *Node, id *Identity) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.members[id.ID] = &memberInfo{ID: id.ID, Nick: "m", Pub: id.Pub, Valid: true, State: hearsay.StateAlive}
	n.membersChangedLocked()
}

// Room membership is announced by each member itself and signed: a room
// set only ever describes its origin, so a member cannot put another in
// a room or take one out, whether it sends the set on its own link or
// relays it (in a large group sets travel through neighbours).
func TestRoomSetDescribesOnlyItsSender(t *testing.T) {
	bob := lobbyNode(t, "bob", 16)
	alice, mallory := member(t, bob), member(t, bob)
	liveMemberOf(bob, alice)
	dev := func(mode string) *chatpb.RoomMembership {
		return &chatpb.RoomMembership{Name: "dev", Mode: mode, JoinedUnixNano: 1}
	}
	bob.handleFrame(roomSetFrame(signedRoomSet(alice, 5, dev("causal"))), alice.ID)
	// mallory announces an empty set and one naming alice's rooms.
	bob.handleFrame(roomSetFrame(signedRoomSet(mallory, 99)), mallory.ID)
	bob.handleFrame(roomSetFrame(signedRoomSet(mallory, 100, dev("total"))), mallory.ID)
	// mallory forges a newer set of alice's (signed by mallory, or
	// alice's signature on other rooms), and replays an older one.
	forged := signedRoomSet(alice, 6)
	forged.Signature = mallory.Sign(roomSetSigningBytes(forged))
	altered := signedRoomSet(alice, 7, dev("causal"))
	altered.Rooms[0].Mode = "total"
	forgedBefore := bob.Stats().Forged
	for _, rs := range []*chatpb.RoomSet{forged, altered, signedRoomSet(alice, 1)} {
		bob.handleFrame(roomSetFrame(rs), mallory.ID)
	}
	if got := bob.Stats().Forged - forgedBefore; got != 2 {
		t.Errorf("forged room sets counted %d, want 2", got)
	}
	// An unsigned set, even on its origin's own link, is refused.
	bob.handleFrame(roomSetFrame(&chatpb.RoomSet{Version: 200, Origin: mallory.ID}), mallory.ID)
	// A set of a peer that is not a live member is not taken from a relay.
	stranger := member(t, bob)
	bob.handleFrame(roomSetFrame(signedRoomSet(stranger, 1, dev("fifo"))), mallory.ID)
	check := func(when string) {
		t.Helper()
		bob.roomsMu.Lock()
		defer bob.roomsMu.Unlock()
		a := bob.peerRooms[alice.ID]
		if a == nil || a.version != 5 || a.rooms["dev"] == nil || a.rooms["dev"].Mode != "causal" {
			t.Fatalf("%s: alice's announcement changed by mallory's: %+v", when, a)
		}
		if m := bob.peerRooms[mallory.ID]; len(bob.peerRooms) != 2 || m == nil || m.rooms["dev"] == nil || m.rooms["dev"].Mode != "total" {
			t.Fatalf("%s: room sets %v, want alice's and mallory's own only", when, bob.peerRooms)
		}
	}
	check("after mallory's")
	// alice's genuine newer set, relayed by mallory, is taken.
	bob.handleFrame(roomSetFrame(signedRoomSet(alice, 8)), mallory.ID)
	bob.roomsMu.Lock()
	a := bob.peerRooms[alice.ID]
	bob.roomsMu.Unlock()
	if a == nil || a.version != 8 || len(a.rooms) != 0 {
		t.Fatalf("alice's relayed set not taken: %+v", a)
	}
}

// A relayed room set may come before memberlist says its origin joined
// (links relay faster than memberlist gossips). It is not taken then, but
// held, bounded, and taken once the origin is live: no one sends it again
// (every relay has that version), so dropping it lost the origin's rooms.
func TestRelayedRoomSetHeldUntilOriginLive(t *testing.T) {
	bob := lobbyNode(t, "bob", 16)
	relay, early := member(t, bob), member(t, bob)
	liveMemberOf(bob, relay)
	dev := &chatpb.RoomMembership{Name: "dev", Mode: "causal", JoinedUnixNano: 1}
	bob.handleFrame(roomSetFrame(signedRoomSet(early, 3, dev)), relay.ID)
	has := func() *peerRoomSet {
		bob.roomsMu.Lock()
		defer bob.roomsMu.Unlock()
		return bob.peerRooms[early.ID]
	}
	if has() != nil {
		t.Fatal("a relayed set of a member not live yet was taken")
	}
	// A forged set of the same origin is not held in its place.
	forged := signedRoomSet(early, 4)
	forged.Signature = relay.Sign(roomSetSigningBytes(forged))
	bob.handleFrame(roomSetFrame(forged), relay.ID)
	liveMemberOf(bob, early)
	bob.releaseHeldRoomSets()
	got := has()
	if got == nil || got.version != 3 || got.rooms["dev"] == nil {
		t.Fatalf("held set not taken once its origin is live: %+v", got)
	}

	// A genuine set relayed by another link, then a flood of sets of
	// made-up identities from relay: relay holds at most its bound, the
	// newest kept, and the other link's set stays.
	other, late := member(t, bob), member(t, bob)
	liveMemberOf(bob, other)
	bob.handleFrame(roomSetFrame(signedRoomSet(late, 2, dev)), other.ID)
	for range maxHeldRoomSets + 10 {
		bob.handleFrame(roomSetFrame(signedRoomSet(member(t, bob), 1)), relay.ID)
	}
	last := member(t, bob)
	bob.handleFrame(roomSetFrame(signedRoomSet(last, 1)), relay.ID)
	bob.roomsMu.Lock()
	held, lastHeld, lateHeld := len(bob.heldRooms), bob.heldRooms[last.ID].rs != nil, bob.heldRooms[late.ID].rs != nil
	bob.roomsMu.Unlock()
	if held != maxHeldPerRelay+1 || !lastHeld || !lateHeld {
		t.Fatalf("held %d sets (the flood's newest %v, the other link's %v), want %d with both", held, lastHeld, lateHeld, maxHeldPerRelay+1)
	}

	// Many relays: the table keeps its bound, and the relay holding most
	// loses first.
	for range maxHeldRoomSets / maxHeldPerRelay * 2 {
		r := member(t, bob)
		liveMemberOf(bob, r)
		for range maxHeldPerRelay {
			bob.handleFrame(roomSetFrame(signedRoomSet(member(t, bob), 1)), r.ID)
		}
	}
	bob.roomsMu.Lock()
	held = len(bob.heldRooms)
	bob.roomsMu.Unlock()
	if held > maxHeldRoomSets {
		t.Fatalf("held %d sets, bound %d", held, maxHeldRoomSets)
	}
}

// The member identities survive a restart (the history of a member that
// has left still verifies), a torn or damaged line is skipped, and the
// set is bounded.
func TestMemberKeysPersist(t *testing.T) {
	dir := t.TempDir()
	k, err := openMemberKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, b := testIdentity(t), testIdentity(t)
	for _, id := range []*Identity{a, b, a} {
		if err := k.add(id.Pub); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, memberKeysFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("not hex\n" + strings.Repeat("ab", 31) + "\n0123"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	k, err = openMemberKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := testIdentity(t) // added after the torn line
	if err := k.add(c.Pub); err != nil {
		t.Fatal(err)
	}
	_ = k.close()
	k, err = openMemberKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.close() })
	if !k.knows(a.ID, a.Pub) || !k.knows(b.ID, b.Pub) || !k.knows(c.ID, c.Pub) || len(k.keys) != 3 {
		t.Fatalf("reloaded %d keys, want a, b and c", len(k.keys))
	}
	if k.knows(a.ID, b.Pub) {
		t.Fatal("an ID is known with another key")
	}
	for len(k.keys) < maxMemberKeys {
		k.keys[fmt.Sprintf("%016x", len(k.keys))] = ""
	}
	if err := k.add(testIdentity(t).Pub); !errors.Is(err, errMemberKeysFull) {
		t.Fatalf("add to a full set: %v, want errMemberKeysFull", err)
	}
}
