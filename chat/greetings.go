package chat

// Greetings: what a link carries before the frames it was made for.
//
// A kept link (every live member's in a small group, an overlay
// neighbour's above Config.TreeThreshold: links.go) starts with a
// greeting, written by each end's writer when a connection becomes the
// link's and again whenever the link turns from not kept to kept (a new
// neighbour's link is often made on demand a moment before the overlay
// takes it as a neighbour). The first greeting on a connection carries
// all of the following; a later one on the same connection only what
// changed since the last (type greeting):
//
//   - our room set, so the peer knows at once which rooms to send us;
//   - our encryption key and up to 15 keys of members that are not live
//     (a sender may need to seal a direct message to one: direct_keys.go);
//   - above the tree threshold, a digest of the signed room sets of the
//     live members this node holds, its own included (protocol 9): a new
//     neighbour that holds other sets asks for the ones it lacks and learns at once
//     who is in which room (they otherwise travel along the neighbours'
//     links only when they change: roomsets.go, roomsetdigest.go). Until
//     protocol 8 the sets themselves went, 99 of ~210 bytes at 100
//     members, to every new neighbour, which nearly always held them.
//
// A link made on demand (an anti-entropy status to a member that is not a
// neighbour, an overlay join or shuffle reply, a direct message, a
// receipt, a held message) carries no greeting. At 100 members a
// greeting was tens of KB (99 relayed sets and 16 keys of 1.3 KB each)
// on every such link, several per second in the group: most of the bytes
// per delivery (docs/BENCHMARKS.md). What the peer of such a link needs,
// it asks for by sending its own, and gets it once per connection:
//
//   - an EncKeys frame from a peer whose link is not kept is answered with
//     our own key (a peer about to seal a direct message to us sends its
//     key to get ours: requestEncKey);
//   - a room set from its origin on a link that is not kept is answered
//     with ours (a peer that pushes to every member, in a group below its
//     threshold or with the tree off, greets every link and learns our
//     rooms back).
//
// Both answers are what a greeting would have sent, so a peer of an
// earlier build, which greets every link, gets the same as before.

import (
	"fmt"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// greeting is what the greetings on one connection of a link have
// carried. The first greeting on a connection sends everything; when the
// link turns kept again on the same connection, its peer still holds what
// the connection carried, and the greeting sends only what it may lack:
// our room set if its version changed, the keys it did not carry, and the
// digest of the relayed room sets (16 bytes; the peer asks for what it
// lacks, at most maxDigestsOut answers pending). A member that flips the
// kept mark (an overlay Join then a Disconnect, ~50 bytes each) thus gets
// back what changed meanwhile, not the whole greeting (at 200 members ~60
// KB) each time. Owned by the link's writer.
type greeting struct {
	gen     uint64           // the link's keptGen last greeted; 0: none on this connection
	roomVer int64            // the version of our room set greeted
	keys    map[string]int64 // the keys of the last greeting: issued time by peer ID
}

// maxDigestsOut bounds the room set digests a link's peer may answer with
// a request (peerConn.digestsOut): one per greeting, at most this many
// pending, so that a peer that flips the kept mark cannot pile up answers.
const maxDigestsOut = 2

// greet writes the greeting of a kept link (see the file comment and
// greeting) on the connection whose greetings g records, with send, and
// updates g. Called by p's writer only.
func (n *Node) greet(p *peerConn, g *greeting, send func(*chatpb.Frame) error) error {
	first := g.gen == 0
	// Our rooms first, so the peer knows at once which rooms to send us
	// (the announcement is repeated every few anti-entropy rounds anyway).
	rs := n.roomSetAnnouncement()
	if v := rs.GetRoomSet().GetVersion(); first || v != g.roomVer {
		if err := send(rs); err != nil {
			return fmt.Errorf("send rooms: %w", err)
		}
		g.roomVer = v
	}
	all := n.encKeysFrame(p.id).GetEncKeys().GetKeys()
	var keys []*chatpb.EncKey
	for _, k := range all {
		if issued, ok := g.keys[k.GetPeerId()]; first || !ok || issued != k.GetIssuedUnixNano() {
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		f := &chatpb.Frame{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: keys}}}
		if err := send(f); err != nil {
			return fmt.Errorf("send encryption keys: %w", err)
		}
	}
	g.keys = make(map[string]int64, len(all))
	for _, k := range all {
		g.keys[k.GetPeerId()] = k.GetIssuedUnixNano()
	}
	if n.meshLinks() {
		return nil // every member announces its set to every other itself
	}
	// The relayed sets: a digest of them, the peer asks for what it
	// lacks (roomsetdigest.go).
	if err := n.sendRoomSetDigest(p, send); err != nil {
		return fmt.Errorf("send room set digest: %w", err)
	}
	return nil
}

// answerEncKeys sends our own key to from, which sent us keys, when its
// link is not kept (a kept link's greeting carries our key) and our key
// has not gone to the peer on this connection (ownSent). Called by the
// link's reader.
func (n *Node) answerEncKeys(from string) {
	p := n.peer(from)
	if p == nil || p.isKept() {
		return
	}
	n.sendOwnKey(p)
}

// requestEncKey sends our own key to id, a live member, on its link (made
// on demand), so that it answers with its own (answerEncKeys); nothing
// when our key has gone to the peer on this connection already (the peer
// then has it, and sent its own: it greeted a kept link, answered ours,
// or asked for ours with it). Safe for concurrent use.
func (n *Node) requestEncKey(id string) {
	if p := n.link(id, true); p != nil {
		n.sendOwnKey(p)
	}
}

// sendOwnKey queues our own key on p unless the peer has it from this
// connection or it is queued (ownSent).
func (n *Node) sendOwnKey(p *peerConn) {
	if p.ownSent(true) || !p.keyQueued.CompareAndSwap(false, true) {
		return
	}
	if !p.enqueue(n.ownKeyFrame()) {
		p.keyQueued.Store(false) // queue full: the next request tries again
	}
}

// answerRoomSet sends our room set to from, which announced its own, when
// its link is not kept (a kept link's greeting and refreshes carry ours)
// and ours has not gone to the peer on this connection (ownSent). Called
// by the link's reader.
func (n *Node) answerRoomSet(from string) {
	p := n.peer(from)
	if p == nil || p.isKept() || p.ownSent(false) || !p.roomsQueued.CompareAndSwap(false, true) {
		return
	}
	f := n.roomSetAnnouncement()
	if !p.enqueue(f) {
		p.roomsQueued.Store(false)
	}
}

// frameHook is Config.frameSent's type: a test hook called with each frame
// a link's writer wrote and the peer it went to.
type frameHook func(to string, f *chatpb.Frame)
