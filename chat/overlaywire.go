package chat

// The Overlay frame (protocol 6; since 7 an IHave's IDs packed per origin
// and a gossip's ID read from its payload): the wire form of an
// overlay.Message
// (chat/overlay/messages.go) and its message IDs. Decoding checks every
// bound before it allocates the machine's copy; the machine checks the
// message again (overlay.Node.Step: fields of other kinds empty, walk
// lengths), and the driver checks that every peer ID names a member
// (overlaydrv.go).

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

const (
	// maxOverlayPeers bounds a shuffle's list: the machine's shuffles
	// carry ShuffleActive + ShufflePassive + the sender (3 + 4 + 1).
	maxOverlayPeers = 8
	// maxOverlayIDs bounds the announcements of an IHave and the IDs of a
	// Graft (the machine's MaxIHave).
	maxOverlayIDs = 256
	// maxOverlayPayload bounds a gossip payload, an encoded envelope: the
	// frame limit less room for the Overlay message's other fields.
	maxOverlayPayload = maxFrameBytes - 1024
	// overlayLazyInterval batches a peer's announcements to each lazy
	// neighbour (overlay.Config.LazyInterval): an IHave's frame costs
	// about 30 bytes (TLS record, length, tags) and each origin in it
	// about 20 more, so at the 50 ms of the simulator one sender's 20
	// messages per second went out one per IHave at ~70 bytes each; at
	// 250 ms five share one, ~28 bytes each. Announcements only repair
	// (a graft waits GraftTimeout, 2 s in chat, after the first one), so
	// the 200 ms more they take delay nothing a tree delivers.
	overlayLazyInterval = 250 * time.Millisecond
)

// overlayMsgID names a room message in the overlay: the first 16 bytes of
// SHA-256 over a domain prefix and (room, origin, seq), each length- or
// varint-prefixed so that no two triples share an encoding. Equal IDs mean
// the same (room, origin, seq); a receiver checks that a payload's
// envelope has the ID it travels under, so a forged ID cannot hide a real
// message from the machine's duplicate check.
func overlayMsgID(room, origin string, seq uint64) overlay.MsgID {
	b := make([]byte, 0, 32+len(room)+len(origin))
	b = append(b, "hearsay/overlay-id/v1\n"...)
	b = binary.AppendUvarint(b, uint64(len(room)))
	b = append(b, room...)
	b = binary.AppendUvarint(b, uint64(len(origin)))
	b = append(b, origin...)
	b = binary.AppendUvarint(b, seq)
	sum := sha256.Sum256(b)
	var id overlay.MsgID
	copy(id[:], sum[:])
	return id
}

// overlayFrame encodes m as an Overlay frame.
func overlayFrame(m *overlay.Message) *chatpb.Frame {
	pb := &chatpb.Overlay{
		Kind:     uint32(m.Kind),
		Peer:     m.Peer,
		Ttl:      uint32(m.TTL),
		High:     m.High,
		Accept:   m.Accept,
		Peers:    m.Peers,
		Round:    m.Round,
		Payload:  m.Payload,
		Repaired: m.Repaired,
	}
	if m.Kind == overlay.KindGossip {
		// The payload names its origin and ID (gossipKey): 36 bytes a
		// copy that protocol 6 sent again beside it.
		pb.Peer = ""
	}
	if len(m.Announces) > 0 {
		pb.Haves = packHaves(m.Announces)
	}
	if len(m.IDs) > 0 {
		pb.Ids = make([][]byte, len(m.IDs))
		for i := range m.IDs {
			pb.Ids[i] = m.IDs[i][:]
		}
	}
	return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: pb}}
}

// packHaves groups announcements by origin, in the order each origin
// first appears: its ID once, the IDs concatenated, and one round for the
// group when every entry has the same (an origin's messages batched
// together took the same path through its tree). An entry costs 16 bytes
// and a byte or two of round, where protocol 6's OverlayAnnounce cost
// about 40; the frame's own cost (TLS record, length, tags) is shared by
// the batch.
func packHaves(anns []overlay.Announce) []*chatpb.OverlayHave {
	var haves []*chatpb.OverlayHave
	for _, a := range anns {
		// A linear search: an IHave holds at most MaxIHave entries, and
		// its origins are the few that spoke within one lazy interval.
		var h *chatpb.OverlayHave
		for _, g := range haves {
			if g.Origin == a.Origin {
				h = g
				break
			}
		}
		if h == nil {
			h = &chatpb.OverlayHave{Origin: a.Origin}
			haves = append(haves, h)
		}
		n := len(h.Ids) / len(overlay.MsgID{}) // entries so far
		h.Ids = append(h.Ids, a.ID[:]...)
		switch {
		case n == 0:
			h.Rounds = append(h.Rounds, a.Round)
		case len(h.Rounds) == 1 && h.Rounds[0] == a.Round:
			// Still one round for all.
		default:
			for len(h.Rounds) < n {
				h.Rounds = append(h.Rounds, h.Rounds[0]) // one per entry from now on
			}
			h.Rounds = append(h.Rounds, a.Round)
		}
	}
	return haves
}

