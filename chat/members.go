package chat

// Membership: memberlist reports joins, leaves, failures and meta updates
// through its EventDelegate on its own goroutines, where the node must not
// block or call back into memberlist (Members() there deadlocks). The
// adapter copies what it needs into a memberEvent and hands it to the
// node's event loop through a bounded channel; if that channel is ever full
// the loop rebuilds its view from memberlist.Members() instead, so no
// change is lost for good. The loop keeps a chat link to every live member
// (keepLink, links.go) and stops it when the member dies or leaves.

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay"
)

// maxGoneMembers bounds how many dead or left members are remembered for
// display; the oldest are forgotten first.
const maxGoneMembers = 256

type memberEventKind int

const (
	memberJoin memberEventKind = iota
	memberLeave
	memberUpdate
)

// maxMemberEvents bounds the membership changes waiting for the event
// loop; past it the loop resyncs from memberlist instead.
const maxMemberEvents = 1024

// memberEvent is a copy of what memberlist said about a node.
type memberEvent struct {
	kind memberEventKind
	name string
	addr string
	meta []byte
}

// memberInfo is the node's view of one other peer.
type memberInfo struct {
	ID       string
	Nick     string
	Pub      ed25519.PublicKey
	Addr     string
	ChatAddr string
	State    hearsay.MemberState
	Since    time.Time
	Valid    bool // the meta decoded; a peer without valid meta gets no stream

	skel, skelOf string // skeleton(skelOf), cached: see skeleton
}

// live reports whether m (nil: an unknown peer) is a live member: alive
// or suspect. Suspect counts as live because a suspect member has not
// been declared failed and may refute the suspicion: its links, rooms and
// name stay until a leave event says it failed or left, or a missed probe
// would make and break links and room views. (memberlist v0.7 reports no
// suspicion, so the event loop records alive, dead or left only; Members
// shows "suspect" for an alive member whose chat link is down. The check
// keeps the state's meaning should it be recorded.) Caller holds n.mu.
func (m *memberInfo) live() bool {
	return m != nil && (m.State == hearsay.StateAlive || m.State == hearsay.StateSuspect)
}

// liveValid reports whether m is a live member (live) whose node meta
// decoded: the peers a link is made to and whose messages are shown as a
// member's. Caller holds n.mu.
func (m *memberInfo) liveValid() bool { return m.live() && m.Valid }

// skeleton returns skeleton(m.Nick), computed once per nick. Caller holds
// n.mu.
func (m *memberInfo) skeleton() string {
	if m.skel == "" || m.skelOf != m.Nick {
		m.skel, m.skelOf = skeleton(m.Nick), m.Nick
	}
	return m.skel
}

// eventDelegate adapts memberlist.EventDelegate to the node.
type eventDelegate struct{ n *Node }

var _ memberlist.EventDelegate = (*eventDelegate)(nil)

func (d *eventDelegate) NotifyJoin(nd *memberlist.Node)   { d.n.handleMemberEvent(memberJoin, nd) }
func (d *eventDelegate) NotifyLeave(nd *memberlist.Node)  { d.n.handleMemberEvent(memberLeave, nd) }
func (d *eventDelegate) NotifyUpdate(nd *memberlist.Node) { d.n.handleMemberEvent(memberUpdate, nd) }

// handleMemberEvent runs on memberlist's goroutine: copy and hand off,
// never block.
func (n *Node) handleMemberEvent(kind memberEventKind, nd *memberlist.Node) {
	if nd.Name == n.id.ID {
		return // memberlist reports the local node too
	}
	ev := memberEvent{
		kind: kind,
		name: nd.Name,
		addr: net.JoinHostPort(nd.Addr.String(), strconv.Itoa(int(nd.Port))),
		meta: append([]byte(nil), nd.Meta...),
	}
	if n.memberEvents.push(ev) != pushed {
		n.resync.Store(true)
	}
}

// eventLoop applies membership changes. It keeps the links to live
// members; links on demand are made by their first use (links.go).
func (n *Node) eventLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.memberEvents.ready:
			// One change per turn of the loop, rooms synced after each,
			// as when they came from a channel.
			ev, ok := n.memberEvents.pop()
			if !ok {
				continue
			}
			if n.memberEvents.len() > 0 {
				token(n.memberEvents.ready)
			}
			n.applyMemberEvent(ev)
		case <-tick.C:
			if n.resync.Swap(false) {
				n.resyncMembers()
			}
		}
		// Room machines follow membership (a failed member must not stall
		// a total-order room); the rooms a forgotten member announced go.
		n.releaseHeldRoomSets()
		n.syncAllRooms()
		n.mu.Lock()
		n.forgetPeerRooms(func(id string) bool { return n.members[id] != nil })
		n.mu.Unlock()
	}
}

