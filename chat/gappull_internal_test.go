package chat

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// queueOnlyPeer links n to peer from with a link whose writer never runs:
// its queue keeps what n sends it, for the test to pop. The link goes
// before the node's Shutdown, which would wait for its writer.
func queueOnlyPeer(t *testing.T, n *Node, from string) *peerConn {
	t.Helper()
	p := newPeerConn(n, from, "127.0.0.1:1", nil)
	n.mu.Lock()
	n.peers[from] = p
	n.mu.Unlock()
	t.Cleanup(func() {
		n.mu.Lock()
		delete(n.peers, from)
		n.mu.Unlock()
		p.cancel()
	})
	return p
}

// storeWithGap stores in n's lobby, in one batch received a minute ago,
// a new origin's messages 1 to 3 and 6 (a gap at 4 and 5) and message 1 of
// each of others more origins, and returns the first origin.
func storeWithGap(t *testing.T, n *Node, others int) *Identity {
	t.Helper()
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	var envs []*chatpb.Envelope
	for _, seq := range []uint64{1, 2, 3, 6} {
		envs = append(envs, benchChat(o, DefaultRoom, seq, "m"))
	}
	for range others {
		other, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, benchChat(other, DefaultRoom, 1, "m"))
	}
	recs, err := recordsOf(envs, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.log.AppendBatchDeferred(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return o
}

// validPull accepts a gap pull of one origin with its holes in increasing
// order above the sender's entry, and refuses every other shape: a
// receiver must never read more than maxPullSeqs messages for one, nor
// take a digest, a reply or a range of several origins for a pull.
func TestValidPull(t *testing.T) {
	const o = "00000000000000aa"
	lo, hi := pullRange(o)
	many := make([]uint64, maxPullSeqs+1)
	for i := range many {
		many[i] = uint64(i + 1)
	}
	for _, c := range []struct {
		name   string
		st     *chatpb.Status
		theirs msglog.VersionVector
		ok     bool
	}{
		{"holes", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2, 4}}, nil, true},
		{"above the entry", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{4, MaxSeq}}, msglog.VersionVector{o: 3}, true},
		{"at most maxPullSeqs", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: many[:maxPullSeqs]}, nil, true},
		{"too many", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: many}, nil, false},
		{"not increasing", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{4, 2}}, nil, false},
		{"repeated", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2, 2}}, nil, false},
		{"at the entry", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{3}}, msglog.VersionVector{o: 3}, false},
		{"zero", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{0, 1}}, nil, false},
		{"over MaxSeq", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{MaxSeq + 1}}, nil, false},
		{"several origins", &chatpb.Status{FromOrigin: lo, UntilOrigin: "f", Missing: []uint64{2}}, nil, false},
		{"whole vector", &chatpb.Status{Missing: []uint64{2}}, nil, false},
		{"digest", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2}, Digest: []byte(strings.Repeat("d", statusDigestLen))}, nil, false},
		{"reply", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2}, Reply: true}, nil, false},
		{"want reply", &chatpb.Status{FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2}, WantReply: true}, nil, false},
	} {
		if got := validPull(c.st, c.theirs); got != c.ok {
			t.Errorf("%s: validPull = %v, want %v", c.name, got, c.ok)
		}
	}
}

// A gap pull is answered with the named seqs this node holds, below its
// prefix (read as ranges) and above it (one by one), and never with this
// node's own status, even when the puller holds more than it does; an
// ordinary status from such a peer still gets one.
func TestGapPullAnswer(t *testing.T) {
	n := lobbyNode(t, "relay", 16)
	o := storeWithGap(t, n, 0) // the relay holds o's 1 to 3 and 6
	const from = "0000000000000002"
	p := queueOnlyPeer(t, n, from)
	sent := func() (repaired []uint64, statuses int) {
		for {
			f, ok := p.queue.pop()
			if !ok {
				return repaired, statuses
			}
			switch {
			case f.GetRepair() != nil:
				for _, e := range f.GetRepair().Envelopes {
					repaired = append(repaired, e.Seq)
				}
			case f.GetStatus() != nil:
				statuses++
			}
		}
	}
	lo, hi := pullRange(o.ID)
	for _, c := range []struct {
		name     string
		st       *chatpb.Status
		repaired []uint64
		statuses int
	}{
		{"holes below and above the prefix",
			&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 1}}, FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{2, 5, 6}},
			[]uint64{2, 6}, 0},
		{"puller holds more",
			&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 5}}, FromOrigin: lo, UntilOrigin: hi, Missing: []uint64{7}},
			nil, 0},
		{"protocol-8 pull from a peer that holds more",
			&chatpb.Status{Room: DefaultRoom, Vector: []*chatpb.Dep{{Origin: o.ID, Seq: 5}}, FromOrigin: lo, UntilOrigin: hi},
			nil, 1},
	} {
		before := n.Stats().BadFrames
		n.handleStatus(c.st, from)
		if n.Stats().BadFrames != before {
			t.Fatalf("%s: counted as a bad frame", c.name)
		}
		repaired, statuses := sent()
		if !slices.Equal(repaired, c.repaired) || statuses != c.statuses {
			t.Errorf("%s: sent repairs of %v and %d statuses, want %v and %d", c.name, repaired, statuses, c.repaired, c.statuses)
		}
	}
}

