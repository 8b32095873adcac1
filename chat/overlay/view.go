package overlay

// HyParView: the active view is the set of neighbours, each with an open
// connection, used in both directions (a link is in both peers' active
// views or in neither, up to messages in flight); the passive view is a
// sample of other peers, refreshed by shuffles, from which a failed
// neighbour is replaced. A new peer joins through a contact, which takes
// it as a neighbour and sends a ForwardJoin on a random walk of ARWL
// steps through the overlay: peers on the walk add it to their passive
// view (at step PRWL), and the peer where the walk ends takes it as a
// neighbour too. A full active view makes room by dropping a random
// neighbour (Disconnect), which keeps it as a passive peer and looks for
// a new neighbour of its own. Failure detection is the connection: the
// driver reports a broken one with PeerDown.

import (
	"slices"
	"time"
)

type view struct {
	active  []string
	passive []passivePeer
	// pending are Neighbor requests not answered yet, at most ActiveSize.
	pending []pendingReq
	// contact is the peer Join was given; it is joined again until it
	// took us in (joined), and while the active view is short with no
	// request pending (maintenance).
	contact string
	// joined: the contact has been a neighbour since Join, so this peer
	// is linked to the group the contact is in. Until then the Join is
	// sent again whatever the active view holds: peers that joined
	// through this one (it was a live member to them) can fill that view
	// while its own Join, or the contact's reply, was lost, and they and
	// every peer that joins through them are then an overlay of their
	// own, which no view rule ever links to the rest.
	joined       bool
	nextJoin     time.Duration
	nextMaintain time.Duration
	nextShuffle  time.Duration
	// shuffled are the peers our last shuffle sent: when its reply
	// arrives they are the first evicted from a full passive view (they
	// now sit in the other peer's).
	shuffled []string
	// walks are the shuffles we passed on, oldest first, at most
	// maxWalks: for each, the neighbour that sent it to us, to which its
	// reply goes back. A reply sent straight to a walk's origin, which is
	// seldom a neighbour of the peer where the walk ends, needs a
	// connection made for that one message (in hearsay a TLS handshake,
	// several KB, for a reply of about 200 bytes); back along the walk it
	// crosses only links that exist.
	walks []walkHop
}

// walkHop is one shuffle this peer passed on: its origin, the neighbour
// it came from, and when to forget it.
type walkHop struct {
	origin, prev string
	expires      time.Duration
}

// maxWalks bounds the shuffles a peer remembers to route replies back:
// about ARWL walks cross a peer per ShuffleInterval, each remembered until
// its reply passes or a ShuffleInterval has gone by. When it is full the
// oldest is forgotten and its reply, if it ever comes, is dropped: a
// shuffle reply only refreshes the passive view, and the next shuffle
// does that again.
const maxWalks = 64

type passivePeer struct {
	id string
	// notBefore: a peer that refused us or did not answer is not asked
	// again before this time.
	notBefore time.Duration
}

type pendingReq struct {
	peer     string
	deadline time.Duration
}

func (n *Node) isActive(p string) bool { return slices.Contains(n.view.active, p) }

func (n *Node) passiveIndex(p string) int {
	for i, e := range n.view.passive {
		if e.id == p {
			return i
		}
	}
	return -1
}

func (n *Node) pendingIndex(p string) int {
	for i, e := range n.view.pending {
		if e.peer == p {
			return i
		}
	}
	return -1
}

// addActive makes p a neighbour, dropping a random one if the view holds
// limit peers already. It reports whether p is a neighbour now.
func (n *Node) addActive(p string) bool { return n.addActiveUpTo(p, n.cfg.ActiveSize) }

func (n *Node) addActiveUpTo(p string, limit int) bool {
	if p == n.cfg.Self || p == "" {
		return false
	}
	if n.isActive(p) {
		return true
	}
	for len(n.view.active) >= limit {
		drop := n.view.active[n.rng.IntN(len(n.view.active))]
		n.removeActive(drop, true)
		n.addPassive(drop, 0)
	}
	if i := n.passiveIndex(p); i >= 0 {
		n.view.passive = slices.Delete(n.view.passive, i, i+1)
	}
	if i := n.pendingIndex(p); i >= 0 {
		n.view.pending = slices.Delete(n.view.pending, i, i+1)
	}
	n.view.active = append(n.view.active, p)
	n.out.Up = append(n.out.Up, p)
	if p == n.view.contact {
		n.view.joined = true
	}
	n.armShuffle()
	return true
}