func (n *Node) applyMemberEvent(ev memberEvent) {
	now := time.Now()
	var meta peerMeta
	var metaErr error
	if ev.kind != memberLeave {
		meta, metaErr = decodeMeta(ev.meta, ev.name)
		if metaErr != nil {
			n.stats.badFrames.Add(1)
			n.logger.Printf("member %s at %s: %v", ev.name, ev.addr, metaErr)
		} else if err := n.speakers.add(meta.Pub); err != nil {
			// A verified member identity: it may speak (memberkeys.go).
			n.emitError("member %s: %v", meta.ID, err)
		}
	}

	n.mu.Lock()
	if n.state == stateShutdown {
		n.mu.Unlock()
		return
	}
	m := n.members[ev.name]
	var out []hearsay.Event
	var stopPeer *peerConn
	var keepLink bool
	switch ev.kind {
	case memberJoin, memberUpdate:
		if ev.kind == memberJoin {
			delete(n.leaving, ev.name)
		}
		wasLive := m.live()
		oldDisplay, oldNick := "", ""
		if m == nil {
			m = &memberInfo{ID: ev.name}
			n.members[ev.name] = m
		} else {
			oldDisplay = n.displayNameLocked(m.ID, m.Nick)
			oldNick = m.Nick
		}
		m.Addr = ev.addr
		n.faults.NoteAddr(m.ID, m.Addr)
		if !wasLive {
			m.State, m.Since = hearsay.StateAlive, now
		}
		if metaErr == nil {
			m.Nick, m.Pub, m.ChatAddr, m.Valid = meta.Nick, meta.Pub, meta.ChatAddr, true
		} else if !m.Valid {
			m.Nick = "?"
		}
		switch {
		case !wasLive:
			text := fmt.Sprintf("%s joined (%s)", n.displayNameLocked(m.ID, m.Nick), m.Addr)
			if metaErr != nil {
				text = fmt.Sprintf("peer %s joined with unreadable meta (%v): no chat with it", m.ID, metaErr)
			}
			out = append(out, hearsay.Event{Type: hearsay.EventJoin, From: n.displayNameLocked(m.ID, m.Nick), FromID: m.ID, Text: text})
		case oldNick != m.Nick:
			out = append(out, hearsay.Event{Type: hearsay.EventNick, From: n.displayNameLocked(m.ID, m.Nick), FromID: m.ID, Text: oldDisplay})
		}
		if m.Valid {
			// A link to an old chat address goes; the member's link is kept
			// (made now when there is none: links.go).
			if p := n.peers[m.ID]; p != nil && p.addr != m.ChatAddr {
				stopPeer = p
				delete(n.peers, m.ID)
			}
			keepLink = true
		}
	case memberLeave:
		if m == nil {
			m = &memberInfo{ID: ev.name, Nick: "?", Addr: ev.addr}
			n.members[ev.name] = m
		}
		// memberlist v0.7 does not say whether a node left or failed
		// (Node.State is never set), so a leave is known by its Bye.
		typ, state, verb := hearsay.EventFailed, hearsay.StateDead, "failed (unreachable)"
		if _, ok := n.leaving[m.ID]; ok {
			typ, state, verb = hearsay.EventLeave, hearsay.StateLeft, "left"
			delete(n.leaving, m.ID)
		}
		m.State, m.Since = state, now
		out = append(out, hearsay.Event{Type: typ, From: n.displayNameLocked(m.ID, m.Nick), FromID: m.ID,
			Text: fmt.Sprintf("%s %s", n.displayNameLocked(m.ID, m.Nick), verb)})
		stopPeer = n.peers[m.ID]
		delete(n.peers, m.ID)
		n.pruneGoneLocked()
	}
	n.countLiveLocked()
	if keepLink && n.meshLinks() {
		// Above Config.TreeThreshold the overlay driver keeps links to
		// its neighbours only (keepLinks, at this change).
		n.keepLinkLocked(m.ID, true)
	}
	n.membersChangedLocked()
	n.mu.Unlock()

	if stopPeer != nil {
		stopPeer.stop()
	}
	for _, e := range out {
		n.emit(e)
	}
}

