package chat

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// holder is the peer the tail tests' statuses and pulls go to.
const holder = "0000000000000002"

// tailNode returns a node in the lobby holding o's first message (from a
// relay), and a link to holder whose queue the test pops.
func tailNode(t *testing.T) (*Node, *room, *Identity, *peerConn) {
	t.Helper()
	n := lobbyNode(t, "tail", 16)
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r := n.joinedRoom(DefaultRoom)
	r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 1, "m")}, "0000000000000003", true)
	return n, r, o, queueOnlyPeer(t, n, holder)
}

// heldDepNode returns a node, its lobby, and two identities: o, whose
// message the test makes depend on x's, and x, a member identity (deps
// on it are kept).
func heldDepNode(t *testing.T) (n *Node, r *room, o, x *Identity) {
	t.Helper()
	n = lobbyNode(t, "tail", 16)
	var err error
	if o, err = NewIdentity(); err != nil {
		t.Fatal(err)
	}
	if x, err = NewIdentity(); err != nil {
		t.Fatal(err)
	}
	if err := n.speakers.add(x.Pub); err != nil {
		t.Fatal(err)
	}
	return n, n.joinedRoom(DefaultRoom), o, x
}

// dueFrom returns the room's due tail pulls at start plus a time, with a
// half interval of 500 ms.
func dueFrom(r *room, start time.Time) func(time.Duration) []gapPull {
	return func(at time.Duration) []gapPull {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.dueTailPullsLocked(start.Add(at), 500*time.Millisecond, maxRetryPulls)
	}
}

// A status that shows an origin's seqs we lack, with no successor to
// show the gap, leaves a tail mark: a round half an interval later pulls
// what has not come from the peer that showed it, at most maxTailPulls
// times, and nothing once it came.
func TestTailPulledWhenStatusShowsIt(t *testing.T) {
	n, r, o, p := tailNode(t)
	lo, hi := pullRange(o.ID)
	start := time.Now()
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 3}}, FromOrigin: lo, UntilOrigin: hi}, holder)
	// It lacked 2 and 3: our status went back, as before (the holder
	// repairs it as a round's, which leaves out what it stored lately).
	if f, ok := p.queue.pop(); !ok || f.GetStatus() == nil || !f.GetStatus().Reply {
		t.Fatalf("answer %v, want our status as a reply", f)
	}
	due := dueFrom(r, start)
	if got := due(100 * time.Millisecond); len(got) != 0 {
		t.Fatalf("pulled after 100ms: %+v", got)
	}
	got := due(600 * time.Millisecond)
	if len(got) != 1 || got[0].peer != holder || got[0].origin != o.ID || !slices.Equal(got[0].missing, []uint64{2, 3}) {
		t.Fatalf("pull after 600ms %+v, want seqs 2 and 3 of %s from %s", got, o.ID, holder)
	}
	if got := due(700 * time.Millisecond); len(got) != 0 {
		t.Fatalf("pulled again 100ms after the pull: %+v", got)
	}
	// 2 came: only 3 is pulled next.
	r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 2, "m")}, "0000000000000003", true)
	if got := due(1200 * time.Millisecond); len(got) != 1 || !slices.Equal(got[0].missing, []uint64{3}) {
		t.Fatalf("second pull %+v, want seq 3 alone", got)
	}
	// Bounded: maxTailPulls pulls in all, then the mark is forgotten.
	pulls := 2
	for k := 2; k < 10; k++ {
		pulls += len(due(time.Duration(k) * time.Second))
	}
	if pulls != maxTailPulls {
		t.Fatalf("%d pulls of one mark, want %d", pulls, maxTailPulls)
	}
	r.mu.Lock()
	_, kept := r.tails[o.ID]
	r.mu.Unlock()
	if kept {
		t.Fatal("a mark pulled maxTailPulls times is still kept")
	}

	// A mark whose seqs come on time is forgotten without a pull.
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 4}}, FromOrigin: lo, UntilOrigin: hi}, holder)
	r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 3, "m"), benchChat(o, DefaultRoom, 4, "m")}, "0000000000000003", true)
	if got := due(20 * time.Second); len(got) != 0 {
		t.Fatalf("pulled seqs that came: %+v", got)
	}
	r.mu.Lock()
	_, kept = r.tails[o.ID]
	r.mu.Unlock()
	if kept {
		t.Fatal("a mark whose seqs came is still kept")
	}
}