// removeActive drops neighbour p, telling it so if disconnect is set.
func (n *Node) removeActive(p string, disconnect bool) {
	i := slices.Index(n.view.active, p)
	if i < 0 {
		return
	}
	n.treeDown(i, p)
	n.view.active = slices.Delete(n.view.active, i, i+1)
	if disconnect {
		n.send(p, Message{Kind: KindDisconnect})
	}
	n.out.Down = append(n.out.Down, p)
	n.armMaintain()
}

// addPassive remembers p as a candidate neighbour, evicting a random
// entry (preferring one our last shuffle sent away) if the view is full.
func (n *Node) addPassive(p string, notBefore time.Duration) {
	if p == n.cfg.Self || p == "" || n.isActive(p) || n.passiveIndex(p) >= 0 {
		return
	}
	if len(n.view.passive) >= n.cfg.PassiveSize {
		victim := -1
		for len(n.view.shuffled) > 0 && victim < 0 {
			last := len(n.view.shuffled) - 1
			victim = n.passiveIndex(n.view.shuffled[last])
			n.view.shuffled = n.view.shuffled[:last]
		}
		if victim < 0 {
			victim = n.rng.IntN(len(n.view.passive))
		}
		n.view.passive = slices.Delete(n.view.passive, victim, victim+1)
	}
	n.view.passive = append(n.view.passive, passivePeer{id: p, notBefore: notBefore})
}

// Introduce tells the Node that peer exists and may be asked to become a
// neighbour: its driver may know the group's members (hearsay: from
// memberlist) where the views know only what joins, walks and shuffles
// brought. peer enters the passive view only while that has room (what
// shuffles brought is never evicted for it), and if the active view is
// short the Node asks for neighbours at once. It reports whether peer
// was added. Without it, peers that joined through each other at the same
// moment can stay a component cut off from the rest, every passive peer
// one of their own.
func (n *Node) Introduce(now time.Duration, peer string) bool {
	n.advance(now)
	if peer == "" || peer == n.cfg.Self || len(peer) > MaxPeerIDLen || n.isActive(peer) ||
		n.passiveIndex(peer) >= 0 || len(n.view.passive) >= n.cfg.PassiveSize {
		return false
	}
	n.addPassive(peer, 0)
	n.fillActive()
	return true
}

// randomActive returns a random neighbour other than the ones given, or
// "" if there is none.
func (n *Node) randomActive(not1, not2 string) string {
	cands := 0
	for _, p := range n.view.active {
		if p != not1 && p != not2 {
			cands++
		}
	}
	if cands == 0 {
		return ""
	}
	k := n.rng.IntN(cands)
	for _, p := range n.view.active {
		if p != not1 && p != not2 {
			if k == 0 {
				return p
			}
			k--
		}
	}
	return ""
}

func (n *Node) handleJoin(from string) {
	if !n.addActive(from) {
		return
	}
	n.send(from, Message{Kind: KindNeighborReply, Accept: true})
	for _, p := range n.view.active {
		if p != from {
			n.send(p, Message{Kind: KindForwardJoin, Peer: from, TTL: n.cfg.ARWL})
		}
	}
}

func (n *Node) handleForwardJoin(from, joiner string, ttl uint8) {
	if joiner == n.cfg.Self {
		return
	}
	if ttl == 0 || len(n.view.active) <= 1 {
		if !n.isActive(joiner) && n.addActive(joiner) {
			n.send(joiner, Message{Kind: KindNeighborReply, Accept: true})
		}
		return
	}
	if ttl == n.cfg.PRWL {
		n.addPassive(joiner, 0)
	}
	next := n.randomActive(from, joiner)
	if next == "" {
		if !n.isActive(joiner) && n.addActive(joiner) {
			n.send(joiner, Message{Kind: KindNeighborReply, Accept: true})
		}
		return
	}
	n.send(next, Message{Kind: KindForwardJoin, Peer: joiner, TTL: ttl - 1})
}

func (n *Node) handleNeighbor(from string, high bool) {
	if n.isActive(from) || high || len(n.view.active) < n.cfg.ActiveSize+n.cfg.ActiveSlack {
		n.addActiveUpTo(from, n.cfg.ActiveSize+n.cfg.ActiveSlack)
		n.send(from, Message{Kind: KindNeighborReply, Accept: true})
		return
	}
	n.addPassive(from, 0)
	n.send(from, Message{Kind: KindNeighborReply, Accept: false})
}

