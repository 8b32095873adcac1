package chat

// Bounds checked on a frame's bytes before they are decoded. proto.Unmarshal
// allocates every entry of a repeated field before any handler can check
// its length: a packed Status.missing entry is one byte on the wire and
// eight decoded (a frame at the limit made about a million seqs, 1 MB),
// and an empty Status.vector or Repair.floors entry is two bytes on the
// wire and a Dep of about 64 bytes plus its pointer decoded (a frame at
// the limit made 62,000 of them, some 5 MB), an empty Batch.envelopes
// entry an Envelope of some 300. An envelope's deps and stamped messages are
// bounded in each envelope and, since a batch or repair holds up to 1,024
// envelopes, over all the envelopes of the frame together
// (maxFrameListEntries). The TLS transport calls checkFrameBounds
// on every frame's bytes (transport.TLSConfig.CheckFrame) and drops a
// frame it refuses, counted as a bad frame, without decoding it; the same
// bounds are checked again on the decoded message by its handler, which
// the in-memory transport of tests and the simulator still hands over.

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// Field numbers of chat.proto that checkFrameBounds reads: Frame's
// messages with a repeated field, and those fields.
const (
	frameEnvelopeField      = 3  // Frame.envelope
	frameRoomSetField       = 7  // Frame.room_set
	frameStatusField        = 8  // Frame.status
	frameRepairField        = 9  // Frame.repair
	frameBatchField         = 10 // Frame.batch
	frameEncKeysField       = 20 // Frame.enc_keys
	frameOverlayField       = 30 // Frame.overlay
	frameRoomSetDigestField = 31 // Frame.room_set_digest

	roomSetRoomsField      = 2  // RoomSet.rooms
	statusVectorField      = 2  // Status.vector
	statusMissingField     = 8  // Status.missing
	repairFloorsField      = 3  // Repair.floors
	batchEnvelopesField    = 1  // Batch.envelopes
	repairEnvelopesField   = 2  // Repair.envelopes
	envelopeDepsField      = 7  // Envelope.deps
	envelopeStampedField   = 19 // Envelope.stamped
	encKeysKeysField       = 1  // EncKeys.keys
	overlayPeersField      = 6  // Overlay.peers
	overlayAnnouncesField  = 10 // Overlay.announces
	overlayIDsField        = 11 // Overlay.ids
	overlayHavesField      = 13 // Overlay.haves
	overlayHaveRoundsField = 3  // OverlayHave.rounds
	roomSetDigestHeldField = 3  // RoomSetDigest.held
)

// repeatedBound is a repeated field of a message a Frame carries and the
// most entries its handler accepts, over every occurrence of the message
// in the frame (the decoder merges them, appending the lists).
type repeatedBound struct {
	frame protowire.Number // the Frame field holding the message
	field protowire.Number // the repeated field in it
	// inner, when set, is a repeated field of field's entries, counted
	// over all of them (OverlayHave.rounds: field is Overlay.haves), or
	// in each entry alone when perEntry is set (an Envelope's deps in a
	// Batch: each entry of a repeated message field is a message of its
	// own, never merged with another).
	inner    protowire.Number
	perEntry bool
	// listed: the entries also count against maxFrameListEntries, the
	// frame-wide budget of envelope deps and stamped messages.
	listed bool
	// scalar: a repeated number, packed (one entry per varint in a
	// length-delimited value) or not; else one entry per occurrence.
	scalar bool
	max    int
	err    error
}

