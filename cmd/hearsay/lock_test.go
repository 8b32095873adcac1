package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// TestSecondPeerOnALockedLogSaysWhatToDo: a second terminal with the same
// nick (so the same data directory) finds the message log locked; the
// error says so and suggests --nick or --data-dir.
func TestSecondPeerOnALockedLogSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	// The first peer's hold on its log, as a running hearsay has it.
	held, err := msglog.OpenBolt(filepath.Join(dir, chat.MessageLogFile), msglog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.Close() })

	code, _, errOut := runCLI(t, nil, "--nick", "alice", "--data-dir", dir, "--bootstrap", "http://127.0.0.1:1")
	if code == 0 {
		t.Fatal("second peer on a locked log exited 0")
	}
	for _, want := range []string{"locked by another process", "--nick", "--data-dir", dir} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}
