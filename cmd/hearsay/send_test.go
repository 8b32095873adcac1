package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// buildHearsay builds the command into the test's temporary directory.
func buildHearsay(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hearsay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build hearsay: %v\n%s", err, out)
	}
	return bin
}

// apiClient waits for the peer of dataDir to serve its API and returns a
// client of it.
func apiClient(t *testing.T, dataDir string) *api.Client {
	t.Helper()
	var c *api.Client
	waitFor(t, "the API of "+dataDir, func() bool {
		var err error
		c, err = api.Dial(context.Background(), dataDir)
		return err == nil
	})
	return c
}

// scrapeMetrics GETs the peer's /metrics and parses it with Prometheus's
// text parser: the value of each family's first metric (gauges and
// counters without labels).
func scrapeMetrics(t *testing.T, c *api.Client) map[string]float64 {
	t.Helper()
	req, err := http.NewRequest("GET", c.BaseURL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if ms := mf.GetMetric(); len(ms) > 0 {
			switch {
			case ms[0].Gauge != nil:
				out[name] = ms[0].GetGauge().GetValue()
			case ms[0].Counter != nil:
				out[name] = ms[0].GetCounter().GetValue()
			}
		}
	}
	return out
}

// openStreams reads the peer's open event streams from its /metrics.
func openStreams(t *testing.T, c *api.Client) int {
	t.Helper()
	return int(scrapeMetrics(t, c)["hearsay_api_event_streams"])
}

// process is a hearsay command run as a separate process, its output
// collected.
type process struct {
	cmd  *exec.Cmd
	out  syncWriter
	errw syncWriter
	done chan error
}

func startProcess(t *testing.T, bin string, env []string, stdin io.Reader, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.errw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(chattest.DefaultTimeout):
		t.Fatalf("%v did not exit; output:\n%s\n%s", p.cmd.Args, p.out.String(), p.errw.String())
		return -1
	}
}

// runProcess runs a hearsay command to its end.
func runProcess(t *testing.T, bin string, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	p := startProcess(t, bin, env, strings.NewReader(stdin), args...)
	code := p.wait(t)
	return code, p.out.String(), p.errw.String()
}

// tailEvents parses the JSON lines tail printed so far.
func tailEvents(t *testing.T, out string) []hearsay.Event {
	t.Helper()
	var evs []hearsay.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var ev hearsay.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("tail --json printed %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// TestSendAndTailProcesses: `hearsay send` and `hearsay tail`, run as
// separate processes, use a running peer of the profile (found through
// XDG_DATA_HOME and --nick, or --data-dir) without joining the group: the
// other member sees the messages, tail prints them, and both say clearly
// when no peer runs; tail ends when the peer stops.
func TestSendAndTailProcesses(t *testing.T) {
	bin := buildHearsay(t)
	srv := startServer(t, "")
	xdg := t.TempDir()
	aliceDir := filepath.Join(xdg, "hearsay", "alice")
	alice := spawnPeer(t, srv.URL(), "alice", "--data-dir", aliceDir)
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob")
	alice.waitEvent("bob joins", func(ev hearsay.Event) bool { return ev.Type == hearsay.EventJoin })
	c := apiClient(t, aliceDir)
	env := []string{"XDG_DATA_HOME=" + xdg, "HOME=" + t.TempDir()}

	tail := startProcess(t, bin, env, nil, "tail", "--nick", "alice", "--json")
	plain := startProcess(t, bin, env, nil, "tail", "--data-dir", aliceDir, "--room", "#lobby")
	waitFor(t, "both tails connected", func() bool { return openStreams(t, c) == 2 })

	code, _, stderr := runProcess(t, bin, env, "", "send", "--nick", "alice", "hello", "from", "send")
	if code != 0 || !strings.Contains(stderr, "to #lobby") {
		t.Fatalf("send: exit %d, %s", code, stderr)
	}
	code, _, stderr = runProcess(t, bin, env, "piped line 1\npiped line 2\n", "send", "--data-dir", aliceDir, "--room", "lobby")
	if code != 0 {
		t.Fatalf("send from stdin: exit %d, %s", code, stderr)
	}
	bob.waitEvent("the sent message", func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.Text == "hello from send" && ev.From == "alice"
	})
	bob.waitEvent("the piped message", isMessage("piped line 1\npiped line 2"))
	bob.send("hi from bob <b>")
	waitFor(t, "tail --json prints all three", func() bool {
		n := 0
		for _, ev := range tailEvents(t, tail.out.String()) {
			if ev.Type == hearsay.EventMessage && (ev.Text == "hello from send" || ev.Text == "piped line 1\npiped line 2" || ev.Text == "hi from bob <b>") {
				n++
			}
		}
		return n == 3
	})
	waitFor(t, "plain tail prints bob's message", func() bool {
		return strings.Contains(plain.out.String(), "#lobby <bob> hi from bob <b>")
	})
	if alice.count(func(ev hearsay.Event) bool { return ev.Type == hearsay.EventJoin }) != 1 {
		t.Errorf("send or tail joined the group: alice saw joins %v", alice.events)
	}

	// No peer for the profile, a direct message in this build, bad flags.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"send", "--nick", "nobody", "hi"}, 1, "no hearsay peer is running for profile nobody"},
		{[]string{"tail", "--nick", "nobody"}, 1, "no hearsay peer is running for profile nobody"},
		{[]string{"send", "--nick", "alice", "--to", "nosuchpeer", "hi"}, 1, "nobody is called"},
		{[]string{"send", "--nick", "alice", "--room", "#nowhere", "hi"}, 1, "not joined"},
		{[]string{"send", "--nick", "alice", "--room", "a", "--to", "b", "hi"}, 2, "give one"},
		{[]string{"send", "--nick", "alice"}, 2, "nothing to send"},
		{[]string{"send", "--nick", "alice", "--room", "Bad Room", "hi"}, 2, "bad room name"},
	} {
		code, _, stderr := runProcess(t, bin, env, "", tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("hearsay %v: exit %d, %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}

	// A direct message through the running peer (end-to-end encrypted,
	// issue 12): sent, and its ID printed.
	if code, stdout, stderr := runProcess(t, bin, env, "", "send", "--nick", "alice", "--to", "bob", "psst"); code != 0 ||
		!strings.HasPrefix(stderr, "sent ") || !strings.Contains(stderr, " to bob") {
		t.Errorf("hearsay send --to bob: exit %d, stdout %q, stderr %q; want exit 0 and \"sent … to bob\"", code, stdout, stderr)
	}

	// The peer stops: tail says so and exits 1.
	alice.in.Close()
	if code := tail.wait(t); code != 1 || !strings.Contains(tail.errw.String(), "the peer stopped") {
		t.Errorf("tail after the peer stopped: exit %d, %q", code, tail.errw.String())
	}
	if _, err := os.Stat(filepath.Join(aliceDir, api.AddrFile)); !os.IsNotExist(err) {
		t.Errorf("api.addr left behind by a peer that exited: %v", err)
	}
}
