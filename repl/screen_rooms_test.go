package repl_test

import (
	"strings"
	"syscall"
	"testing"
)

// TestScreenRooms: after /join the prompt names the new room, a message
// from another room arrives above the typed line with its room, and Tab
// completes a joined room's name.
func TestScreenRooms(t *testing.T) {
	s := startScreen(t, "-rooms")
	const devPrompt = "[#dev] alice>"
	// With a #lobby message unread, the activity list follows the room.
	const devActive = "[#dev] [1 #lobby] alice>"
	s.typeText("", "/join #dev")
	s.key("\r")
	s.waitFor("the join confirmation", func(rows []string) bool { return rowIndex(rows, "joined #dev (ordering causal") >= 0 })
	s.waitFor("the #dev prompt", func(rows []string) bool {
		cooked, err := s.termCooked()
		return err == nil && !cooked && lastRow(rows) == devPrompt
	})

	// Half a line typed in #dev; bob's #lobby message appears above it.
	for _, k := range "half" {
		s.key(string(k))
	}
	s.waitFor("the typed text", func(rows []string) bool { return lastRow(rows) == devPrompt+" half" })
	s.signal(syscall.SIGUSR1)
	s.waitFor("bob's message with its room", func(rows []string) bool {
		i := rowIndex(rows, "#lobby <bob> incoming message 1")
		return i >= 0 && i < lastRowIndex(rows) && lastRow(rows) == devActive+" half"
	})
	for range "half" {
		s.key("\x7f") // backspace
	}
	s.waitFor("an empty #dev prompt", func(rows []string) bool { return lastRow(rows) == devActive })

	// Tab completes the room name of /switch.
	for _, k := range "/switch #l" {
		s.key(string(k))
	}
	// The suggestion menu opens below the line as it is typed.
	s.waitFor("the typed command and its suggestion", func(rows []string) bool {
		i := rowIndex(rows, devActive+" /switch #l")
		return i >= 0 && strings.Contains(strings.Join(rows[i+1:], "\n"), "#lobby")
	})
	s.key("\t")
	s.waitFor("/switch #lobby", func(rows []string) bool { return rowIndex(rows, devActive+" /switch #lobby") >= 0 })
	s.key("\r")
	s.waitFor("the lobby prompt again", func(rows []string) bool {
		return rowIndex(rows, "now talking in #lobby") >= 0 && lastRow(rows) == promptEmpty
	})
	s.waitReady()
	s.key("\x04")
	if err := s.waitExit(); err != nil {
		t.Fatalf("exit: %v", err)
	}
}