// A message held back for a causal dependency on another origin leaves a
// tail mark for it, though nothing of that origin is held and it is no
// member of the room here (the signed dep is the proof): pulled from the
// peer that brought the message if it has not come half an interval
// later, then from the message's origin, and nothing once it came.
func TestHeldDepPulled(t *testing.T) {
	n, r, o, x := heldDepNode(t)
	const relay = "0000000000000002"
	dependent := &chatpb.Envelope{Seq: 1, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: 10,
		SentUnixNano: time.Now().UnixNano(), Body: []byte("m"), Deps: []*chatpb.Dep{{Origin: x.ID, Seq: 1}}}
	SignEnvelope(o, dependent)
	r.receive([]*chatpb.Envelope{dependent}, relay, true)
	start := time.Now()
	due := dueFrom(r, start)
	if got := due(100 * time.Millisecond); len(got) != 0 {
		t.Fatalf("pulled after 100ms: %+v", got)
	}
	got := due(600 * time.Millisecond)
	if len(got) != 1 || got[0].peer != relay || got[0].origin != x.ID || !slices.Equal(got[0].missing, []uint64{1}) {
		t.Fatalf("pull %+v, want %s/1 from %s", got, x.ID, relay)
	}
	if got := due(1200 * time.Millisecond); len(got) != 1 || got[0].peer != o.ID {
		t.Fatalf("second pull %+v, want it from the held message's origin %s", got, o.ID)
	}
	// HeldBack says what the message waits for and what is known of it
	// (the bench prints it for peers that hold messages back at the end).
	lines := n.HeldBack(DefaultRoom, 0)
	want := fmt.Sprintf("%s/1 data: causal: waiting for %s:1 (stored through %s/0) (stored through %s/0); %s: in the member view false, a member identity true, pulled 2 times (from %s and %s in turn, through 1)",
		o.ID, x.ID, o.ID, x.ID, x.ID, relay, o.ID)
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("HeldBack %q, want %q", lines, want)
	}
	// It comes: the dependent message is delivered, the mark forgotten.
	r.receive([]*chatpb.Envelope{benchChat(x, DefaultRoom, 1, "m")}, relay, true)
	if got := due(3 * time.Second); len(got) != 0 {
		t.Fatalf("pulled a dependency that came: %+v", got)
	}
	r.mu.Lock()
	_, kept := r.tails[x.ID]
	held := r.m.HeldBack(0)
	r.mu.Unlock()
	if kept || len(held) != 0 {
		t.Fatalf("mark kept %v, held back %v: want forgotten and nothing held", kept, held)
	}
}

// A total room's data carries deps too (chat/order runs the causal stage
// in front of the timestamp order, so that a member declared down does
// not let a message be shown before one its sender had shown): a
// message held for one leaves a mark when it comes, as in a causal room,
// and is shown once the dependency came.
func TestHeldDepPulledInTotalRoom(t *testing.T) {
	n, _, o, x := heldDepNode(t)
	n.joinMu.Lock()
	r, err := n.openRoom(context.Background(), msglog.RoomInfo{Name: "tot", Mode: hearsay.OrderTotal.String(), Joined: time.Now()}, false)
	n.joinMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	const relay = "0000000000000002"
	dependent := &chatpb.Envelope{Seq: 1, Room: "tot", Kind: chatpb.Kind_KIND_CHAT, Lamport: 10,
		SentUnixNano: time.Now().UnixNano(), Body: []byte("m"), Deps: []*chatpb.Dep{{Origin: x.ID, Seq: 1}}}
	SignEnvelope(o, dependent)
	r.receive([]*chatpb.Envelope{dependent}, relay, true)
	r.mu.Lock()
	m, marked := r.tails[x.ID]
	held := r.m.HeldBack(0)
	r.mu.Unlock()
	if !marked || m.peer != relay || m.seq != 1 {
		t.Fatalf("dependency's mark %+v (made %v), want one for %s/1 to pull from %s", m, marked, x.ID, relay)
	}
	if len(held) != 1 || held[0].Waits.Origin != x.ID || held[0].Waits.Seq != 1 {
		t.Fatalf("held back %+v, want %s/1 waiting for %s:1", held, o.ID, x.ID)
	}
	r.receive([]*chatpb.Envelope{benchChat(x, "tot", 1, "m")}, relay, true)
	r.mu.Lock()
	held = r.m.HeldBack(0)
	st := r.m.Stats()
	r.mu.Unlock()
	if len(held) != 0 || st.Delivered != 2 || st.Late != 0 {
		t.Fatalf("after the dependency came: held back %+v, %d delivered, %d late; want nothing held, 2 delivered", held, st.Delivered, st.Late)
	}
}