// resyncMembers rebuilds the view from memberlist after dropped callbacks.
// It runs on the event loop (never inside a memberlist callback).
func (n *Node) resyncMembers() {
	ml, err := n.memberlist()
	if err != nil {
		return
	}
	live := make(map[string]bool)
	for _, nd := range ml.Members() {
		if nd.Name == n.id.ID {
			continue
		}
		live[nd.Name] = true
		n.applyMemberEvent(memberEvent{kind: memberUpdate, name: nd.Name,
			addr: net.JoinHostPort(nd.Addr.String(), strconv.Itoa(int(nd.Port))),
			meta: append([]byte(nil), nd.Meta...)})
	}
	n.mu.Lock()
	var gone []string
	for id, m := range n.members {
		if !live[id] && m.live() {
			gone = append(gone, id)
		}
	}
	n.mu.Unlock()
	for _, id := range gone {
		n.applyMemberEvent(memberEvent{kind: memberLeave, name: id})
	}
}

// membersChangedLocked starts a new membership generation: whatever was
// computed from the member table (memberGen's watchers, liveMembers,
// the rooms' member views, the room set digests) is computed again.
// Caller holds n.mu, and calls it after every change of n.members.
func (n *Node) membersChangedLocked() {
	close(n.memberGen)
	n.memberGen = make(chan struct{})
}

// pruneGoneLocked forgets the oldest dead or left members beyond
// maxGoneMembers. Caller holds n.mu.
func (n *Node) pruneGoneLocked() {
	var gone []*memberInfo
	for _, m := range n.members {
		if m.State == hearsay.StateDead || m.State == hearsay.StateLeft {
			gone = append(gone, m)
		}
	}
	if len(gone) <= maxGoneMembers {
		return
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Since.Before(gone[j].Since) })
	for _, m := range gone[:len(gone)-maxGoneMembers] {
		delete(n.members, m.ID)
	}
}

// numMembers is the TransmitLimitedQueue's group size: live members plus
// this node. memberlist calls it on its send paths, so it reads an atomic
// kept by the event loop instead of taking n.mu.
func (n *Node) numMembers() int { return int(n.liveCount.Load()) }

// countLiveLocked refreshes liveCount. Caller holds n.mu.
func (n *Node) countLiveLocked() {
	k := int32(1)
	for _, m := range n.members {
		if m.live() {
			k++
		}
	}
	n.liveCount.Store(k)
}

// displayName returns the name a message from id shows: nick (the
// member's own when id is a known member), with an ID suffix "#xxxx" when
// another live member (or this node) has a nick that looks the same (the
// same skeleton, names.go), and always when id is not a live member: a
// stranger's or an offline member's message must not pass for a live
// member's. It takes n.mu.
func (n *Node) displayName(id, nick string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.members[id]
	if m != nil && m.Valid {
		nick = m.Nick
	}
	if id == n.id.ID {
		nick = n.nick
	}
	live := id == n.id.ID || m.liveValid()
	return n.nameLocked(id, nick, !live)
}

