package chat

// TEMPORARY: the overlay driver's link operations over today's full mesh
// (one outgoing peerConn per live member, peerconn.go). The one-connection-
// per-pair work (chat/links.go, issue 16 part 1) provides sendFrame and
// keepLink over links opened on demand; the lead replaces this file with it
// at merge (and drops meshLinks from overlayDriver). Until then every live
// member already has a connection, so keepLink only records the neighbour
// set, and a link counts as broken when its stream has been down longer
// than the handshake timeout.

import (
	"sync"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// meshLinks is the neighbour set the overlay asked to keep.
type meshLinks struct {
	mu   sync.Mutex
	kept map[string]bool
}

// sendFrame queues f to peer id without blocking; false when there is no
// connection to it (not a live member) or its queue is full.
func (n *Node) sendFrame(id string, f *chatpb.Frame) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	if p == nil {
		return false
	}
	return p.enqueue(f)
}

// keepLink records whether the connection to id must stay open (an overlay
// neighbour) or may close when idle. In the full mesh every connection
// stays open anyway.
func (n *Node) keepLink(id string, keep bool) {
	l := &n.ovl.mesh
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kept == nil {
		l.kept = make(map[string]bool)
	}
	if keep {
		l.kept[id] = true
	} else {
		delete(l.kept, id)
	}
}

// linkBroken reports whether the connection to id is gone or has been
// down longer than a handshake may take: the overlay replaces that
// neighbour (PeerDown).
func (n *Node) linkBroken(id string) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p == nil || p.unreachableFor() > n.cfg.HandshakeTimeout
}
