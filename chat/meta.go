package chat

// Node meta is what memberlist tells every member about a peer: protocol
// version, peer ID, nick, public key and chat address, as a NodeMeta
// protobuf (chat.proto). memberlist panics if a delegate returns more than
// memberlist.MetaMaxSize (512) bytes, so encodeMeta checks the size and the
// inputs are bounded (nick 32 bytes, address 64) well below it.

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// ProtocolVersion is the chat protocol version this code speaks (9: a
// kept link's greeting above the tree threshold carries a digest of the
// relayed room sets in place of the sets, the RoomSetDigest frame a
// protocol-8 peer would count as bad, and a gap pull names the seqs it
// lacks (Status.missing), which a protocol-8 peer would answer with every
// message after the gap; 8: a
// tree-mode anti-entropy status may carry its vector's digest in place of
// the vector, which a protocol-7 peer would read as an empty vector; 7: the
// overlay's announcements packed per origin, shuffle replies sent back
// along the walk; 6: one connection per pair of peers, every frame valid
// in both directions, the overlay's frames, direct message IDs bound to
// their origin; 5: end-to-end encrypted direct messages; 4: compact
// causal deps, split statuses; see chat.proto).
const ProtocolVersion = 9

const maxAddrBytes = 64

// peerMeta is a decoded, validated node meta.
type peerMeta struct {
	Protocol uint32
	ID       string
	Nick     string
	Pub      ed25519.PublicKey
	ChatAddr string
}

// encodeMeta encodes m and checks it fits in memberlist's meta limit.
func encodeMeta(m peerMeta) ([]byte, error) {
	b, err := proto.Marshal(&chatpb.NodeMeta{
		Protocol:  m.Protocol,
		PeerId:    m.ID,
		Nick:      m.Nick,
		PublicKey: m.Pub,
		ChatAddr:  m.ChatAddr,
	})
	if err != nil {
		return nil, fmt.Errorf("encode node meta: %w", err)
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("node meta is %d bytes, memberlist allows %d", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// decodeMeta decodes and validates a node meta received from memberlist.
// nodeName is the memberlist node name it came with; it must be the peer ID.
func decodeMeta(b []byte, nodeName string) (peerMeta, error) {
	if len(b) > memberlist.MetaMaxSize {
		return peerMeta{}, fmt.Errorf("node meta is %d bytes, over %d", len(b), memberlist.MetaMaxSize)
	}
	var pb chatpb.NodeMeta
	if err := proto.Unmarshal(b, &pb); err != nil {
		return peerMeta{}, fmt.Errorf("decode node meta: %w", err)
	}
	m := peerMeta{Protocol: pb.Protocol, ID: pb.PeerId, Nick: pb.Nick, Pub: pb.PublicKey, ChatAddr: pb.ChatAddr}
	if m.Protocol != ProtocolVersion {
		// Peers of different chat protocols share memberlist but cannot
		// chat (6 shares one connection per pair, 5 seals direct
		// messages, 4 compacts deps and splits statuses, 3 is TLS, 2 was
		// plaintext gRPC): say so once, at
		// the join, instead of failing every dial.
		return peerMeta{}, fmt.Errorf("speaks chat protocol %d, this peer speaks %d: run the same hearsay version on both", m.Protocol, ProtocolVersion)
	}
	if len(m.Pub) != ed25519.PublicKeySize {
		return peerMeta{}, fmt.Errorf("node meta: public key is %d bytes", len(m.Pub))
	}
	if PeerIDFromKey(m.Pub) != m.ID {
		return peerMeta{}, fmt.Errorf("node meta: peer id %q does not match its public key", m.ID)
	}
	if nodeName != m.ID {
		return peerMeta{}, fmt.Errorf("node meta: peer id %q differs from node name %q", m.ID, nodeName)
	}
	if err := ValidateNick(m.Nick); err != nil {
		return peerMeta{}, fmt.Errorf("node meta: %w", err)
	}
	if err := validateHostPort(m.ChatAddr); err != nil {
		return peerMeta{}, fmt.Errorf("node meta: chat address: %w", err)
	}
	return m, nil
}

// ValidateNick checks a nick: 1 to 32 bytes of letters, digits, '-', '_'
// and '.', so it cannot be confused with a room (#), a command (/) or a
// disambiguation suffix (#); valid under the PRECIS Nickname profile and
// in its normal form; with no invisible letter (U+3164 and the other
// Hangul fillers) or format character; and letters of one script, or of
// a combination real names use (see names.go).
func ValidateNick(nick string) error {
	if err := nickCharset(nick); err != nil {
		return err
	}
	return checkNickRunes(nick)
}

// nickCharset is the character rule of nicks before the PRECIS profile
// (protocol 3): letters, digits, '-', '_' and '.', at most MaxNickBytes.
// Messages stored under it stay readable from the log; they are shown
// with their origin's ID suffix like any origin that is not a live
// member, and a live member's own nick passed ValidateNick in its meta.
func nickCharset(nick string) error {
	if nick == "" {
		return fmt.Errorf("nick is empty")
	}
	if len(nick) > MaxNickBytes {
		return fmt.Errorf("nick %q is %d bytes: at most %d", nick, len(nick), MaxNickBytes)
	}
	if !utf8.ValidString(nick) {
		return fmt.Errorf("nick is not valid UTF-8")
	}
	for _, r := range nick {
		ok := r == '-' || r == '_' || r == '.' ||
			r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			r > 127 && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if !ok {
			return fmt.Errorf("nick %q: only letters, digits, '-', '_' and '.' are allowed", nick)
		}
	}
	return nil
}

func validateHostPort(addr string) error {
	if len(addr) > maxAddrBytes {
		return fmt.Errorf("%d bytes, at most %d", len(addr), maxAddrBytes)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("host %q is not an IP address", host)
	}
	p, err := parsePort(port)
	if err != nil {
		return err
	}
	if p == 0 {
		return fmt.Errorf("port 0")
	}
	return nil
}
