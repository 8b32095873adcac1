package repl_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay/repl"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata")

// TestTranscripts pipes each testdata/*.script through stdin mode and
// compares the output with testdata/*.golden. Names containing "json" run
// with --json, names starting with "manual" in --manual mode, names
// starting with "rooms" or "fault" with the rooms and faults of setupRooms.
func TestTranscripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "*.script"))
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".script")
		t.Run(name, func(t *testing.T) {
			in, err := os.Open(script)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			f := newFixture(t, func(c *repl.Config) {
				// The transcripts show failing commands on purpose.
				c.KeepGoing = true
				c.JSON = strings.Contains(name, "json")
				c.Manual = strings.HasPrefix(name, "manual")
				if strings.HasPrefix(name, "rooms") || strings.HasPrefix(name, "fault") {
					setupRooms(c)
				}
			})
			r, err := repl.New(f.r.Config(), repl.IOStreams{In: in, Out: f.out, ErrOut: f.out})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			err = r.Run(context.Background())
			if err != nil && !errors.Is(err, repl.ErrCommandFailed) {
				t.Fatalf("Run: %v", err)
			}
			got := f.out.String()
			if (err != nil) != strings.Contains(got, "error: ") && !strings.Contains(got, `"type":"error"`) {
				t.Errorf("Run = %v, but the output's errors say otherwise:\n%s", err, got)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestTranscripts -update)", err)
			}
			if got != string(want) {
				t.Errorf("transcript %s differs from %s (go test -run TestTranscripts -update rewrites it)\ngot:\n%s\nwant:\n%s", name, golden, got, want)
			}
		})
	}
}

