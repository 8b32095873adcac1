package main

// `hearsay peerster`: its flags, and rings of gossipers run as separate
// processes the way the course's test scripts run them (each node knows
// only its successor; client messages injected at three nodes must reach
// all, with the handout's exact output lines). The processes are this
// test binary re-executed as hearsay (TestPeersterHelperProcess), so no
// separate build is needed.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/peerster"
)

func TestNewCmdPeerster(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  peersterOpts
		usage string // a usage error containing this, instead of running
	}{
		{
			name: "handout example",
			args: []string{"-UIPort=10000", "-gossipAddr=127.0.0.1:5000", "-name=nodeA", "-peers=127.0.0.1:5001,10.1.1.7:5002", "-simple"},
			want: peersterOpts{uiPort: "10000", gossipAddr: "127.0.0.1:5000", name: "nodeA", peers: []string{"127.0.0.1:5001", "10.1.1.7:5002"}, simple: true},
		},
		{
			name: "defaults",
			args: []string{"-name=n"},
			want: peersterOpts{uiPort: "8080", gossipAddr: "127.0.0.1:5000", name: "n"},
		},
		{
			name: "space-separated values and double dashes also parse",
			args: []string{"--name", "n", "-UIPort", "9000"},
			want: peersterOpts{uiPort: "9000", gossipAddr: "127.0.0.1:5000", name: "n"},
		},
		{
			name: "hidden drop rate",
			args: []string{"-name=n", "-dropRate=0.2"},
			want: peersterOpts{uiPort: "8080", gossipAddr: "127.0.0.1:5000", name: "n", dropRate: 0.2},
		},
		{
			name: "client",
			args: []string{"client", "-UIPort=10000", "-msg=Hello"},
			want: peersterOpts{client: true, uiPort: "10000", msg: "Hello"},
		},
		{name: "no name", args: []string{"-UIPort=10000"}, usage: "-name"},
		{name: "bad UIPort", args: []string{"-name=n", "-UIPort=http"}, usage: "-UIPort"},
		{name: "bad gossipAddr", args: []string{"-name=n", "-gossipAddr=5000"}, usage: "-gossipAddr"},
		{name: "unknown flag", args: []string{"-name=n", "-bogus"}, usage: "bogus"},
		{name: "stray argument", args: []string{"-name=n", "extra"}, usage: "extra"},
		{name: "drop rate out of range", args: []string{"-name=n", "-dropRate=2"}, usage: "-dropRate"},
		{name: "client without message", args: []string{"client", "-UIPort=10000"}, usage: "-msg"},
		{name: "client has no gossiper flags", args: []string{"client", "-msg=x", "-name=n"}, usage: "name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *peersterOpts
			cmd := newPeersterCmd(testStreams(nil), func(_ context.Context, o *peersterOpts) error {
				got = o
				return nil
			})
			err := execute(cmd, tc.args...)
			if tc.usage != "" {
				if !isUsage(err) || !strings.Contains(err.Error(), tc.usage) {
					t.Fatalf("got error %v, want a usage error about %q", err, tc.usage)
				}
				return
			}
			if err != nil {
				t.Fatalf("execute: %v", err)
			}
			if got == nil {
				t.Fatal("runF not called")
			}
			if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("got %+v, want %+v", *got, tc.want)
			}
		})
	}
}

// The handout's output lines. Every line a gossiper prints must be one of
// them.
var peersterLine = regexp.MustCompile(`^(` +
	`CLIENT MESSAGE .*|` +
	`SIMPLE MESSAGE origin \S+ from \S+ contents .*|` +
	`RUMOR origin \S+ from [0-9.]+:\d+ ID \d+ contents .*|` +
	`MONGERING with [0-9.]+:\d+|` +
	`STATUS from [0-9.]+:\d+( peer \S+ nextID \d+)*|` +
	`FLIPPED COIN sending rumor to [0-9.]+:\d+|` +
	`IN SYNC WITH [0-9.]+:\d+|` +
	`PEERS ([0-9.]+:\d+(,[0-9.]+:\d+)*)?` +
	`)$`)

