package chat

// Room set digests (protocol 9): how the greeting of a kept link above the
// tree threshold tells a new neighbour which relayed room sets it holds
// without sending them, and how the periodic refresh of our own set on a
// kept link above the threshold says it is unchanged (see RoomSetDigest
// in chat.proto). The digest covers our own set too: a peer that lacks
// it, or any other, asks.
//
// Until protocol 8 the greeting sent every live member's signed room set
// to each new neighbour: 99 sets of about 210 bytes on the wire at 100
// members, at every turn of the overlay's views, though a neighbour in
// the same group nearly always holds the same sets already (they flood
// along the kept links when they change). Now the greeting carries a
// 16-byte digest of the (origin, version) pairs; a receiver whose own
// digest differs asks for what it lacks with the list of what it holds,
// and gets only the sets it lacks or holds older. What it gets back is
// what a relay would have sent it (signed sets of live members: the
// checks of handleRoomSet apply), so nothing is trusted for less.
//
// Bounds: a request lists at most maxDigestHeld sets (the receiver builds
// a map of them), is answered once per digest this node sent on the link
// (digestsOut), and a node answers a differing digest with a request at
// most once per digestAnswerEvery per link: a peer cannot make this node
// send a few KB per frame of its own.

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

const (
	roomSetDigestTag = "hearsay/roomset-digest/v1\n"
	roomSetDigestLen = 16
	// maxDigestHeld bounds a request's list: far above the largest group
	// the overlay is measured at (200), under a frame's limit.
	maxDigestHeld = 4096
	// digestAnswerEvery is how often a differing digest of one link is
	// answered with a request at most.
	digestAnswerEvery = time.Second
)

// heldSetVersions returns the (origin, version) of the signed room sets
// held of live members and of also, other than but, with ours when own is
// set, sorted by origin. Safe for concurrent use.
func (n *Node) heldSetVersions(but, also string, own bool) []*chatpb.RoomSetVersion {
	live := n.liveMembers()
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	return n.heldSetVersionsLocked(live, but, also, own)
}

// heldSetVersionsLocked is heldSetVersions with the live members given.
// Caller holds n.roomsMu.
func (n *Node) heldSetVersionsLocked(live map[string]bool, but, also string, own bool) []*chatpb.RoomSetVersion {
	out := make([]*chatpb.RoomSetVersion, 0, len(n.peerRooms)+1)
	for id, set := range n.peerRooms {
		if id != but && set.signed != nil && (live[id] || id == also) {
			out = append(out, &chatpb.RoomSetVersion{Origin: id, Version: set.version})
		}
	}
	if own {
		out = append(out, &chatpb.RoomSetVersion{Origin: n.id.ID, Version: n.roomVer})
	}
	slices.SortFunc(out, func(a, b *chatpb.RoomSetVersion) int { return strings.Compare(a.Origin, b.Origin) })
	return out
}

// liveMembersGen is liveMembers with the membership generation it is of,
// both read under one lock: the digests cached with gen cover live.
func (n *Node) liveMembersGen() (map[string]bool, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.liveMembersLocked(), n.memberGen
}

// roomSetDigest is the digest of held, sorted by origin (chat.proto,
// RoomSetDigest).
func roomSetDigest(held []*chatpb.RoomSetVersion) []byte {
	h := sha256.New()
	b := make([]byte, 0, 64)
	b = append(b, roomSetDigestTag...)
	for _, v := range held {
		b = binary.AppendUvarint(b, uint64(len(v.Origin)))
		b = append(b, v.Origin...)
		b = binary.BigEndian.AppendUint64(b, uint64(v.Version))
		h.Write(b)
		b = b[:0]
	}
	return h.Sum(nil)[:roomSetDigestLen]
}

// sendRoomSetDigest sends the digest frame of a greeting or refresh to p
// with send, and counts it as one p's peer may answer (grantDigest) only
// if it went out: a digest dropped at a full queue earned the peer a
// request answered with every set it lacked, for a digest it never saw.
// It is counted before it is sent, as the peer's request may come back
// before send returns, and taken back if send fails.
func (n *Node) sendRoomSetDigest(p *peerConn, send func(*chatpb.Frame) error) error {
	d := n.cachedRoomSetDigest(p.id, true)
	f := &chatpb.Frame{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Digest: d}}}
	granted := p.grantDigest()
	if err := send(f); err != nil {
		if granted {
			p.takeDigest()
		}
		return err
	}
	return nil
}

