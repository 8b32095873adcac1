package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay/repl"
	"github.com/hearsay-chat/hearsay/repl/repltest"
)

// TestDiscoveryNoticesReachTheTerminal: the discovery agent's notices (a
// bootstrap takeover, issue 13 bug 7) are printed by the REPL once it
// exists, not only written to peer.log.
func TestDiscoveryNoticesReachTheTerminal(t *testing.T) {
	var n replNotices
	n.say("before the REPL: peer.log only") // no REPL yet: nothing to print to, no panic
	peer := repltest.NewPeer("p-alice-0001", "alice")
	cfg := repl.DefaultConfig()
	cfg.Peer, cfg.Lifecycle, cfg.JSON = peer, peer, true
	no := false
	cfg.Interactive = &no
	var out bytes.Buffer
	r, err := repl.New(cfg, repl.IOStreams{In: bytes.NewReader(nil), Out: &out, ErrOut: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	n.set(r)
	n.say("the bootstrap service at http://127.0.0.1:8080 stopped answering: this peer serves it now")
	got := out.String()
	if !strings.Contains(got, `"type":"system"`) || !strings.Contains(got, "this peer serves it now") {
		t.Fatalf("output %q, want a system event with the notice", got)
	}
	if strings.Contains(got, "before the REPL") {
		t.Errorf("a notice from before the REPL existed was printed: %q", got)
	}
}