// helperEnv marks a re-executed test binary that runs hearsay.
const helperEnv = "HEARSAY_TEST_HELPER_PROCESS"

// TestPeersterHelperProcess is not a test: it is the entry point of the
// gossiper processes the ring tests start (the os/exec tests' helper
// process pattern). It runs hearsay with the arguments after "--" and
// exits; it also exits when its standard input closes, so a gossiper
// never outlives the test that started it.
func TestPeersterHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for the ring tests")
	}
	i := slices.Index(os.Args, "--")
	if i < 0 {
		fmt.Fprintln(os.Stderr, "helper process: no arguments after --")
		os.Exit(2)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
	os.Exit(run(os.Args[i+1:], defaultIO()))
}

// gossiperProc is one gossiper process and the lines it printed.
type gossiperProc struct {
	name       string
	gossipAddr string
	uiPort     int
	cmd        *exec.Cmd
	stdin      io.WriteCloser
	stderr     syncWriter
	mu         sync.Mutex
	lines      []string
	done       chan struct{} // closed when stdout is at its end
	exitOnce   sync.Once
}

func (p *gossiperProc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.lines)
}

func (p *gossiperProc) has(line string) bool { return slices.Contains(p.Lines(), line) }

// stop asks the gossiper to exit (it may already have been asked).
func (p *gossiperProc) stop() { _ = p.cmd.Process.Signal(syscall.SIGTERM) }

// wait stops the gossiper and waits until it has exited and its output is
// read (killing it after 10 s).
func (p *gossiperProc) wait() {
	p.exitOnce.Do(func() {
		p.stop()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = p.cmd.Wait()
	})
}

// startGossiper starts a gossiper process with args; it is stopped (and
// its output checked for stray lines) at the end of the test.
func startGossiper(t *testing.T, name, gossipAddr string, uiPort int, args ...string) *gossiperProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"-test.run=^TestPeersterHelperProcess$", "--", "peerster",
		"-name=" + name, "-gossipAddr=" + gossipAddr, "-UIPort=" + strconv.Itoa(uiPort)}, args...)
	p := &gossiperProc{name: name, gossipAddr: gossipAddr, uiPort: uiPort, done: make(chan struct{})}
	p.cmd = exec.Command(exe, all...)
	// A race-enabled binary sleeps a second at exit by default; ten of
	// them stopping one after the other would add ten seconds per ring.
	p.cmd.Env = append(os.Environ(), helperEnv+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.wait()
		for _, l := range p.Lines() {
			if !peersterLine.MatchString(l) {
				t.Errorf("%s printed a line the handout does not specify: %q", name, l)
			}
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", name, strings.Join(p.Lines(), "\n"), p.stderr.String())
		}
	})
	return p
}

// freePorts returns n ports that are free on 127.0.0.1 for UDP and TCP
// alike (a gossiper's UIPort takes both). The processes must be told their
// ports before they bind them, so the ports are picked below the kernel's
// ephemeral range: a port from that range, released for the process to
// bind, can meanwhile become the source port of any outgoing connection
// (the test's own readiness polls, for one). They are held until all are
// found, so they differ.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	const base = 10000
	if low <= base+n {
		t.Skipf("the ephemeral port range starts at %d: no room below it for %d fixed ports", low, n)
	}
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			t.Fatalf("found only %d free ports below %d", len(ports), low)
		}
		port := base + rand.IntN(low-base)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		u, err := net.ListenPacket("udp4", addr)
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			u.Close()
			continue
		}
		closers = append(closers, u, l)
		ports = append(ports, port)
	}
	return ports
}

