package chat

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// A digest covers exactly the origins of its range that have messages:
// equal there, equal digests; a seq that differs, an origin more or less
// in the range, different digests; what lies outside the range, or an
// origin at seq 0, changes nothing.
func TestStatusDigest(t *testing.T) {
	base := msglog.VersionVector{"a": 3, "b": 7, "c": 1, "d": 9}
	lo, hi := "b", "d" // b and c
	d0 := statusDigest(base, lo, hi)
	if len(d0) != statusDigestLen {
		t.Fatalf("digest of %d bytes, want %d", len(d0), statusDigestLen)
	}
	for _, tc := range []struct {
		name string
		vv   msglog.VersionVector
		same bool
	}{
		{"equal", msglog.VersionVector{"a": 3, "b": 7, "c": 1, "d": 9}, true},
		{"outside the range", msglog.VersionVector{"a": 5, "b": 7, "c": 1}, true},
		{"an origin at seq 0", msglog.VersionVector{"b": 7, "c": 1, "bb": 0}, true},
		{"a seq behind", msglog.VersionVector{"b": 6, "c": 1}, false},
		{"an origin less", msglog.VersionVector{"b": 7}, false},
		{"an origin more", msglog.VersionVector{"b": 7, "bb": 1, "c": 1}, false},
		{"the seq moved to another origin", msglog.VersionVector{"b": 1, "c": 7}, false},
		{"empty", msglog.VersionVector{}, false},
	} {
		if got := bytes.Equal(statusDigest(tc.vv, lo, hi), d0); got != tc.same {
			t.Errorf("%s: same digest %v, want %v", tc.name, got, tc.same)
		}
	}
	// Origin and seq are prefixed: "b"+seq 0x31 cannot pass for "b1".
	if bytes.Equal(statusDigest(msglog.VersionVector{"b": 0x31}, "", ""), statusDigest(msglog.VersionVector{"b1": 1}, "", "")) {
		t.Error("two vectors share a digest through their encoding")
	}
}

// BenchmarkStatusDigest: the digest of a round's slice of 40 origins of a
// room's 1,000.
func BenchmarkStatusDigest(b *testing.B) {
	vv := make(msglog.VersionVector, 1000)
	for i := range 1000 {
		vv[fmt.Sprintf("%016x", i*0x41)] = uint64(i + 1)
	}
	lo, hi := fmt.Sprintf("%016x", 100*0x41), fmt.Sprintf("%016x", 140*0x41)
	b.ReportAllocs()
	for b.Loop() {
		statusDigest(vv, lo, hi)
	}
}