// frameBounds holds every repeated field a peer's frame can fill, in the
// order of their Frame fields (boundsOf takes one's entries as a run), with
// the bound its handler checks: validateEnvelope (an Envelope's deps and
// stamped, in Frame.envelope, whose occurrences merge, and in each entry
// of Repair.envelopes and Batch.envelopes), vectorOf and validPull
// (Status), takeRoomSet, handleRepair, handleBatch, handleEncKeys,
// checkRoomSetDigest, and overlayFromPB with unpackHaves (Overlay:
// announces is protocol 6's, refused whatever its length; the rounds of an
// ihave's origins are one or one per ID, so at most as many as its IDs).
var frameBounds = [...]repeatedBound{
	{frame: frameEnvelopeField, field: envelopeDepsField, listed: true, max: MaxDeps, err: errEnvelopeDeps},
	{frame: frameEnvelopeField, field: envelopeStampedField, listed: true, max: MaxStamped, err: errEnvelopeStamped},
	{frame: frameRoomSetField, field: roomSetRoomsField, max: maxRooms, err: boundErr("room set", maxRooms, "rooms")},
	{frame: frameStatusField, field: statusVectorField, max: maxVector, err: errStatusVector},
	{frame: frameStatusField, field: statusMissingField, scalar: true, max: maxPullSeqs, err: errStatusMissing},
	{frame: frameRepairField, field: repairFloorsField, max: maxVector, err: boundErr("repair", maxVector, "floors")},
	{frame: frameRepairField, field: repairEnvelopesField, max: maxRepairEnvelopes, err: boundErr("repair", maxRepairEnvelopes, "envelopes")},
	{frame: frameRepairField, field: repairEnvelopesField, inner: envelopeDepsField, perEntry: true, listed: true, max: MaxDeps, err: errEnvelopeDeps},
	{frame: frameRepairField, field: repairEnvelopesField, inner: envelopeStampedField, perEntry: true, listed: true, max: MaxStamped, err: errEnvelopeStamped},
	{frame: frameBatchField, field: batchEnvelopesField, max: maxBatchEnvelopes, err: boundErr("batch", maxBatchEnvelopes, "envelopes")},
	{frame: frameBatchField, field: batchEnvelopesField, inner: envelopeDepsField, perEntry: true, listed: true, max: MaxDeps, err: errEnvelopeDeps},
	{frame: frameBatchField, field: batchEnvelopesField, inner: envelopeStampedField, perEntry: true, listed: true, max: MaxStamped, err: errEnvelopeStamped},
	{frame: frameEncKeysField, field: encKeysKeysField, max: maxEncKeysPerFrame, err: boundErr("enc keys", maxEncKeysPerFrame, "keys")},
	{frame: frameOverlayField, field: overlayPeersField, max: maxOverlayPeers, err: boundErr("overlay", maxOverlayPeers, "peers")},
	{frame: frameOverlayField, field: overlayAnnouncesField, max: 0, err: boundErr("overlay", 0, "announces (protocol 6)")},
	{frame: frameOverlayField, field: overlayIDsField, max: maxOverlayIDs, err: boundErr("overlay", maxOverlayIDs, "ids")},
	{frame: frameOverlayField, field: overlayHavesField, max: maxOverlayIDs, err: boundErr("overlay", maxOverlayIDs, "haves")},
	{frame: frameOverlayField, field: overlayHavesField, inner: overlayHaveRoundsField, scalar: true, max: maxOverlayIDs, err: boundErr("overlay", maxOverlayIDs, "have rounds")},
	{frame: frameRoomSetDigestField, field: roomSetDigestHeldField, max: maxDigestHeld, err: boundErr("room set digest", maxDigestHeld, "held")},
}

// minListEntryBytes is the fewest bytes a valid envelope's dep or stamped
// message takes on the wire: its tag and length (2 bytes; 3 for stamped,
// field 19), a 16-character peer ID with its tag and length (18) and a seq
// of at least 1 with its tag (2). validateEnvelope refuses anything less.
const minListEntryBytes = 2 + 18 + 2

