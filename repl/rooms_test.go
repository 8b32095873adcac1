package repl_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
	"github.com/hearsay-chat/hearsay/repl/repltest"
)

// setupRooms gives the fixture's fake peer rooms and fault injection:
// #lobby (alice, bob), #games known from gossip but not joined.
func setupRooms(c *repl.Config) {
	p := c.Peer.(*repltest.Peer)
	p.SetClock(func() time.Time { return fixedNow })
	p.AddRoom("lobby", hearsay.OrderCausal, true, "p-alice-0001", "p-bob-0002")
	p.AddRoom("games", hearsay.OrderSequencer, false, "p-bob-0002", "p-bobby-0003")
	p.EnableFaults(repl.FaultSettings{})
	c.Rooms, c.Faults = p, p
}

func TestRoomMessagesShowTheirRoom(t *testing.T) {
	f := newFixture(t, setupRooms)
	ctx := context.Background()
	if err := f.r.Exec(ctx, "/join #dev"); err != nil {
		t.Fatal(err)
	}
	if got := f.r.Room(); got != "dev" {
		t.Fatalf("current room after /join = %q, want dev", got)
	}
	f.out.Reset()
	// Input stays open until both events are printed, so the event pump
	// runs for the whole test.
	in, inW := io.Pipe()
	r, err := repl.New(f.r.Config(), repl.IOStreams{In: in, Out: f.out, ErrOut: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetRoom("dev")
	f.peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "dev", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/1", Text: "here"})
	f.peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "lobby", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/2", Text: "elsewhere"})
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, 5*time.Second, "both messages", func() bool { return strings.Contains(f.out.String(), "elsewhere") })
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	got := f.out.String()
	for _, w := range []string{"[10:00:00] <bob> here\n", "[10:00:00] #lobby <bob> elsewhere\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}

func TestRooms(t *testing.T) {
	yesterday := fixedNow.Add(-24 * time.Hour)
	tests := []struct {
		name    string
		setup   func(t *testing.T, f *fixture)
		lines   []string // run in order; the last one is checked
		wantErr string
		want    []string
		notWant []string
		room    string // current room afterwards ("" = not checked)
	}{
		{name: "join selects the room", lines: []string{"/join #dev", "hi"}, room: "dev",
			want: []string{"<alice> hi"}},
		{name: "message goes to the current room", lines: []string{"/join #dev --order fifo", "hi"},
			want: []string{"<alice> hi"}, notWant: []string{"#dev <alice>"}},
		{name: "join alias", lines: []string{"/j #dev"}, room: "dev", want: []string{"joined #dev (ordering causal"}},
		{name: "order before room", lines: []string{"/join -o sequencer #seq"}, want: []string{"ordering sequencer"}},
		{name: "order is case-insensitive", lines: []string{"/join #t --order TOTAL"}, want: []string{"ordering total"}},
		{name: "gossiped room keeps its mode", lines: []string{"/join #games"}, want: []string{"ordering sequencer, 3 members"}},
		{name: "gossiped room refuses another mode", lines: []string{"/join #games --order fifo"},
			wantErr: "join #games: room #games has ordering sequencer, not fifo", room: "lobby"},
		{name: "join failure keeps the room", lines: []string{"/join #games --order causal"}, wantErr: "join #games", room: "lobby"},
		{name: "switch back", lines: []string{"/join #dev", "/switch lobby"}, room: "lobby", want: []string{"now talking in #lobby"}},
		{name: "switch to a room not joined", lines: []string{"/switch #games"}, wantErr: "/join #games first", room: "lobby"},
		{name: "part another room keeps the current", lines: []string{"/join #dev", "/switch #lobby", "/part #dev"},
			room: "lobby", want: []string{"left #dev\n"}},
		{name: "part the current room", lines: []string{"/join #dev", "/part"}, room: "lobby",
			want: []string{"left #dev; now talking in #lobby"}},
		{name: "part the lobby falls back to a joined room", lines: []string{"/join #dev", "/switch #lobby", "/part"},
			room: "dev", want: []string{"left #lobby; now talking in #dev"}},
		{name: "history of the current room only", lines: []string{"in lobby", "/join #dev", "in dev", "/history"},
			want: []string{"-- last 1 message of #dev --", "<alice> in dev"}, notWant: []string{"in lobby"}},
		{name: "history limit", lines: []string{"one", "two", "three", "/history 2"},
			want: []string{"-- last 2 messages of #lobby --\n[10:00:00] <alice> two\n[10:00:00] <alice> three\n-- end of history --"}},
		{name: "history from another day has its date",
			setup: func(t *testing.T, f *fixture) {
				if err := f.peer.AddHistory(hearsay.Event{Time: yesterday, Room: "lobby", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/1", Text: "old"}); err != nil {
					t.Fatal(err)
				}
			},
			lines: []string{"/history"}, want: []string{"[2026-11-20 10:00:00] <bob> old"}},
		{name: "empty history", lines: []string{"/join #new", "/history"}, want: []string{"no messages in #new yet"}},
		{name: "history too many", lines: []string{"/history 10001"}, wantErr: "bad count"},
		{name: "stats lists held-back messages",
			setup: func(t *testing.T, f *fixture) {
				f.peer.AddRoom("ops", hearsay.OrderTotal, true, "p-alice-0001")
				held := []string{"b/2 waits for b/1", "b/3 waits for b/1", "b/4", "b/5", "b/6", "b/7", "b/8"}
				if err := f.peer.SetHeldBack("ops", held...); err != nil {
					t.Fatal(err)
				}
			},
			lines: []string{"/stats"},
			want: []string{"#ops    total   7         0          7", "held back (received, waiting for their ordering condition):",
				"  #ops: b/2 waits for b/1\n", "  #ops: b/6\n", "  #ops: … and 2 more"},
			notWant: []string{"b/7"}},
		{name: "rooms marks the current room", lines: []string{"/join #dev", "/rooms"},
			want: []string{"* #dev ", "  #lobby ", "3 rooms, 2 joined"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, setupRooms)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			var err error
			for i, l := range tt.lines {
				if i == len(tt.lines)-1 {
					f.out.Reset()
				}
				err = f.r.Exec(context.Background(), l)
				if i < len(tt.lines)-1 && err != nil {
					t.Fatalf("%q: %v", l, err)
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			got := f.out.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
			if tt.room != "" && f.r.Room() != tt.room {
				t.Errorf("current room %q, want %q", f.r.Room(), tt.room)
			}
		})
	}
}

// TestRoomErrorsNameTheRoomOnce: the chat peer names the room in its
// errors; the REPL must not add the same prefix again.
func TestRoomErrorsNameTheRoomOnce(t *testing.T) {
	for _, tc := range []struct{ line, prefix string }{
		{"/join #games --order fifo", "join #games"},
	} {
		f := newFixture(t, setupRooms)
		err := f.r.Exec(context.Background(), tc.line)
		if err == nil {
			t.Fatalf("%s: no error", tc.line)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, tc.prefix+": ") || strings.Count(msg, tc.prefix) != 1 {
			t.Errorf("%s: error %q, want %q once at the start", tc.line, msg, tc.prefix)
		}
	}
}

func TestRoomCommandsNeedRooms(t *testing.T) {
	f := newFixture(t, nil) // no Config.Rooms, no Config.Faults
	for _, l := range []string{"/join #dev", "/rooms", "/history", "/fault show"} {
		if err := f.r.Exec(context.Background(), l); err == nil || !strings.Contains(err.Error(), "unknown command") {
			t.Errorf("%s without rooms: error %v, want unknown command", l, err)
		}
	}
	if s := f.r.Complete("/jo"); len(s) != 0 {
		t.Errorf("completion offers %v without rooms", s)
	}
}

func TestFaultsOff(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) {
		p := c.Peer.(*repltest.Peer)
		c.Faults = p // available but not enabled at start
	})
	ctx := context.Background()
	if err := f.r.Exec(ctx, "/fault show"); err != nil || !strings.Contains(f.out.String(), "fault injection is off") {
		t.Errorf("/fault show: %v, output %q", err, f.out.String())
	}
	for _, l := range []string{"/fault partition bob", "/fault heal", "/fault drop 0.1"} {
		if err := f.r.Exec(ctx, l); err == nil || !strings.Contains(err.Error(), "start hearsay with --faults") {
			t.Errorf("%s with faults off: %v", l, err)
		}
	}
}

func TestRoomCompletion(t *testing.T) {
	f := newFixture(t, setupRooms)
	if err := f.r.Exec(context.Background(), "/join #dev"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		before string
		want   []string
	}{
		{"/jo", []string{"/join"}},
		{"/join ", []string{"#dev", "#games", "#lobby"}},
		{"/join #g", []string{"#games"}},
		{"/join #dev -", []string{"--order"}},
		{"/join #dev --order ", []string{"causal", "fifo", "total", "sequencer"}},
		{"/join #dev --order s", []string{"sequencer"}},
		{"/join --order=t", []string{"--order=total"}},
		{"/join --order fifo ", []string{"#dev", "#games", "#lobby"}},
		{"/join #dev --order fifo ", nil},
		{"/switch ", []string{"#dev", "#lobby"}},
		{"/part #l", []string{"#lobby"}},
		{"/part #dev ", nil},
		{"/history ", []string{"20", "50", "100"}},
		{"/fault ", []string{"show", "partition", "heal", "drop", "delay", "jitter"}},
		{"/fault partition bob ", []string{"bobby"}},
	}
	for _, tt := range tests {
		var got []string
		for _, s := range f.r.Complete(tt.before) {
			got = append(got, s.Text)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Complete(%q) = %q, want %q", tt.before, got, tt.want)
		}
	}
}

func TestParsers(t *testing.T) {
	rooms := []struct {
		in, want string
		ok       bool
	}{
		{"#dev", "dev", true}, {"dev", "dev", true}, {"#Dev.Ops_1-x", "dev.ops_1-x", true},
		{"#", "", false}, {"", "", false}, {"#a b", "", false}, {"#é", "", false},
		{"#" + strings.Repeat("a", 64), strings.Repeat("a", 64), true}, {"#" + strings.Repeat("a", 65), "", false},
	}
	for _, tt := range rooms {
		got, err := repl.ParseRoom(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseRoom(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	ratios := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0", 0, true}, {"0.2", 0.2, true}, {"1", 1, true}, {"20%", 0.2, true}, {"100%", 1, true},
		{"1.01", 0, false}, {"-0.1", 0, false}, {"101%", 0, false}, {"NaN", 0, false}, {"x", 0, false}, {"", 0, false},
	}
	for _, tt := range ratios {
		got, err := repl.ParseDropRatio(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDropRatio(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	delays := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true}, {"50ms", 50 * time.Millisecond, true}, {"1m", time.Minute, true},
		{"61s", 0, false}, {"-1ms", 0, false}, {"soon", 0, false},
	}
	for _, tt := range delays {
		got, err := repl.ParseFaultDelay(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseFaultDelay(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if _, err := repl.ParseOrder("lamport"); err == nil {
		t.Error("ParseOrder(lamport) accepted an unknown mode")
	}
}

func TestLateMessage(t *testing.T) {
	for _, json := range []bool{false, true} {
		f := newFixture(t, func(c *repl.Config) { c.JSON = json })
		f.r.Notify(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "lobby", From: "bob", FromID: "p-bob-0002",
			ID: "p-bob-0002/9", Text: "from across the partition", Late: true})
		want := "[10:00:00] <bob> (late) from across the partition\n"
		if json {
			want = `"text":"from across the partition","late":true}`
		}
		if got := f.out.String(); !strings.Contains(got, want) {
			t.Errorf("json=%v: got %q, want %q", json, got, want)
		}
	}
}

// FuzzRoomCommands feeds arbitrary lines to a REPL with rooms: nothing
// panics, every error is printed, the current room is always a valid room
// name, and a failed command never changes it.
func FuzzRoomCommands(f *testing.F) {
	for _, s := range []string{"/join #dev", "/join #dev --order total", "/join --order=fifo #x", "/join #a #b", "/join -o",
		"/part", "/part #games", "/switch #lobby", "/switch x", "/rooms", "/history 3", "/history -1", "/j #Ü",
		"/fault partition bob", "/fault drop 50%", "/fault delay 1h", "/fault heal", "hello", "/join #" + strings.Repeat("z", 70)} {
		f.Add(s)
	}
	fx := newFixture(f, setupRooms)
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "/log on") || strings.Contains(line, "/config save") || strings.Contains(line, "/exec") {
			return // would touch files
		}
		before := fx.r.Room()
		fx.out.Reset()
		err := fx.r.Exec(context.Background(), line)
		if err != nil && err != repl.ErrQuit {
			if !strings.Contains(fx.out.String(), "error: ") {
				t.Fatalf("Exec(%q) = %v but printed no error: %q", line, err, fx.out.String())
			}
			if after := fx.r.Room(); after != before {
				t.Fatalf("Exec(%q) failed (%v) but changed the room from %q to %q", line, err, before, after)
			}
		}
		if _, err := repl.ParseRoom(fx.r.Room()); err != nil {
			t.Fatalf("after %q the current room %q is not a valid room: %v", line, fx.r.Room(), err)
		}
		_ = fx.r.Complete(line)
	})
}

// historyErrRooms is the fake's rooms with a History that fails as the
// chat peer's does, naming the room in its own words.
type historyErrRooms struct {
	*repltest.Peer
	err error
}

func (h historyErrRooms) History(string, int) ([]hearsay.Event, error) { return nil, h.err }

// Issue 13, bug 8: the chat peer names the room in its errors ("send to
// #x: …", "history #x: …"); the REPL's own context must replace, not
// repeat, it, and the error must still unwrap to the peer's.
func TestErrorsDoNotRepeatTheirContext(t *testing.T) {
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name  string
		setup func(*fixture)
		line  string
		want  string
	}{
		{"send", func(f *fixture) {
			f.peer.SetSendError(fmt.Errorf("send to #lobby: the message log cannot sync to disk: %w", errDisk))
		}, "hello", "message not sent to #lobby: the message log cannot sync to disk: disk on fire"},
		{"send, other wording", func(f *fixture) {
			f.peer.SetSendError(errDisk)
		}, "hello", "message not sent to #lobby: disk on fire"},
		{"history", func(f *fixture) {
			cfg := f.r.Config()
			cfg.Rooms = historyErrRooms{f.peer, fmt.Errorf("history #lobby: %w", errDisk)}
			r, err := repl.New(cfg, repl.IOStreams{In: strings.NewReader(""), Out: f.out, ErrOut: f.out})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Close() })
			f.r = r
		}, "/history", "history of #lobby: disk on fire"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, setupRooms)
			tc.setup(f)
			err := f.r.Exec(context.Background(), tc.line)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !errors.Is(err, errDisk) {
				t.Errorf("%v does not unwrap to the peer's error", err)
			}
		})
	}
}
