package chat

// Join and part notices: when a peer's room set adds or drops a room this
// node is in, the user sees "* bob joined #ops" or "* bob left #ops", as
// in IRC. The first room set a peer sends this run says nothing (it is
// what the peer was already in), nor does a member that fails (its
// failure is shown).

import (
	"fmt"

	"github.com/hearsay-chat/hearsay"
)

// roomNotices emits the notices for peer from's room set changing from
// old to set. Called without locks.
func (n *Node) roomNotices(from string, old, set *peerRoomSet) {
	if old == nil {
		return
	}
	n.mu.Lock()
	var nick string
	if m := n.members[from]; m != nil {
		nick = m.Nick
	}
	n.mu.Unlock()
	name := n.displayName(from, nick)
	notice := func(typ, room, verb string) {
		if n.joinedRoom(room) == nil {
			return
		}
		n.emit(hearsay.Event{Type: typ, Room: room, From: name, FromID: from, Text: fmt.Sprintf("%s %s #%s", name, verb, room)})
	}
	for room, rm := range set.rooms {
		if o := old.rooms[room]; o == nil || o.JoinedUnixNano != rm.JoinedUnixNano {
			notice(hearsay.EventRoomJoin, room, "joined")
		}
	}
	for room := range old.rooms {
		if set.rooms[room] == nil {
			notice(hearsay.EventRoomPart, room, "left")
		}
	}
}