// startRing starts n gossipers node0…node(n-1), each knowing only its
// successor, and waits until each answers on its GUI.
func startRing(t *testing.T, n int, args ...string) []*gossiperProc {
	t.Helper()
	ports := freePorts(t, 2*n)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i%n]) }
	ring := make([]*gossiperProc, n)
	for i := range ring {
		ring[i] = startGossiper(t, fmt.Sprintf("node%d", i), addr(i), ports[n+i],
			append([]string{"-peers=" + addr(i+1)}, args...)...)
	}
	// Registered last, so it runs first: all stop at once, then each
	// one's own cleanup waits for it.
	t.Cleanup(func() {
		for _, p := range ring {
			p.stop()
		}
	})
	client := &http.Client{Timeout: time.Second}
	for _, p := range ring {
		url := fmt.Sprintf("http://127.0.0.1:%d/id", p.uiPort)
		waitFor(t, p.name+"'s GUI", func() bool {
			resp, err := client.Get(url)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	return ring
}

// sendClient runs `hearsay peerster client` for the gossiper p.
func sendClient(t *testing.T, p *gossiperProc, msg string) {
	t.Helper()
	if code, out := runCLIInput(t, "", "peerster", "client", "-UIPort="+strconv.Itoa(p.uiPort), "-msg="+msg); code != 0 {
		t.Fatalf("peerster client: exit %d: %s", code, out)
	}
}

// ringSenders are the nodes the ring tests inject client messages at.
var ringSenders = []int{0, 3, 7}

func ringMessage(i int) string { return fmt.Sprintf("Hello from node%d, via the ring", i) }

// waitRingLines waits until every gossiper of the ring printed want(i, j)
// (the line node j prints for node i's message) for every sender i.
func waitRingLines(t *testing.T, ring []*gossiperProc, timeout time.Duration, want func(i, j int) []string) {
	t.Helper()
	ok := chattest.Poll(timeout, func() bool {
		for _, i := range ringSenders {
			for j, p := range ring {
				if !slices.ContainsFunc(want(i, j), p.has) {
					return false
				}
			}
		}
		return true
	})
	if ok {
		return
	}
	for _, i := range ringSenders {
		for j, p := range ring {
			if !slices.ContainsFunc(want(i, j), p.has) {
				t.Errorf("%s did not print any of %q", p.name, want(i, j))
			}
		}
	}
	t.FailNow()
}

// TestPeersterRingSimple: simple broadcast mode. Node j hears node i's
// message from its predecessor or, once its successor has learned it, from
// its successor (a gossiper forwards to every peer but the sender); the
// originator prints CLIENT MESSAGE. Each of those lines is followed by the
// peers line, which holds the successor (given) and the relay (learned).
func TestPeersterRingSimple(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10 processes")
	}
	ring := startRing(t, 10, "-simple")
	for _, i := range ringSenders {
		sendClient(t, ring[i], ringMessage(i))
	}
	waitRingLines(t, ring, 20*time.Second, func(i, j int) []string {
		if i == j {
			return []string{"CLIENT MESSAGE " + ringMessage(i)}
		}
		var out []string
		for _, from := range neighbours(ring, j) {
			out = append(out, fmt.Sprintf("SIMPLE MESSAGE origin node%d from %s contents %s", i, from.gossipAddr, ringMessage(i)))
		}
		return out
	})
	stopRing(ring) // all output read: the structure checks see whole events
	simpleLine := regexp.MustCompile(`^SIMPLE MESSAGE origin \S+ from (\S+) contents `)
	for j, p := range ring {
		lines := p.Lines()
		succ := ring[(j+1)%len(ring)].gossipAddr
		for k, l := range lines {
			if !strings.HasPrefix(l, "SIMPLE MESSAGE") && !strings.HasPrefix(l, "CLIENT MESSAGE") {
				continue
			}
			if k+1 >= len(lines) || !strings.HasPrefix(lines[k+1], "PEERS ") {
				t.Errorf("%s: %q is not followed by a PEERS line", p.name, l)
				continue
			}
			peers := strings.Split(strings.TrimPrefix(lines[k+1], "PEERS "), ",")
			if peers[0] != succ {
				t.Errorf("%s: %q does not start with the successor %s", p.name, lines[k+1], succ)
			}
			if m := simpleLine.FindStringSubmatch(l); m != nil && !slices.Contains(peers, m[1]) {
				t.Errorf("%s: %q after a message relayed by %s does not list it", p.name, lines[k+1], m[1])
			}
		}
	}
}

// stopRing stops every gossiper of ring and waits until each has exited
// and its output is read.
func stopRing(ring []*gossiperProc) {
	for _, p := range ring {
		p.stop()
	}
	for _, p := range ring {
		p.wait()
	}
}

// neighbours are the only gossipers node j of a ring hears from.
func neighbours(ring []*gossiperProc, j int) []*gossiperProc {
	n := len(ring)
	return []*gossiperProc{ring[(j+n-1)%n], ring[(j+1)%n]}
}

// TestPeersterRingGossip: rumor mongering. Node j hears node i's rumor
// from its predecessor or its successor (the only peers it knows).
func TestPeersterRingGossip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10 processes")
	}
	ring := startRing(t, 10)
	for _, i := range ringSenders {
		sendClient(t, ring[i], ringMessage(i))
	}
	waitRingLines(t, ring, 20*time.Second, rumorLines(ring))
	checkGossipLines(t, ring)
}