// errQueueFull is what enqueueRoomSetDigest's send returns when the
// link's queue refused the digest.
var errQueueFull = errors.New("link queue full or closed")

// enqueueRoomSetDigest queues the digest frame of a refresh to p
// (sendRoomSetDigest) and reports whether it was queued.
func (n *Node) enqueueRoomSetDigest(p *peerConn) bool {
	return n.sendRoomSetDigest(p, func(f *chatpb.Frame) error {
		if !p.enqueue(f) {
			return errQueueFull
		}
		return nil
	}) == nil
}

// grantDigest counts a digest going to p's peer as one its request may
// answer (digestsOut, at most maxDigestsOut) and reports whether it did,
// so that a digest that did not go out takes back only a credit it got.
func (p *peerConn) grantDigest() bool {
	for {
		k := p.digestsOut.Load()
		if k >= maxDigestsOut {
			return false
		}
		if p.digestsOut.CompareAndSwap(k, k+1) {
			return true
		}
	}
}

// takeDigest takes one credit grantDigest granted, if any is left, and
// reports whether it did: a request answered uses one up, a digest that
// did not go out takes its own back.
func (p *peerConn) takeDigest() bool {
	for {
		k := p.digestsOut.Load()
		if k <= 0 {
			return false
		}
		if p.digestsOut.CompareAndSwap(k, k-1) {
			return true
		}
	}
}

// roomSetDigests caches the digests of the held room sets. Every greeting
// and refresh of a kept link above the tree threshold sends one, and every
// digest received is compared with ours: each cost a pass over the
// members, a protobuf per held set, a sort and a SHA-256 of them all,
// though the sets and the members change far less often than links are
// greeted and refreshed. A digest is computed once per peer it is for
// (the sets held but that peer's, ours included: to it; those held with
// that peer's, ours not: from it), and the cache is emptied when what the
// digests cover changes: a held set (a new version in, a forgotten member
// out), our own version (roomSetsChangedLocked), or the live members (the
// membership generation, n.memberGen, differs). Guarded by n.roomsMu.
type roomSetDigests struct {
	gen      chan struct{} // n.memberGen when byPeer was computed
	byPeer   map[digestFor][]byte
	computed uint64 // digests computed, not taken from the cache (tests)
}

// digestFor is what a cached digest is for: the peer and the direction.
type digestFor struct {
	peer string
	to   bool // the digest we send peer; else the one its digests are compared with
}

// maxCachedDigests bounds the cache: two per link, for far more links
// than a node keeps; past it the cache starts again.
const maxCachedDigests = 4096

// roomSetsChangedLocked empties the digest cache and counts a change for
// the rooms' member views (syncMembersLocked): a held set or our version
// changed. Caller holds n.roomsMu.
func (n *Node) roomSetsChangedLocked() {
	n.digests.byPeer = nil
	n.peerRoomsGen++
}

// cachedRoomSetDigest returns the digest of heldSetVersions(peer, "",
// true) when to is set (what we send peer), else of heldSetVersions("",
// peer, false) (what peer's digest is compared with), from the cache when
// nothing it covers changed since it was computed.
func (n *Node) cachedRoomSetDigest(peer string, to bool) []byte {
	key := digestFor{peer: peer, to: to}
	// The live members are cached per generation (liveMembers): reading
	// them for a digest taken from the cache costs a lock, no pass.
	live, gen := n.liveMembersGen()
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	if d, ok := n.digests.byPeer[key]; ok && n.digests.gen == gen {
		return d
	}
	var held []*chatpb.RoomSetVersion
	if to {
		held = n.heldSetVersionsLocked(live, peer, "", true)
	} else {
		held = n.heldSetVersionsLocked(live, "", peer, false)
	}
	d := roomSetDigest(held)
	n.digests.computed++
	if n.digests.gen != gen || n.digests.byPeer == nil || len(n.digests.byPeer) >= maxCachedDigests {
		// A newer generation may have been cached meanwhile: it is
		// replaced, and computed again by the next caller that sees it.
		n.digests.gen, n.digests.byPeer = gen, make(map[digestFor][]byte)
	}
	n.digests.byPeer[key] = d
	return d
}

