package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// testPeer is a whole `hearsay --json` peer run in-process through run(),
// with a pipe for its input and its events parsed as they arrive.
type testPeer struct {
	t    *testing.T
	nick string
	in   *io.PipeWriter
	done chan int

	mu     sync.Mutex
	events []hearsay.Event
	bad    []string
}

func spawnPeer(t *testing.T, bootstrapURL, nick string, extra ...string) *testPeer {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &testPeer{t: t, nick: nick, in: inW, done: make(chan int, 1)}
	dir := t.TempDir()
	// --keep-going: the tests drive a long-lived peer through its input
	// and some commands fail on purpose; a failure must not end it.
	args := append([]string{"--nick", nick, "--bootstrap", bootstrapURL, "--profile", "local",
		"--data-dir", filepath.Join(dir, nick), "--json", "--keep-going"}, extra...)
	streams := &ioStreams{In: inR, Out: outW, ErrOut: outW, Getenv: func(string) string { return "" }}
	go func() {
		code := run(args, streams)
		outW.Close()
		p.done <- code
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev hearsay.Event
			p.mu.Lock()
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				p.bad = append(p.bad, sc.Text())
			} else {
				p.events = append(p.events, ev)
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.in.Close() // end of input: the peer leaves and exits
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not exit after end of input", nick)
		}
	})
	return p
}

func (p *testPeer) send(line string) {
	p.t.Helper()
	if _, err := fmt.Fprintln(p.in, line); err != nil {
		p.t.Fatalf("%s: write %q: %v", p.nick, line, err)
	}
}

// find returns the first event matching fn.
func (p *testPeer) find(fn func(hearsay.Event) bool) (hearsay.Event, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range p.events {
		if fn(ev) {
			return ev, true
		}
	}
	return hearsay.Event{}, false
}

func (p *testPeer) count(fn func(hearsay.Event) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ev := range p.events {
		if fn(ev) {
			n++
		}
	}
	return n
}

func (p *testPeer) waitEvent(what string, fn func(hearsay.Event) bool) hearsay.Event {
	p.t.Helper()
	var ev hearsay.Event
	if !chattest.Poll(15*time.Second, func() bool {
		var ok bool
		ev, ok = p.find(fn)
		return ok
	}) {
		p.t.Fatalf("timed out waiting for %s: %s; its last events:\n%s", p.nick, what, p.lastEvents(30))
	}
	return ev
}

// lastEvents formats the peer's last n events, for a failure message.
func (p *testPeer) lastEvents(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, ev := range p.events[max(0, len(p.events)-n):] {
		fmt.Fprintf(&b, "  %s from=%q text=%q\n", ev.Type, ev.From, ev.Text)
	}
	return b.String()
}

func isSystem(sub string) func(hearsay.Event) bool {
	return func(ev hearsay.Event) bool { return ev.Type == "system" && strings.Contains(ev.Text, sub) }
}

func isMessage(text string) func(hearsay.Event) bool {
	return func(ev hearsay.Event) bool { return ev.Type == "message" && ev.Text == text }
}