// isMember reports whether id is this node or a member it knows with a
// verified node meta, live or not. It takes n.mu.
func (n *Node) isMember(id string) bool {
	if id == n.id.ID {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.members[id]
	return m != nil && m.Valid
}

// displayNameLocked is the name of a member in lists and membership
// events: nick, with an ID suffix when another live member (or this node)
// has a confusable nick. Caller holds n.mu.
func (n *Node) displayNameLocked(id, nick string) string { return n.nameLocked(id, nick, false) }

// nameLocked: caller holds n.mu. The suffix grows beyond 4 characters
// only if two such peers' IDs share their first 4; always says to add it
// even without a look-alike.
func (n *Node) nameLocked(id, nick string, always bool) string {
	skel := skeleton(nick)
	var others []string
	if id != n.id.ID && skeleton(n.nick) == skel {
		others = append(others, n.id.ID)
	}
	for _, m := range n.members {
		if m.ID != id && m.live() && m.skeleton() == skel {
			others = append(others, m.ID)
		}
	}
	if len(others) == 0 && !always {
		return nick
	}
	k := min(4, len(id))
	for _, o := range others {
		for k < len(id) && strings.HasPrefix(o, id[:k]) {
			k++
		}
	}
	return nick + "#" + id[:k]
}

// Members returns every known peer, this node first, then by display name.
// It includes dead and left peers still remembered. memberlist (v0.7) does
// not expose its suspicion state, so a member is shown "suspect" when
// memberlist still lists it alive but this node's chat stream to it has
// been down for longer than the handshake timeout. Safe for concurrent use.
func (n *Node) Members() []hearsay.Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	self := hearsay.Member{ID: n.id.ID, Nick: n.nick, DisplayName: n.displayNameLocked(n.id.ID, n.nick),
		ChatAddr: n.chatAddr, State: hearsay.StateAlive, Self: true}
	if n.ml != nil {
		self.Addr = n.advertiseAddrLocked()
	}
	switch n.state {
	case stateNew, stateStarting:
		self.State = hearsay.StateNotStarted
	case stateLeft:
		self.State = hearsay.StateLeft
	case stateShutdown:
		self.State = hearsay.StateDead
	}
	out := []hearsay.Member{self}
	var rest []hearsay.Member
	for _, m := range n.members {
		st := m.State
		if p := n.peers[m.ID]; st == hearsay.StateAlive && p != nil && p.unreachableFor() > n.cfg.HandshakeTimeout {
			st = hearsay.StateSuspect
		}
		rest = append(rest, hearsay.Member{ID: m.ID, Nick: m.Nick, DisplayName: n.displayNameLocked(m.ID, m.Nick),
			Addr: m.Addr, ChatAddr: m.ChatAddr, State: st, Since: m.Since})
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].DisplayName != rest[j].DisplayName {
			return rest[i].DisplayName < rest[j].DisplayName
		}
		return rest[i].ID < rest[j].ID
	})
	return append(out, rest...)
}

// resolvePeer finds a live member by peer ID, unique ID prefix (4+
// characters), display name ("alice#3f2a") or nick. It returns a copy: the
// caller reads it without n.mu, while gossip updates the member.
func (n *Node) resolvePeer(who string) (*memberInfo, error) {
	who = strings.TrimPrefix(strings.TrimSpace(who), "@")
	if who == "" {
		return nil, fmt.Errorf("%w: no peer given", ErrUnknownPeer)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.members[who]; m != nil {
		cp := *m
		return &cp, nil
	}
	var byName, byPrefix []*memberInfo
	for _, m := range n.members {
		if !m.live() {
			continue
		}
		nick, suffix, hasSuffix := strings.Cut(who, "#")
		switch {
		case m.Nick == who || n.displayNameLocked(m.ID, m.Nick) == who:
			byName = append(byName, m)
		case hasSuffix && m.Nick == nick && len(suffix) >= 4 && strings.HasPrefix(m.ID, suffix):
			byName = append(byName, m)
		}
		if len(who) >= 4 && strings.HasPrefix(m.ID, who) {
			byPrefix = append(byPrefix, m)
		}
	}
	for _, c := range [][]*memberInfo{byName, byPrefix} {
		switch len(c) {
		case 0:
			continue
		case 1:
			cp := *c[0]
			return &cp, nil
		default:
			var names []string
			for _, m := range c {
				names = append(names, n.displayNameLocked(m.ID, m.Nick))
			}
			sort.Strings(names)
			return nil, fmt.Errorf("%w: %q matches %s", ErrAmbiguousPeer, who, strings.Join(names, ", "))
		}
	}
	return nil, fmt.Errorf("%w: no live member is called %q", ErrUnknownPeer, who)
}

// waitMember waits until id is a live member with a valid meta and returns
// it, or fails when ctx ends. Used by the chat listener: a peer that has
// just joined may dial before gossip has told this node about it.
func (n *Node) waitMember(ctx context.Context, id string) (*memberInfo, error) {
	for {
		n.mu.Lock()
		m := n.members[id]
		gen := n.memberGen
		if m.liveValid() {
			cp := *m
			n.mu.Unlock()
			return &cp, nil
		}
		n.mu.Unlock()
		select {
		case <-gen:
		case <-ctx.Done():
			return nil, fmt.Errorf("peer %s is not a member: %w", id, ctx.Err())
		}
	}
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return append(b, '\n'), nil
}
