package repl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
)

// With DrainEvents, events the peer delivers after Run ended (a graceful
// stop: the host shuts its node down after Run) are still printed: Close
// waits until the host closes the channel. Without it they are lost, and
// the node, which counted them shown, never shows them again.
func TestCloseDrainsEventsAfterRun(t *testing.T) {
	for _, drain := range []bool{true, false} {
		f := newFixture(t, func(c *repl.Config) { c.DrainEvents = drain; c.DrainTimeout = 5 * time.Second })
		if err := f.r.Run(context.Background()); err != nil { // empty input: ends at once
			t.Fatal(err)
		}
		f.peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "lobby", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/7", Text: "said as we stopped"})
		f.peer.CloseEvents()
		if err := f.r.Close(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(f.out.String(), "said as we stopped"); got != drain {
			t.Errorf("DrainEvents=%v: printed %v, output:\n%s", drain, got, f.out.String())
		}
	}
}

// A host that never closes the channel does not hold Close for longer
// than DrainTimeout.
func TestCloseDrainBounded(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) { c.DrainEvents = true; c.DrainTimeout = 50 * time.Millisecond })
	if err := f.r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := f.r.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %s with a 50ms drain bound", d)
	}
}
