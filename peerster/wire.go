package peerster

// The Peerster wire format. Peerster implementations encode their packets
// with github.com/dedis/protobuf, which derives a protobuf encoding from
// Go struct declarations instead of a .proto file. That module is not
// available here, so this file writes its rules by hand on protowire:
//
//   - the standard protobuf wire format;
//   - a struct's fields are numbered 1, 2, 3… in declaration order, so
//     the order of the fields below is the protocol (the handout's order);
//   - a plain (non-pointer) field is always written, zero values included;
//   - a pointer field is written only when it is non-nil, a nested struct
//     as an embedded (length-delimited) message;
//   - a slice of structs is a repeated embedded message, one per element;
//   - uint32 is a varint, string is length-delimited.
//
// Decoding is lenient the way protobuf decoders are, because other
// implementations will not all agree with us: unknown field numbers are
// skipped, missing fields are zero, and a repeated scalar field keeps its
// last value. It is strict where leniency would be unsafe or meaningless:
// a known field with the wrong wire type, a varint above 2^32-1 for a
// uint32, a string that is not UTF-8, more status entries than
// MaxStatusEntries, or a GossipPacket without exactly one field set is an
// error.

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// SimpleMessage is a message of simple broadcast mode (-simple).
type SimpleMessage struct {
	OriginalName  string // 1: the name of the gossiper whose client sent it
	RelayPeerAddr string // 2: ip:port of the gossiper that relayed it last
	Contents      string // 3: the text
}

// RumorMessage is one chat message of rumor mongering: the ID-th message
// of Origin.
type RumorMessage struct {
	Origin string // 1: the name of the gossiper whose client sent it
	ID     uint32 // 2: its sequence number at Origin, from 1
	Text   string // 3: the text
}

// PeerStatus says that the sender has every message of Identifier below
// NextID.
type PeerStatus struct {
	Identifier string // 1: an origin's name
	NextID     uint32 // 2: the lowest ID of Identifier not yet seen
}

// StatusPacket is the sender's vector clock: an acknowledgement of a
// rumor and the anti-entropy summary.
type StatusPacket struct {
	Want []PeerStatus // 1: repeated embedded PeerStatus
}

// GossipPacket is the only packet gossipers send each other. Exactly one
// field is set.
type GossipPacket struct {
	Simple *SimpleMessage // 1
	Rumor  *RumorMessage  // 2
	Status *StatusPacket  // 3
}

// Message is what a client sends to its gossiper's UIPort.
type Message struct {
	Text string // 1
}

// Decoding errors. Every error Decode returns wraps exactly one of them,
// so the gossiper can count what it dropped by kind.
var (
	// ErrMalformed: the bytes are not a protobuf message (truncated,
	// bad varint, invalid UTF-8), or a GossipPacket does not have exactly
	// one field set.
	ErrMalformed = errors.New("malformed packet")
	// ErrWrongType: a known field arrived with another wire type, or a
	// number too large for its field.
	ErrWrongType = errors.New("wrongly typed field")
	// ErrTooMany: more status entries than MaxStatusEntries.
	ErrTooMany = errors.New("too many status entries")
)

// MaxStatusEntries bounds the entries of a decoded StatusPacket, so a
// packet cannot make the decoder build a large slice (each entry needs
// at least two bytes, so a datagram bounds them too; this bound is lower).
const MaxStatusEntries = 1024

// Field numbers, in the handout's declaration order.
const (
	fSimpleOriginalName  protowire.Number = 1
	fSimpleRelayPeerAddr protowire.Number = 2
	fSimpleContents      protowire.Number = 3

	fRumorOrigin protowire.Number = 1
	fRumorID     protowire.Number = 2
	fRumorText   protowire.Number = 3

	fStatusIdentifier protowire.Number = 1
	fStatusNextID     protowire.Number = 2

	fStatusPacketWant protowire.Number = 1

	fPacketSimple protowire.Number = 1
	fPacketRumor  protowire.Number = 2
	fPacketStatus protowire.Number = 3

	fMessageText protowire.Number = 1
)

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendUint32(b []byte, num protowire.Number, v uint32) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

func appendMessage(b []byte, num protowire.Number, body []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body)
}

// Marshal encodes m.
func (m *SimpleMessage) Marshal() []byte {
	var b []byte
	b = appendString(b, fSimpleOriginalName, m.OriginalName)
	b = appendString(b, fSimpleRelayPeerAddr, m.RelayPeerAddr)
	return appendString(b, fSimpleContents, m.Contents)
}

// Marshal encodes m.
func (m *RumorMessage) Marshal() []byte {
	var b []byte
	b = appendString(b, fRumorOrigin, m.Origin)
	b = appendUint32(b, fRumorID, m.ID)
	return appendString(b, fRumorText, m.Text)
}

// Marshal encodes m.
func (m *PeerStatus) Marshal() []byte {
	var b []byte
	b = appendString(b, fStatusIdentifier, m.Identifier)
	return appendUint32(b, fStatusNextID, m.NextID)
}

// Marshal encodes m.
func (m *StatusPacket) Marshal() []byte {
	var b []byte
	for i := range m.Want {
		b = appendMessage(b, fStatusPacketWant, m.Want[i].Marshal())
	}
	return b
}

// Marshal encodes p: only its non-nil fields.
func (p *GossipPacket) Marshal() []byte {
	var b []byte
	if p.Simple != nil {
		b = appendMessage(b, fPacketSimple, p.Simple.Marshal())
	}
	if p.Rumor != nil {
		b = appendMessage(b, fPacketRumor, p.Rumor.Marshal())
	}
	if p.Status != nil {
		b = appendMessage(b, fPacketStatus, p.Status.Marshal())
	}
	return b
}

