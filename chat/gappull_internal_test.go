package chat

import (
	"strings"
	"testing"

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