func (n *Node) handleNeighborReply(from string, accept bool) {
	if i := n.pendingIndex(from); i >= 0 {
		n.view.pending = slices.Delete(n.view.pending, i, i+1)
	}
	if accept {
		// Also the answer to a Join, or to a ForwardJoin that ended at
		// the sender: a link is in both views (the sender may be over
		// ActiveSize by its slack, so we may be too).
		n.addActiveUpTo(from, n.cfg.ActiveSize+n.cfg.ActiveSlack)
		return
	}
	if i := n.passiveIndex(from); i >= 0 {
		n.view.passive[i].notBefore = n.now + n.cfg.NeighborTimeout
	}
	n.fillActive()
}

func (n *Node) handleDisconnect(from string) {
	if !n.isActive(from) {
		return
	}
	n.removeActive(from, false)
	// Not asked again at once: it just dropped us to make room.
	n.addPassive(from, n.now+n.cfg.NeighborTimeout)
	n.fillActive()
}

func (n *Node) handlePeerDown(p string) {
	if n.isActive(p) {
		n.removeActive(p, false)
	}
	if i := n.passiveIndex(p); i >= 0 {
		n.view.passive = slices.Delete(n.view.passive, i, i+1)
	}
	if i := n.pendingIndex(p); i >= 0 {
		n.view.pending = slices.Delete(n.view.pending, i, i+1)
	}
	n.fillActive()
}

// fillActive asks passive peers to become neighbours, one request per
// missing neighbour, with high priority if there is no neighbour at all.
func (n *Node) fillActive() {
	for len(n.view.active)+len(n.view.pending) < n.cfg.ActiveSize {
		cands := 0
		for _, e := range n.view.passive {
			if e.notBefore <= n.now && n.pendingIndex(e.id) < 0 {
				cands++
			}
		}
		if cands == 0 {
			return
		}
		k := n.rng.IntN(cands)
		var p string
		for _, e := range n.view.passive {
			if e.notBefore <= n.now && n.pendingIndex(e.id) < 0 {
				if k == 0 {
					p = e.id
					break
				}
				k--
			}
		}
		n.view.pending = append(n.view.pending, pendingReq{peer: p, deadline: n.now + n.cfg.NeighborTimeout})
		n.send(p, Message{Kind: KindNeighbor, High: len(n.view.active) == 0})
	}
}

func (n *Node) handleShuffle(from, origin string, ttl uint8, peers []string) {
	if origin == n.cfg.Self {
		return
	}
	if ttl > 0 && len(n.view.active) > 1 {
		if next := n.randomActive(from, origin); next != "" {
			n.rememberWalk(origin, from)
			n.send(next, Message{Kind: KindShuffle, Peer: origin, TTL: ttl - 1, Peers: slices.Clone(peers)})
			return
		}
	}
	// The walk ends here: answer with as many passive peers as we got,
	// back the way the shuffle came (walks), or straight to its origin
	// when that is a neighbour (a link that exists).
	reply := n.samplePassive(len(peers), origin)
	to := from
	if n.isActive(origin) {
		to = origin
	}
	if n.isActive(to) {
		n.send(to, Message{Kind: KindShuffleReply, Peer: origin, Peers: reply})
		n.view.shuffled = append(n.view.shuffled[:0], reply...)
	} else {
		// A shuffle from a peer that is no longer our neighbour: take
		// its peers, answer nothing rather than open a connection.
		n.stats.ShuffleRepliesDropped++
	}
	for _, p := range peers {
		n.addPassive(p, 0)
	}
	n.addPassive(origin, 0)
}

// handleShuffleReply merges a reply to our shuffle (origin us, or empty:
// sent to us directly), or passes one on towards its origin: to the
// origin itself if it is a neighbour, else to the neighbour that sent us
// the shuffle. A reply for a walk we do not remember, or whose way back
// is no longer a neighbour, is dropped: it never opens a connection.
func (n *Node) handleShuffleReply(origin string, peers []string) {
	if origin == "" || origin == n.cfg.Self {
		for _, p := range peers {
			n.addPassive(p, 0)
		}
		return
	}
	prev, ok := n.takeWalk(origin)
	if n.isActive(origin) {
		prev, ok = origin, true
	}
	if !ok || !n.isActive(prev) {
		n.stats.ShuffleRepliesDropped++
		return
	}
	n.send(prev, Message{Kind: KindShuffleReply, Peer: origin, Peers: slices.Clone(peers)})
}

// rememberWalk records that from sent us origin's shuffle, replacing an
// older walk of the same origin (one shuffle per ShuffleInterval each).
func (n *Node) rememberWalk(origin, from string) {
	n.expireWalks()
	w := &n.view.walks
	if i := slices.IndexFunc(*w, func(h walkHop) bool { return h.origin == origin }); i >= 0 {
		*w = slices.Delete(*w, i, i+1)
	}
	if len(*w) >= maxWalks {
		*w = slices.Delete(*w, 0, 1)
	}
	*w = append(*w, walkHop{origin: origin, prev: from, expires: n.now + n.cfg.ShuffleInterval})
}

