package chat

// The Overlay frame (protocol 6): the wire form of an overlay.Message
// (chat/overlay/messages.go) and its message IDs. Decoding checks every
// bound before it allocates the machine's copy; the machine checks the
// message again (overlay.Node.Step: fields of other kinds empty, walk
// lengths), and the driver checks that every peer ID names a member
// (overlaydrv.go).

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

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
		Kind:    uint32(m.Kind),
		Peer:    m.Peer,
		Ttl:     uint32(m.TTL),
		High:    m.High,
		Accept:  m.Accept,
		Peers:   m.Peers,
		Round:   m.Round,
		Payload: m.Payload,
	}
	if m.Kind == overlay.KindGossip {
		pb.Id = m.ID[:]
	}
	if len(m.Announces) > 0 {
		pb.Announces = make([]*chatpb.OverlayAnnounce, len(m.Announces))
		for i, a := range m.Announces {
			pb.Announces[i] = &chatpb.OverlayAnnounce{Id: a.ID[:], Origin: a.Origin, Round: a.Round}
		}
	}
	if len(m.IDs) > 0 {
		pb.Ids = make([][]byte, len(m.IDs))
		for i := range m.IDs {
			pb.Ids[i] = m.IDs[i][:]
		}
	}
	return &chatpb.Frame{Msg: &chatpb.Frame_Overlay{Overlay: pb}}
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
		len(pb.Announces) == 0 && len(pb.Ids) == 0
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
	case kind == overlay.KindGossip && len(pb.Id) != len(overlay.MsgID{}):
		return m, fmt.Errorf("%w: overlay gossip id of %d bytes", ErrInvalid, len(pb.Id))
	case kind != overlay.KindGossip && len(pb.Id) != 0:
		return m, fmt.Errorf("%w: overlay id on a %s", ErrInvalid, kind)
	}
	if len(pb.Payload) > maxOverlayPayload {
		return m, fmt.Errorf("%w: overlay payload of %d bytes", ErrInvalid, len(pb.Payload))
	}
	if len(pb.Announces) > maxOverlayIDs || len(pb.Ids) > maxOverlayIDs {
		return m, fmt.Errorf("%w: overlay frame with %d announces and %d ids", ErrInvalid, len(pb.Announces), len(pb.Ids))
	}
	for _, a := range pb.Announces {
		if a == nil || len(a.Id) != len(overlay.MsgID{}) || a.Origin == "" || len(a.Origin) > overlay.MaxPeerIDLen {
			return m, fmt.Errorf("%w: overlay announce out of bounds", ErrInvalid)
		}
	}
	for _, id := range pb.Ids {
		if len(id) != len(overlay.MsgID{}) {
			return m, fmt.Errorf("%w: overlay graft id of %d bytes", ErrInvalid, len(id))
		}
	}
	m = overlay.Message{
		Kind:    kind,
		Peer:    pb.Peer,
		TTL:     uint8(pb.Ttl),
		High:    pb.High,
		Accept:  pb.Accept,
		Round:   pb.Round,
		Payload: pb.Payload,
	}
	copy(m.ID[:], pb.Id)
	if len(pb.Peers) > 0 {
		m.Peers = append([]string(nil), pb.Peers...)
	}
	if len(pb.Announces) > 0 {
		m.Announces = make([]overlay.Announce, len(pb.Announces))
		for i, a := range pb.Announces {
			copy(m.Announces[i].ID[:], a.Id)
			m.Announces[i].Origin, m.Announces[i].Round = a.Origin, a.Round
		}
	}
	if len(pb.Ids) > 0 {
		m.IDs = make([]overlay.MsgID, len(pb.Ids))
		for i, id := range pb.Ids {
			copy(m.IDs[i][:], id)
		}
	}
	return m, nil
}
