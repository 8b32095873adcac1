package repl_test

import (
	"context"
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
			if err := r.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			got := f.out.String()
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
	r, err := repl.New(cfg, repl.IOStreams{In: strings.NewReader("/echo from stdin\n"), Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := "from the script\nerror: unknown command /nope; type /help for the list\nfrom stdin\n"
	if got := f.out.String(); got != want {
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
	f := newFixture(t, nil)
	long := strings.Repeat("z", repl.MaxMessageBytes+10000)
	in := "/echo before\n" + long + "\n/echo after\nlast line without newline"
	r, err := repl.New(f.r.Config(), repl.IOStreams{In: strings.NewReader(in), Out: f.out})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
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