// TestPeersterRingLossy: every gossiper drops 20 % of the datagrams it
// receives (the hidden -dropRate flag, applied before decoding); the
// status acknowledgements, timeouts and anti-entropy still deliver every
// message everywhere.
func TestPeersterRingLossy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10 processes")
	}
	ring := startRing(t, 10, "-dropRate=0.2")
	for _, i := range ringSenders {
		sendClient(t, ring[i], ringMessage(i))
	}
	waitRingLines(t, ring, 40*time.Second, rumorLines(ring))
	checkGossipLines(t, ring)
	// Datagrams were in fact dropped: each gossiper reports its counters
	// on standard error when it exits.
	stats := regexp.MustCompile(`peerster stats: packets=(\d+) dropped=(\d+) `)
	var packets, dropped int
	for _, p := range ring { // stopped by checkGossipLines
		m := stats.FindStringSubmatch(p.stderr.String())
		if m == nil {
			t.Fatalf("%s reported no stats: %q", p.name, p.stderr.String())
		}
		a, _ := strconv.Atoi(m[1])
		b, _ := strconv.Atoi(m[2])
		packets, dropped = packets+a, dropped+b
	}
	t.Logf("%d of %d datagrams dropped", dropped, packets)
	if packets == 0 || dropped == 0 || float64(dropped)/float64(packets) > 0.4 {
		t.Errorf("%d of %d datagrams dropped, want about 20 %%", dropped, packets)
	}
}

// rumorLines is what node j prints for node i's message in gossip mode.
func rumorLines(ring []*gossiperProc) func(i, j int) []string {
	return func(i, j int) []string {
		if i == j {
			return []string{"CLIENT MESSAGE " + ringMessage(i)}
		}
		var out []string
		for _, from := range neighbours(ring, j) {
			out = append(out, fmt.Sprintf("RUMOR origin node%d from %s ID 1 contents %s", i, from.gossipAddr, ringMessage(i)))
		}
		return out
	}
}

// checkGossipLines checks the sequences the handout shows: once the ring
// is in sync every gossiper reports it; then it stops the ring and checks
// that every RUMOR or STATUS line is followed by PEERS and that the
// senders mongered.
func checkGossipLines(t *testing.T, ring []*gossiperProc) {
	t.Helper()
	// Anti-entropy runs every second: each gossiper ends up in sync with
	// a neighbour holding all three messages.
	var want []string
	for _, i := range ringSenders {
		want = append(want, fmt.Sprintf("node%d nextID 2", i))
	}
	for _, p := range ring {
		waitFor(t, p.name+" in sync with a full status", func() bool {
			lines := p.Lines()
			for k, l := range lines {
				if !strings.HasPrefix(l, "STATUS from ") || k+2 >= len(lines) || !strings.HasPrefix(lines[k+2], "IN SYNC WITH ") {
					continue
				}
				full := true
				for _, w := range want {
					full = full && strings.Contains(l, " peer "+w)
				}
				if full {
					return true
				}
			}
			return false
		})
	}
	stopRing(ring) // all output read: the structure checks see whole events
	mongered := 0
	for _, p := range ring {
		lines := p.Lines()
		for k, l := range lines {
			if strings.HasPrefix(l, "RUMOR ") || strings.HasPrefix(l, "STATUS ") {
				if k+1 >= len(lines) || !strings.HasPrefix(lines[k+1], "PEERS ") {
					t.Errorf("%s: %q is not followed by a PEERS line", p.name, l)
				}
			}
		}
		if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "MONGERING with ") }) {
			mongered++
		}
	}
	if mongered < len(ringSenders) {
		t.Errorf("%d gossipers printed MONGERING with, want at least the %d senders", mongered, len(ringSenders))
	}
}

