package chat

// The envelope is the signed unit of every message (chat.proto, Envelope).
// The origin signs a canonical encoding of every field but the signature,
// built here by hand rather than with protobuf, because protobuf encodings
// are not unique (field order, unknown fields, packed or not) and a
// signature must survive re-encoding by a peer that forwards or stores the
// envelope. A receiver runs CheckEnvelope before it stores, forwards or
// shows anything.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// EnvelopeVersion is the envelope format version this code signs and
// verifies.
const EnvelopeVersion = 1

const envelopePrefix = "hearsay/envelope/v1\n"

// Envelope check failures, distinguished so they can be counted apart.
var (
	// ErrForged: the signature or the origin's key does not check out.
	ErrForged = errors.New("forged envelope")
	// ErrInvalid: the envelope breaks a limit or a format rule.
	ErrInvalid = errors.New("invalid envelope")
)

// canon builds a canonical encoding.
type canon struct{ b []byte }

func (c *canon) uint(field int, v uint64) {
	c.b = binary.AppendUvarint(c.b, uint64(field))
	c.b = binary.AppendUvarint(c.b, v)
}

func (c *canon) int(field int, v int64) {
	c.b = binary.AppendUvarint(c.b, uint64(field))
	c.b = binary.AppendVarint(c.b, v)
}

func (c *canon) bytes(field int, v []byte) {
	c.b = binary.AppendUvarint(c.b, uint64(field))
	c.b = binary.AppendUvarint(c.b, uint64(len(v)))
	c.b = append(c.b, v...)
}

func (c *canon) str(field int, v string) {
	c.b = binary.AppendUvarint(c.b, uint64(field))
	c.b = binary.AppendUvarint(c.b, uint64(len(v)))
	c.b = append(c.b, v...)
}

func (c *canon) rawStr(v string) {
	c.b = binary.AppendUvarint(c.b, uint64(len(v)))
	c.b = append(c.b, v...)
}

// SigningBytes returns the canonical encoding of every field of e but the
// signature: the bytes the signature covers (see chat.proto). It does not
// validate e.
func SigningBytes(e *chatpb.Envelope) []byte {
	c := canon{b: make([]byte, 0, 128+len(e.Body)+(len(e.Deps)+len(e.Stamped))*24)}
	c.b = append(c.b, envelopePrefix...)
	c.uint(1, uint64(e.Version))
	c.str(2, e.Origin)
	c.uint(3, e.Seq)
	c.str(4, e.Room)
	c.uint(5, uint64(e.Kind))
	c.uint(6, e.Lamport)
	c.b = binary.AppendUvarint(c.b, 7)
	c.b = binary.AppendUvarint(c.b, uint64(len(e.Deps)))
	for _, d := range e.Deps {
		c.rawStr(d.GetOrigin())
		c.b = binary.AppendUvarint(c.b, d.GetSeq())
	}
	c.int(8, e.SentUnixNano)
	c.bytes(9, e.Body)
	c.str(10, e.To)
	c.b = binary.AppendUvarint(c.b, 11)
	c.rawStr(e.GetRef().GetOrigin())
	c.b = binary.AppendUvarint(c.b, e.GetRef().GetSeq())
	c.uint(12, e.Global)
	c.str(13, e.Nick)
	c.bytes(14, e.OriginKey)
	// 15 is the signature itself.
	c.uint(16, e.Epoch)
	c.str(17, e.Prev)
	c.uint(18, e.Cut)
	c.b = binary.AppendUvarint(c.b, 19)
	c.b = binary.AppendUvarint(c.b, uint64(len(e.Stamped)))
	for _, r := range e.Stamped {
		c.rawStr(r.GetOrigin())
		c.b = binary.AppendUvarint(c.b, r.GetSeq())
	}
	c.str(20, e.Candidate)
	return c.b
}

// SignEnvelope sets e's version, origin and origin key from id and signs it.
func SignEnvelope(id *Identity, e *chatpb.Envelope) {
	e.Version = EnvelopeVersion
	e.Origin = id.ID
	e.OriginKey = append([]byte(nil), id.Pub...)
	e.Signature = id.Sign(SigningBytes(e))
}

// CheckEnvelope validates every field of e against the protocol limits and
// verifies its signature (ZIP-215 rules, see verify.go). The error wraps
// ErrInvalid or ErrForged. It does not keep e.
func CheckEnvelope(e *chatpb.Envelope) error {
	return checkEnvelopes(nil, []*chatpb.Envelope{e})[0]
}

func validateEnvelope(e *chatpb.Envelope) error {
	return validateEnvelopeNick(e, ValidateNick)
}