// Marshal encodes m.
func (m *Message) Marshal() []byte {
	return appendString(nil, fMessageText, m.Text)
}

// fieldFunc handles one field of a message being decoded: the field's
// number and wire type, and its value (a varint's value in v, a
// length-delimited field's bytes in data). It ignores a field number it
// does not know, and checks the wire type of one it knows.
type fieldFunc func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error

// decodeFields walks the fields of b and hands each to f. Fields of a
// wire type other than varint and bytes are skipped when unknown.
func decodeFields(b []byte, f fieldFunc) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: tag: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var data []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			data, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("%w: field %d: %w", ErrMalformed, num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.VarintType && typ != protowire.BytesType {
			if err := f(num, typ, 0, nil); err != nil {
				return err
			}
			continue
		}
		if err := f(num, typ, v, data); err != nil {
			return err
		}
	}
	return nil
}

// wantString checks that a known field is a UTF-8 string and returns it.
func wantString(num protowire.Number, typ protowire.Type, data []byte) (string, error) {
	if typ != protowire.BytesType {
		return "", fmt.Errorf("%w: field %d: want a string, got wire type %d", ErrWrongType, num, typ)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%w: field %d: string is not UTF-8", ErrMalformed, num)
	}
	return string(data), nil
}

// wantUint32 checks that a known field is a varint that fits a uint32.
func wantUint32(num protowire.Number, typ protowire.Type, v uint64) (uint32, error) {
	if typ != protowire.VarintType {
		return 0, fmt.Errorf("%w: field %d: want a varint, got wire type %d", ErrWrongType, num, typ)
	}
	if v > math.MaxUint32 {
		return 0, fmt.Errorf("%w: field %d: %d does not fit a uint32", ErrWrongType, num, v)
	}
	return uint32(v), nil
}

// wantMessage checks that a known field is length-delimited (an embedded
// message).
func wantMessage(num protowire.Number, typ protowire.Type) error {
	if typ != protowire.BytesType {
		return fmt.Errorf("%w: field %d: want an embedded message, got wire type %d", ErrWrongType, num, typ)
	}
	return nil
}

// Unmarshal decodes b into m (m is reset first).
func (m *SimpleMessage) Unmarshal(b []byte) error {
	*m = SimpleMessage{}
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		var err error
		switch num {
		case fSimpleOriginalName:
			m.OriginalName, err = wantString(num, typ, data)
		case fSimpleRelayPeerAddr:
			m.RelayPeerAddr, err = wantString(num, typ, data)
		case fSimpleContents:
			m.Contents, err = wantString(num, typ, data)
		default:
			return nil
		}
		return err
	})
}

// Unmarshal decodes b into m (m is reset first).
func (m *RumorMessage) Unmarshal(b []byte) error {
	*m = RumorMessage{}
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case fRumorOrigin:
			m.Origin, err = wantString(num, typ, data)
		case fRumorID:
			m.ID, err = wantUint32(num, typ, v)
		case fRumorText:
			m.Text, err = wantString(num, typ, data)
		default:
			return nil
		}
		return err
	})
}

// Unmarshal decodes b into m (m is reset first).
func (m *PeerStatus) Unmarshal(b []byte) error {
	*m = PeerStatus{}
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, v uint64, data []byte) error {
		var err error
		switch num {
		case fStatusIdentifier:
			m.Identifier, err = wantString(num, typ, data)
		case fStatusNextID:
			m.NextID, err = wantUint32(num, typ, v)
		default:
			return nil
		}
		return err
	})
}

// Unmarshal decodes b into m (m is reset first). It refuses more than
// MaxStatusEntries entries before decoding the one past the limit.
func (m *StatusPacket) Unmarshal(b []byte) error {
	*m = StatusPacket{}
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		if num != fStatusPacketWant {
			return nil
		}
		if err := wantMessage(num, typ); err != nil {
			return err
		}
		if len(m.Want) >= MaxStatusEntries {
			return fmt.Errorf("%w: more than %d", ErrTooMany, MaxStatusEntries)
		}
		var ps PeerStatus
		if err := ps.Unmarshal(data); err != nil {
			return fmt.Errorf("status entry %d: %w", len(m.Want), err)
		}
		m.Want = append(m.Want, ps)
		return nil
	})
}

// Unmarshal decodes b into p (p is reset first) and checks that exactly
// one of its fields is set.
func (p *GossipPacket) Unmarshal(b []byte) error {
	*p = GossipPacket{}
	err := decodeFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		switch num {
		case fPacketSimple:
			if err := wantMessage(num, typ); err != nil {
				return err
			}
			p.Simple = &SimpleMessage{}
			return p.Simple.Unmarshal(data)
		case fPacketRumor:
			if err := wantMessage(num, typ); err != nil {
				return err
			}
			p.Rumor = &RumorMessage{}
			return p.Rumor.Unmarshal(data)
		case fPacketStatus:
			if err := wantMessage(num, typ); err != nil {
				return err
			}
			p.Status = &StatusPacket{}
			return p.Status.Unmarshal(data)
		}
		return nil
	})
	if err != nil {
		return err
	}
	set := 0
	for _, ok := range []bool{p.Simple != nil, p.Rumor != nil, p.Status != nil} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: %d of the packet's fields are set, want one", ErrMalformed, set)
	}
	return nil
}

// Unmarshal decodes b into m (m is reset first).
func (m *Message) Unmarshal(b []byte) error {
	*m = Message{}
	return decodeFields(b, func(num protowire.Number, typ protowire.Type, _ uint64, data []byte) error {
		if num != fMessageText {
			return nil
		}
		var err error
		m.Text, err = wantString(num, typ, data)
		return err
	})
}
