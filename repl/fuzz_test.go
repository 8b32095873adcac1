package repl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
)

// FuzzExec feeds arbitrary lines to the dispatcher and the completer: they
// must never panic, and every error must be printed.
func FuzzExec(f *testing.F) {
	for _, s := range []string{"hello", "/kv set 'a b' c", "/ping", "/help kv", "/bootstrap config max_peers=x",
		"/sleep 1ms", `/kv set "x`, "/nick \x1b[31m", "/", "//", "/ml join", "@b", "/exec /", "/log", "/config load /", "/kv \t", "/ping\tb "} {
		f.Add(s)
	}
	fx := newFixture(f, func(c *repl.Config) { c.Manual = true; c.MaxSleep = time.Millisecond })
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "/log on") || strings.Contains(line, "/config save") {
			return // would create files in the package directory
		}
		fx.out.Reset()
		err := fx.r.Exec(context.Background(), line)
		if err != nil && err != repl.ErrQuit && !strings.Contains(fx.out.String(), "error: ") {
			t.Fatalf("Exec(%q) = %v but printed no error: %q", line, err, fx.out.String())
		}
		_ = fx.r.Complete(line)
	})
}

func BenchmarkComplete(b *testing.B) {
	f := newFixture(b, nil)
	for b.Loop() {
		_ = f.r.Complete("/ping b")
	}
}

func BenchmarkNotify(b *testing.B) {
	f := newFixture(b, func(c *repl.Config) { c.Color = "always" })
	ev := hearsay.Event{Type: hearsay.EventMessage, From: "bob", FromID: "p-bob", Text: "a typical chat line with a few words in it"}
	for b.Loop() {
		f.r.Notify(ev)
		if f.out.b.Len() > 1<<20 {
			f.out.Reset()
		}
	}
}
