package chat

import (
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// OverlayNeighboursForTest returns the overlay's active view.
func (n *Node) OverlayNeighboursForTest() []string { return n.ovl.neighbours() }

// SendOverlayGossipForTest sends peer id an overlay gossip frame carrying
// env as the payload, under env's own message ID and tree (or under id
// if it is not nil), as a misbehaving neighbour would.
func (n *Node) SendOverlayGossipForTest(to string, env *chatpb.Envelope, payload []byte, id *overlay.MsgID) bool {
	m := overlay.Message{Kind: overlay.KindGossip, Peer: env.Origin, ID: overlayMsgID(env.Room, env.Origin, env.Seq), Payload: payload}
	if id != nil {
		m.ID = *id
	}
	return n.sendFrame(to, overlayFrame(&m))
}

// OverlayStatsForTest returns the overlay machine's counters.
func (n *Node) OverlayStatsForTest() overlay.Stats {
	d := n.ovl
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}
