package repl_test

import (
	"strings"
	"syscall"
	"testing"
)

// typeAt types text key by key on a prompt row and waits until the row
// shows it (suggestion menus may open below it).
func (s *screen) typeAt(prompt, text string) {
	s.t.Helper()
	typed := ""
	for _, r := range text {
		s.key(string(r))
		typed += string(r)
		want := strings.TrimRight(prompt+" "+typed, " ")
		s.waitFor("typed "+want, func(rows []string) bool { return rowIndex(rows, want) >= 0 })
	}
}

// TestScreenDirect: /me, a direct message from bob raising the activity
// list, /query, the state of alice's message changing from pending to
// read, catch-up under the backlog marker, and Tab completing a nick
// inside a message.
func TestScreenDirect(t *testing.T) {
	s := startScreenRows(t, 40, "-rooms", "-direct")
	s.typeAt(promptEmpty, "/me waves")
	s.key("\r")
	s.waitFor("the action", func(rows []string) bool { return rowIndex(rows, "] * alice waves") >= 0 })

	s.signal(syscall.SIGUSR1) // bob writes to alice
	const lobbyActive = "[#lobby] [1 @bob] alice>"
	s.waitFor("bob's direct message and the activity list", func(rows []string) bool {
		return rowIndex(rows, "[@bob] <bob> psst alice") >= 0 && lastRow(rows) == lobbyActive
	})

	s.typeAt(lobbyActive, "/query bob")
	s.key("\r")
	const bobPrompt = "[@bob] alice>"
	s.waitFor("the conversation's prompt", func(rows []string) bool {
		cooked, err := s.termCooked()
		return err == nil && !cooked && rowIndex(rows, "talking to @bob") >= 0 && lastRow(rows) == bobPrompt
	})
	s.typeAt(bobPrompt, "hi bob")
	s.key("\r")
	s.waitFor("the pending message", func(rows []string) bool { return rowIndex(rows, "] <alice> hi bob (pending)") >= 0 })
	for _, state := range []string{"sent", "delivered", "read"} {
		s.signal(syscall.SIGUSR1)
		want := `* to bob: "hi bob" ` + state
		s.waitFor(want, func(rows []string) bool { return rowIndex(rows, want) >= 0 })
	}

	s.signal(syscall.SIGUSR1) // catch-up in #lobby
	const bobActive = "[@bob] [2 #lobby] alice>"
	s.waitFor("the backlog marker", func(rows []string) bool {
		i := rowIndex(rows, "-- 2 messages in #lobby from while you were away --")
		j := rowIndex(rows, "#lobby <bob> while away 1")
		k := rowIndex(rows, "#lobby <bob> while away 2")
		return i >= 0 && i < j && j < k && lastRow(rows) == bobActive
	})

	// "bo" at the start of a message completes to "bob: ".
	s.typeAt(bobActive, "bo")
	s.key("\t")
	s.waitFor("the completed nick", func(rows []string) bool { return rowIndex(rows, bobActive+" bob:") >= 0 })
	for _, k := range "ok" { // the completion ends with ": "
		s.key(string(k))
	}
	s.waitFor("the typed reply", func(rows []string) bool { return rowIndex(rows, bobActive+" bob: ok") >= 0 })
	s.key("\r")
	s.waitFor("the addressed message", func(rows []string) bool { return rowIndex(rows, "] <alice> bob: ok (pending)") >= 0 })

	s.typeAt(bobActive, "/switch #lobby")
	s.key("\r")
	s.waitFor("the lobby without activity", func(rows []string) bool {
		cooked, err := s.termCooked()
		return err == nil && !cooked && lastRow(rows) == promptEmpty
	})
	s.key("\x04")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