// maxFrameListEntries bounds the deps and stamped messages of all the
// envelopes of one frame together (Frame.envelope, Batch.envelopes,
// Repair.envelopes), on top of each envelope's own bounds: 1,024 of each
// per envelope let a batch or repair of many envelopes, each just under
// them, carry ~62,000 empty entries (2 bytes on the wire, a Dep or MsgRef
// of ~64 bytes decoded) in a frame at the limit. The figure is what a
// legitimate frame can hold. Batches (sendBatched, under batchBytes) and
// repairs (buildRepair, under maxRepairFrame) are cut by size alone, below
// maxFrameBytes, and carry envelopes that validateEnvelope passed, which
// other members may have filled up to MaxDeps and MaxStamped: a budget
// tied to a count of envelopes would refuse, again at every round, the
// batch or repair carrying a few such envelopes. Every valid entry takes
// at least minListEntryBytes, so no frame under the limit carries more
// than maxFrameBytes/minListEntryBytes (5,771) of them; a frame of empty
// entries now decodes to at most that many, a tenth of what it could.
const maxFrameListEntries = maxFrameBytes / minListEntryBytes

// listEntries counts the deps and stamped messages of envs, the envelopes
// of one decoded frame, which maxFrameListEntries bounds together: the
// check handleBatch and handleRepair repeat on frames handed over decoded
// (the in-memory transport).
func listEntries(envs []*chatpb.Envelope) int {
	k := 0
	for _, e := range envs {
		k += len(e.GetDeps()) + len(e.GetStamped())
	}
	return k
}

// checkFrameBounds' errors, made once (the transport wraps each refusal
// for its caller; what is made here is shared).
var (
	errStatusVector    = boundErr("status", maxVector, "vector entries")
	errStatusMissing   = boundErr("status", maxPullSeqs, "missing seqs")
	errEnvelopeDeps    = boundErr("envelope", MaxDeps, "deps")
	errEnvelopeStamped = boundErr("envelope", MaxStamped, "stamped messages")
	errFrameLists      = boundErr("frame", maxFrameListEntries, "envelope deps and stamped messages in all")
)

func boundErr(msg string, max int, what string) error {
	return fmt.Errorf("%w: %s of more than %d %s", ErrInvalid, msg, max, what)
}

// frameCounts is what checkFrameBounds counts: the entries of each
// frameBounds row, and those of the rows listed in the frame-wide budget
// of envelope deps and stamped messages (maxFrameListEntries).
type frameCounts struct {
	rows  [len(frameBounds)]int
	lists int
}

// checkFrameBounds refuses an encoded Frame that would decode to more
// entries of a repeated field than frameBounds allows, or to more envelope
// deps and stamped messages in all than maxFrameListEntries. It counts what
// proto.Unmarshal would allocate: every occurrence of a Frame field
// (occurrences of a message field are merged), every entry of a message
// or bytes list, and every number of a scalar list packed (one per byte
// that ends a varint: protobuf-go sizes the slice by that count before it
// decodes) or not. It allocates nothing. Bytes it cannot parse end the
// scan with what was counted so far: the decoder, which reads them in the
// same order, fails there too, having allocated no more than that.
func checkFrameBounds(b []byte) error {
	var counts frameCounts
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		lo, hi := boundsOf(num)
		if typ != protowire.BytesType || lo == hi {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				break
			}
			b = b[n:]
			continue
		}
		msg, n := protowire.ConsumeBytes(b)
		if n < 0 {
			break
		}
		b = b[n:]
		countEntries(msg, lo, hi, &counts)
	}
	for i := range frameBounds {
		if counts.rows[i] > frameBounds[i].max {
			return frameBounds[i].err
		}
	}
	if counts.lists > maxFrameListEntries {
		return errFrameLists
	}
	return nil
}

// checkEnvelopeBounds refuses an encoded Envelope that would decode to
// more deps or stamped messages than validateEnvelope accepts, counted as
// checkFrameBounds counts those of Frame.envelope: for an envelope in a
// bytes field (an overlay gossip payload), which the frame's scan does not
// read into. It allocates nothing. (One envelope within its own bounds
// is within maxFrameListEntries: an overlay frame carries one payload.)
func checkEnvelopeBounds(b []byte) error {
	var counts frameCounts
	lo, hi := boundsOf(frameEnvelopeField)
	countEntries(b, lo, hi, &counts)
	for i := lo; i < hi; i++ {
		if counts.rows[i] > frameBounds[i].max {
			return frameBounds[i].err
		}
	}
	return nil
}

