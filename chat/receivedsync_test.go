package chat_test

import (
	"slices"
	"testing"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// Received messages are committed to bbolt once a second (the applier's
// interval in chat), but a peer that shuts down and starts again at once,
// well within that second, still has every message it had delivered: they
// were written to the log's write-ahead file before delivery, and Close
// commits what is pending. Its history keeps their order.
func TestReceivedMessagesSurviveRestartWithinSyncInterval(t *testing.T) {
	var cfgB chat.Config
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) {
		if i == 1 {
			cfgB = *cfg
		}
	})
	a, b := peers[0], peers[1]
	var sent []string
	for i := range 5 {
		sent = append(sent, send(t, a, "m"+string(rune('0'+i))).String())
	}
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.ID == sent[len(sent)-1] }, "the last message")
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	back := chattest.Start(t, cfgB)
	got := chattest.HistoryIDs(t, back.Node, chat.DefaultRoom)
	var fromA []string
	for _, id := range got {
		if slices.Contains(sent, id) {
			fromA = append(fromA, id)
		}
	}
	if !slices.Equal(fromA, sent) {
		t.Errorf("history after the restart has %v of a's messages, want %v", fromA, sent)
	}
}
