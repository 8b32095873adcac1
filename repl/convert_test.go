package repl_test

import (
	"context"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/repl"
)

func TestConvertEvents(t *testing.T) {
	type foreign struct{ kind, who string }
	in := make(chan foreign, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := repl.ConvertEvents(ctx, in, func(f foreign) repl.Event { return repl.Event{Type: f.kind, From: f.who} })
	in <- foreign{"join", "bob"}
	select {
	case ev := <-out:
		if ev.Type != "join" || ev.From != "bob" {
			t.Fatalf("got %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no converted event")
	}
	close(in)
	select {
	case _, ok := <-out:
		if ok {
			t.Fatal("out not closed after in closed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("out not closed")
	}

	in2 := make(chan foreign)
	ctx2, cancel2 := context.WithCancel(context.Background())
	out2 := repl.ConvertEvents(ctx2, in2, func(f foreign) repl.Event { return repl.Event{} })
	cancel2()
	select {
	case _, ok := <-out2:
		if ok {
			t.Fatal("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("out not closed after ctx ended")
	}
}