// The anti-entropy loop's turn between rounds sends the due tail pulls:
// a gap pull to the mark's peer naming the seqs still lacked.
func TestSendDuePulls(t *testing.T) {
	n, r, o, p := tailNode(t)
	r.mu.Lock()
	r.members[holder] = 1 // a member: the turn pulls in rooms that have one
	r.tails[o.ID] = tailMark{seq: 3, peer: holder, since: time.Now().Add(-time.Second)}
	r.mu.Unlock()
	before := n.Stats().TailPulls
	n.sendDuePulls()
	f, ok := p.queue.pop()
	st := f.GetStatus()
	if !ok || st == nil || !slices.Equal(st.Missing, []uint64{2, 3}) || st.FromOrigin != o.ID {
		t.Fatalf("sent %v, want a pull of seqs 2 and 3 of %s", f, o.ID)
	}
	if got := n.Stats().TailPulls - before; got != 1 {
		t.Fatalf("TailPulls grew by %d, want 1", got)
	}
	// Not again before half an interval.
	n.sendDuePulls()
	if f, ok := p.queue.pop(); ok {
		t.Fatalf("pulled again at once: %v", f)
	}
}

// A status showing the first message of a member identity that is not
// (yet) in the room's member view leaves a mark: the view follows room
// sets, which under loss come late, and the message has no successor to
// show it missing. An ID that is no member identity leaves none.
func TestTailMarkForMemberIdentity(t *testing.T) {
	_, r, _, x := heldDepNode(t) // x: a member identity, not in the room's view
	stranger := testIdentity(t)
	const peer = "0000000000000002"
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noteTailsLocked([]msglog.SeqRange{{Origin: x.ID, From: 1, To: 1}, {Origin: stranger.ID, From: 1, To: 1}}, peer, time.Now())
	if m, ok := r.tails[x.ID]; !ok || m.peer != peer || m.seq != 1 {
		t.Fatalf("mark for a member identity's first message: %+v (made %v), want one to pull from %s", m, ok, peer)
	}
	if _, ok := r.tails[stranger.ID]; ok {
		t.Fatal("a mark for an ID that is no member identity")
	}
}

