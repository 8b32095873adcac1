package chat_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// TestSendErrorNamesItsRoom: Send's errors start with "send to #room: ",
// the wording the REPL replaces with its own "message not sent to #room"
// (issue 13, bug 8: the two used to be printed one after the other).
func TestSendErrorNamesItsRoom(t *testing.T) {
	p := chattest.Cluster(t, 1, nil)[0]
	_, err := p.Send(context.Background(), "elsewhere", "hello")
	if err == nil || !strings.HasPrefix(err.Error(), "send to #elsewhere: ") || !errors.Is(err, chat.ErrNotJoined) {
		t.Fatalf("send to a room not joined: %v, want \"send to #elsewhere: …\" wrapping ErrNotJoined", err)
	}
}
