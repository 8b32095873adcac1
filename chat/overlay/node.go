package overlay

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Node is one peer's overlay: its HyParView views (view.go) and its
// Plumtree state (tree.go). It is not safe for concurrent use: the driver
// feeds it inputs one at a time and collects the outputs with Ready.
// Times are the driver's monotonic clock as a duration since any fixed
// origin; a time earlier than one already seen counts as that one.
type Node struct {
	cfg Config
	rng *rand.Rand
	now time.Duration

	view view
	tree tree

	out   Ready
	stats Stats
}

// Ready is what a Node asks its driver to do after its inputs so far.
type Ready struct {
	// Messages to send, in order. The driver opens a connection to a
	// destination it has none with (a Join, a Neighbor request or its
	// reply);
	// a failure to reach it is reported back with PeerDown.
	Messages []Envelope
	// Deliveries are broadcasts received for the first time.
	Deliveries []Delivery
	// Up are peers that entered the active view (keep a connection open);
	// Down are peers that left it (their connection may close). A peer
	// may be in both, in either order (dropped, then taken again within
	// the inputs of one Ready): the order between the two lists is not
	// kept, so a driver that tracks the view must take it from Active
	// (or IsActive) after Ready, not replay Up then Down.
	Up, Down []string
}

// Stats counts what a Node did. Every counter only grows.
type Stats struct {
	Sent, Received [NumKinds]uint64 // messages by kind
	Invalid        uint64           // messages dropped by the bounds check
	Delivered      uint64           // broadcasts received for the first time
	Duplicates     uint64           // payloads received again (each prunes a link)
	GraftsSent     uint64           // grafts for a missing message
	LazyDrops      uint64           // announcements dropped: a lazy queue was full
	LazySkipped    uint64           // announcements not sent: the lazy neighbour announced the message to us
	FirstAnnounced uint64           // announcements to eager neighbours of an origin's first payload relayed here (forward)
	// RepairAnnounced counts announcements of messages the driver got
	// off the tree (Repaired) while we had no parent in their origin's
	// tree: announced to the neighbours, pushed to none.
	RepairAnnounced uint64
	MissingDrops    uint64 // announcements ignored: the missing table was full
	GraftGiveUps    uint64 // missing messages given up after MaxGraftAttempts
	Repaired        uint64 // messages the driver got off the tree (Repaired), new to the Node
	SeenEvictions   uint64 // received IDs forgotten to stay within MaxSeen
	// GraftRefused counts the IDs of received grafts not answered
	// although their payloads were cached: never announced to the
	// grafting neighbour, or answered graftAnswers times already.
	GraftRefused uint64
	// ShuffleRepliesDropped counts shuffle replies not sent because no
	// neighbour led back to the walk's origin (a walk forgotten, its
	// neighbour gone, a shuffle from a peer no longer a neighbour).
	ShuffleRepliesDropped uint64
}

// New returns a Node with empty views. It sends nothing until Join, or
// until a peer contacts it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("overlay config: %w", err)
	}
	n := &Node{
		cfg: cfg,
		rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
	}
	n.tree.init()
	return n, nil
}

// Self returns this peer's ID.
func (n *Node) Self() string { return n.cfg.Self }

// Ready returns the outputs accumulated since the last call; the caller
// owns them (the Node appends later outputs past them, never over them).
func (n *Node) Ready() Ready {
	r := n.out
	n.out.Messages = n.out.Messages[len(n.out.Messages):]
	n.out.Deliveries = n.out.Deliveries[len(n.out.Deliveries):]
	n.out.Up = n.out.Up[len(n.out.Up):]
	n.out.Down = n.out.Down[len(n.out.Down):]
	return r
}

// Stats returns the Node's counters.
func (n *Node) Stats() Stats { return n.stats }

// LazyQueued returns how many announcements wait for the next lazy flush.
func (n *Node) LazyQueued() int {
	k := 0
	for _, q := range n.tree.lazyQ {
		k += len(q)
	}
	return k
}

// Active returns a copy of the active view.
func (n *Node) Active() []string { return slices.Clone(n.view.active) }

// IsActive reports whether p is in the active view now.
func (n *Node) IsActive(p string) bool { return n.isActive(p) }

// Passive returns a copy of the passive view.
func (n *Node) Passive() []string {
	out := make([]string, len(n.view.passive))
	for i, p := range n.view.passive {
		out[i] = p.id
	}
	return out
}

// Eager returns the neighbours this peer pushes origin's payloads to.
func (n *Node) Eager(origin string) []string { return n.treeLinks(origin, false) }

// Lazy returns the neighbours this peer announces origin's IDs to.
func (n *Node) Lazy(origin string) []string { return n.treeLinks(origin, true) }

