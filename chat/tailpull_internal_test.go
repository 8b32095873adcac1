package chat

import (
	"slices"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// A status that shows an origin's seqs we lack, with no successor to
// show the gap, leaves a tail mark: a round half an interval later pulls
// what has not come from the peer that showed it, at most maxTailPulls
// times, and nothing once it came.
func TestTailPulledWhenStatusShowsIt(t *testing.T) {
	n := lobbyNode(t, "tail", 16)
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r := n.joinedRoom(DefaultRoom)
	r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 1, "m")}, "0000000000000003", true)
	const holder = "0000000000000002"
	p := queueOnlyPeer(t, n, holder)
	lo, hi := pullRange(o.ID)
	start := time.Now()
	n.handleStatus(&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 3}}, FromOrigin: lo, UntilOrigin: hi}, holder)
	// It lacked 2 and 3: our status went back, as before (the holder
	// repairs it as a round's, which leaves out what it stored lately).
	if f, ok := p.queue.pop(); !ok || f.GetStatus() == nil || !f.GetStatus().Reply {
		t.Fatalf("answer %v, want our status as a reply", f)
	}
	due := func(at time.Duration) []gapPull {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.dueTailPullsLocked(start.Add(at), 500*time.Millisecond, maxRetryPulls, nil)
	}
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

// Tail marks are bounded per room, never name our own origin, and leave
// an origin whose gap pulls the round retries to those.
func TestTailMarksBounded(t *testing.T) {
	n := lobbyNode(t, "tail", 16)
	r := n.joinedRoom(DefaultRoom)
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var lack []msglog.SeqRange
	for i := range maxTailMarks + 10 {
		lack = append(lack, msglog.SeqRange{Origin: string(rune('a'+i%26)) + string(rune('a'+i/26)), From: 1, To: 2})
	}
	lack = append(lack, msglog.SeqRange{Origin: n.id.ID, From: 1, To: 5})
	r.noteTailsLocked(lack, n.id.ID, "0000000000000002", now)
	if len(r.tails) != maxTailMarks {
		t.Fatalf("%d marks, want %d", len(r.tails), maxTailMarks)
	}
	if _, ok := r.tails[n.id.ID]; ok {
		t.Fatal("a mark for our own origin")
	}
	got := r.dueTailPullsLocked(now.Add(time.Second), 500*time.Millisecond, 5, []gapPull{{origin: "aa"}})
	if len(got) != 5 || slices.ContainsFunc(got, func(p gapPull) bool { return p.origin == "aa" }) {
		t.Fatalf("pulls %+v: want 5, none of the origin the round retries", got)
	}
}