// checkRoomSetDigest checks a RoomSetDigest frame's rules (chat.proto)
// and returns the request's origins and versions, or nil for a digest.
func checkRoomSetDigest(m *chatpb.RoomSetDigest) (held map[string]int64, ok bool) {
	if !m.Request {
		return nil, len(m.Digest) == roomSetDigestLen && len(m.Held) == 0
	}
	if len(m.Digest) != 0 || len(m.Held) > maxDigestHeld {
		return nil, false
	}
	held = make(map[string]int64, len(m.Held))
	for _, v := range m.Held {
		o := v.GetOrigin()
		if o == "" || len(o) > overlay.MaxPeerIDLen {
			return nil, false
		}
		if _, dup := held[o]; dup {
			return nil, false
		}
		held[o] = v.GetVersion()
	}
	return held, true
}

// handleRoomSetDigest answers a digest that differs from ours with a
// request, and a request for our digest with the sets the peer lacks.
// Called by the link's reader.
func (n *Node) handleRoomSetDigest(m *chatpb.RoomSetDigest, from string) {
	p := n.peer(from)
	if p == nil {
		return
	}
	// The rate and the credit are checked before any work: a digest
	// costs us a pass over every held set (a sort and a hash), a
	// request a map of up to maxDigestHeld origins.
	if m.Request && p.digestsOut.Load() <= 0 {
		return // not asked for: ignored
	}
	if !m.Request && !claimEvery(&p.digestAnswered, n.digestClock(), digestAnswerEvery) {
		// At most one digest per digestAnswerEvery is compared; one
		// skipped that differed is compared at the next refresh.
		return
	}
	held, ok := checkRoomSetDigest(m)
	if !ok {
		n.stats.badFrames.Add(1)
		return
	}
	if !m.Request {
		// The sender's set may come before memberlist says it lives.
		if string(n.cachedRoomSetDigest(from, false)) == string(m.Digest) {
			return // we hold what the peer holds: nothing to ask
		}
		mine := n.heldSetVersions("", from, false)
		f := &chatpb.Frame{Msg: &chatpb.Frame_RoomSetDigest{RoomSetDigest: &chatpb.RoomSetDigest{Request: true, Held: mine}}}
		p.enqueue(f)
		return
	}
	// A request: answered once per digest we sent on this link, and at
	// most once per digestAnswerEvery.
	if !claimEvery(&p.digestServed, n.digestClock(), digestAnswerEvery) {
		return
	}
	if !p.takeDigest() {
		return
	}
	out := n.roomSetsLacking(from, held)
	if f := n.roomSetAnnouncement(); held[n.id.ID] < f.GetRoomSet().GetVersion() {
		out = append(out, f) // ours (a refresh's digest stands for it)
	}
	for _, f := range out {
		p.enqueue(f)
	}
}

// roomSetsLacking returns the signed room sets held of live members other
// than to that held (what to holds) lacks or holds older.
func (n *Node) roomSetsLacking(to string, held map[string]int64) []*chatpb.Frame {
	live := n.liveMembers()
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	var out []*chatpb.Frame
	for id, set := range n.peerRooms {
		if id == to || set.signed == nil || !live[id] {
			continue
		}
		if v, ok := held[id]; !ok || v < set.version {
			out = append(out, roomSetFrame(set.signed))
		}
	}
	return out
}

// claimEvery reports whether at least every has passed from the time in
// last (Unix nanoseconds) to now and, if so, sets it to now; safe for
// concurrent use (of two racing callers one wins).
func claimEvery(last *atomic.Int64, now time.Time, every time.Duration) bool {
	t := now.UnixNano()
	l := last.Load()
	return t-l >= int64(every) && last.CompareAndSwap(l, t)
}

// digestClock returns the time the digest rates are claimed at: now, or
// the test hook's (Config.digestNow).
func (n *Node) digestClock() time.Time {
	if f := n.cfg.digestNow; f != nil {
		return f()
	}
	return time.Now()
}