// Parent returns the neighbour whose payload of origin was the last one
// this peer received first over the tree: where origin's tree reaches
// it from, which Repaired relays nothing back to. "" if none is known,
// or it is no longer a neighbour.
func (n *Node) Parent(origin string) string {
	if st := n.tree.trees[origin]; st != nil && n.isActive(st.parent) {
		return st.parent
	}
	return ""
}

// Join makes contact the entry point into the group: the Node sends it a
// Join now, and again (maintenance, view.go) until the contact has been
// its neighbour, and later whenever its active view is short with no
// request pending: after NeighborTimeout while it has no neighbour, every
// ShuffleInterval while it has some.
func (n *Node) Join(now time.Duration, contact string) {
	n.advance(now)
	if contact == "" || contact == n.cfg.Self || len(contact) > MaxPeerIDLen {
		return
	}
	n.view.contact = contact
	n.view.joined = false
	n.send(contact, Message{Kind: KindJoin})
	n.view.nextJoin = n.now + n.cfg.NeighborTimeout
	n.armMaintain()
}

// Leave says goodbye: every neighbour gets a Disconnect and the views are
// emptied. The Node can Join again later.
func (n *Node) Leave(now time.Duration) {
	n.advance(now)
	for len(n.view.active) > 0 {
		p := n.view.active[len(n.view.active)-1]
		n.removeActive(p, true)
	}
	n.view.passive = n.view.passive[:0]
	n.view.pending = n.view.pending[:0]
	n.view.contact = ""
}

// Step handles one message from a peer. A message that breaks a bound is
// counted (Stats.Invalid) and dropped.
func (n *Node) Step(now time.Duration, from string, m Message) {
	n.advance(now)
	if !n.valid(from, &m) {
		n.stats.Invalid++
		return
	}
	n.stats.Received[m.Kind]++
	if n.cfg.DisconnectOneSided && !m.Kind.View() && !n.isActive(from) && n.pendingIndex(from) < 0 {
		// A tree message comes only over a link its sender holds: from
		// has us as a neighbour, we do not have it (our Disconnect to it
		// crossed this message, or theirs to us, or our reply taking it,
		// was lost). Tell it, so that it drops us and looks for a
		// neighbour that is one at both ends: a one-sided link stays
		// otherwise, and counts in its view as a neighbour that pushes
		// and announces nothing to it. Not while we are asking from to
		// be a neighbour: its answer settles the link.
		n.send(from, Message{Kind: KindDisconnect})
	}
	switch m.Kind {
	case KindJoin:
		n.handleJoin(from)
	case KindForwardJoin:
		n.handleForwardJoin(from, m.Peer, m.TTL)
	case KindNeighbor:
		n.handleNeighbor(from, m.High)
	case KindNeighborReply:
		n.handleNeighborReply(from, m.Accept)
	case KindDisconnect:
		n.handleDisconnect(from)
	case KindShuffle:
		n.handleShuffle(from, m.Peer, m.TTL, m.Peers)
	case KindShuffleReply:
		n.handleShuffleReply(m.Peer, m.Peers)
	case KindGossip:
		n.handleGossip(from, m.Peer, m.ID, m.Round, m.Payload, m.Repaired)
	case KindIHave:
		n.handleIHave(from, m.Announces)
	case KindGraft:
		n.handleGraft(from, m.Peer, m.IDs)
	case KindPrune:
		n.makeLazy(m.Peer, from)
	}
}

// PeerDown reports that peer cannot be reached: its connection broke, or
// could not be opened. A neighbour is replaced from the passive view; a
// passive peer is forgotten.
func (n *Node) PeerDown(now time.Duration, peer string) {
	n.advance(now)
	n.handlePeerDown(peer)
}

// Tick lets time pass: shuffles, view repair, grafts for missing
// messages and batched announcements that are due. Call it at
// NextDeadline (calling it more often is harmless).
func (n *Node) Tick(now time.Duration) {
	n.advance(now)
	n.tickView()
	n.tickTree()
}

// NextDeadline returns the time of the next Tick the Node needs, 0 if
// none.
func (n *Node) NextDeadline() time.Duration {
	// Every timer is 0 while unarmed, the views' maintenance too: only a
	// Join or a lost neighbour arms it, and a peer that others took in
	// has neither, yet flushes announcements, grafts and shuffles.
	d := n.view.nextMaintain
	earlier := func(t time.Duration) {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	earlier(n.view.nextShuffle)
	if t, ok := n.tree.nextDeadline(); ok {
		earlier(t)
	}
	return d
}

func (n *Node) advance(now time.Duration) {
	if now > n.now {
		n.now = now
	}
}

func (n *Node) send(to string, m Message) {
	n.stats.Sent[m.Kind]++
	n.out.Messages = append(n.out.Messages, Envelope{To: to, Msg: m})
}
