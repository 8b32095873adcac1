package chat

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// A room's hot origins are the few whose messages arrived lately, taken in
// turn by the rounds; one quiet for the window is no longer taken, and a
// new one takes the slot of the one longest quiet.
func TestHotOrigins(t *testing.T) {
	n := lobbyNode(t, "hot", 16)
	r := n.joinedRoom(DefaultRoom)
	start := time.Now()
	next := func(at time.Duration) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.nextHotLocked(start.Add(at), 10*time.Second)
	}
	if got := next(0); got != "" {
		t.Fatalf("hot origin %q before any message", got)
	}
	r.mu.Lock()
	r.hot.note("a", start)
	r.hot.note("b", start.Add(time.Second))
	r.mu.Unlock()
	if a, b, c := next(2*time.Second), next(2*time.Second), next(2*time.Second); a != "a" || b != "b" || c != "a" {
		t.Fatalf("in turn: %q %q %q, want a b a", a, b, c)
	}
	if got, again := next(10500*time.Millisecond), next(10500*time.Millisecond); got != "b" || again != "b" {
		t.Fatalf("after a's window: %q %q, want b only", got, again)
	}
	if got := next(12 * time.Second); got != "" {
		t.Fatalf("hot origin %q after both windows", got)
	}
	// Bounded: the one longest quiet gives its slot.
	r.mu.Lock()
	for i := range maxHotOrigins + 1 {
		r.hot.note(fmt.Sprint("o", i), start.Add(time.Duration(20+i)*time.Second))
	}
	held := slices.Clone(r.hot.origins[:])
	r.mu.Unlock()
	if slices.Contains(held, "o0") || !slices.Contains(held, fmt.Sprint("o", maxHotOrigins)) {
		t.Fatalf("hot origins %v: want o0 (longest quiet) replaced by o%d", held, maxHotOrigins)
	}
}

// A hot origin's status (one origin, no holes named) is answered as a
// round's: the messages the sender lacks that were stored more than
// inFlightAge intervals ago, not those still on their way, and our status,
// which tells it what those are; a gap pull of the same origin gets all it
// names.
func TestHotStatusAnsweredAsRound(t *testing.T) {
	n := lobbyNode(t, "relay", 16)
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	old, err := recordsOf([]*chatpb.Envelope{benchChat(o, DefaultRoom, 1, "m"), benchChat(o, DefaultRoom, 2, "m"), benchChat(o, DefaultRoom, 3, "m")}, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := recordsOf([]*chatpb.Envelope{benchChat(o, DefaultRoom, 4, "m")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.log.AppendBatchDeferred(context.Background(), append(old, fresh...)); err != nil {
		t.Fatal(err)
	}
	const from = "0000000000000002"
	p := queueOnlyPeer(t, n, from)
	var statuses []*chatpb.Status
	repaired := func() []uint64 {
		var seqs []uint64
		statuses = nil
		for {
			f, ok := p.queue.pop()
			if !ok {
				return seqs
			}
			for _, e := range f.GetRepair().GetEnvelopes() {
				seqs = append(seqs, e.Seq)
			}
			if st := f.GetStatus(); st != nil {
				statuses = append(statuses, st)
			}
		}
	}
	lo, hi := pullRange(o.ID)
	hot := &chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 1}}, FromOrigin: lo, UntilOrigin: hi}
	if !isRound(hot) {
		t.Fatal("a hot origin's status is not a round's")
	}
	n.handleStatus(hot, from)
	if got := repaired(); !slices.Equal(got, []uint64{2, 3}) {
		t.Fatalf("hot status answered with %v, want [2 3] (4 is still on its way)", got)
	}
	// Our status follows, so the sender pulls 4 if it does not come
	// (tailpull.go).
	if len(statuses) != 1 || !statuses[0].Reply || len(statuses[0].Vector) != 1 || statuses[0].Vector[0].Seq != 4 {
		t.Fatalf("statuses after the repair %v, want our reply holding seq 4", statuses)
	}
	// A reply is answered with the repair alone: no status back, so two
	// peers never trade statuses.
	reply := &chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 1}}, FromOrigin: lo, UntilOrigin: hi, Reply: true}
	n.handleStatus(reply, from)
	if got := repaired(); !slices.Equal(got, []uint64{2, 3}) || len(statuses) != 0 {
		t.Fatalf("reply answered with %v and statuses %v, want [2 3] and none", got, statuses)
	}
	pull := &chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 1}}, FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2, 3, 4}}
	if isRound(pull) {
		t.Fatal("a gap pull is a round's status")
	}
	n.handleStatus(pull, from)
	if got := repaired(); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("gap pull answered with %v, want [2 3 4]", got)
	}
}
