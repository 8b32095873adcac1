package chat

// Links on demand. The node holds at most one link per peer (n.peers,
// peerconn.go), made three ways:
//
//   - kept: membership keeps a link to every live member (keepLink(id,
//     true), members.go), dialed at once and redialed while the member
//     lives, as every link was before protocol 6;
//   - on demand: sendFrame to a live member with no link makes one and
//     dials it;
//   - accepted: a member that dials us gets a link for that connection.
//
// A link that is not kept closes, and leaves n.peers, after
// linkIdleTimeout without a frame in either direction; a later sendFrame
// or an accepted connection makes a new one. The room-set refresh goes to
// kept links only (roomsets.go), so it does not keep the others alive.
// Only a kept link starts with a greeting (room sets and keys,
// greetings.go): one made on demand carries what it was made for.
//
// linkUp and linkDown are the one place where a link's state change has
// effects beyond the link itself.

import (
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// linkIdleRounds is linkIdleTimeout in anti-entropy intervals: 10 s with
// the default 1 s. One anti-entropy exchange (status, repair, the reply
// status) spans a round or two, and a backlog larger than
// AntiEntropyBatch is repaired over consecutive rounds, so a link opened
// for anti-entropy must outlive several rounds or it would pay a TLS
// handshake (~2 ms of CPU at each end) per round; beyond that an idle
// connection only costs memory (buffers and TLS state, tens of KB per
// end). It stays below the transport's IdleTimeout (30 rounds,
// transport.go), so an idle link closes itself before its peer's read
// deadline cuts it.
const linkIdleRounds = 10

// linkIdleTimeout is how long a link that is not kept may go without a
// frame either way before it closes.
func (n *Node) linkIdleTimeout() time.Duration {
	if n.cfg.linkIdle > 0 {
		return n.cfg.linkIdle
	}
	return linkIdleRounds * n.cfg.AntiEntropyInterval
}

// sendFrame queues f to peer id on the pair's link, making the link (and
// dialing it) when there is none and id is a live member with a valid
// meta. It reports false when it cannot: an unknown or dead member, a full
// queue (counted in Stats.QueueDrops), a node that is not started or is
// shutting down. It never blocks; the caller must not change f afterwards.
// Safe for concurrent use.
func (n *Node) sendFrame(id string, f *chatpb.Frame) bool {
	for range 2 {
		p := n.link(id, true)
		if p == nil {
			return false
		}
		if p.enqueue(f) {
			return true
		}
		if p.ctx.Err() == nil && !p.queue.isClosed() {
			return false // queue full
		}
		// The link closed for idleness as we queued (its queue refused
		// f: dropIdleLink): once more, on a new one.
	}
	return false
}

// keepLink marks the link to id kept or not. A kept link is dialed now
// when there is none (id must be a live member with a valid meta) and
// redialed while it lives; a link no longer kept closes after
// linkIdleTimeout without frames. Safe for concurrent use.
func (n *Node) keepLink(id string, keep bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.keepLinkLocked(id, keep)
}

// keepLinkLocked is keepLink; caller holds n.mu.
func (n *Node) keepLinkLocked(id string, keep bool) {
	p := n.peers[id]
	if p == nil {
		if keep {
			n.newLinkLocked(id, true, nil)
		}
		return
	}
	p.mu.Lock()
	if keep && !p.kept {
		p.keptGen++ // its writer greets the peer (greetings.go)
	}
	p.kept = keep
	p.mu.Unlock()
	p.wake()
}

// link returns the link to id; with create, a live member with a valid
// meta that has none gets one (not kept). It returns nil when there is no
// link and none may be made. Safe for concurrent use.
func (n *Node) link(id string, create bool) *peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.peers[id]; p != nil || !create {
		return p
	}
	p, _ := n.newLinkLocked(id, false, nil)
	return p
}

// acceptLink installs c, a connection accepted from peer id, on the
// pair's link, making the link when there is none (and id is a live
// member with a valid meta). A new link gets c before its writer starts:
// a writer that found no connection would dial one, and the pair would
// hold two for a moment (a TLS handshake each, and frames crossing on
// both). It returns nil when no link may be made or the link has stopped
// (c is not closed then: the transport closes it when serveConn returns).
// Safe for concurrent use.
func (n *Node) acceptLink(id string, c transport.Conn) (*peerConn, *linkConn) {
	n.mu.Lock()
	p := n.peers[id]
	if p == nil {
		p, lc := n.newLinkLocked(id, false, c)
		n.mu.Unlock()
		return p, lc
	}
	n.mu.Unlock()
	return p, p.install(c, false)
}

