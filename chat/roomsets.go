package chat

// Room sets: room membership is state each peer states itself, over its
// authenticated streams (RoomSet frames; memberlist meta is too small and
// its broadcasts are unauthenticated). The node announces its set to every
// linked peer when it changes and in the greeting of a kept link
// (greetings.go), and refreshes it on kept links in every anti-entropy
// round where due (refreshRooms); it records what each peer announced
// (handleRoomSet), from which the rooms' members follow (rooms.go,
// syncMembers).

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// roomSetAnnouncement returns our room set announcement, signed. The
// signed set is kept and returned again until what it says changes (a
// room joined or parted, a new version: ownSetChangedLocked): every
// greeting, refresh and answer asked for it, and each signed it anew, then
// built and encoded it to compare it with the one signed. The frame is
// shared: callers must not change it (sendRoomSets clones it to set
// want_reply).
func (n *Node) roomSetAnnouncement() *chatpb.Frame {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	if n.ownSet != nil {
		return roomSetFrame(n.ownSet)
	}
	rs := &chatpb.RoomSet{Version: n.roomVer, Origin: n.id.ID, OriginKey: n.id.Pub}
	for _, r := range n.rooms {
		rs.Rooms = append(rs.Rooms, &chatpb.RoomMembership{Name: r.name, Mode: r.mode.String(), JoinedUnixNano: int64(age(r.joined))})
	}
	slices.SortFunc(rs.Rooms, func(a, b *chatpb.RoomMembership) int { return strings.Compare(a.Name, b.Name) })
	rs.Signature = n.id.Sign(roomSetSigningBytes(rs))
	n.ownSet = rs
	n.stats.roomSetSigns.Add(1)
	return roomSetFrame(rs)
}

// ownSetChangedLocked drops our signed room set: a room was joined or
// parted, or the version changed (a room's name, mode and age do not
// change while it is open). Caller holds n.roomsMu.
func (n *Node) ownSetChangedLocked() {
	n.ownSet = nil
}

const roomSetTag = "hearsay/roomset/v1\n"

// roomSetSigningBytes is what a room set's signature covers: its origin,
// key, version and rooms (not want_reply, a request to the link's peer).
func roomSetSigningBytes(rs *chatpb.RoomSet) []byte {
	c := canon{b: make([]byte, 0, len(roomSetTag)+96+len(rs.Rooms)*48)}
	c.b = append(c.b, roomSetTag...)
	c.int(1, rs.Version)
	for _, rm := range rs.Rooms {
		c.str(2, rm.GetName())
		c.str(3, rm.GetMode())
		c.int(4, rm.GetJoinedUnixNano())
	}
	c.str(5, rs.Origin)
	c.bytes(6, rs.OriginKey)
	return c.b
}

// checkRoomSetSignature checks that rs is signed by the key its origin
// derives from.
func checkRoomSetSignature(rs *chatpb.RoomSet) error {
	return checkSigned("room set", rs.Origin, rs.OriginKey, rs.Signature, roomSetSigningBytes(rs))
}

// announceRooms sends our room set to every peer; called when it changes.
func (n *Node) announceRooms() {
	n.sendRoomSets(false)
}

// requestRoomSets sends our room set to every peer asking for theirs back
// at once (JoinRoom, before it creates a room).
func (n *Node) requestRoomSets() {
	n.sendRoomSets(true)
}

func (n *Node) sendRoomSets(wantReply bool) {
	f := n.newRoomSetFrame()
	if wantReply {
		rs := proto.Clone(f.GetRoomSet()).(*chatpb.RoomSet) // the signed set is shared
		rs.WantReply = true
		f = roomSetFrame(rs)
	}
	for _, p := range n.peerList() {
		p.enqueue(f)
	}
}

// roomSetRefresh is about how many anti-entropy rounds pass before a peer
// hears our unchanged room set again (between half and all of it, at
// random, so that the peers' refreshes do not fall in the same round).
const roomSetRefresh = 10

// roomSetSent is what the anti-entropy loop last queued to one peer.
type roomSetSent struct {
	rooms string // the announced rooms, without the version (roomsKey)
	next  uint64 // the round from which it is announced again
}