// TestScriptFile runs Config.ScriptFile before stdin, as --script does.
func TestScriptFile(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "start.txt")
	if err := os.WriteFile(script, []byte("/echo from the script\n/nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	cfg := f.r.Config()
	cfg.ScriptFile = script
	cfg.KeepGoing = true
	r, err := repl.New(cfg, repl.IOStreams{In: strings.NewReader("/echo from stdin\n"), Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// With KeepGoing the input is still read, and the run fails at the end.
	if err := r.Run(context.Background()); !errors.Is(err, repl.ErrCommandFailed) || !strings.Contains(err.Error(), "1 of 2 commands failed") {
		t.Fatalf("Run = %v, want 1 of 2 commands failed", err)
	}
	want := "from the script\nerror: unknown command /nope; type /help for the list\nfrom stdin\n"
	if got := f.out.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	// Without it the failed command stops the run: stdin is not read.
	f.out.Reset()
	cfg.KeepGoing = false
	rs, err := repl.New(cfg, repl.IOStreams{In: strings.NewReader("/echo from stdin\n"), Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if err := rs.Run(context.Background()); !errors.Is(err, repl.ErrCommandFailed) || !strings.Contains(err.Error(), "stopped at the first failed command") {
		t.Fatalf("Run = %v, want stopped at the first failed command", err)
	}
	if got, want := f.out.String(), "from the script\nerror: unknown command /nope; type /help for the list\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}

	cfg.ScriptFile = filepath.Join(dir, "missing.txt")
	r2, err := repl.New(cfg, repl.IOStreams{In: strings.NewReader(""), Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if err := r2.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "open script") {
		t.Fatalf("Run with a missing script = %v, want an open error", err)
	}
}

func TestScriptRecursionBounded(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "loop.txt")
	if err := os.WriteFile(script, []byte("/exec "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	err := f.r.Exec(context.Background(), "/exec "+script)
	if err == nil || !strings.Contains(f.out.String(), "nested more than 8 deep") {
		t.Fatalf("err = %v, output:\n%s", err, f.out.String())
	}
}

func TestLongLines(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) { c.KeepGoing = true })
	long := strings.Repeat("z", repl.MaxMessageBytes+10000)
	in := "/echo before\n" + long + "\n/echo after\nlast line without newline"
	r, err := repl.New(f.r.Config(), repl.IOStreams{In: strings.NewReader(in), Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background()); !errors.Is(err, repl.ErrCommandFailed) {
		t.Fatalf("Run = %v, want the skipped line reported as a failure", err)
	}
	got := f.out.String()
	for _, w := range []string{"before\n", "error: line longer than 69632 bytes skipped\n", "after\n", "<alice> last line without newline\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%.300s", w, got)
		}
	}
	if len(f.peer.SentMessages()) != 1 {
		t.Errorf("sent %d messages, want 1", len(f.peer.SentMessages()))
	}
}

// TestLineModeFailures: piped input stops at the first failed command
// (the rest is not run) and the run fails; with KeepGoing every line runs
// and the run still fails; /quit after a failure still fails; a clean
// input succeeds.
func TestLineModeFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepGoing bool
		script    string // run first via ScriptFile, when set
		in        string
		wantErr   string // "" means success
		wantOut   []string
		notOut    []string
	}{
		{name: "clean", in: "/echo a\n# comment\n/echo b\n", wantOut: []string{"a\n", "b\n"}},
		{name: "stops", in: "/echo a\n/nosuch\n/echo b\n", wantErr: "input: stopped at the first failed command (2 run",
			wantOut: []string{"a\n", "unknown command /nosuch"}, notOut: []string{"b\n"}},
		{name: "keep-going", keepGoing: true, in: "/nosuch\n/echo b\n/alsono\n", wantErr: "input: 2 of 3 commands failed",
			wantOut: []string{"b\n", "unknown command /alsono"}},
		{name: "quit-after-failure", keepGoing: true, in: "/nosuch\n/quit\n/echo b\n", wantErr: "input: 1 of 2 commands failed",
			notOut: []string{"b\n"}},
		{name: "script-quit-after-failure", keepGoing: true, script: "/nosuch\n/quit\n", in: "/echo b\n",
			wantErr: "1 of 2 commands failed", notOut: []string{"b\n"}},
		{name: "script-clean-quit", script: "/echo s\n/quit\n", in: "/nosuch\n", wantOut: []string{"s\n"}},
		{name: "script-ok-input-fails", keepGoing: true, script: "/echo s\n", in: "/nosuch\n", wantErr: "input: 1 of 1 commands failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *repl.Config) {
				c.KeepGoing = tc.keepGoing
				if tc.script != "" {
					c.ScriptFile = filepath.Join(t.TempDir(), "s.txt")
					if err := os.WriteFile(c.ScriptFile, []byte(tc.script), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			})
			r, err := repl.New(f.r.Config(), repl.IOStreams{In: strings.NewReader(tc.in), Out: f.out, ErrOut: f.out})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			err = r.Run(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Run = %v, want success", err)
			case tc.wantErr != "" && (!errors.Is(err, repl.ErrCommandFailed) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Run = %v, want ErrCommandFailed %q", err, tc.wantErr)
			}
			got := f.out.String()
			for _, w := range tc.wantOut {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.notOut {
				if strings.Contains(got, w) {
					t.Errorf("output has %q, which must not have run:\n%s", w, got)
				}
			}
		})
	}
}

// TestBootstrapNotStoredFails: /bootstrap join and refill against a full
// service are failed commands, so a script stops and hearsay exits 1.
func TestBootstrapNotStoredFails(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) { c.Manual = true })
	for _, id := range []string{"x1", "x2", "x3"} {
		f.bs.Add(repl.Contact{ID: id, Addr: "127.0.0.1:1"})
	}
	ctx := context.Background()
	if err := f.r.Exec(ctx, "/ml start"); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"join", "refill"} {
		err := f.r.Exec(ctx, "/bootstrap "+op)
		if err == nil || !strings.Contains(err.Error(), "bootstrap "+op+": not stored") {
			t.Errorf("/bootstrap %s on a full service = %v, want a not-stored error", op, err)
		}
	}
	if !strings.Contains(f.out.String(), "error: bootstrap join: not stored") {
		t.Errorf("the failure must be printed as an error:\n%s", f.out.String())
	}
}
