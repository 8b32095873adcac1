package peerster

// The protocol of the handout's Homework 1.
//
// Simple mode: a client message goes to every known peer; a simple
// message from a peer is forwarded to every known peer but the one it came
// from, with this gossiper as relay.
//
// Rumor mongering: a new rumor (the next ID of its origin; rumors of an
// origin are only accepted in order) is stored and sent to one random
// peer, which acknowledges it with its status. The sender compares that
// status with its own: if it has a rumor the peer lacks it sends it (the
// lowest missing ID of one origin, one at a time); if the peer has one it
// lacks it sends its own status so the peer starts mongering back; if
// neither (or no status came within RumorTimeout) it flips a coin and
// either sends the rumor to another random peer or stops. Anti-entropy
// sends the status to a random peer every AntiEntropy, which repairs what
// mongering missed.

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// simpleKey identifies a simple message for the loop breaker.
func simpleKey(m *SimpleMessage) string {
	return strconv.Itoa(len(m.OriginalName)) + ":" + m.OriginalName + m.Contents
}

// handleSimpleLocked prints, records and forwards a simple message.
// Caller holds mu.
func (g *Gossiper) handleSimpleLocked(src netip.AddrPort, m *SimpleMessage) {
	// The peer is learned from the datagram's source, not from the relay
	// field: the field is whatever the sender wrote, and learning it
	// would let anyone point this gossiper at a third party. Honest
	// gossipers send from their gossip address, so the two agree.
	g.addPeerLocked(src)
	g.printf("SIMPLE MESSAGE origin %s from %s contents %s",
		printable(m.OriginalName, true), printable(m.RelayPeerAddr, true), printable(m.Contents, false))
	g.printPeersLocked()
	g.logLocked(ChatMessage{Origin: m.OriginalName, Text: m.Contents})
	if m.OriginalName != g.name && g.cfg.OnRumor != nil {
		g.cfg.OnRumor(RumorMessage{Origin: m.OriginalName, Text: m.Contents})
	}
	// Simple messages carry no ID, so nothing stops one from circling a
	// cycle of peers for ever: it is not forwarded when it is our own, or
	// when the same origin and text passed recently.
	now := time.Now()
	key := simpleKey(m)
	if m.OriginalName == g.name {
		return
	}
	if t, ok := g.seenSimple[key]; ok && now.Sub(t) < seenSimpleTTL {
		return
	}
	g.rememberSimpleLocked(key, now)
	fwd := &SimpleMessage{OriginalName: m.OriginalName, RelayPeerAddr: g.addr.String(), Contents: m.Contents}
	g.broadcastLocked(&GossipPacket{Simple: fwd}, src)
}

// maxSeenSimple bounds the loop breaker's memory.
const maxSeenSimple = 4096

func (g *Gossiper) rememberSimpleLocked(key string, now time.Time) {
	if len(g.seenSimple) >= maxSeenSimple {
		for k, t := range g.seenSimple {
			if now.Sub(t) >= seenSimpleTTL {
				delete(g.seenSimple, k)
			}
		}
		if len(g.seenSimple) >= maxSeenSimple {
			// Still full of recent ones: forget them all rather than
			// grow; at worst a message is forwarded twice.
			clear(g.seenSimple)
		}
	}
	g.seenSimple[key] = now
}

// nextLocked returns the lowest ID of origin not yet stored. Caller holds
// mu.
func (g *Gossiper) nextLocked(origin string) uint32 {
	return uint32(len(g.rumors[origin]) + 1)
}

// canStoreLocked reports whether a new rumor of origin with text would fit
// the store's caps. Caller holds mu.
func (g *Gossiper) canStoreLocked(origin string, text string) bool {
	_, known := g.rumors[origin]
	return (known || len(g.rumors) < g.cfg.MaxOrigins) &&
		g.nRumors < g.cfg.MaxRumors && g.storeBytes+len(text) <= g.cfg.MaxStoreBytes
}

// storeLocked stores r if it is the next of its origin and fits the caps;
// it reports whether it was stored, and whether it was refused because a
// cap is reached. Caller holds mu.
func (g *Gossiper) storeLocked(r RumorMessage) (stored, full bool) {
	if r.Origin == "" || r.ID != g.nextLocked(r.Origin) {
		return false, false
	}
	if !g.canStoreLocked(r.Origin, r.Text) {
		g.rumorsRefused.Add(1)
		return false, true
	}
	g.rumors[r.Origin] = append(g.rumors[r.Origin], r)
	g.nRumors++
	g.storeBytes += len(r.Text)
	g.logLocked(ChatMessage{Origin: r.Origin, ID: r.ID, Text: r.Text})
	return true, false
}

// handleRumorLocked prints a received rumor, acknowledges it with the
// status and, if it is new, stores and mongers it. Caller holds mu.
func (g *Gossiper) handleRumorLocked(src netip.AddrPort, r RumorMessage) {
	g.addPeerLocked(src)
	g.printf("RUMOR origin %s from %s ID %d contents %s",
		printable(r.Origin, true), src, r.ID, printable(r.Text, false))
	g.printPeersLocked()
	isNew, full := g.storeLocked(r)
	if full {
		// No acknowledgement: the sender would see that we still lack
		// the rumor and send it again at once, for ever. Without one it
		// waits for its timeout and flips its coin.
		return
	}
	g.sendLocked(src, &GossipPacket{Status: g.statusLocked()})
	if !isNew {
		return
	}
	if r.Origin != g.name && g.cfg.OnRumor != nil {
		g.cfg.OnRumor(r)
	}
	g.mongerLocked(r, src)
}

