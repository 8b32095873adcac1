package overlay

// Kind is a message type. HyParView's kinds maintain the views; Plumtree's
// carry and repair broadcasts.
type Kind uint8

// Message kinds; the zero Kind is invalid.
const (
	// KindJoin asks the receiver, the contact of a new peer, to take the
	// sender into its active view and announce it (ForwardJoin).
	KindJoin Kind = iota + 1
	// KindForwardJoin carries a join (Peer) along a random walk of TTL
	// steps; the peer where it ends takes Peer as a neighbour.
	KindForwardJoin
	// KindNeighbor asks the receiver to take the sender as a neighbour;
	// High (the sender has no neighbour at all) may not be refused.
	KindNeighbor
	// KindNeighborReply answers a Neighbor (Accept), and tells a joining
	// peer that the sender took it as a neighbour (Accept true).
	KindNeighborReply
	// KindDisconnect: the sender dropped the receiver from its active
	// view; the receiver keeps it as a passive peer.
	KindDisconnect
	// KindShuffle carries Peers from Peer (the walk's origin) along a
	// random walk of TTL steps; where it ends, they enter the passive
	// view and a ShuffleReply goes back to Peer.
	KindShuffle
	// KindShuffleReply answers a Shuffle with passive peers of the
	// receiver's. It travels back along the walk, each peer passing it to
	// the neighbour that sent it the Shuffle, or to Peer (the walk's
	// origin) once that is a neighbour; Peer empty or the receiver itself:
	// the reply is the receiver's.
	KindShuffleReply
	// KindGossip carries a broadcast (ID, Payload) from Peer, its origin;
	// Round is the number of hops from the origin to the sender.
	KindGossip
	// KindIHave announces message IDs (Announces) the sender has.
	KindIHave
	// KindGraft asks the receiver to push Peer's messages (the tree of
	// origin Peer) to the sender eagerly from now on, and to send the
	// messages IDs names.
	KindGraft
	// KindPrune asks the receiver to push Peer's messages to the sender
	// lazily from now on.
	KindPrune
	kindEnd
)

var kindNames = [...]string{"invalid", "join", "forward-join", "neighbor", "neighbor-reply",
	"disconnect", "shuffle", "shuffle-reply", "gossip", "ihave", "graft", "prune"}

// String returns the kind's name.
func (k Kind) String() string {
	if k >= kindEnd {
		return "invalid"
	}
	return kindNames[k]
}

// View reports whether k maintains the views (HyParView's kinds, Join to
// ShuffleReply) rather than carrying or repairing broadcasts: a driver
// may queue these apart, as they keep the neighbours a flood of payloads
// must not crowd out.
func (k Kind) View() bool { return k >= KindJoin && k <= KindShuffleReply }

// NumKinds is one more than the largest Kind, to size per-kind counters.
const NumKinds = int(kindEnd)

// MsgID names one broadcast message. The application derives it (hearsay:
// a hash of the room, origin and seq), so equal IDs mean equal messages.
type MsgID [16]byte

// Announce is one entry of an IHAVE: a message ID, its origin, and the
// number of hops from the origin to the announcer.
type Announce struct {
	ID     MsgID
	Origin string
	Round  uint32
}

// Message is one overlay message. Which fields mean something depends on
// Kind (see the constants); the others are zero. A Message handed to Step
// is not kept, except Payload, which the Node keeps to answer grafts and
// hands out in Deliveries (the caller must not change it afterwards).
type Message struct {
	Kind      Kind
	Peer      string     // ForwardJoin: the joiner; Shuffle, ShuffleReply: the walk's origin; Gossip, Graft, Prune: the tree's origin
	TTL       uint8      // ForwardJoin, Shuffle: steps left
	High      bool       // Neighbor: the sender has no neighbour
	Accept    bool       // NeighborReply
	Peers     []string   // Shuffle, ShuffleReply
	ID        MsgID      // Gossip
	Round     uint32     // Gossip
	Payload   []byte     // Gossip
	Repaired  bool       // Gossip: this copy, or one above it in the tree, came by a graft or repair (graft.go)
	Announces []Announce // IHave
	IDs       []MsgID    // Graft
}

// Envelope is a message to send and its destination.
type Envelope struct {
	To  string
	Msg Message
}

// Delivery is a broadcast received for the first time: the application
// shows it. Hops is the number of links it crossed from its origin.
type Delivery struct {
	ID      MsgID
	Payload []byte
	From    string
	Hops    uint32
}

// valid checks the bounds of a message from the network before any of it
// is used: every list and every ID is bounded, and the fields of other
// kinds are empty (a message means one thing).
func (n *Node) valid(from string, m *Message) bool {
	if from == "" || len(from) > MaxPeerIDLen || from == n.cfg.Self {
		return false
	}
	if len(m.Peer) > MaxPeerIDLen {
		return false
	}
	switch m.Kind {
	case KindForwardJoin:
		if m.Peer == "" || m.TTL > n.cfg.ARWL {
			return false
		}
	case KindShuffle:
		if m.Peer == "" || m.TTL > n.cfg.ARWL {
			return false
		}
		fallthrough
	case KindShuffleReply:
		if len(m.Peers) > n.cfg.shuffleLen() {
			return false
		}
		for _, p := range m.Peers {
			if p == "" || len(p) > MaxPeerIDLen {
				return false
			}
		}
	case KindGossip:
		if m.Peer == "" || len(m.Payload) > n.cfg.MaxPayload {
			return false
		}
	case KindIHave:
		if len(m.Announces) == 0 || len(m.Announces) > n.cfg.MaxIHave {
			return false
		}
		for _, a := range m.Announces {
			if a.Origin == "" || len(a.Origin) > MaxPeerIDLen {
				return false
			}
		}
	case KindGraft:
		if m.Peer == "" || len(m.IDs) > n.cfg.MaxIHave {
			return false
		}
	case KindPrune:
		if m.Peer == "" {
			return false
		}
	case KindJoin, KindNeighbor, KindNeighborReply, KindDisconnect:
	default:
		return false
	}
	return true
}
