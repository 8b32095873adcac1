package repl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
	"github.com/hearsay-chat/hearsay/repl/repltest"
)

// runningREPL runs a REPL over the fixture's configuration with input
// from a pipe: line types a line and waits until out contains want.
type runningREPL struct {
	t    *testing.T
	r    *repl.REPL
	f    *fixture
	inW  *io.PipeWriter
	done chan error
}

func startRunning(t *testing.T, mod func(*repl.Config)) *runningREPL {
	t.Helper()
	f := newFixture(t, func(c *repl.Config) {
		setupRooms(c)
		c.Direct = c.Peer.(*repltest.Peer)
		c.Peer.(*repltest.Peer).SetEmitOwn(true)
		if mod != nil {
			mod(c)
		}
	})
	in, inW := io.Pipe()
	r, err := repl.New(f.r.Config(), repl.IOStreams{In: in, Out: f.out, ErrOut: f.out})
	if err != nil {
		t.Fatal(err)
	}
	rr := &runningREPL{t: t, r: r, f: f, inW: inW, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(context.Background()) }()
	t.Cleanup(func() {
		inW.Close()
		<-rr.done
		r.Close()
	})
	return rr
}

func (rr *runningREPL) line(l string, want ...string) {
	rr.t.Helper()
	if _, err := io.WriteString(rr.inW, l+"\n"); err != nil {
		rr.t.Fatal(err)
	}
	for _, w := range want {
		waitFor(rr.t, 5*time.Second, fmt.Sprintf("%q after %q; output:\n%s", w, l, rr.f.out.String()), func() bool {
			return strings.Contains(rr.f.out.String(), w)
		})
	}
}

func TestDirectCommands(t *testing.T) {
	rr := startRunning(t, nil)
	p := rr.f.peer
	rr.line("/msg bob hello there", "[10:00:00] [@bob] <alice> hello there (pending)")
	if got := rr.r.Room(); got != "lobby" {
		t.Errorf("/msg changed the target to %q", got)
	}
	rr.line("/query bob", "talking to @bob")
	if got := rr.r.Room(); got != "@bob" {
		t.Fatalf("target after /query = %q, want @bob", got)
	}
	if reads := p.DirectReads(); !slices.Contains(reads, "p-bob-0002") {
		t.Errorf("/query did not mark the conversation read: %v", reads)
	}
	rr.line("hi again", "[10:00:00] <alice> hi again (pending)")
	rr.line("/me waves", "[10:00:00] * alice waves (pending)")
	p.SetDirectState(hearsay.StateDelivered)
	rr.line("/echo sync", `* to bob: "waves" delivered`)
	rr.line("/receipts", "2 messages not delivered yet:", `to bob (pending): "hello there"`, `to bob (pending): "hi again"`)
	rr.line("/history", "-- last 3 messages with @bob --", "<alice> hi again", "-- end of history --")

	// A message from bob in the active conversation is marked read; one
	// in the lobby goes to the activity list.
	before := len(p.DirectReads())
	p.ReceiveDirect("p-bob-0002", "bob", "psst")
	rr.line("/echo sync2", "[10:00:00] <bob> psst")
	waitFor(t, 5*time.Second, "a read mark", func() bool { return len(p.DirectReads()) > before })
	p.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "lobby", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/9", Text: "in the lobby"})
	rr.line("/echo sync3", "#lobby <bob> in the lobby")
	if got := rr.r.Activity(); got != "[1 #lobby]" {
		t.Errorf("activity = %q, want [1 #lobby]", got)
	}
	rr.line("/switch #lobby", "now talking in #lobby")
	if got := rr.r.Activity(); got != "" {
		t.Errorf("activity after /switch = %q, want empty", got)
	}
	p.ReceiveDirect("p-bob-0002", "bob", "still there?")
	rr.line("/echo sync4", "[@bob] <bob> still there?")
	if got := rr.r.Activity(); got != "[1 @bob]" {
		t.Errorf("activity = %q, want [1 @bob]", got)
	}
	rr.line("/me dances", "[10:00:00] * alice dances")
	if sent := p.SentMessages(); len(sent) == 0 || sent[len(sent)-1].Text != "\x01ACTION dances\x01" {
		t.Errorf("room action sent as %q", sent)
	}
	rr.line("/topic release day", "topic of #lobby set to: release day")
	rr.line("/topic", "topic of #lobby: release day")
	rr.line("/switch @bob", "now talking to @bob")
	rr.line("/part", "closed @bob; now talking in #lobby")
	rr.line("/msg nobody hi", "error: message not sent: unknown peer")
}

