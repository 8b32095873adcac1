package main

import (
	"bytes"
	"regexp"
	"slices"
	"testing"

	"github.com/hearsay-chat/hearsay/repl"
	"github.com/hearsay-chat/hearsay/repl/repltest"
)

// TestManualBannerNamesListedCommands: the --manual banner once named a
// '/ml create' that /help ml does not list; every /ml step it names must
// be one the REPL offers.
func TestManualBannerNamesListedCommands(t *testing.T) {
	peer := repltest.NewPeer("p-alice-0001", "alice")
	cfg := repl.DefaultConfig()
	cfg.Peer, cfg.Lifecycle, cfg.Manual = peer, peer, true
	no := false
	cfg.Interactive = &no
	var out bytes.Buffer
	r, err := repl.New(cfg, repl.IOStreams{In: bytes.NewReader(nil), Out: &out, ErrOut: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	var subs []string
	for _, s := range r.Complete("/ml ") {
		subs = append(subs, s.Text)
	}
	named := regexp.MustCompile(`/ml (\w+)`).FindAllStringSubmatch(manualBanner, -1)
	if len(named) == 0 {
		t.Fatalf("banner %q names no /ml step", manualBanner)
	}
	for _, m := range named {
		if !slices.Contains(subs, m[1]) {
			t.Errorf("banner names /ml %s; /ml offers %v", m[1], subs)
		}
	}
}