// refreshRooms announces our room set to the peers that may lack it: those
// whose last announcement by this loop was not queued, holds other rooms
// (announceRooms sent the change, unless their queue was full), or is due
// for its refresh. sent is the loop's record, pruned to the current peers.
// Only kept links are refreshed: a link made on demand gets our set when
// it comes up and on changes, and the refresh must not keep it from
// closing when idle (links.go).
func (n *Node) refreshRooms(sent map[*peerConn]roomSetSent, round uint64) {
	peers := n.keptLinks()
	f := n.roomSetAnnouncement()
	key := roomsKey(f.GetRoomSet())
	var due []*peerConn
	for _, p := range peers {
		if last, ok := sent[p]; !ok || last.rooms != key || round >= last.next {
			due = append(due, p)
		}
	}
	if len(sent) > len(peers)-len(due) { // some peers are gone
		keep := make(map[*peerConn]bool, len(peers))
		for _, p := range peers {
			keep[p] = true
		}
		maps.DeleteFunc(sent, func(p *peerConn, _ roomSetSent) bool { return !keep[p] })
	}
	if len(due) == 0 {
		return
	}
	mesh := n.meshLinks()
	if mesh {
		f = n.newRoomSetFrame() // a new version: receivers drop repeated ones
	}
	// Above the tree threshold the same version: a newer one would flood
	// the group through the relays at every refresh (N floods per refresh
	// interval); an unchanged one stops at its receivers. And a peer due
	// for the periodic refresh of a set it was sent gets the digest of
	// the sets we hold, ours included (47 bytes on the wire, the set ~210):
	// it asks for ours, or any other, if it lacks it (roomsetdigest.go).
	for _, p := range due {
		var queued bool
		if last, ok := sent[p]; !mesh && ok && last.rooms == key {
			queued = n.enqueueRoomSetDigest(p)
		} else {
			queued = p.enqueue(f)
		}
		if !queued {
			delete(sent, p) // queue full: again next round
			continue
		}
		sent[p] = roomSetSent{rooms: key, next: round + roomSetRefresh/2 + uint64(rand.IntN(roomSetRefresh/2+1))}
	}
}

// roomsKey encodes what a room set says, without its version.
func roomsKey(rs *chatpb.RoomSet) string {
	var b strings.Builder
	for _, rm := range rs.Rooms {
		fmt.Fprintf(&b, "%s %s %d\n", rm.Name, rm.Mode, rm.JoinedUnixNano)
	}
	return b.String()
}

// newRoomSetFrame gives our room set a new version and returns its
// announcement.
func (n *Node) newRoomSetFrame() *chatpb.Frame {
	n.roomsMu.Lock()
	if v := time.Now().UnixNano(); v > n.roomVer {
		n.roomVer = v
	} else {
		n.roomVer++
	}
	n.ownSetChangedLocked()
	n.roomSetsChangedLocked()
	n.roomsMu.Unlock()
	return n.roomSetAnnouncement()
}

// peerList returns the links.
func (n *Node) peerList() []*peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Collect(maps.Values(n.peers))
}

// keptLinks returns the links that are kept (links.go).
func (n *Node) keptLinks() []*peerConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*peerConn, 0, len(n.peers))
	for _, p := range n.peers {
		if p.isKept() {
			out = append(out, p)
		}
	}
	return out
}

// handleRoomSet records the rooms a peer announced: its own set, from
// its link (from == origin), or a live member's set relayed by a neighbour
// in a group above the tree threshold (see RoomSet in chat.proto). Either
// way it must carry its origin's signature, and a set newer than the one
// held is passed on to the other kept links while the group uses them
// (relayRoomSet).
func (n *Node) handleRoomSet(rs *chatpb.RoomSet, from string) {
	n.takeRoomSet(rs, from, false)
}