// TestGroupOfThreeChats runs three whole peers (flags, discovery, chat,
// REPL in line mode with --json) against a real bootstrap server.
func TestGroupOfThreeChats(t *testing.T) {
	srv := startServer(t, "")
	start := time.Now()
	alice := spawnPeer(t, srv.URL(), "alice")
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob")
	carol := spawnPeer(t, srv.URL(), "carol")
	for _, p := range []*testPeer{bob, carol} {
		p.waitEvent("joined through the bootstrap contacts", isSystem("joined the group through"))
	}
	peers := []*testPeer{alice, bob, carol}
	for _, p := range peers {
		waitFor(t, p.nick+": two joins", func() bool { return p.count(func(e hearsay.Event) bool { return e.Type == "join" }) >= 2 })
	}
	// Each peer's agent signs its registration with the chat identity
	// (identitySigner wired in runPeer), so nobody else can remove it.
	waitFor(t, "three signed contacts", func() bool {
		c, err := bootstrapapi.NewClient([]string{srv.URL()})
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.List(context.Background(), 0)
		if err != nil || len(l.Peers) != 3 {
			return false
		}
		for _, p := range l.Peers {
			if !p.Signed {
				t.Fatalf("contact %+v is not signed", p)
			}
		}
		return true
	})
	alice.send("hello from alice")
	for _, p := range peers {
		ev := p.waitEvent("alice's message", isMessage("hello from alice"))
		if ev.From != "alice" || ev.Room != "lobby" || !strings.HasSuffix(ev.ID, "/1") || ev.FromID == "" {
			t.Errorf("%s got %+v", p.nick, ev)
		}
	}
	t.Logf("process start to first message delivered in a group of 3: %s", time.Since(start).Round(time.Millisecond))
	bob.send("hi from bob")
	carol.send("and carol")
	for _, p := range peers {
		p.waitEvent("bob's message", isMessage("hi from bob"))
		p.waitEvent("carol's message", isMessage("and carol"))
	}
	// Commands run through the same dispatcher; output is a system event.
	bob.send("/who")
	bob.waitEvent("/who output", isSystem("3 in the group"))
	// carol quits: the others see her leave, and she leaves the service.
	carol.send("/quit")
	select {
	case code := <-carol.done:
		carol.done <- code
		if code != 0 {
			t.Errorf("carol exited with %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("carol did not exit on /quit")
	}
	for _, p := range []*testPeer{alice, bob} {
		p.waitEvent("carol left", func(ev hearsay.Event) bool { return ev.Type == "leave" && ev.From == "carol" })
	}
	waitFor(t, "carol to leave the bootstrap service", func() bool {
		code, out, _ := runCLI(t, map[string]string{"BOOTSTRAP_DATA_SERVER": srv.URL()}, "bootstrap", "list")
		return code == 0 && strings.Contains(out, "2 live contacts")
	})
	for _, p := range peers {
		if n := p.count(isMessage("hello from alice")); n != 1 {
			t.Errorf("%s saw alice's message %d times", p.nick, n)
		}
		p.mu.Lock()
		if len(p.bad) > 0 {
			t.Errorf("%s printed non-JSON lines in --json mode: %q", p.nick, p.bad)
		}
		p.mu.Unlock()
	}
}

func TestPeerFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--nick", "bad nick!"}, "--nick"},
		{[]string{"--profile", "fast"}, "--profile"},
		{[]string{"--color", "rainbow"}, "--color"},
		{[]string{"--script", filepath.Join(os.TempDir(), "no-such-hearsay-script.txt")}, "--script"},
		{[]string{"--nick", "x", "--bootstrap", "not a url", "--data-dir", "DIR"}, "--bootstrap"},
		{[]string{"stray-argument"}, "unknown command"},
	}
	for _, tt := range tests {
		args := tt.args
		for i, a := range args {
			if a == "DIR" {
				args[i] = t.TempDir()
			}
		}
		code, _, errOut := runCLI(t, nil, args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestClusterKeyMismatchIsClear(t *testing.T) {
	srv := startServer(t, "")
	alice := spawnPeer(t, srv.URL(), "alice", "--cluster-key", "one secret")
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob", "--cluster-key", "another secret")
	var code int
	select {
	case code = <-bob.done:
		bob.done <- code
	case <-time.After(30 * time.Second):
		t.Fatal("bob with the wrong key did not give up")
	}
	if code == 0 {
		t.Errorf("bob with the wrong cluster key exited 0")
	}
	// The fatal error goes to stderr as text (here merged into the pipe).
	waitFor(t, "an error naming the cluster key", func() bool {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		for _, line := range bob.bad {
			if strings.HasPrefix(line, "hearsay: ") && strings.Contains(strings.ToLower(line), "cluster key") {
				t.Logf("bob: %s", line)
				return true
			}
		}
		return false
	})
}

// The cluster passphrase comes from the flag, a file or the environment;
// bad sources are clear errors.
func TestClusterKeySources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("key", "open sesame\r\nsecond line ignored\n")
	env := func(v string) *ioStreams {
		return &ioStreams{Getenv: func(k string) string {
			if k == clusterKeyEnv {
				return v
			}
			return ""
		}}
	}
	tests := []struct {
		name    string
		o       peerOpts
		env     string
		want    string
		wantErr string
	}{
		{"flag", peerOpts{clusterKey: "flag key"}, "env key", "flag key", ""},
		{"file", peerOpts{clusterKeyFile: good}, "env key", "open sesame", ""},
		{"environment", peerOpts{}, "env key", "env key", ""},
		{"none", peerOpts{}, "", "", ""},
		{"both flags", peerOpts{clusterKey: "a", clusterKeyFile: good}, "", "", "give one"},
		{"missing file", peerOpts{clusterKeyFile: filepath.Join(dir, "nope")}, "", "", "no such file"},
		{"empty file", peerOpts{clusterKeyFile: write("empty", "\n")}, "", "", "first line is empty"},
		{"huge file", peerOpts{clusterKeyFile: write("huge", strings.Repeat("k", maxPassphraseBytes+1))}, "", "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			err := o.completeClusterKey(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.clusterKey != tt.want {
				t.Errorf("passphrase %q, want %q", o.clusterKey, tt.want)
			}
		})
	}
}
