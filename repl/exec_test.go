package repl_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
)

func TestExec(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "ml.json")
	badJSON := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badJSON, []byte("{nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		manual  bool
		lines   []string // run in order; the last one is checked
		wantErr string   // substring of the returned error ("" = none)
		want    []string // substrings of the output of the last line
		notWant []string
		check   func(t *testing.T, f *fixture)
	}{
		{name: "message", lines: []string{"hello there"}, want: []string{"[10:00:00] <alice> hello there\n"},
			check: func(t *testing.T, f *fixture) {
				if got := f.peer.SentMessages(); len(got) != 1 || got[0].Room != "lobby" || got[0].Text != "hello there" {
					t.Errorf("sent %+v, want one message to lobby", got)
				}
			}},
		{name: "double slash sends a slash", lines: []string{"//shrug"}, want: []string{"<alice> /shrug"}},
		{name: "blank line does nothing", lines: []string{"   "}, check: func(t *testing.T, f *fixture) {
			if f.out.String() != "" || len(f.peer.SentMessages()) != 0 {
				t.Errorf("blank line printed %q / sent %v", f.out.String(), f.peer.SentMessages())
			}
		}},
		{name: "message too long", lines: []string{strings.Repeat("x", repl.MaxMessageBytes+1)},
			wantErr: "limit is 65536 bytes", want: []string{"error: message not sent: it is 65537 bytes"},
			check: func(t *testing.T, f *fixture) {
				if len(f.peer.SentMessages()) != 0 {
					t.Error("an oversized message reached the peer")
				}
			}},
		{name: "message at the limit", lines: []string{strings.Repeat("y", repl.MaxMessageBytes)}, want: []string{"<alice> yyy"}},
		{name: "unknown command", lines: []string{"/frobnicate"}, wantErr: "unknown command /frobnicate",
			want: []string{"error: unknown command /frobnicate; type /help for the list"}},
		{name: "unknown command with hint", lines: []string{"/nic"}, wantErr: "did you mean /nick?"},
		{name: "missing argument shows usage", lines: []string{"/ping"}, wantErr: "missing argument",
			want: []string{"usage: /ping NICK", "(see /help ping)"}},
		{name: "too many arguments", lines: []string{"/health now"}, wantErr: "too many arguments", want: []string{"usage: /health"}},
		{name: "ping", lines: []string{"/ping bob"}, want: []string{"pong from bob in 1.5ms"}},
		{name: "ping unknown", lines: []string{"/ping zed"}, wantErr: `ping zed: no member "zed"`},
		{name: "subcommand missing", lines: []string{"/kv"}, wantErr: "/kv needs a subcommand",
			want: []string{"usage: /kv set KEY VALUE\n       /kv del KEY\n       /kv list"}},
		{name: "subcommand unknown", lines: []string{"/kv frob"}, wantErr: `unknown subcommand "frob" of /kv`},
		{name: "kv set rest of line", lines: []string{"/kv set color blue sky"}, want: []string{"color = blue sky"},
			check: func(t *testing.T, f *fixture) {
				if got := f.peer.KVList()["color"]; got != "blue sky" {
					t.Errorf("kv color = %q, want %q", got, "blue sky")
				}
			}},
		{name: "kv quotes", lines: []string{`/kv set 'a b' "c \"d\""`}, want: []string{`a b = c "d"`}},
		{name: "kv unterminated quote", lines: []string{"/kv set x 'oops"}, wantErr: "unterminated quote", want: []string{"usage: /kv set KEY VALUE"}},
		{name: "kv list", lines: []string{"/kv set b 2", "/kv set a 1", "/kv list"}, want: []string{"a = 1\nb = 2\n"}},
		{name: "kv del missing", lines: []string{"/kv del nope"}, wantErr: `kv del nope: no key "nope"`},
		{name: "nick show", lines: []string{"/nick"}, want: []string{"you are alice (p-alice-0001)"}},
		{name: "nick change", lines: []string{"/nick alicia"}, want: []string{"you are now known as alicia"}},
		{name: "nick invalid", lines: []string{"/nick 'two words'"}, wantErr: "change nick: invalid nick"},
		{name: "who", lines: []string{"/who"}, want: []string{"3 in the group: alice, bob, bobby"}},
		{name: "members", lines: []string{"/members"}, want: []string{"4 members", "alice (you)", "dave", "dead", "127.0.0.1:7951"}},
		{name: "health", lines: []string{"/health"}, want: []string{"health score 0 (healthy; lower is better)"}},
		{name: "stats", lines: []string{"hi", "/stats"}, want: []string{"sent  ", "members  ", "health score  "}},
		{name: "sleep bad", lines: []string{"/sleep soon"}, wantErr: `bad duration "soon"`},
		{name: "sleep negative", lines: []string{"/sleep -1s"}, wantErr: "bad duration"},
		{name: "sleep too long", lines: []string{"/sleep 2h"}, wantErr: "longer than the limit"},
		{name: "sleep", lines: []string{"/sleep 1ms"}},
		{name: "echo keeps spacing", lines: []string{"/echo  two  spaces "}, want: []string{"two  spaces\n"}},
		{name: "help", lines: []string{"/help"}, want: []string{"/ping NICK", "/bootstrap", "/exec FILE"}, notWant: []string{"/ml"}},
		{name: "help manual lists ml", manual: true, lines: []string{"/help"}, want: []string{"/ml"}},
		{name: "help command", lines: []string{"/help kv"}, want: []string{"usage: /kv set KEY VALUE", "del KEY", "broadcast queue"}},
		{name: "help with slash", lines: []string{"/help /quit"}, want: []string{"aliases: /exit"}},
		{name: "help unknown", lines: []string{"/help nope"}, wantErr: "no command /nope"},
		{name: "quit", lines: []string{"/quit"}, wantErr: "quit"},
		{name: "exit alias", lines: []string{"/EXIT"}, wantErr: "quit"},
		{name: "ml hidden outside manual", lines: []string{"/ml start"}, wantErr: "unknown command /ml"},
		{name: "ml start", manual: true, lines: []string{"/ml start"}, want: []string{"memberlist started at 127.0.0.1:7946"}},
		{name: "ml join addrs", manual: true, lines: []string{"/ml start", "/ml join 10.0.0.1:7946 10.0.0.2:7946"},
			want: []string{"joined the group through 2 of 2 contacts"}},
		{name: "ml join via bootstrap", manual: true, lines: []string{"/ml start", "/ml join"},
			want: []string{"you are the first peer"}},
		{name: "ml join before start", manual: true, lines: []string{"/ml join 10.0.0.1:7946"}, wantErr: "memberlist not started"},
		{name: "bootstrap join needs address", lines: []string{"/bootstrap join"}, wantErr: "memberlist is not running"},
		{name: "bootstrap join", manual: true, lines: []string{"/ml start", "/bootstrap join"}, want: []string{"bootstrap join: stored (1 contact stored)"}},
		{name: "bootstrap list", manual: true, lines: []string{"/ml start", "/bs join", "/bootstrap list"},
			want: []string{"1 contact\n", "alice", "127.0.0.1:7946", "10:00:00", "10:01:00"}},
		{name: "bootstrap list bad n", lines: []string{"/bootstrap list -3"}, wantErr: "N must be a whole number"},
		{name: "bootstrap config", lines: []string{"/bootstrap config"}, want: []string{"max_peers=3 min_refill_candidates=10 lease_ttl=1m0s"}},
		{name: "bootstrap config set", lines: []string{"/bootstrap config max_peers=5 lease_ttl=30s"}, want: []string{"max_peers=5 min_refill_candidates=10 lease_ttl=30s"}},
		{name: "bootstrap config bad", lines: []string{"/bootstrap config max_peers=x"}, wantErr: "max_peers must be a whole number"},
		{name: "bootstrap config unknown", lines: []string{"/bootstrap config color=red"}, wantErr: `unknown setting "color"`},
		{name: "bootstrap reset", lines: []string{"/bootstrap reset"}, want: []string{"removed 0 contacts"}},
		{name: "config show", lines: []string{"/config show"}, want: []string{"{\n  \"BindAddr\": \"127.0.0.1\","}},
		{name: "config save and load", lines: []string{"/config save " + cfgFile, "/config load " + cfgFile},
			want: []string{"loaded memberlist config from " + cfgFile}},
		{name: "config load missing", lines: []string{"/config load " + filepath.Join(dir, "missing.json")}, wantErr: "no such file"},
		{name: "config load bad json", lines: []string{"/config load " + badJSON}, wantErr: "not valid JSON"},
		{name: "exec missing", lines: []string{"/exec " + filepath.Join(dir, "missing.txt")}, wantErr: "open script"},
		{name: "exec directory", lines: []string{"/exec " + dir}, wantErr: "is a directory"},
		{name: "log status", lines: []string{"/log"}, want: []string{"logging is off"}},
		{name: "log off when off", lines: []string{"/log off"}, want: []string{"logging is off"}},
		{name: "send error", lines: []string{"/echo x"}, check: func(t *testing.T, f *fixture) {
			f.peer.SetSendError(errors.New("boom"))
			err := f.r.Exec(context.Background(), "hello")
			if err == nil || !strings.Contains(err.Error(), "message not sent to #lobby: boom") {
				t.Errorf("err = %v, want message not sent to #lobby: boom", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *repl.Config) { c.Manual = tc.manual })
			ctx := context.Background()
			var err error
			for i, line := range tc.lines {
				if i == len(tc.lines)-1 {
					f.out.Reset()
				}
				err = f.r.Exec(ctx, line)
				if i < len(tc.lines)-1 && err != nil {
					t.Fatalf("setup line %q: %v", line, err)
				}
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Exec: %v\noutput:\n%s", err, f.out.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Exec error = %v, want it to contain %q", err, tc.wantErr)
			}
			got := f.out.String()
			if tc.wantErr != "" && tc.wantErr != "quit" && !strings.Contains(got, "error: ") {
				t.Errorf("the error was not printed; output:\n%s", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("output does not contain %q; got:\n%s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("output contains %q; got:\n%s", w, got)
				}
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

func TestLogFile(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.log")
	for _, l := range []string{"/log on " + path, "first", "/echo printed", "/log off", "second"} {
		if err := f.r.Exec(ctx, l); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "logging to " + path + "\n[10:00:00] <alice> first\nprinted\n"
	if !strings.HasPrefix(string(data), want) || strings.Contains(string(data), "second") {
		t.Fatalf("log = %q, want it to start with %q and end before \"second\"", data, want)
	}
}

func TestColorAndSanitizedOutput(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) { c.Color = "always"; c.EchoOwn = false })
	f.r.Notify(hearsay.Event{Type: hearsay.EventMessage, From: "ev\x1b[31mil", FromID: "p-x", Text: "hi\x1b]0;pwned\x07 there\nline two\u009b2J\xff"})
	got := f.out.String()
	want := "\x1b[2m[10:00:00] \x1b[0m\x1b[" + repl.NickColor("evil") + "m<evil>\x1b[0m hi there\n" + strings.Repeat(" ", 18) + "line two\uFFFD\n"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if repl.NickColor("bob") != repl.NickColor("bob") || repl.NickColor("") == "" {
		t.Fatal("nick colour is not stable")
	}
}

func TestEventFormats(t *testing.T) {
	f := newFixture(t, nil)
	for _, ev := range []hearsay.Event{
		{Type: hearsay.EventJoin, From: "bob"},
		{Type: hearsay.EventLeave, From: "bob"},
		{Type: hearsay.EventFailed, FromID: "p-carol-000005"},
		{Type: hearsay.EventNick, From: "robert", Text: "bob"},
		{Type: hearsay.EventSystem, Text: "node started"},
		{Type: hearsay.EventError, Text: "3 events dropped"},
		{Type: hearsay.EventKV, From: "carol", Text: "your write a = 99 was superseded by carol's a = 1"},
		{Type: "custom", Text: "something"},
	} {
		f.r.Notify(ev)
	}
	want := "[10:00:00] * bob joined\n[10:00:00] * bob left\n[10:00:00] * p-carol- is unreachable (failed)\n" +
		"[10:00:00] * bob is now known as robert\nnode started\nerror: 3 events dropped\n" +
		"[10:00:00] kv: your write a = 99 was superseded by carol's a = 1\n[10:00:00] * something\n"
	if got := f.out.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestJSONEvents(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) { c.JSON = true })
	ctx := context.Background()
	_ = f.r.Exec(ctx, "hello \x1b[2Jworld")
	_ = f.r.Exec(ctx, "/nope")
	_ = f.r.Exec(ctx, "/echo done")
	want := `{"type":"message","time":"2026-11-21T10:00:00Z","room":"lobby","from":"alice","from_id":"p-alice-0001","id":"p-alice-0001/1","text":"hello world"}` + "\n" +
		`{"type":"error","time":"2026-11-21T10:00:00Z","text":"unknown command /nope; type /help for the list"}` + "\n" +
		`{"type":"system","time":"2026-11-21T10:00:00Z","text":"done"}` + "\n"
	if got := f.out.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestEventPump(t *testing.T) {
	for _, echoOwn := range []bool{false, true} {
		t.Run(map[bool]string{false: "peer-echoes", true: "repl-echoes"}[echoOwn], func(t *testing.T) {
			f := newFixture(t, func(c *repl.Config) {
				c.EchoOwn = echoOwn
				c.Interactive = new(bool)
			})
			f.peer.SetEmitOwn(true)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// Run reads from a pipe so the test controls when input ends.
			r, err := repl.New(f.r.Config(), repl.IOStreams{In: pr, Out: f.out})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			f.peer.Emit(hearsay.Event{Type: hearsay.EventMessage, Time: fixedNow, Room: "lobby", From: "bob", FromID: "p-bob-0002", ID: "p-bob-0002/1", Text: "hi alice"})
			waitFor(t, 5*time.Second, "bob's message", func() bool { return strings.Contains(f.out.String(), "<bob> hi alice") })
			if _, err := pw.WriteString("hello bob\n"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the own message", func() bool { return strings.Contains(f.out.String(), "<alice> hello bob") })
			if _, err := pw.WriteString("/echo marker\n"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the marker", func() bool { return strings.Contains(f.out.String(), "marker") })
			pw.Close()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Run did not end at end of input")
			}
			if n := strings.Count(f.out.String(), "<alice> hello bob"); n != 1 {
				t.Fatalf("own message shown %d times, want 1:\n%s", n, f.out.String())
			}
		})
	}
}

func TestRunStopsOnContext(t *testing.T) {
	f := newFixture(t, nil)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	defer pr.Close()
	r, err := repl.New(f.r.Config(), repl.IOStreams{In: pr, Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when ctx ended")
	}
}

func TestMultilineIndentWideNick(t *testing.T) {
	f := newFixture(t, nil)
	f.r.Notify(hearsay.Event{Type: hearsay.EventMessage, From: "世界", Text: "one\ntwo"})
	want := "[10:00:00] <世界> one\n" + strings.Repeat(" ", 11+6+1) + "two\n"
	if got := f.out.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