// unpackHaves is packHaves' inverse for a received ihave, checking every
// count and length before it allocates: at most maxOverlayIDs IDs in all,
// whole 16-byte IDs, an origin of 1 to MaxPeerIDLen bytes, one round or
// one per ID.
func unpackHaves(haves []*chatpb.OverlayHave) ([]overlay.Announce, error) {
	const idLen = len(overlay.MsgID{})
	if len(haves) > maxOverlayIDs {
		return nil, fmt.Errorf("%w: overlay ihave of %d origins", ErrInvalid, len(haves))
	}
	total := 0
	for _, h := range haves {
		switch {
		case h == nil || h.Origin == "" || len(h.Origin) > overlay.MaxPeerIDLen:
			return nil, fmt.Errorf("%w: overlay ihave origin out of bounds", ErrInvalid)
		case len(h.Ids) == 0 || len(h.Ids)%idLen != 0:
			return nil, fmt.Errorf("%w: overlay ihave ids of %d bytes", ErrInvalid, len(h.Ids))
		}
		n := len(h.Ids) / idLen
		if n > maxOverlayIDs-total {
			return nil, fmt.Errorf("%w: overlay ihave of more than %d ids", ErrInvalid, maxOverlayIDs)
		}
		total += n
		if len(h.Rounds) != 1 && len(h.Rounds) != n {
			return nil, fmt.Errorf("%w: overlay ihave of %d ids with %d rounds", ErrInvalid, n, len(h.Rounds))
		}
	}
	if total == 0 {
		return nil, nil
	}
	out := make([]overlay.Announce, 0, total)
	for _, h := range haves {
		for k := 0; k*idLen < len(h.Ids); k++ {
			a := overlay.Announce{Origin: h.Origin, Round: h.Rounds[0]}
			copy(a.ID[:], h.Ids[k*idLen:])
			if len(h.Rounds) > 1 {
				a.Round = h.Rounds[k]
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// gossipKey reads a gossip payload's origin, room and seq (Envelope
// fields 2, 4 and 3) without decoding the rest, and returns the origin
// (the tree the payload belongs to) and its overlay ID. As in protobuf
// decoding, the last occurrence of a field wins. The driver decodes the
// whole envelope after this and drops the payload unless its origin and
// ID are these (checkOverlayPayload), so a payload this reads otherwise
// than the decoder does is refused, never relayed.
func gossipKey(payload []byte) (string, overlay.MsgID, error) {
	var origin, room []byte
	var seq uint64
	for b := payload; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", overlay.MsgID{}, fmt.Errorf("%w: overlay gossip payload: %v", ErrInvalid, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 2 || num == 4) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", overlay.MsgID{}, fmt.Errorf("%w: overlay gossip payload: %v", ErrInvalid, protowire.ParseError(n))
			}
			if num == 2 {
				origin = v
			} else {
				room = v
			}
			b = b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", overlay.MsgID{}, fmt.Errorf("%w: overlay gossip payload: %v", ErrInvalid, protowire.ParseError(n))
			}
			seq = v
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return "", overlay.MsgID{}, fmt.Errorf("%w: overlay gossip payload: %v", ErrInvalid, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	if len(origin) == 0 || len(origin) > overlay.MaxPeerIDLen {
		return "", overlay.MsgID{}, fmt.Errorf("%w: overlay gossip payload with an origin of %d bytes", ErrInvalid, len(origin))
	}
	o := string(origin)
	return o, overlayMsgID(string(room), o, seq), nil
}

// probeFrame is the driver's neighbour probe (chat.proto, Overlay.probe).
func probeFrame() *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: &chatpb.Overlay{Probe: true}}}
}

