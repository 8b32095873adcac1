package chat

// Status digests (protocol 8): a tree-mode anti-entropy round sends, in
// place of its slice of the version vector (up to statusSliceEntries
// entries of about 22 bytes each), an 8-byte digest of it. Two peers'
// vectors over a range are equal most rounds (the tree delivered the same
// messages to both), and then the digests say so for a tenth of the
// bytes; when they differ the receiver answers with its own status of the
// range and the exchange goes on as for a full status: repairs both ways.
// At 100 peers with every member having spoken once, a round's slice of
// 40 entries cost about 830 bytes on the wire per peer per second, often
// answered by as much.
//
// A collision (two different vectors with one digest) would leave the
// pair without repairs over that range until one of the vectors moves:
// 64 bits make it about one in 2^64 per round between honest peers. A
// member that sends a wrong digest on purpose only gets the receiver's
// status of the range, as an empty full status already does.

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// statusDigestLen is the length of Status.digest.
const statusDigestLen = 8

// statusDigest returns the digest of vv over the origins in [lo, hi) (""
// ends unbounded): digestDeps of depsIn(vv, lo, hi).
func statusDigest(vv msglog.VersionVector, lo, hi string) []byte {
	return digestDeps(depsIn(vv, lo, hi))
}

// depsIn encodes the entries of vv for the origins in [lo, hi) (hi "":
// to the end), sorted by origin: a round's slice is a tenth or less of a
// large room's vector, and encoding every entry to keep the slice's cost
// a Dep per origin of the room.
func depsIn(vv msglog.VersionVector, lo, hi string) []*chatpb.Dep {
	var out []*chatpb.Dep
	for o, s := range vv {
		if s > 0 && inRange(o, lo, hi) {
			// A log damaged by an older version may hold a seq over
			// MaxSeq; peers refuse such a vector whole, so say MaxSeq
			// (we can store nothing above it anyway).
			out = append(out, &chatpb.Dep{Origin: o, Seq: min(s, MaxSeq)})
		}
	}
	slices.SortFunc(out, func(a, b *chatpb.Dep) int { return strings.Compare(a.Origin, b.Origin) })
	return out
}

// digestDeps returns the digest of a vector's entries, in origin order as
// depsIn gives them (a status slice's Vector is such a range): SHA-256
// over a domain prefix and each origin with its seq, each length- or
// varint-prefixed so that no two vectors share an encoding; its first
// statusDigestLen bytes.
func digestDeps(deps []*chatpb.Dep) []byte {
	h := sha256.New()
	h.Write([]byte("hearsay/status-digest/v1\n"))
	var b []byte
	for _, d := range deps {
		b = binary.AppendUvarint(b[:0], uint64(len(d.Origin)))
		b = append(b, d.Origin...)
		b = binary.AppendUvarint(b, d.Seq)
		h.Write(b)
	}
	return h.Sum(nil)[:statusDigestLen]
}