// newLinkLocked makes and starts the link to id, with accepted (when not
// nil) installed as its connection before its writer starts (returned as
// lc), or returns nil when id is not a live member with a valid meta or
// the node is not started (a node that left makes no new links). Caller
// holds n.mu and has checked that id has no link.
func (n *Node) newLinkLocked(id string, keep bool, accepted transport.Conn) (p *peerConn, lc *linkConn) {
	if n.state != stateStarted || id == n.id.ID {
		return nil, nil
	}
	m := n.members[id]
	if !m.liveValid() {
		return nil, nil
	}
	p = newPeerConn(n, id, m.ChatAddr, m.Pub)
	if keep {
		p.kept, p.keptGen = true, 1
	}
	n.peers[id] = p
	if accepted != nil {
		lc = p.install(accepted, false)
	}
	p.start()
	return p, lc
}

// dropIdleLink removes p, a link that is not kept and has been idle for
// linkIdleTimeout, from the node; it reports whether p must end (removed,
// or no longer the node's link to its peer) or false when p was used
// again meanwhile. Called by p's writer.
//
// The queue decides between a frame pushed at this instant and the drop,
// under its lock: it is closed only while empty, and a closed queue
// refuses the push, so the frame either is queued first (p is wanted
// again and stays) or is refused, and sendFrame puts it on a new link.
// A frame pushed onto a queue the link had just given up on was lost
// (until anti-entropy repaired it).
func (n *Node) dropIdleLink(p *peerConn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers[p.id] != p {
		return true
	}
	if p.wanted() || !p.queue.closeIfEmpty() {
		return false
	}
	delete(n.peers, p.id)
	p.cancel() // enqueue refuses from now on: sendFrame makes a new link
	return true
}

// linkUp is called when the link to id becomes established (after its
// connected flag is set, by the link's writer, once per transition): the
// direct-message loop may deliver to the peer now (a recipient needs no
// key of ours: it opens with its own and checks the signature against the
// key in the message).
func (n *Node) linkUp(id string) {
	n.dm.wake()
}

// linkDown is called when the link to id loses its last connection or
// stops (after its connected flag is cleared, once per transition). The
// writer redials a kept link by itself; Members reports the peer suspect
// when the link stays down (members.go).
func (n *Node) linkDown(id string) {
	n.logger.Printf("chat link to %s is down", id)
}

// linkBroken reports whether the link to id is gone or has been down
// longer than a handshake may take: the overlay replaces that neighbour
// (PeerDown).
func (n *Node) linkBroken(id string) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p == nil || p.unreachableFor() > n.cfg.HandshakeTimeout
}

// meshLinks reports whether membership keeps a link to every live member:
// in groups that push room messages to each member (up to
// Config.TreeThreshold live members, or with the tree off). Above it the
// overlay keeps links to its few neighbours only (keepLinks) and every
// other link is made on demand and closes when idle: a full mesh of 200
// peers would be 19,900 connections. Safe for concurrent use; takes no
// lock (the member count is an atomic).
func (n *Node) meshLinks() bool {
	t := n.cfg.TreeThreshold
	return t < 0 || n.ovl == nil || n.ovl.m == nil || n.numMembers() <= t
}

// keepLinks makes the links that must stay open agree with the group's
// size after a membership change: every live member's while meshLinks,
// else only the overlay's neighbours (active). Called by the overlay
// driver's goroutine.
func (n *Node) keepLinks(active map[string]bool) {
	mesh := n.meshLinks()
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, m := range n.members {
		live := m.liveValid()
		if !live || id == n.id.ID {
			continue
		}
		keep := mesh || active[id]
		p := n.peers[id]
		if p == nil && !keep {
			continue
		}
		if p != nil {
			p.mu.Lock()
			same := p.kept == keep
			p.mu.Unlock()
			if same {
				continue
			}
		}
		n.keepLinkLocked(id, keep)
	}
}

// reach makes a link to id on demand when id is a live member without
// one, so that what waits for it (a direct message, a receipt, a held
// message) goes once the link is up; it reports whether id has a link.
func (n *Node) reach(id string) bool {
	return n.link(id, true) != nil
}