// validateEnvelopeNick is validateEnvelope with the nick rule given:
// ValidateNick for what arrives, nickCharset for what the log already
// holds (see decodeStored).
func validateEnvelopeNick(e *chatpb.Envelope, nickRule func(string) error) error {
	if e == nil {
		return errors.New("missing envelope")
	}
	if e.Version != EnvelopeVersion {
		return fmt.Errorf("version %d, want %d", e.Version, EnvelopeVersion)
	}
	if !hearsay.ValidPeerID(e.Origin) {
		return fmt.Errorf("origin %q is not a peer id", e.Origin)
	}
	if e.Seq == 0 {
		return errors.New("seq 0")
	}
	// Counters are bounded (order.MaxSeq, 2^62) so that no arithmetic on
	// them can wrap: a seq of 2^64-1 would make the next one 0.
	if e.Seq > MaxSeq || e.Lamport > MaxSeq || e.Global > MaxSeq || e.Epoch > MaxSeq || e.Cut > MaxSeq {
		return fmt.Errorf("a counter is over %d", uint64(MaxSeq))
	}
	if err := ValidateRoom(e.Room); err != nil {
		return err
	}
	switch e.Kind {
	case chatpb.Kind_KIND_CHAT, chatpb.Kind_KIND_DIRECT, chatpb.Kind_KIND_SYSTEM:
		if len(e.Body) > MaxBodyBytes {
			return fmt.Errorf("body is %d bytes, over %d", len(e.Body), MaxBodyBytes)
		}
		if !utf8.Valid(e.Body) {
			return errors.New("body is not UTF-8")
		}
	case chatpb.Kind_KIND_RECEIPT, chatpb.Kind_KIND_ACK, chatpb.Kind_KIND_STAMP, chatpb.Kind_KIND_SYNC:
		if len(e.Body) != 0 {
			return fmt.Errorf("%v carries a body", e.Kind)
		}
	default:
		return fmt.Errorf("unknown kind %d", e.Kind)
	}
	if e.Ref != nil && (!hearsay.ValidPeerID(e.Ref.Origin) || e.Ref.Seq == 0 || e.Ref.Seq > MaxSeq) {
		return errors.New("ref is not a valid message id")
	}
	if e.Ref != nil && e.Kind != chatpb.Kind_KIND_RECEIPT && e.Kind != chatpb.Kind_KIND_ACK {
		return fmt.Errorf("%v with a ref", e.Kind)
	}
	if e.Kind == chatpb.Kind_KIND_RECEIPT && e.Ref == nil {
		return errors.New("receipt without a ref")
	}
	if e.Kind == chatpb.Kind_KIND_DIRECT || e.Kind == chatpb.Kind_KIND_RECEIPT {
		if !hearsay.ValidPeerID(e.To) {
			return fmt.Errorf("%v without a valid recipient", e.Kind)
		}
	} else if e.To != "" {
		return fmt.Errorf("%v with a recipient", e.Kind)
	}
	// Sequencer fields belong to stamps and syncs only.
	seqKind := e.Kind == chatpb.Kind_KIND_STAMP || e.Kind == chatpb.Kind_KIND_SYNC
	if !seqKind && (e.Epoch != 0 || e.Prev != "" || e.Cut != 0) {
		return fmt.Errorf("%v with sequencer fields", e.Kind)
	}
	if e.Prev != "" && !hearsay.ValidPeerID(e.Prev) {
		return fmt.Errorf("prev %q is not a peer id", e.Prev)
	}
	if e.Kind == chatpb.Kind_KIND_STAMP {
		// A stamp with no messages is valid: it opens a sequencer epoch.
		if e.Epoch == 0 || e.Global == 0 {
			return errors.New("stamp without epoch or global number")
		}
	} else if len(e.Stamped) != 0 || e.Global != 0 {
		return fmt.Errorf("%v with stamped messages", e.Kind)
	}
	if len(e.Stamped) > MaxStamped {
		return fmt.Errorf("%d stamped messages, at most %d", len(e.Stamped), MaxStamped)
	}
	for i, r := range e.Stamped {
		if r == nil || !hearsay.ValidPeerID(r.Origin) || r.Seq == 0 || r.Seq > MaxSeq {
			return fmt.Errorf("stamped %d: not a valid message id", i)
		}
	}
	if e.Kind == chatpb.Kind_KIND_SYNC {
		if !hearsay.ValidPeerID(e.Candidate) {
			return errors.New("sync without a valid candidate")
		}
	} else if e.Candidate != "" {
		return fmt.Errorf("%v with a candidate", e.Kind)
	}
	if len(e.Deps) > MaxDeps {
		return fmt.Errorf("%d deps, at most %d", len(e.Deps), MaxDeps)
	}
	prev := ""
	for i, d := range e.Deps {
		if d == nil || !hearsay.ValidPeerID(d.Origin) {
			return fmt.Errorf("dep %d: bad origin", i)
		}
		if d.Seq == 0 || d.Seq > MaxSeq {
			return fmt.Errorf("dep %d: seq %d out of range", i, d.Seq)
		}
		if i > 0 && d.Origin <= prev {
			return errors.New("deps not sorted by origin or repeated")
		}
		prev = d.Origin
	}
	if e.Nick != "" {
		if err := nickRule(e.Nick); err != nil {
			return err
		}
	}
	return nil
}

// ValidateRoom checks a room name (without '#'): 1 to 64 characters from
// [a-z0-9._-].
func ValidateRoom(room string) error {
	if room == "" {
		return errors.New("room name is empty")
	}
	if len(room) > MaxRoomBytes {
		return fmt.Errorf("room name is %d bytes, at most %d", len(room), MaxRoomBytes)
	}
	for i := 0; i < len(room); i++ {
		c := room[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("room name %q: only a-z, 0-9, '.', '_' and '-' are allowed", room)
		}
	}
	return nil
}

// NormalizeRoom turns user input ("#Lobby", "", "dev") into a room name:
// without '#', lower case, "lobby" when empty. It validates the result.
func NormalizeRoom(room string) (string, error) {
	room = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(room), "#"))
	if room == "" {
		room = DefaultRoom
	}
	if err := ValidateRoom(room); err != nil {
		return "", err
	}
	return room, nil
}