// Tail marks are bounded per room and per peer, name only members of the
// room, member identities or origins whose messages we hold (a status may
// name any ID),
// never our own origin, and wait while a gap pull of the same origin's
// holes is recent. A mark pulled in vain is taken over by another peer
// that shows the seqs: a member that claims seqs it cannot give holds it
// for one pull.
func TestTailMarksBounded(t *testing.T) {
	n := lobbyNode(t, "tail", 16)
	r := n.joinedRoom(DefaultRoom)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	origin := func(i int) string { return fmt.Sprintf("%016x", 0xa000+i) }
	for i := range maxTailMarks + 10 {
		r.members[origin(i)] = 1
	}
	lack := func(from, to int) []msglog.SeqRange {
		var out []msglog.SeqRange
		for i := from; i < to; i++ {
			out = append(out, msglog.SeqRange{Origin: origin(i), From: 1, To: 2})
		}
		return out
	}
	peer := func(k int) string { return fmt.Sprintf("%016x", 0xb000+k) }
	// One peer holds at most maxTailMarksPerPeer; our own origin and an ID
	// that is no member are never marked.
	r.noteTailsLocked(append(lack(0, maxTailMarks+10), msglog.SeqRange{Origin: n.id.ID, From: 1, To: 5}, msglog.SeqRange{Origin: "00000000000000ff", From: 1, To: 5}), peer(0), now)
	if len(r.tails) != maxTailMarksPerPeer {
		t.Fatalf("%d marks from one peer, want %d", len(r.tails), maxTailMarksPerPeer)
	}
	for k := 1; k < 10; k++ {
		r.noteTailsLocked(lack(0, maxTailMarks+10), peer(k), now)
	}
	if len(r.tails) != maxTailMarks {
		t.Fatalf("%d marks, want %d", len(r.tails), maxTailMarks)
	}
	for _, o := range []string{n.id.ID, "00000000000000ff"} {
		if _, ok := r.tails[o]; ok {
			t.Fatalf("a mark for %s", o)
		}
	}
	// A recent gap pull of an origin's holes holds its mark back.
	r.gapPulls[origin(0)] = gapMark{last: now.Add(time.Second)}
	got := r.dueTailPullsLocked(now.Add(time.Second), 500*time.Millisecond, 5)
	if len(got) != 5 || slices.ContainsFunc(got, func(p gapPull) bool { return p.origin == origin(0) }) {
		t.Fatalf("pulls %+v: want 5, none of the origin pulled just now", got)
	}
	// Taken over after its pull, by a peer that shows the seqs.
	pulled := got[0].origin
	if m := r.tails[pulled]; m.pulls != 1 {
		t.Fatalf("mark %+v after its pull", m)
	}
	r.noteTailsLocked([]msglog.SeqRange{{Origin: pulled, From: 1, To: 3}}, peer(20), now.Add(time.Second))
	if m := r.tails[pulled]; m.peer != peer(20) || m.pulls != 1 || m.seq != 2 {
		t.Fatalf("mark %+v: want taken over by %s, its pull and seq kept", m, peer(20))
	}
	// Not before its first pull.
	var fresh string
	for o, m := range r.tails {
		if m.pulls == 0 {
			fresh = o
			break
		}
	}
	delete(r.tails, fresh)
	r.noteTailsLocked([]msglog.SeqRange{{Origin: fresh, From: 1, To: 2}}, peer(30), now)
	r.noteTailsLocked([]msglog.SeqRange{{Origin: fresh, From: 1, To: 2}}, peer(31), now)
	if m := r.tails[fresh]; m.peer != peer(30) {
		t.Fatalf("mark %+v: taken over before its first pull", m)
	}
}

