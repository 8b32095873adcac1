package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestFailedCommandExitCodes: a failed REPL command of --script or of
// piped input makes hearsay exit 1 (stopping at the first one unless
// --keep-going), a clean run exits 0, and `bootstrap join|refill` of a
// contact the service did not store exits 1. Each runs a whole peer
// against a real bootstrap server.
func TestFailedCommandExitCodes(t *testing.T) {
	srv := startServer(t, "")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.txt")
	writeFile(t, bad, "/echo before\n/nosuch\n/echo after\n")
	good := filepath.Join(dir, "good.txt")
	writeFile(t, good, "# a comment\n/echo fine\n")
	tests := []struct {
		name    string
		args    []string
		in      string
		code    int
		want    []string // in stdout+stderr
		notWant []string
	}{
		{"script-unknown-command", []string{"--script", bad}, "", 1,
			[]string{"before", "unknown command /nosuch", "stopped at the first failed command"}, []string{"after"}},
		{"script-keep-going", []string{"--script", bad, "--keep-going"}, "", 1,
			[]string{"before", "after", "bad.txt: 1 of 3 commands failed"}, nil},
		{"script-clean", []string{"--script", good}, "", 0, []string{"fine"}, nil},
		{"stdin-unknown-command", nil, "/nosuch\n/echo after\n", 1,
			[]string{"unknown command /nosuch", "input: stopped at the first failed command"}, []string{"after"}},
		{"stdin-keep-going", []string{"--keep-going"}, "/nosuch\n/echo after\n", 1,
			[]string{"after", "input: 1 of 2 commands failed"}, nil},
		{"stdin-clean", nil, "/echo fine\n", 0, []string{"fine"}, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--nick", "ex" + string(rune('a'+i)), "--bootstrap", srv.URL(), "--profile", "local",
				"--data-dir", t.TempDir()}, tt.args...)
			code, out := runCLIInput(t, tt.in, args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q, which must not have run:\n%s", w, out)
				}
			}
		})
	}

	// A full service: the fourth join is not stored, and says so with
	// status 1 (also with --json, after printing the answer); a refill
	// newer than every stored contact likewise.
	env := map[string]string{"BOOTSTRAP_DATA_SERVER": srv.URL()}
	for _, id := range []string{"p1", "p2", "p3"} {
		if code, out, errOut := runCLI(t, env, "bootstrap", "join", id, "127.0.0.1:7946"); code != 0 {
			t.Fatalf("join %s: %d %s %s", id, code, out, errOut)
		}
	}
	for _, args := range [][]string{
		{"bootstrap", "join", "p4", "127.0.0.1:7946"},
		{"bootstrap", "join", "p4", "127.0.0.1:7946", "--json"},
		{"bootstrap", "refill", "p4", "127.0.0.1:7946"},
	} {
		code, out, errOut := runCLI(t, env, args...)
		if code != 1 || !strings.Contains(errOut, "p4 not stored") {
			t.Errorf("%v: code %d, out %q, err %q; want 1 and %q", args, code, out, errOut, "p4 not stored")
		}
		if strings.Contains(strings.Join(args, " "), "--json") && !strings.Contains(out, `"stored": false`) {
			t.Errorf("--json must still print the answer: %q", out)
		}
	}
}

// runCLIInput runs the command tree in-process with in as standard input
// and returns the exit code and the combined output.
func runCLIInput(t *testing.T, in string, args ...string) (int, string) {
	t.Helper()
	var out syncWriter
	streams := &ioStreams{In: strings.NewReader(in), Out: &out, ErrOut: &out, Getenv: func(string) string { return "" }}
	code := run(args, streams)
	return code, out.String()
}

// TestBuiltBinaryExitStatus runs the built hearsay as a shell would:
// `printf '/nosuch\n' | hearsay` must exit with status 1, and with 0
// when every command succeeds.
func TestBuiltBinaryExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "hearsay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build hearsay: %v\n%s", err, out)
	}
	srv := startServer(t, "")
	for _, tc := range []struct {
		in   string
		code int
	}{
		{"/nosuch\n", 1},
		{"/echo fine\n", 0},
	} {
		cmd := exec.Command(bin, "--nick", "bin", "--bootstrap", srv.URL(), "--profile", "local", "--data-dir", t.TempDir())
		cmd.Stdin = strings.NewReader(tc.in)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run hearsay: %v", err)
		}
		if code != tc.code {
			t.Errorf("printf %q | hearsay: exit status %d, want %d; output:\n%s", tc.in, code, tc.code, out)
		}
	}
}

// syncWriter collects output written by the peer's goroutines and read by
// the test.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