// A hole still open after its pull is pulled again by the next
// anti-entropy round once the last pull is half a round old, and forgotten
// once it closes: behind the last message of a burst nothing else would
// pull it (a pull or its answer lost, or the relay lacking it too).
func TestGapPullRetried(t *testing.T) {
	n := lobbyNode(t, "puller", 16)
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r := n.joinedRoom(DefaultRoom)
	const relay = "0000000000000002"
	pulls := r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 1, "m"), benchChat(o, DefaultRoom, 3, "m")}, relay, true)
	if len(pulls) != 1 || pulls[0].peer != relay || !slices.Equal(pulls[0].missing, []uint64{2}) {
		t.Fatalf("first pull %+v, want seq 2 from the relay", pulls)
	}
	start := time.Now()
	retry := func(at time.Duration) []gapPull {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.retryGapPullsLocked(start.Add(at), 500*time.Millisecond)
	}
	if got := retry(100 * time.Millisecond); len(got) != 0 {
		t.Fatalf("pulled again %v after 100ms: %+v", 100*time.Millisecond, got)
	}
	got := retry(600 * time.Millisecond)
	if len(got) != 1 || got[0].origin != o.ID || !slices.Equal(got[0].missing, []uint64{2}) || got[0].peer != "" {
		t.Fatalf("retry after 600ms %+v, want seq 2 of %s, the peer left to the round", got, o.ID)
	}
	if got := retry(700 * time.Millisecond); len(got) != 0 {
		t.Fatalf("pulled again 100ms after the retry: %+v", got)
	}
	// The hole closes: nothing more to pull, and the origin is forgotten.
	r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 2, "m")}, relay, false)
	if got := retry(5 * time.Second); len(got) != 0 {
		t.Fatalf("pulled a closed hole: %+v", got)
	}
	r.mu.Lock()
	_, kept := r.gapPulls[o.ID]
	r.mu.Unlock()
	if kept {
		t.Fatal("the origin of a closed hole is still remembered")
	}
	// At most maxRetryPulls a round, the longest waiting first.
	for range maxRetryPulls + 4 {
		id, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		r.receive([]*chatpb.Envelope{benchChat(id, DefaultRoom, 2, "m")}, relay, true)
	}
	if got := retry(10 * time.Second); len(got) != maxRetryPulls {
		t.Fatalf("%d pulls retried in one round, want %d", len(got), maxRetryPulls)
	}
	if got := retry(10*time.Second + time.Millisecond); len(got) != 4 {
		t.Fatalf("%d pulls retried next, want the 4 left waiting", len(got))
	}
}

// A gap that a repair shows is not pulled at once (the repair answered a
// pull or a status already) but remembered, so the next round pulls it if
// it is still open: a hole behind repaired messages otherwise waited for
// the rounds' slice sweep.
func TestGapShownByRepairRetried(t *testing.T) {
	n := lobbyNode(t, "puller", 16)
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r := n.joinedRoom(DefaultRoom)
	if pulls := r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 1, "m"), benchChat(o, DefaultRoom, 3, "m")}, "0000000000000002", false); len(pulls) != 0 {
		t.Fatalf("a repair pulled at once: %+v", pulls)
	}
	r.mu.Lock()
	got := r.retryGapPullsLocked(time.Now().Add(time.Second), 500*time.Millisecond)
	r.mu.Unlock()
	if len(got) != 1 || got[0].origin != o.ID || !slices.Equal(got[0].missing, []uint64{2}) {
		t.Fatalf("the round pulls %+v, want seq 2 of %s", got, o.ID)
	}
	// Remembering it bars no pull a push's gap makes at once.
	if pulls := r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 4, "m")}, "0000000000000003", true); len(pulls) != 0 {
		t.Fatalf("a push's gap pulled within 100ms of the round's pull: %+v", pulls)
	}
	p, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r.receive([]*chatpb.Envelope{benchChat(p, DefaultRoom, 3, "m")}, "0000000000000002", false)
	if pulls := r.receive([]*chatpb.Envelope{benchChat(p, DefaultRoom, 4, "m")}, "0000000000000003", true); len(pulls) != 1 {
		t.Fatalf("a push's gap right after a repair showed it: %d pulls, want 1 at once", len(pulls))
	}
}

// A hole no partner fills is pulled by at most maxGapRetries rounds after
// the last pull a gap made, then left to the rounds' sweep: it may have
// no holder left, and each pull costs a partner up to maxPullSeqs reads.
func TestGapPullRetriesBounded(t *testing.T) {
	n := lobbyNode(t, "puller", 16)
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r := n.joinedRoom(DefaultRoom)
	r.receive([]*chatpb.Envelope{benchChat(o, DefaultRoom, 1, "m"), benchChat(o, DefaultRoom, 3, "m")}, "0000000000000002", true)
	start := time.Now()
	retries := 0
	for k := 1; k <= 3*maxGapRetries; k++ {
		r.mu.Lock()
		retries += len(r.retryGapPullsLocked(start.Add(time.Duration(k)*time.Second), 500*time.Millisecond))
		r.mu.Unlock()
	}
	if retries != maxGapRetries {
		t.Fatalf("%d rounds pulled the hole again, want %d", retries, maxGapRetries)
	}
	r.mu.Lock()
	_, kept := r.gapPulls[o.ID]
	r.mu.Unlock()
	if kept {
		t.Fatal("a hole given up is still remembered")
	}
}