// takeRoomSet is handleRoomSet; verified says rs's signature was checked
// already (a held set, checked when it came: holdRoomSet).
func (n *Node) takeRoomSet(rs *chatpb.RoomSet, from string, verified bool) {
	if len(rs.Rooms) > maxRooms {
		n.stats.badFrames.Add(1)
		return
	}
	origin := rs.Origin
	if origin != from && !n.liveMember(origin) {
		// Relayed sets are of live members only: a relay cannot make
		// this node hold sets of peers that are not in the group. One
		// may arrive before memberlist tells us its origin joined (links
		// relay faster than memberlist gossips); it waits, bounded, for
		// that (holdRoomSet).
		n.holdRoomSet(rs, from)
		return
	}
	set := &peerRoomSet{version: rs.Version, at: time.Now(), rooms: make(map[string]*chatpb.RoomMembership, len(rs.Rooms))}
	for _, rm := range rs.Rooms {
		if rm == nil || ValidateRoom(rm.Name) != nil || set.rooms[rm.Name] != nil {
			n.stats.badFrames.Add(1)
			return
		}
		if _, err := hearsay.ParseOrderMode(rm.Mode); err != nil {
			n.stats.badFrames.Add(1)
			return
		}
		set.rooms[rm.Name] = rm
	}
	n.roomsMu.Lock()
	stale := n.peerRooms[origin] != nil && n.peerRooms[origin].version >= rs.Version
	n.roomsMu.Unlock()
	if !verified && (!stale || rs.WantReply) {
		// Verified before it is answered or kept (a stale copy, common
		// among relays, costs no signature check).
		if err := checkRoomSetSignature(rs); err != nil {
			n.stats.forged.Add(1)
			n.logger.Printf("room set from %s: %v", from, err)
			return
		}
		verified = true
	}
	if rs.WantReply && origin == from {
		// Answer even a stale set: the request is what matters.
		n.mu.Lock()
		p := n.peers[from]
		n.mu.Unlock()
		if p != nil {
			f := n.newRoomSetFrame()
			p.enqueue(f)
		}
	} else if origin == from {
		n.answerRoomSet(from) // a link made on demand learns ours back (greetings.go)
	}
	if h := n.cfg.roomSetTaking; h != nil {
		h(origin)
	}
	n.roomsMu.Lock()
	old := n.peerRooms[origin]
	if old != nil && old.version >= rs.Version {
		n.roomsMu.Unlock()
		return // stale or repeated (frames may be reordered, relays repeat)
	}
	if !verified {
		// Judged stale above, so its signature was not checked, and the
		// set held then is gone since (forgetPeerRooms): dropped, or an
		// unverified set would be kept and relayed. The origin's next
		// announcement is checked as any.
		n.roomsMu.Unlock()
		return
	}
	set.signed = proto.Clone(rs).(*chatpb.RoomSet)
	set.signed.WantReply = false
	changed := old == nil || len(old.rooms) != len(set.rooms)
	if !changed {
		for name, rm := range set.rooms {
			o := old.rooms[name]
			if o == nil || o.Mode != rm.Mode || o.JoinedUnixNano != rm.JoinedUnixNano {
				changed = true
				break
			}
		}
	}
	n.peerRooms[origin] = set
	n.roomSetsChangedLocked()
	// Only here, of roomSetsChangedLocked's callers: a set arrived, the
	// one change waitRoomSets waits for (n.roomsGen's comment).
	close(n.roomsGen) // wakes waitRoomSets
	n.roomsGen = make(chan struct{})
	n.roomsMu.Unlock()
	n.relayRoomSet(set.signed, from)
	if changed {
		n.tryRestore()
		n.syncAllRooms()
		n.roomNotices(origin, old, set)
	}
}

// maxHeldRoomSets bounds the relayed room sets that wait for their
// origin to become a live member here; heldRoomSetTTL is how long one
// waits. A set dropped because its origin was not live yet is sent again
// by no one: every relay already holds that version and its origin
// refreshes only its neighbours, so without the wait a member could miss
// another's rooms until the next greeting of a new link (a tree test saw
// p3 lack p7 in #lobby for good).
const (
	maxHeldRoomSets = 64
	// maxHeldPerRelay bounds the held sets one link relayed: the
	// signature proves only that a set's origin holds its key, not that
	// it is a member, so one peer relaying sets of made-up identities
	// must not push out the sets the others relayed.
	maxHeldPerRelay = 16
	heldRoomSetTTL  = time.Minute
)

// heldRoomSet is a relayed room set whose origin was not live when it came.
type heldRoomSet struct {
	rs   *chatpb.RoomSet
	from string
	at   time.Time
}