// TestPeerBridgeFlag runs whole peers: alice with --peerster-bridge, bob
// without. A Peerster gossiper's message appears in #peerster on both,
// attributed nodeA@peerster, and bob's reply there reaches the gossiper
// under alice's name.
func TestPeerBridgeFlag(t *testing.T) {
	srv := startServer(t, "")
	bridgeAddr := "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
	alice := spawnPeer(t, srv.URL(), "alice", "--peerster-bridge", bridgeAddr)
	alice.waitEvent("the bridge", isSystem("peerster bridge: #peerster"))
	bob := spawnPeer(t, srv.URL(), "bob")
	bob.waitEvent("joined through the bootstrap contacts", isSystem("joined the group through"))
	bob.send("/join #peerster")
	waitFor(t, "bob in #peerster", func() bool {
		_, ok := bob.find(func(ev hearsay.Event) bool { return ev.Type == "system" && strings.Contains(ev.Text, "#peerster") })
		return ok
	})

	cfg := peerster.DefaultConfig()
	cfg.Name = "nodeA"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.Peers = []string{bridgeAddr}
	node, err := peerster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	if _, err := node.SendClient("Hello hearsay"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*testPeer{alice, bob} {
		ev := p.waitEvent("the Peerster message", isMessage("nodeA@peerster: Hello hearsay"))
		if ev.Room != "peerster" || ev.From != "alice" {
			t.Errorf("%s got %+v, want it in #peerster from alice (the bridge)", p.nick, ev)
		}
	}
	bob.send("Hello Peerster")
	waitFor(t, "bob's message at the Peerster node", func() bool {
		return slices.ContainsFunc(node.Messages(), func(m peerster.ChatMessage) bool {
			return m.Origin == "alice" && m.Text == "bob@hearsay: Hello Peerster"
		})
	})
}

func TestNewCmdPeerBridgeFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  bridgeOpts
		usage string
	}{
		{name: "off", args: []string{"--nick", "n"}},
		{
			name: "defaults",
			args: []string{"--nick", "n", "--peerster-bridge", "127.0.0.1:5000"},
			want: bridgeOpts{addr: "127.0.0.1:5000", room: "peerster", name: "n"},
		},
		{
			name: "all flags",
			args: []string{"--nick", "n", "--peerster-bridge", "0.0.0.0:5000", "--peerster-room", "#Course",
				"--peerster-peers", "10.0.0.1:5001, 10.0.0.2:5002", "--peerster-name", "bridgeA"},
			want: bridgeOpts{addr: "0.0.0.0:5000", room: "course", peers: "10.0.0.1:5001, 10.0.0.2:5002", name: "bridgeA",
				peerList: []string{"10.0.0.1:5001", "10.0.0.2:5002"}},
		},
		{name: "bad address", args: []string{"--nick", "n", "--peerster-bridge", "5000"}, usage: "--peerster-bridge"},
		{name: "bad room", args: []string{"--nick", "n", "--peerster-bridge", ":5000", "--peerster-room", "#a b"}, usage: "--peerster-room"},
		{name: "peers without bridge", args: []string{"--nick", "n", "--peerster-peers", "1.2.3.4:5"}, usage: "--peerster-bridge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePeerOpts(t, nil, tt.args, tt.usage)
			if got == nil {
				return
			}
			if tt.want.room == "" {
				tt.want.room = "#peerster" // not normalised without a bridge
			}
			if fmt.Sprintf("%+v", got.bridge) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("got %+v, want %+v", got.bridge, tt.want)
			}
		})
	}
}

