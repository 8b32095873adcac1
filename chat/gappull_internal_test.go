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
	o, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	// The relay holds o's 1 to 3 and 6.
	var envs []*chatpb.Envelope
	for _, seq := range []uint64{1, 2, 3, 6} {
		envs = append(envs, benchChat(o, DefaultRoom, seq, "m"))
	}
	recs, err := recordsOf(envs, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.log.AppendBatchDeferred(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	const from = "0000000000000002"
	p := newPeerConn(n, from, "127.0.0.1:1", nil) // its writer never runs: the queue keeps what is sent
	n.mu.Lock()
	n.peers[from] = p
	n.mu.Unlock()
	t.Cleanup(func() { // before the node's Shutdown, which would wait for its writer
		n.mu.Lock()
		delete(n.peers, from)
		n.mu.Unlock()
		p.cancel()
	})
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