// A dependency that holds a message back keeps being pulled while it
// does: its mark is taken even when statuses of other origins fill the
// marks' slots, and once its pulls ran out in vain the next look marks
// it again, pulled from the held message's origin alone. Before, the
// message's one naming of the dependency (compact deps) was its only
// chance, and a peer of an N=200 loss run held a sender's messages back
// for good.
func TestBlockerMarkedAgain(t *testing.T) {
	_, r, o, x := heldDepNode(t)
	start := time.Now()
	r.mu.Lock()
	for i := range maxTailMarks { // other origins' marks, not due in this test
		r.tails[fmt.Sprintf("%016x", 1000+i)] = tailMark{seq: 1, peer: fmt.Sprintf("%016x", i%8), since: start.Add(time.Hour)}
	}
	r.mu.Unlock()
	const relay = "0000000000000002"
	dependent := &chatpb.Envelope{Seq: 1, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: 10,
		SentUnixNano: start.UnixNano(), Body: []byte("m"), Deps: []*chatpb.Dep{{Origin: x.ID, Seq: 1}}}
	SignEnvelope(o, dependent)
	r.receive([]*chatpb.Envelope{dependent}, relay, true)
	r.mu.Lock()
	m, marked := r.tails[x.ID]
	r.mu.Unlock()
	if !marked || m.peer != relay {
		t.Fatalf("dependency's mark %+v (taken %v) with %d slots full, want one to pull from %s", m, marked, maxTailMarks, relay)
	}
	pulls := func(from, to time.Duration) []string {
		var peers []string
		for at := from; at <= to; at += 500 * time.Millisecond {
			r.mu.Lock()
			_, tails := r.duePullsLocked(start.Add(at), 500*time.Millisecond)
			r.mu.Unlock()
			for _, p := range tails {
				if p.origin == x.ID {
					peers = append(peers, p.peer)
				}
			}
		}
		return peers
	}
	// Six pulls (relay and origin in turn) at 0.5 to 3 s, forgotten at
	// 3.5 s. o is not in the room's member view: it is not asked again
	// (a departed origin cannot answer; the rounds repair).
	if got, want := pulls(500*time.Millisecond, 5*time.Second), []string{relay, o.ID, relay, o.ID, relay, o.ID}; !slices.Equal(got, want) {
		t.Fatalf("pulls from %v, want %v", got, want)
	}
	// o a member: marked again at the next look (5.5 s), pulled from o
	// six times at 6 to 8.5 s. The marks o's own statuses made (here
	// more than maxDepMarksPerOrigin) do not count against it.
	r.mu.Lock()
	r.members[o.ID] = 1
	for i := range 2 * maxDepMarksPerOrigin {
		r.tails[fmt.Sprintf("%016x", 5000+i)] = tailMark{seq: 1, peer: o.ID, since: start.Add(time.Hour)}
	}
	r.mu.Unlock()
	if got, want := pulls(5500*time.Millisecond, 9*time.Second), []string{o.ID, o.ID, o.ID, o.ID, o.ID, o.ID}; !slices.Equal(got, want) {
		t.Fatalf("with its origin a member: pulls from %v, want %v", got, want)
	}
}

// A member whose message names seqs nobody sent, on many origins, gets
// at most maxDepMarksPerOrigin of them marked, when the message comes
// and at each later look: it cannot fill the slots kept for dependencies.
func TestBlockerMarksPerOrigin(t *testing.T) {
	n := lobbyNode(t, "tail", 16)
	liar, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	var deps []*chatpb.Dep
	for range 3 * maxDepMarksPerOrigin {
		x, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		if err := n.speakers.add(x.Pub); err != nil {
			t.Fatal(err)
		}
		deps = append(deps, &chatpb.Dep{Origin: x.ID, Seq: 1000})
	}
	r := n.joinedRoom(DefaultRoom)
	r.mu.Lock()
	r.members[liar.ID] = 1
	r.mu.Unlock()
	start := time.Now()
	lie := &chatpb.Envelope{Seq: 1, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: 10,
		SentUnixNano: start.UnixNano(), Body: []byte("m"), Deps: deps}
	SignEnvelope(liar, lie)
	r.receive([]*chatpb.Envelope{lie}, "0000000000000002", true)
	marks := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.tails)
	}
	if got := marks(); got != maxDepMarksPerOrigin {
		t.Fatalf("%d marks for one message naming %d unsent deps, want %d", got, len(deps), maxDepMarksPerOrigin)
	}
	// Its next message, in a frame of its own, names others: the cap
	// holds across frames.
	lie2 := &chatpb.Envelope{Seq: 2, Room: DefaultRoom, Kind: chatpb.Kind_KIND_CHAT, Lamport: 11,
		SentUnixNano: start.UnixNano(), Body: []byte("m"), Deps: deps[maxDepMarksPerOrigin:]}
	SignEnvelope(liar, lie2)
	r.receive([]*chatpb.Envelope{lie2}, "0000000000000003", true)
	if got := marks(); got != maxDepMarksPerOrigin {
		t.Fatalf("%d marks after a second message, want %d", got, maxDepMarksPerOrigin)
	}
	for at := 500 * time.Millisecond; at <= 10*time.Second; at += 500 * time.Millisecond {
		r.mu.Lock()
		r.duePullsLocked(start.Add(at), 500*time.Millisecond)
		r.mu.Unlock()
		if got := marks(); got > maxDepMarksPerOrigin {
			t.Fatalf("at %v: %d marks, want at most %d", at, got, maxDepMarksPerOrigin)
		}
	}
}