func TestDirectJSON(t *testing.T) {
	rr := startRunning(t, func(c *repl.Config) { c.JSON = true })
	rr.line("/msg bob hello", `"type":"direct"`)
	rr.f.peer.SetDirectState(hearsay.StateSent)
	rr.line("/me waves", `"type":"state"`)
	var direct, state map[string]any
	for _, l := range strings.Split(rr.f.out.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		switch m["type"] {
		case "direct":
			direct = m
		case "state":
			state = m
		}
	}
	if direct["to"] != "bob" || direct["to_id"] != "p-bob-0002" || direct["text"] != "hello" || direct["from"] != "alice" || direct["state"] != "pending" {
		t.Errorf("direct event = %v", direct)
	}
	if state["state"] != "sent" || state["id"] != "dm1" || state["to"] != "bob" {
		t.Errorf("state event = %v", state)
	}
	rr.line("/echo x", `"action":true`)
}

func TestCompleteNickInText(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		before string
		want   []string
	}{
		{"bo", []string{"bob: ", "bobby: "}},
		{"  bo", []string{"bob: ", "bobby: "}},
		{"hey bobb", []string{"bobby"}},
		{"hey b", nil},  // too short
		{"hey al", nil}, // ourselves
		{"@bo", []string{"@bob", "@bobby"}},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range f.r.Complete(tt.before) {
			got = append(got, s.Text)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Complete(%q) = %q, want %q", tt.before, got, tt.want)
		}
	}
}

// TestBacklogMarker: catch-up messages come under one marker per room,
// with history timestamps, before the live message that follows them.
func TestBacklogMarker(t *testing.T) {
	rr := startRunning(t, nil)
	p := rr.f.peer
	yesterday := fixedNow.Add(-24 * time.Hour)
	// Kept in the order the node delivered them (the room's order, which
	// in total and sequencer rooms need not be send-time order).
	for _, i := range []int{1, 3, 2} {
		p.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: yesterday.Add(time.Duration(i) * time.Minute), Room: "lobby",
			From: "bob", FromID: "p-bob-0002", ID: fmt.Sprintf("p-bob-0002/%d", i), Text: fmt.Sprintf("old %d", i), Backlog: true})
	}
	p.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "lobby", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/4", Text: "live now"})
	rr.line("/echo sync", "live now")
	want := "-- 3 messages from while you were away --\n" +
		"[2026-11-20 10:01:00] <bob> old 1\n[2026-11-20 10:03:00] <bob> old 3\n[2026-11-20 10:02:00] <bob> old 2\n" +
		"[10:00:00] <bob> live now\n"
	if got := rr.f.out.String(); !strings.Contains(got, want) {
		t.Errorf("output:\n%s\nwant it to contain:\n%s", got, want)
	}
}

// TestHeldOwnMessage: an own message held back by a total room's order is
// shown at once as pending; when its turn comes a short line says so;
// a held event after the message itself shows nothing.
func TestHeldOwnMessage(t *testing.T) {
	rr := startRunning(t, func(c *repl.Config) { c.EchoOwn = false }) // as the chat peer: own messages come as events
	p := rr.f.peer
	own := hearsay.Event{Time: fixedNow, Room: "ops", From: "alice", FromID: "p-alice-0001", Self: true}
	held, msg := own, own
	held.Type, held.ID, held.Text, held.State = hearsay.EventHeld, "p-alice-0001/1", "first", hearsay.StatePending
	msg.Type, msg.ID, msg.Text = hearsay.EventMessage, "p-alice-0001/1", "first"
	p.Emit(held)
	p.Emit(msg)
	late, lateMsg := own, own
	late.Type, late.ID, late.Text = hearsay.EventHeld, "p-alice-0001/2", "second"
	lateMsg.Type, lateMsg.ID, lateMsg.Text = hearsay.EventMessage, "p-alice-0001/2", "second"
	p.Emit(lateMsg)
	p.Emit(late)
	p.Emit(hearsay.Event{Type: hearsay.EventSystem, Text: "end"})
	waitFor(t, 5*time.Second, "the end", func() bool { return strings.Contains(rr.f.out.String(), "end\n") })
	got := rr.f.out.String()
	want := "[10:00:00] #ops <alice> first (pending)\n[10:00:00] * to #ops: \"first\" in order\n[10:00:00] #ops <alice> second\nend\n"
	if !strings.Contains(got, want) {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}