// isProbe reports whether pb is a well-formed probe: kind 0, nothing
// else set.
func isProbe(pb *chatpb.Overlay) bool {
	return pb.GetProbe() && pb.Kind == 0 && pb.Peer == "" && pb.Ttl == 0 && !pb.High && !pb.Accept &&
		len(pb.Peers) == 0 && len(pb.Id) == 0 && pb.Round == 0 && len(pb.Payload) == 0 &&
		len(pb.Announces) == 0 && len(pb.Ids) == 0 && len(pb.Haves) == 0 && !pb.Repaired
}

// decodeOverlay turns a received Overlay into the machine's message,
// checking every count and length first. The payload is not copied: the
// frame is the receiver's own, and the machine keeps it. A probe is not
// the machine's (isProbe).
func decodeOverlay(pb *chatpb.Overlay) (overlay.Message, error) {
	var m overlay.Message
	if pb == nil {
		return m, fmt.Errorf("%w: empty overlay frame", ErrInvalid)
	}
	if pb.Probe {
		return m, fmt.Errorf("%w: overlay probe with other fields", ErrInvalid)
	}
	if pb.Kind == 0 || pb.Kind >= uint32(overlay.NumKinds) {
		return m, fmt.Errorf("%w: overlay kind %d", ErrInvalid, pb.Kind)
	}
	if len(pb.Peer) > overlay.MaxPeerIDLen {
		return m, fmt.Errorf("%w: overlay peer of %d bytes", ErrInvalid, len(pb.Peer))
	}
	if pb.Ttl > 255 {
		return m, fmt.Errorf("%w: overlay ttl %d", ErrInvalid, pb.Ttl)
	}
	if len(pb.Peers) > maxOverlayPeers {
		return m, fmt.Errorf("%w: overlay shuffle of %d peers", ErrInvalid, len(pb.Peers))
	}
	for _, p := range pb.Peers {
		if p == "" || len(p) > overlay.MaxPeerIDLen {
			return m, fmt.Errorf("%w: overlay shuffle peer of %d bytes", ErrInvalid, len(p))
		}
	}
	kind := overlay.Kind(pb.Kind)
	switch {
	case len(pb.Id) != 0:
		return m, fmt.Errorf("%w: overlay id on a %s (protocol 6)", ErrInvalid, kind)
	case kind == overlay.KindGossip && pb.Peer != "":
		return m, fmt.Errorf("%w: overlay gossip names its origin (protocol 6)", ErrInvalid)
	case kind != overlay.KindGossip && pb.Repaired:
		return m, fmt.Errorf("%w: overlay repaired flag on a %s", ErrInvalid, kind)
	}
	if len(pb.Payload) > maxOverlayPayload {
		return m, fmt.Errorf("%w: overlay payload of %d bytes", ErrInvalid, len(pb.Payload))
	}
	var gossipOrigin string
	var gossipID overlay.MsgID
	if kind == overlay.KindGossip {
		var err error
		if gossipOrigin, gossipID, err = gossipKey(pb.Payload); err != nil {
			return m, err
		}
	}
	if len(pb.Announces) > 0 {
		return m, fmt.Errorf("%w: overlay announces of protocol 6", ErrInvalid)
	}
	if kind != overlay.KindIHave && len(pb.Haves) > 0 {
		return m, fmt.Errorf("%w: overlay haves on a %s", ErrInvalid, kind)
	}
	if len(pb.Ids) > maxOverlayIDs {
		return m, fmt.Errorf("%w: overlay frame with %d ids", ErrInvalid, len(pb.Ids))
	}
	anns, err := unpackHaves(pb.Haves)
	if err != nil {
		return m, err
	}
	for _, id := range pb.Ids {
		if len(id) != len(overlay.MsgID{}) {
			return m, fmt.Errorf("%w: overlay graft id of %d bytes", ErrInvalid, len(id))
		}
	}
	m = overlay.Message{
		Kind:     kind,
		Peer:     pb.Peer,
		TTL:      uint8(pb.Ttl),
		High:     pb.High,
		Accept:   pb.Accept,
		Round:    pb.Round,
		Payload:  pb.Payload,
		Repaired: pb.Repaired,
	}
	if kind == overlay.KindGossip {
		m.Peer, m.ID = gossipOrigin, gossipID
	}
	if len(pb.Peers) > 0 {
		m.Peers = append([]string(nil), pb.Peers...)
	}
	m.Announces = anns
	if len(pb.Ids) > 0 {
		m.IDs = make([]overlay.MsgID, len(pb.Ids))
		for i, id := range pb.Ids {
			copy(m.IDs[i][:], id)
		}
	}
	return m, nil
}
