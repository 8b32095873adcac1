package chat

// Bounds checked on a frame's bytes before they are decoded. proto.Unmarshal
// allocates every entry of a repeated field before any handler can check
// its length: a packed Status.missing entry is one byte on the wire and
// eight decoded (a frame at the limit made about a million seqs, 1 MB),
// and an empty Status.vector entry is two bytes on the wire and a Dep of
// about 64 bytes plus its pointer decoded (a frame at the limit made 62,000
// of them, some 5 MB). The TLS transport calls checkFrameBounds on every
// frame's bytes (transport.TLSConfig.CheckFrame) and drops a frame it
// refuses, counted as a bad frame, without decoding it; the same bounds
// are checked again on the decoded status (vectorOf, validPull), which
// the in-memory transport of tests and the simulator still hands over.

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of chat.proto that checkFrameBounds reads.
const (
	frameStatusField   = 8 // Frame.status
	statusVectorField  = 2 // Status.vector
	statusMissingField = 8 // Status.missing
)

// checkFrameBounds refuses an encoded Frame whose Status would decode to
// more than maxVector vector entries or more than maxPullSeqs missing
// seqs. It counts what proto.Unmarshal would allocate: every occurrence
// of Frame.status (occurrences of a message field are merged), every
// vector entry, and every missing seq packed (one per byte that ends a
// varint: protobuf-go sizes the slice by that count before it decodes)
// or not. It allocates nothing. Bytes it cannot parse end the scan with
// what was counted so far: the decoder, which reads them in the same
// order, fails there too, having allocated no more than that.
func checkFrameBounds(b []byte) error {
	var vector, missing int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num != frameStatusField || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				break
			}
			b = b[n:]
			continue
		}
		st, n := protowire.ConsumeBytes(b)
		if n < 0 {
			break
		}
		b = b[n:]
		v, m := countStatusEntries(st)
		vector += v
		missing += m
	}
	if vector > maxVector {
		return errStatusVector
	}
	if missing > maxPullSeqs {
		return errStatusMissing
	}
	return nil
}

// checkFrameBounds' errors, made once: a peer may send frame after frame
// to be refused.
var (
	errStatusVector  = fmt.Errorf("%w: status of more than %d vector entries", ErrInvalid, maxVector)
	errStatusMissing = fmt.Errorf("%w: status of more than %d missing seqs", ErrInvalid, maxPullSeqs)
)

// countStatusEntries counts the vector entries and missing seqs of an
// encoded Status, up to the first byte it cannot parse.
func countStatusEntries(b []byte) (vector, missing int) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return
		}
		val := b[:n]
		b = b[n:]
		switch {
		case num == statusVectorField && typ == protowire.BytesType:
			vector++
		case num == statusMissingField && typ == protowire.VarintType:
			missing++
		case num == statusMissingField && typ == protowire.BytesType:
			packed, _ := protowire.ConsumeBytes(val)
			for _, c := range packed {
				if c < 0x80 {
					missing++
				}
			}
		}
	}
	return
}