// mongerLocked sends r to a random peer other than not and waits for its
// acknowledgement. Caller holds mu.
func (g *Gossiper) mongerLocked(r RumorMessage, not netip.AddrPort) {
	to, ok := g.randomPeerLocked(not)
	if !ok {
		return
	}
	g.sendRumorLocked(to, r)
}

// sendRumorLocked sends r to a peer and awaits its acknowledgement.
// Mongerings in flight are bounded like the peer list: a status from a
// source we could not learn (the list is full) is still answered, but
// once MaxPeers mongerings wait, a new one is not tracked (no timeout, no
// coin flip), so made-up sources cannot grow the table. Caller holds mu.
func (g *Gossiper) sendRumorLocked(to netip.AddrPort, r RumorMessage) {
	g.printf("MONGERING with %s", to)
	g.sendLocked(to, &GossipPacket{Rumor: &r})
	if _, ok := g.pending[to]; ok || len(g.pending) < g.cfg.MaxPeers {
		g.pending[to] = pending{rumor: r, deadline: time.Now().Add(g.cfg.RumorTimeout)}
	}
}

// statusLocked returns the own vector clock, origins sorted by name.
// Caller holds mu.
func (g *Gossiper) statusLocked() *StatusPacket {
	st := &StatusPacket{Want: make([]PeerStatus, 0, len(g.rumors))}
	for origin, rs := range g.rumors {
		st.Want = append(st.Want, PeerStatus{Identifier: origin, NextID: uint32(len(rs) + 1)})
	}
	slices.SortFunc(st.Want, func(a, b PeerStatus) int { return cmp.Compare(a.Identifier, b.Identifier) })
	return st
}

// handleStatusLocked compares a peer's status with the own one and acts
// on the difference (see the file comment). Caller holds mu.
func (g *Gossiper) handleStatusLocked(src netip.AddrPort, st *StatusPacket) {
	g.addPeerLocked(src)
	var line strings.Builder
	line.WriteString("STATUS from ")
	line.WriteString(src.String())
	theirs := make(map[string]uint32, len(st.Want))
	for _, ps := range st.Want {
		line.WriteString(" peer ")
		line.WriteString(printable(ps.Identifier, true))
		line.WriteString(" nextID ")
		line.WriteString(strconv.FormatUint(uint64(ps.NextID), 10))
		if _, dup := theirs[ps.Identifier]; !dup {
			theirs[ps.Identifier] = ps.NextID
		}
	}
	g.printf("%s", line.String())
	g.printPeersLocked()

	acked, wasPending := g.pending[src]
	delete(g.pending, src)

	// Something they lack: the lowest missing rumor of the first origin
	// (by name) they are behind on.
	mine := g.statusLocked()
	for _, ps := range mine.Want {
		next := max(theirs[ps.Identifier], 1) // 0 or absent: they have none
		if next < ps.NextID {
			g.sendRumorLocked(src, g.rumors[ps.Identifier][next-1])
			return
		}
	}
	// Something we lack and could store: ask for it with our status.
	for _, ps := range st.Want {
		if ps.NextID > g.nextLocked(ps.Identifier) && g.canStoreLocked(ps.Identifier, "") {
			g.sendLocked(src, &GossipPacket{Status: mine})
			return
		}
	}
	g.printf("IN SYNC WITH %s", src)
	if wasPending {
		g.flipCoinLocked(acked.rumor, src)
	}
}

// flipCoinLocked ends a mongering of r with peer: heads, r goes to
// another random peer; tails, the mongering stops. Caller holds mu.
func (g *Gossiper) flipCoinLocked(r RumorMessage, peer netip.AddrPort) {
	if rand.IntN(2) == 0 {
		return
	}
	to, ok := g.randomPeerLocked(peer)
	if !ok {
		return
	}
	g.printf("FLIPPED COIN sending rumor to %s", to)
	g.sendRumorLocked(to, r)
}

// antiEntropy sends the status to a random peer.
func (g *Gossiper) antiEntropy() {
	if g.cfg.Simple {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if to, ok := g.randomPeerLocked(netip.AddrPort{}); ok {
		g.sendLocked(to, &GossipPacket{Status: g.statusLocked()})
	}
}

// expire ends the mongerings whose acknowledgement did not come in time,
// with the coin flip.
func (g *Gossiper) expire(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var late []netip.AddrPort
	for peer, p := range g.pending {
		if now.After(p.deadline) {
			late = append(late, peer)
		}
	}
	// Sorted so that a run's output does not depend on map order.
	slices.SortFunc(late, func(a, b netip.AddrPort) int { return a.Compare(b) })
	for _, peer := range late {
		p := g.pending[peer]
		delete(g.pending, peer)
		g.flipCoinLocked(p.rumor, peer)
	}
}
