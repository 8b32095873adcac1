package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay"
)

func isError(sub string) func(hearsay.Event) bool {
	return func(ev hearsay.Event) bool { return ev.Type == "error" && strings.Contains(ev.Text, sub) }
}

func isRoomMessage(room, text string) func(hearsay.Event) bool {
	return func(ev hearsay.Event) bool { return ev.Type == "message" && ev.Room == room && ev.Text == text }
}

// roomRow matches a row of /rooms: mark, name, mode, counts, members.
var roomRow = regexp.MustCompile(`(?m)^[* ] #([a-z0-9._-]+) +([a-z-]+) +\d+ +\d+ +\d+ +(\d+)`)

// waitRoom sends /rooms until p's latest answer lists room with mode and
// members members.
func waitRoom(t *testing.T, p *testPeer, room, mode, members string) {
	t.Helper()
	waitFor(t, p.nick+": /rooms lists #"+room+" "+mode+" with "+members+" members", func() bool {
		var last string
		p.mu.Lock()
		for _, ev := range p.events {
			if ev.Type == "system" && strings.Contains(ev.Text, "ROOM    ") {
				last = ev.Text
			}
		}
		p.mu.Unlock()
		for _, m := range roomRow.FindAllStringSubmatch(last, -1) {
			if m[1] == room && m[2] == mode && m[3] == members {
				return true
			}
		}
		p.send("/rooms")
		return false
	})
}

// TestRoomsEndToEnd runs three whole peers: two join a fifo room, messages
// go to the current room of each, /history shows a room's past, /rooms its
// members and mode, and a third peer that learned the room by gossip cannot
// join it with another mode.
func TestRoomsEndToEnd(t *testing.T) {
	srv := startServer(t, "")
	alice := spawnPeer(t, srv.URL(), "alice")
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob")
	carol := spawnPeer(t, srv.URL(), "carol")
	peers := []*testPeer{alice, bob, carol}
	for _, p := range peers {
		waitFor(t, p.nick+": two joins", func() bool { return p.count(func(e hearsay.Event) bool { return e.Type == "join" }) >= 2 })
	}
	waitRoom(t, alice, "lobby", "causal", "3")

	alice.send("/join #dev --order fifo")
	alice.waitEvent("joined #dev", isSystem("joined #dev (ordering fifo"))
	bob.send("/join #dev")
	bob.waitEvent("joined #dev with its mode", isSystem("joined #dev (ordering fifo"))
	waitRoom(t, alice, "dev", "fifo", "2")
	waitRoom(t, bob, "dev", "fifo", "2")

	// Plain text goes to the current room: #dev for alice, #lobby for carol.
	alice.send("dev hello")
	bob.send("/switch #lobby")
	bob.waitEvent("switched", isSystem("now talking in #lobby"))
	bob.send("lobby from bob")
	carol.send("lobby from carol")
	for _, p := range []*testPeer{alice, bob} {
		p.waitEvent("alice's #dev message", isRoomMessage("dev", "dev hello"))
	}
	for _, p := range peers {
		p.waitEvent("bob's lobby message", isRoomMessage("lobby", "lobby from bob"))
		p.waitEvent("carol's lobby message", isRoomMessage("lobby", "lobby from carol"))
	}

	// /history shows the current room's past as history events.
	alice.send("/history 10")
	alice.waitEvent("#dev history", func(ev hearsay.Event) bool {
		return ev.Type == "history" && ev.Room == "dev" && ev.Text == "dev hello" && ev.From == "alice"
	})
	bob.send("/history")
	bob.waitEvent("#lobby history", func(ev hearsay.Event) bool {
		return ev.Type == "history" && ev.Room == "lobby" && ev.Text == "lobby from carol"
	})
	if _, ok := bob.find(func(ev hearsay.Event) bool { return ev.Type == "history" && ev.Room == "dev" }); ok {
		t.Error("bob's /history in #lobby showed #dev messages")
	}

	// carol knows #dev from gossip: /rooms lists it, and the mode is fixed.
	waitRoom(t, carol, "dev", "fifo", "2")
	carol.send("/join #dev --order total")
	carol.waitEvent("mode conflict", isError("join #dev"))
	carol.send("/join #dev")
	carol.waitEvent("joined #dev", isSystem("joined #dev (ordering fifo"))
	waitRoom(t, alice, "dev", "fifo", "3")
	bob.send("/switch #dev")
	bob.waitEvent("switched to #dev", isSystem("now talking in #dev"))
	bob.send("dev from bob")
	for _, p := range peers {
		p.waitEvent("bob's #dev message", isRoomMessage("dev", "dev from bob"))
	}
	// A late joiner catches up on the room's retained history.
	carol.waitEvent("#dev's earlier message, by anti-entropy", isRoomMessage("dev", "dev hello"))

	// /stats has the per-room table; /part returns to the lobby.
	alice.send("/stats")
	alice.waitEvent("per-room stats", isSystem("HELD BACK"))
	alice.send("/part")
	alice.waitEvent("parted", isSystem("left #dev; now talking in #lobby"))
	waitRoom(t, bob, "dev", "fifo", "2")

	for _, p := range peers {
		for _, text := range []string{"dev hello", "lobby from bob", "lobby from carol", "dev from bob"} {
			if n := p.count(func(ev hearsay.Event) bool { return ev.Type == "message" && ev.Text == text }); n > 1 {
				t.Errorf("%s showed %q %d times", p.nick, text, n)
			}
		}
	}
}
