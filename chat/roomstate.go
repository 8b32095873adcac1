package chat

// States of the user's own room messages: pending until another member
// holds it, then how many of the room's other members hold it. The
// evidence is what members already send: an anti-entropy status from
// member P whose vector holds this node's entry h says P stored this
// node's messages 1..h (and delivers them as their ordering allows), so
// no new frame is needed. Statuses come every anti-entropy round from a
// random member, so the counts follow within a few rounds. Bounded: the
// last maxTrackedOwn own messages per room, one entry per member.

import (
	"fmt"
	"sync"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

const (
	// maxTrackedOwn is how many of its latest own messages per room the
	// node follows.
	maxTrackedOwn = 256
	// maxTrackedPeers bounds the members remembered per room.
	maxTrackedPeers = 4096
)

type ownMsg struct {
	seq   uint64
	count int // other members known to hold it
}

type roomProgress struct {
	held map[string]uint64 // member → highest of our seqs it holds contiguously
	own  []ownMsg          // oldest first
}

// progress tracks the rooms' own messages. Safe for concurrent use; the
// zero value is ready.
type progress struct {
	mu    sync.Mutex
	rooms map[string]*roomProgress
}

func (p *progress) roomLocked(room string) *roomProgress {
	if p.rooms == nil {
		p.rooms = make(map[string]*roomProgress)
	}
	rp := p.rooms[room]
	if rp == nil {
		rp = &roomProgress{held: make(map[string]uint64)}
		p.rooms[room] = rp
	}
	return rp
}

// noteOwn starts following an own message just sent.
func (n *Node) noteOwn(room string, seq uint64) {
	p := &n.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	rp := p.roomLocked(room)
	rp.own = append(rp.own, ownMsg{seq: seq})
	if len(rp.own) > maxTrackedOwn {
		rp.own = rp.own[len(rp.own)-maxTrackedOwn:]
	}
}

// noteHeld records that member from holds our messages of room up to h
// (its status said so) and emits state events for own messages whose
// count grew.
func (n *Node) noteHeld(room, from string, h uint64) {
	if h == 0 {
		return
	}
	r := n.joinedRoom(room)
	if r == nil {
		return
	}
	others := 0
	for _, id := range r.info(n.id.ID).Members {
		if id != n.id.ID {
			others++
		}
	}
	p := &n.progress
	var evs []hearsay.Event
	p.mu.Lock()
	rp := p.roomLocked(room)
	if old, ok := rp.held[from]; ok && old >= h {
		p.mu.Unlock()
		return
	}
	if _, ok := rp.held[from]; !ok && len(rp.held) >= maxTrackedPeers {
		clear(rp.held)
	}
	rp.held[from] = h
	keep := rp.own[:0]
	for _, m := range rp.own {
		count := 0
		for _, hh := range rp.held {
			if hh >= m.seq {
				count++
			}
		}
		if count > m.count {
			m.count = count
			state := hearsay.StateDelivered
			if count == 1 {
				state = hearsay.StateSent
			}
			evs = append(evs, hearsay.Event{Type: hearsay.EventState, Room: room, Self: true,
				ID: hearsay.MsgID{Origin: n.id.ID, Seq: m.seq}.String(), State: state,
				Text: fmt.Sprintf("%d of %d", count, max(others, count))})
		}
		if others == 0 || m.count < others {
			keep = append(keep, m) // every other member holds it: done
		}
	}
	rp.own = keep
	p.mu.Unlock()
	for _, ev := range evs {
		n.emit(ev)
	}
}

// ownState is the state an own chat message shows with when delivered:
// pending (state events follow as members report holding it).
func ownState(env *chatpb.Envelope, self string) string {
	if env.Origin == self && env.Kind == chatpb.Kind_KIND_CHAT {
		return hearsay.StatePending
	}
	return ""
}

// noteHeldOwn shows an own message of a total or sequencer room at once,
// as a held event: its message event comes only when the room's order
// reaches it (maybe seconds later, when a member has failed), and a user
// should not wonder whether it was sent. A client that has shown the
// message event already ignores it.
func (n *Node) noteHeldOwn(r *room, id hearsay.MsgID, text string) {
	if r.mode != hearsay.OrderTotal && r.mode != hearsay.OrderSequencer {
		return
	}
	n.emit(hearsay.Event{Type: hearsay.EventHeld, Time: time.Now(), Room: r.name, From: n.displayName(n.id.ID, n.Nick()),
		FromID: n.id.ID, ID: id.String(), Text: text, Self: true, State: hearsay.StatePending})
}
