package chat

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// SetFrameHookForTest makes every link's writer call hook with each frame
// it wrote and the peer it went to (hook must be safe for concurrent use).
func SetFrameHookForTest(cfg *Config, hook func(to string, f *chatpb.Frame)) { cfg.frameSent = hook }

// SetDigestClockForTest sets the clock the room set digests' rates are
// claimed at (Config.digestNow).
func SetDigestClockForTest(cfg *Config, now func() time.Time) { cfg.digestNow = now }

// DigestAnswerEveryForTest is digestAnswerEvery.
const DigestAnswerEveryForTest = digestAnswerEvery

// SendStatusForTest sends the status of room to peer to, as an
// anti-entropy round does (over a link made on demand when there is none).
func (n *Node) SendStatusForTest(to, room string, wantReply bool) {
	n.sendStatus(to, room, false, wantReply)
}

// ForgetEncKeyForTest drops the encryption key of id from memory, as if it
// had never arrived.
func (n *Node) ForgetEncKeyForTest(id string) {
	n.dm.mu.Lock()
	defer n.dm.mu.Unlock()
	delete(n.dm.keys, id)
}

// RequestEncKeyForTest is requestEncKey: our key goes to id on its link
// unless the peer has it from this connection.
func (n *Node) RequestEncKeyForTest(id string) { n.requestEncKey(id) }

// AnnounceRoomsForTest is announceRooms: our room set goes to every link.
func (n *Node) AnnounceRoomsForTest() { n.announceRooms() }

// RedialLinkForTest dials a new connection to id and makes it the link's,
// as the link of a peer that restarted does (its old connection, in the
// same direction when this node dialed it, is retired).
func (n *Node) RedialLinkForTest(ctx context.Context, id string) error {
	p := n.peer(id)
	if p == nil {
		return fmt.Errorf("no link to %s", id)
	}
	conn, err := n.tr.Dial(ctx, p.addr, transport.Peer{ID: p.id, Key: p.pub})
	if err != nil {
		return fmt.Errorf("dial %s: %w", id, err)
	}
	lc := p.install(conn, true)
	if lc == nil {
		return fmt.Errorf("link to %s stopped", id)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.serveLink(p, lc)
	}()
	return nil
}

// ForgetRoomSetForTest drops the room set held of id, as if it had never
// arrived.
func (n *Node) ForgetRoomSetForTest(id string) {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	delete(n.peerRooms, id)
	n.roomSetsChangedLocked()
}

// HoldsRoomSetForTest reports whether a room set of id is held.
func (n *Node) HoldsRoomSetForTest(id string) bool {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	return n.peerRooms[id] != nil
}

// SendRoomSetDigestForTest sends to id the room set digest a greeting of
// a kept link would (it may be answered with a request).
func (n *Node) SendRoomSetDigestForTest(id string) bool {
	p := n.peer(id)
	if p == nil {
		return false
	}
	ok := n.enqueueRoomSetDigest(p)
	return ok
}

// RoomSetDigestFromForTest hands n a RoomSetDigest frame as if from
// peer from (its link's reader).
func (n *Node) RoomSetDigestFromForTest(from string, m *chatpb.RoomSetDigest) {
	n.handleRoomSetDigest(m, from)
}

// RoomSetDigestAgreesForTest reports whether the room set digest n sends
// peer equals the one peer compares n's with: their held sets agree, and
// a refresh between them needs nothing but the digest.
func (n *Node) RoomSetDigestAgreesForTest(peer *Node) bool {
	return bytes.Equal(n.cachedRoomSetDigest(peer.ID(), true), peer.cachedRoomSetDigest(n.ID(), false))
}

// GrantDigestForTest counts a digest as greeted to peer id (a credit its
// request may use), as a greeting or refresh does; false without a link.
func (n *Node) GrantDigestForTest(id string) bool {
	p := n.peer(id)
	if p == nil {
		return false
	}
	p.grantDigest()
	return true
}
