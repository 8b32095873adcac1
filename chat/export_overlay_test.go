package chat

import (
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// OverlayNeighboursForTest returns the overlay's active view.
func (n *Node) OverlayNeighboursForTest() []string { return n.ovl.neighbours() }

// SendOverlayGossipForTest sends peer to an overlay gossip frame with the
// given tree origin, message ID and payload, as a misbehaving neighbour
// would.
func (n *Node) SendOverlayGossipForTest(to, tree string, id overlay.MsgID, payload []byte) bool {
	m := overlay.Message{Kind: overlay.KindGossip, Peer: tree, ID: id, Payload: payload}
	return n.sendFrame(to, overlayFrame(&m))
}

// OverlayIDForTest returns the overlay message ID of env.
func OverlayIDForTest(env *chatpb.Envelope) overlay.MsgID {
	return overlayMsgID(env.Room, env.Origin, env.Seq)
}

// OverlayStatsForTest returns the overlay machine's counters.
func (n *Node) OverlayStatsForTest() overlay.Stats {
	d := n.ovl
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// SendOverlayJoinForTest sends to an overlay Join, as the driver of a
// peer that joins the overlay does (a peer with TreeThreshold -1 never
// joins by itself; it is taken in when another's join walk or neighbour
// request picks it).
func (n *Node) SendOverlayJoinForTest(to string) bool {
	return n.sendFrame(to, overlayFrame(&overlay.Message{Kind: overlay.KindJoin}))
}
