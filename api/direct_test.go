package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// POST /v1/messages with "to" sends an end-to-end encrypted direct
// message through a real node: the recipient's event stream gets a
// "direct" event with the text, and an unknown recipient is a client error.
func TestSendDirectThroughAPI(t *testing.T) {
	a, b := startLive(t, "alice"), startLive(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
	defer cancel()
	if _, err := b.node.Join(ctx, []string{a.node.AdvertiseAddr()}); err != nil {
		t.Fatal(err)
	}
	chattest.WaitConverged(t, &chattest.Peer{Node: a.node}, &chattest.Peer{Node: b.node})

	status, body, _ := call(t, a.srv, a.srv.Token(), "POST", "/v1/messages", "application/json", `{"to":"bob","text":"only for bob"}`)
	if status != http.StatusCreated {
		t.Fatalf("send to bob: %d %s", status, body)
	}
	var res api.SendResponse
	if err := json.Unmarshal(body, &res); err != nil || res.ID == "" || res.To != "bob" {
		t.Fatalf("send response %s: %v", body, err)
	}
	var got hearsay.Event
	if !chattest.Poll(chattest.DefaultTimeout, func() bool {
		entries, _, _ := b.ring.After(0, 1000)
		for _, e := range entries {
			if e.Event.Type == hearsay.EventDirect && e.Event.Text == "only for bob" {
				got = e.Event
				return true
			}
		}
		return false
	}) {
		t.Fatal("bob's event stream never got the direct message")
	}
	if got.FromID != a.node.ID() {
		t.Errorf("direct event from %q, want alice's ID %s", got.FromID, a.node.ID())
	}

	// Without cmd/hearsay's classifier (Config.ErrorCode, tested there)
	// the peer's error is the caller's: a 4xx JSON error naming it.
	status, body, _ = call(t, a.srv, a.srv.Token(), "POST", "/v1/messages", "application/json", `{"to":"nobody","text":"x"}`)
	if status/100 != 4 || errCode(t, body) == "" || !strings.Contains(string(body), "nobody") {
		t.Fatalf("send to an unknown peer: %d %s, want a 4xx JSON error naming it", status, body)
	}
}