// boundsOf returns the run frameBounds[lo:hi] of Frame field num's
// entries (empty when it has none).
func boundsOf(num protowire.Number) (lo, hi int) {
	for lo < len(frameBounds) && frameBounds[lo].frame != num {
		lo++
	}
	for hi = lo; hi < len(frameBounds) && frameBounds[hi].frame == num; hi++ {
	}
	return lo, hi
}

// countEntries adds to counts.rows[lo:hi] the entries of their repeated
// fields in msg, the encoded message of their Frame field, and to
// counts.lists those of the listed rows, up to the first byte it cannot
// parse.
func countEntries(msg []byte, lo, hi int, counts *frameCounts) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return
		}
		msg = msg[n:]
		if n = protowire.ConsumeFieldValue(num, typ, msg); n < 0 {
			return
		}
		val := msg[:n]
		msg = msg[n:]
		nested := false
		for i := lo; i < hi; i++ {
			fb := &frameBounds[i]
			if fb.field != num {
				continue
			}
			if fb.inner != 0 {
				nested = true
				continue
			}
			k := entries(typ, val, fb.scalar)
			counts.rows[i] += k
			if fb.listed {
				counts.lists += k
			}
		}
		if nested && typ == protowire.BytesType {
			inner, _ := protowire.ConsumeBytes(val)
			countNested(inner, num, lo, hi, counts)
		}
	}
}

// countNested counts in b, one encoded entry of field num (a batch's or
// repair's envelope), the inner fields of frameBounds[lo:hi]'s rows of num
// (its deps and stamped messages), up to the first byte it cannot parse,
// and adds them to those rows as countEntries would, and to counts.lists.
// It reads b once for all the rows: one scan per row read each envelope
// of a batch or repair twice.
func countNested(b []byte, num protowire.Number, lo, hi int, counts *frameCounts) {
	var ks [len(frameBounds)]int // by row; on the stack
	for len(b) > 0 {
		f, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(f, typ, b); n < 0 {
			break
		}
		for i := lo; i < hi; i++ {
			if fb := &frameBounds[i]; fb.field == num && fb.inner == f {
				ks[i] += entries(typ, b[:n], fb.scalar)
			}
		}
		b = b[n:]
	}
	for i := lo; i < hi; i++ {
		fb := &frameBounds[i]
		if fb.field != num || fb.inner == 0 {
			continue
		}
		if fb.perEntry {
			counts.rows[i] = max(counts.rows[i], ks[i])
		} else {
			counts.rows[i] += ks[i]
		}
		if fb.listed {
			counts.lists += ks[i]
		}
	}
}

// innerEntries counts the entries of field num in the encoded message b,
// up to the first byte it cannot parse.
func innerEntries(b []byte, num protowire.Number, scalar bool) int {
	k := 0
	for len(b) > 0 {
		f, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return k
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(f, typ, b); n < 0 {
			return k
		}
		if f == num {
			k += entries(typ, b[:n], scalar)
		}
		b = b[n:]
	}
	return k
}

// entries is how many list entries one occurrence of a repeated field
// decodes to: its value val, of wire type typ. A value of another wire
// type than the field's is kept as an unknown field, not an entry.
func entries(typ protowire.Type, val []byte, scalar bool) int {
	switch {
	case typ == protowire.BytesType && !scalar:
		return 1
	case typ == protowire.VarintType && scalar:
		return 1
	case typ == protowire.BytesType && scalar:
		packed, _ := protowire.ConsumeBytes(val)
		k := 0
		for _, c := range packed {
			if c < 0x80 {
				k++
			}
		}
		return k
	}
	return 0
}