// TestBridgeCommand: /bridge peerster starts a bridge in a running peer,
// /bridge shows it, /bridge off stops it (messages no longer cross).
func TestBridgeCommand(t *testing.T) {
	srv := startServer(t, "")
	alice := spawnPeer(t, srv.URL(), "alice")
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	alice.send("/bridge")
	alice.waitEvent("no bridge", isSystem("no bridge"))
	alice.send("/bridge peerster nonsense")
	alice.waitEvent("a usage error", func(ev hearsay.Event) bool {
		return ev.Type == "error" && strings.Contains(ev.Text, "usage: /bridge peerster")
	})

	cfg := peerster.DefaultConfig()
	cfg.Name = "nodeA"
	cfg.GossipAddr = "127.0.0.1:0"
	node, err := peerster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	alice.send("/bridge peerster 127.0.0.1:0 #course " + node.Addr())
	alice.waitEvent("the bridge", isSystem("peerster bridge: #course ⇄ Peerster gossiper 127.0.0.1:"))
	alice.send("/bridge peerster 127.0.0.1:0")
	alice.waitEvent("a second bridge refused", func(ev hearsay.Event) bool { return ev.Type == "error" && strings.Contains(ev.Text, "runs already") })

	alice.send("/switch #course") // the bridge joined it; the current room is still the lobby
	alice.send("to Peerster")
	waitFor(t, "alice's message at the Peerster node", func() bool {
		return slices.ContainsFunc(node.Messages(), func(m peerster.ChatMessage) bool {
			return m.Origin == "alice" && m.Text == "alice@hearsay: to Peerster"
		})
	})
	if _, err := node.SendClient("to hearsay"); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("the Peerster message", func(ev hearsay.Event) bool {
		return ev.Type == "message" && ev.Room == "course" && ev.Text == "nodeA@peerster: to hearsay"
	})
	// The counters move just after the message is handed on: ask until
	// they show it.
	waitFor(t, "the status", func() bool {
		if _, ok := alice.find(isSystem("1 to the room, 1 to Peerster, 0 dropped")); ok {
			return true
		}
		alice.send("/bridge")
		return false
	})

	alice.send("/bridge off")
	alice.waitEvent("stopped", isSystem("peerster bridge stopped"))
	alice.send("after the bridge")
	alice.waitEvent("alice's own message", isMessage("after the bridge"))
	alice.send("/bridge")
	waitFor(t, "no bridge again", func() bool { return alice.count(isSystem("no bridge (/bridge peerster")) == 2 })
	for _, m := range node.Messages() {
		if strings.Contains(m.Text, "after the bridge") {
			t.Errorf("a message crossed a stopped bridge: %+v", m)
		}
	}
}

// TestPeersterWithoutGUI: when the UIPort's TCP port is taken (hearsay's
// own bootstrap service listens on 8080, the handout's default), the
// gossiper runs without the GUI and still takes client messages.
func TestPeersterWithoutGUI(t *testing.T) {
	ports := freePorts(t, 2)
	taken, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var out, errOut syncWriter
	streams := &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
	cmd := newPeersterCmd(streams, nil)
	cmd.SetArgs([]string{"-name=solo", "-UIPort=" + strconv.Itoa(ports[0]), "-gossipAddr=127.0.0.1:" + strconv.Itoa(ports[1])})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	// The warning comes once the gossiper listens.
	waitFor(t, "the warning", func() bool { return strings.Contains(errOut.String(), "running without the GUI") })
	if err := runPeersterClient(&peersterOpts{uiPort: strconv.Itoa(ports[0]), msg: "still here"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the client message", func() bool { return strings.Contains(out.String(), "CLIENT MESSAGE still here\n") })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("peerster: %v", err)
	}
}