// holdRoomSet keeps rs, relayed by from, until its origin becomes live
// (releaseHeldRoomSets). Only a signed set newer than the one held is
// kept; a relay holds at most maxHeldPerRelay (its oldest goes), all
// relays maxHeldRoomSets (the oldest of the relay holding most goes), and
// any older than heldRoomSetTTL goes: a member flooding sets of made-up
// identities costs a bounded table and a signature check per set, and
// pushes out only its own.
func (n *Node) holdRoomSet(rs *chatpb.RoomSet, from string) {
	n.roomsMu.Lock()
	h, ok := n.heldRooms[rs.Origin]
	n.roomsMu.Unlock()
	if ok && h.rs.Version >= rs.Version {
		return
	}
	if err := checkRoomSetSignature(rs); err != nil {
		n.stats.forged.Add(1)
		return
	}
	now := time.Now()
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	if n.heldRooms == nil {
		n.heldRooms = make(map[string]heldRoomSet)
	}
	for id, h := range n.heldRooms {
		if now.Sub(h.at) > heldRoomSetTTL {
			delete(n.heldRooms, id)
		}
	}
	if h, ok := n.heldRooms[rs.Origin]; ok && h.rs.Version >= rs.Version {
		return
	}
	if _, ok := n.heldRooms[rs.Origin]; !ok {
		// Full: the oldest set of the relay that holds most goes (this
		// one, when it is at its own bound), so a flood evicts its own.
		byRelay := map[string]int{}
		top := from
		for _, h := range n.heldRooms {
			byRelay[h.from]++
			if byRelay[h.from] > byRelay[top] {
				top = h.from
			}
		}
		switch {
		case byRelay[from] >= maxHeldPerRelay:
			delete(n.heldRooms, n.oldestHeldLocked(from))
		case len(n.heldRooms) >= maxHeldRoomSets:
			delete(n.heldRooms, n.oldestHeldLocked(top))
		}
	}
	c := proto.Clone(rs).(*chatpb.RoomSet)
	c.WantReply = false
	n.heldRooms[rs.Origin] = heldRoomSet{rs: c, from: from, at: now}
}

// oldestHeldLocked returns the origin of the oldest held set relayed by
// relay. Caller holds n.roomsMu.
func (n *Node) oldestHeldLocked(relay string) string {
	oldest := ""
	for id, h := range n.heldRooms {
		if h.from == relay && (oldest == "" || h.at.Before(n.heldRooms[oldest].at)) {
			oldest = id
		}
	}
	return oldest
}

// releaseHeldRoomSets takes the held sets whose origin is now a live
// member, as if they came now but for their signatures, checked when they
// came (the event loop calls it after each membership change).
func (n *Node) releaseHeldRoomSets() {
	n.roomsMu.Lock()
	if len(n.heldRooms) == 0 {
		n.roomsMu.Unlock()
		return
	}
	n.roomsMu.Unlock()
	live := n.liveMembers()
	var ready []heldRoomSet
	n.roomsMu.Lock()
	for id, h := range n.heldRooms {
		if live[id] {
			ready = append(ready, h)
			delete(n.heldRooms, id)
		}
	}
	n.roomsMu.Unlock()
	for _, h := range ready {
		n.takeRoomSet(h.rs, h.from, true) // its signature was checked when it came
	}
}

// relayRoomSet passes a member's newer room set on to the kept links but
// the one it came from and its origin's, while the group is above the
// tree threshold: links then go to the overlay's neighbours only, and
// the sets flood along them (each member's set reaches every member, once
// per link at most, a stale copy stopping where it is not newer). Below
// the threshold every member announces to every other itself.
func (n *Node) relayRoomSet(rs *chatpb.RoomSet, from string) {
	if n.meshLinks() {
		return
	}
	f := roomSetFrame(rs)
	for _, p := range n.keptLinks() {
		if p.id == from || p.id == rs.Origin {
			continue
		}
		p.enqueue(f)
	}
}

// forgetPeerRooms drops what a member that left or failed announced, once
// memberlist has forgotten it too (bounded by the members map).
func (n *Node) forgetPeerRooms(keep func(id string) bool) {
	n.roomsMu.Lock()
	defer n.roomsMu.Unlock()
	for id := range n.peerRooms {
		if !keep(id) {
			delete(n.peerRooms, id)
			n.roomSetsChangedLocked()
		}
	}
}