// takeWalk returns and forgets the neighbour that sent us origin's
// shuffle: a reply goes back once.
func (n *Node) takeWalk(origin string) (string, bool) {
	n.expireWalks()
	w := &n.view.walks
	i := slices.IndexFunc(*w, func(h walkHop) bool { return h.origin == origin })
	if i < 0 {
		return "", false
	}
	prev := (*w)[i].prev
	*w = slices.Delete(*w, i, i+1)
	return prev, true
}

// expireWalks forgets walks older than ShuffleInterval (oldest first).
func (n *Node) expireWalks() {
	w := n.view.walks
	k := 0
	for k < len(w) && w[k].expires <= n.now {
		k++
	}
	if k > 0 {
		n.view.walks = slices.Delete(w, 0, k)
	}
}

// samplePassive returns up to k random passive peers, not including not.
func (n *Node) samplePassive(k int, not string) []string {
	idx := n.rng.Perm(len(n.view.passive))
	out := make([]string, 0, min(k, len(idx)))
	for _, i := range idx {
		if len(out) >= k {
			break
		}
		if p := n.view.passive[i].id; p != not {
			out = append(out, p)
		}
	}
	return out
}

func (n *Node) armMaintain() {
	if t := n.now + n.cfg.MaintainInterval; n.view.nextMaintain == 0 || n.view.nextMaintain > t {
		n.view.nextMaintain = t
	}
}

func (n *Node) armShuffle() {
	if n.view.nextShuffle == 0 {
		// A random phase, so that peers started together do not shuffle
		// together.
		n.view.nextShuffle = n.now + time.Duration(n.rng.Int64N(int64(n.cfg.ShuffleInterval))) + 1
	}
}

// tickView runs the periodic view work that is due.
func (n *Node) tickView() {
	if n.view.nextMaintain != 0 && n.now >= n.view.nextMaintain {
		n.view.nextMaintain = n.now + n.cfg.MaintainInterval
		n.maintain()
	}
	if n.view.nextShuffle != 0 && n.now >= n.view.nextShuffle {
		n.view.nextShuffle = n.now + n.cfg.ShuffleInterval
		n.shuffle()
	}
}

// maintain expires unanswered neighbour requests, refills the active
// view, and joins the contact again when the Node knows nobody.
func (n *Node) maintain() {
	kept := n.view.pending[:0]
	for _, r := range n.view.pending {
		if r.deadline > n.now {
			kept = append(kept, r)
			continue
		}
		if i := n.passiveIndex(r.peer); i >= 0 {
			n.view.passive[i].notBefore = n.now + n.cfg.NeighborTimeout
		}
	}
	n.view.pending = kept
	n.fillActive()
	// Short of neighbours with nobody left to ask (every passive peer
	// refused or failed): join again through the contact, which cannot
	// refuse, and whose walk reaches the rest of the group. Not taken
	// in by the contact yet: join again too, even with a full view
	// (joined).
	short := len(n.view.active) < n.cfg.ActiveSize && len(n.view.pending) == 0
	if (short || !n.view.joined) && n.view.contact != "" &&
		!n.isActive(n.view.contact) && n.now >= n.view.nextJoin {
		n.send(n.view.contact, Message{Kind: KindJoin})
		// Alone, soon again; with some neighbours, rarely: each join
		// makes the contact drop one of its own.
		wait := n.cfg.NeighborTimeout
		if len(n.view.active) > 0 {
			wait = n.cfg.ShuffleInterval
		}
		n.view.nextJoin = n.now + wait
	}
}

// shuffle sends ourselves, ShuffleActive neighbours and ShufflePassive
// passive peers on a random walk; its end answers with passive peers.
func (n *Node) shuffle() {
	to := n.randomActive("", "")
	if to == "" {
		return
	}
	peers := make([]string, 0, n.cfg.shuffleLen())
	peers = append(peers, n.cfg.Self)
	for _, i := range n.rng.Perm(len(n.view.active)) {
		if len(peers) > n.cfg.ShuffleActive {
			break
		}
		if p := n.view.active[i]; p != to {
			peers = append(peers, p)
		}
	}
	sample := n.samplePassive(n.cfg.ShufflePassive, "")
	peers = append(peers, sample...)
	n.view.shuffled = append(n.view.shuffled[:0], sample...)
	n.send(to, Message{Kind: KindShuffle, Peer: n.cfg.Self, TTL: n.cfg.ARWL, Peers: peers})
}
