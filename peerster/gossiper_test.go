package peerster

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines collects a gossiper's output.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSuffix(l.buf.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func (l *lines) has(line string) bool { return slices.Contains(l.Lines(), line) }

// poll waits until cond holds, failing the test after 10 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// startGossiper starts a gossip-mode gossiper on 127.0.0.1 with tune
// applied to its config.
func startGossiper(t testing.TB, tune func(*Config)) (*Gossiper, *lines) {
	t.Helper()
	out := &lines{}
	cfg := DefaultConfig()
	cfg.Name = "g"
	cfg.GossipAddr = "127.0.0.1:0"
	cfg.Output = out
	cfg.Logf = t.Logf
	// Long timers: the tests drive the exchanges themselves.
	cfg.AntiEntropy = time.Hour
	cfg.RumorTimeout = time.Hour
	if tune != nil {
		tune(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, out
}

// rawPeer is a test's own UDP socket speaking to a gossiper.
type rawPeer struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newRawPeer(t *testing.T, g *Gossiper) *rawPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	to, err := net.ResolveUDPAddr("udp4", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{t: t, conn: c, to: to}
}

func (p *rawPeer) addr() string { return p.conn.LocalAddr().String() }

func (p *rawPeer) sendBytes(b []byte) {
	p.t.Helper()
	if _, err := p.conn.WriteToUDP(b, p.to); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) send(pkt *GossipPacket) { p.t.Helper(); p.sendBytes(pkt.Marshal()) }

// recv returns the next packet the gossiper sends this peer.
func (p *rawPeer) recv() *GossipPacket {
	p.t.Helper()
	buf := make([]byte, 1<<16)
	if err := p.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		p.t.Fatal(err)
	}
	n, _, err := p.conn.ReadFromUDP(buf)
	if err != nil {
		p.t.Fatalf("receive from the gossiper: %v", err)
	}
	var pkt GossipPacket
	if err := pkt.Unmarshal(buf[:n]); err != nil {
		p.t.Fatalf("the gossiper sent a packet we cannot decode: %v", err)
	}
	return &pkt
}

func (p *rawPeer) recvStatus() []PeerStatus {
	p.t.Helper()
	pkt := p.recv()
	if pkt.Status == nil {
		p.t.Fatalf("got %+v, want a status", pkt)
	}
	return pkt.Status.Want
}

func (p *rawPeer) recvRumor() RumorMessage {
	p.t.Helper()
	pkt := p.recv()
	if pkt.Rumor == nil {
		p.t.Fatalf("got %+v, want a rumor", pkt)
	}
	return *pkt.Rumor
}

func rumor(origin string, id uint32, text string) *GossipPacket {
	return &GossipPacket{Rumor: &RumorMessage{Origin: origin, ID: id, Text: text}}
}

// TestRumorsInOrder: a rumor ahead of its origin's next ID is
// acknowledged but not stored; the status asks for the missing one.
func TestRumorsInOrder(t *testing.T) {
	g, out := startGossiper(t, nil)
	p := newRawPeer(t, g)
	p.send(rumor("A", 2, "second"))
	if got := p.recvStatus(); len(got) != 0 {
		t.Fatalf("ack of a rumor out of order: got %+v, want an empty status", got)
	}
	p.send(rumor("A", 1, "first"))
	if got := p.recvStatus(); !slices.Equal(got, []PeerStatus{{"A", 2}}) {
		t.Fatalf("ack: got %+v, want A nextID 2", got)
	}
	p.send(rumor("A", 2, "second"))
	if got := p.recvStatus(); !slices.Equal(got, []PeerStatus{{"A", 3}}) {
		t.Fatalf("ack: got %+v, want A nextID 3", got)
	}
	want := []string{
		"RUMOR origin A from " + p.addr() + " ID 2 contents second",
		"PEERS " + p.addr(),
		"RUMOR origin A from " + p.addr() + " ID 1 contents first",
		"PEERS " + p.addr(),
		"RUMOR origin A from " + p.addr() + " ID 2 contents second",
		"PEERS " + p.addr(),
	}
	if got := out.Lines(); !slices.Equal(got, want) {
		t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := g.Messages(); len(got) != 2 || got[0].Text != "first" || got[1].Text != "second" {
		t.Errorf("messages: got %+v", got)
	}
}

// TestStatusExchange: a peer behind gets the lowest missing rumor; a peer
// ahead gets our status; an equal one puts us in sync.
func TestStatusExchange(t *testing.T) {
	g, out := startGossiper(t, nil)
	for _, text := range []string{"one", "two"} {
		if _, err := g.SendClient(text); err != nil {
			t.Fatal(err)
		}
	}
	p := newRawPeer(t, g)
	p.send(&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{"g", 1}}}})
	if got := p.recvRumor(); got != (RumorMessage{Origin: "g", ID: 1, Text: "one"}) {
		t.Fatalf("behind: got %+v, want g's rumor 1", got)
	}
	// The ack of rumor 1 asks for rumor 2: mongering goes on.
	p.send(&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{"g", 2}}}})
	if got := p.recvRumor(); got.ID != 2 {
		t.Fatalf("behind by one: got %+v, want rumor 2", got)
	}
	// Ahead on another origin: we send our status so it mongers to us.
	p.send(&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{"g", 3}, {"B", 4}}}})
	if got := p.recvStatus(); !slices.Equal(got, []PeerStatus{{"g", 3}}) {
		t.Fatalf("ahead: got %+v, want our status", got)
	}
	p.send(&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{"g", 3}}}})
	poll(t, "IN SYNC WITH", func() bool { return out.has("IN SYNC WITH " + p.addr()) })
	want := []string{
		"CLIENT MESSAGE one",
		"CLIENT MESSAGE two",
		"STATUS from " + p.addr() + " peer g nextID 1",
		"PEERS " + p.addr(),
		"MONGERING with " + p.addr(),
		"STATUS from " + p.addr() + " peer g nextID 2",
		"PEERS " + p.addr(),
		"MONGERING with " + p.addr(),
		"STATUS from " + p.addr() + " peer g nextID 3 peer B nextID 4",
		"PEERS " + p.addr(),
		"STATUS from " + p.addr() + " peer g nextID 3",
		"PEERS " + p.addr(),
		"IN SYNC WITH " + p.addr(),
	}
	if got := out.Lines(); !slices.Equal(got[:min(len(got), len(want))], want) {
		t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMongeringTimeoutFlipsCoin: an unacknowledged rumor is sent on after
// the timeout, on heads, to another peer (which times out in turn), and
// the mongering stops on tails.
func TestMongeringTimeoutFlipsCoin(t *testing.T) {
	g, out := startGossiper(t, func(c *Config) { c.RumorTimeout = 10 * time.Millisecond })
	a, b := newRawPeer(t, g), newRawPeer(t, g)
	for _, p := range []*rawPeer{a, b} {
		if err := g.AddPeer(p.addr()); err != nil {
			t.Fatal(err)
		}
	}
	// 20 rumors, one at a time, none acknowledged: each mongering ends
	// (tails) after a run of heads; no heads at all has probability 2^-20.
	const n = 20
	for i := range n {
		if _, err := g.SendClient(fmt.Sprintf("rumor %d", i)); err != nil {
			t.Fatal(err)
		}
		poll(t, "the mongering to stop", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.pending) == 0
		})
	}
	lines := out.Lines()
	flips := 0
	for k, l := range lines {
		to, ok := strings.CutPrefix(l, "FLIPPED COIN sending rumor to ")
		if !ok {
			continue
		}
		flips++
		// The rumor goes to the other peer, and is mongered there.
		if prev := lines[k-1]; prev != "MONGERING with "+a.addr() && prev != "MONGERING with "+b.addr() || prev == "MONGERING with "+to {
			t.Errorf("line %d: %q after %q: want the other peer", k, l, prev)
		}
		if k+1 >= len(lines) || lines[k+1] != "MONGERING with "+to {
			t.Errorf("line %d: %q not followed by MONGERING with %s", k, l, to)
		}
	}
	if flips == 0 {
		t.Errorf("no coin flip came up heads in %d timeouts", n)
	}
}

// TestSimpleMode: a client message goes to every peer with our name and
// address; a peer's goes to every peer but the sender, relayed by us; our
// own message coming back is not forwarded again.
func TestSimpleMode(t *testing.T) {
	g, out := startGossiper(t, func(c *Config) { c.Simple = true })
	a, b := newRawPeer(t, g), newRawPeer(t, g)
	if _, err := g.SendClient("hi"); err != nil { // no peers yet
		t.Fatal(err)
	}
	for _, p := range []*rawPeer{a, b} {
		if err := g.AddPeer(p.addr()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := g.SendClient("hello"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*rawPeer{a, b} {
		got := p.recv()
		if got.Simple == nil || *got.Simple != (SimpleMessage{OriginalName: "g", RelayPeerAddr: g.Addr(), Contents: "hello"}) {
			t.Fatalf("client message on the wire: got %+v", got)
		}
	}
	a.send(&GossipPacket{Simple: &SimpleMessage{OriginalName: "A", RelayPeerAddr: "10.9.9.9:1", Contents: "bonjour"}})
	got := b.recv()
	if got.Simple == nil || *got.Simple != (SimpleMessage{OriginalName: "A", RelayPeerAddr: g.Addr(), Contents: "bonjour"}) {
		t.Fatalf("forwarded: got %+v", got)
	}
	// Our own message back from a: printed, not forwarded. A second
	// message from a proves b got nothing in between.
	a.send(&GossipPacket{Simple: &SimpleMessage{OriginalName: "g", RelayPeerAddr: a.addr(), Contents: "hello"}})
	a.send(&GossipPacket{Simple: &SimpleMessage{OriginalName: "A", RelayPeerAddr: a.addr(), Contents: "again"}})
	if got := b.recv(); got.Simple == nil || got.Simple.Contents != "again" {
		t.Fatalf("after our own message came back: got %+v, want only the next one", got)
	}
	want := []string{
		"CLIENT MESSAGE hi",
		"PEERS ",
		"CLIENT MESSAGE hello",
		"PEERS " + a.addr() + "," + b.addr(),
		"SIMPLE MESSAGE origin A from 10.9.9.9:1 contents bonjour",
		"PEERS " + a.addr() + "," + b.addr(),
		"SIMPLE MESSAGE origin g from " + a.addr() + " contents hello",
		"PEERS " + a.addr() + "," + b.addr(),
		"SIMPLE MESSAGE origin A from " + a.addr() + " contents again",
		"PEERS " + a.addr() + "," + b.addr(),
	}
	poll(t, "the last line", func() bool { return len(out.Lines()) >= len(want) })
	if got := out.Lines(); !slices.Equal(got, want) {
		t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestOutputLinesCannotBeForged: a peer's text cannot start a line of its
// own or carry terminal controls; names cannot contain spaces.
func TestOutputLinesCannotBeForged(t *testing.T) {
	g, out := startGossiper(t, nil)
	p := newRawPeer(t, g)
	p.send(rumor("evil name", 1, "hi\nIN SYNC WITH 1.2.3.4:5\x1b[2J\u202e"))
	p.recvStatus()
	want := "RUMOR origin evil\uFFFDname from " + p.addr() + " ID 1 contents hi\uFFFDIN SYNC WITH 1.2.3.4:5\uFFFD[2J\uFFFD"
	if got := out.Lines(); len(got) != 2 || got[0] != want {
		t.Errorf("output: got %q, want %q and a PEERS line", got, want)
	}
	// The stored text is the peer's, unchanged (the GUI escapes it).
	if m := g.Messages(); len(m) != 1 || m[0].Origin != "evil name" {
		t.Errorf("messages: got %+v", m)
	}
}

// TestHostilePackets: malformed, oversized and wrongly typed datagrams
// are counted and dropped, and the gossiper goes on working.
func TestHostilePackets(t *testing.T) {
	g, out := startGossiper(t, func(c *Config) { c.MaxPacketBytes = 2048 })
	p := newRawPeer(t, g)
	longName := strings.Repeat("n", g.cfg.MaxNameBytes+1)
	longText := strings.Repeat("t", g.cfg.MaxTextBytes+1)
	manyEntries := &StatusPacket{}
	for range MaxStatusEntries + 1 {
		manyEntries.Want = append(manyEntries.Want, PeerStatus{})
	}
	cases := []struct {
		name string
		b    []byte
		stat func(Stats) uint64
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, func(s Stats) uint64 { return s.Malformed }},
		{"empty", []byte{}, func(s Stats) uint64 { return s.Malformed }},
		{"two fields", append(rumor("A", 1, "x").Marshal(), (&GossipPacket{Status: &StatusPacket{}}).Marshal()...), func(s Stats) uint64 { return s.Malformed }},
		{"datagram too large", make([]byte, 2049), func(s Stats) uint64 { return s.Oversized }},
		{"name too long", rumor(longName, 1, "x").Marshal(), func(s Stats) uint64 { return s.Oversized }},
		{"text too long", (&GossipPacket{Simple: &SimpleMessage{Contents: longText}}).Marshal(), func(s Stats) uint64 { return s.Oversized }},
		{"identifier too long", (&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{longName, 1}}}}).Marshal(), func(s Stats) uint64 { return s.Oversized }},
		{"wrong wire type", []byte{0x10, 0x01}, func(s Stats) uint64 { return s.WrongType }},
		{"simple in gossip mode", (&GossipPacket{Simple: &SimpleMessage{}}).Marshal(), func(s Stats) uint64 { return s.Unexpected }},
		{"status vector too long", (&GossipPacket{Status: manyEntries}).Marshal(), func(s Stats) uint64 { return s.Oversized }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.stat(g.Stats())
			p.sendBytes(tc.b)
			poll(t, tc.name+" counted", func() bool { return tc.stat(g.Stats()) == before+1 })
		})
	}
	if len(out.Lines()) != 0 {
		t.Errorf("dropped packets printed lines: %q", out.Lines())
	}
	if len(g.Peers()) != 0 {
		t.Errorf("dropped packets taught peers: %v", g.Peers())
	}
	// Still working: a valid rumor is acknowledged.
	p.send(rumor("A", 1, "still here"))
	if got := p.recvStatus(); !slices.Equal(got, []PeerStatus{{"A", 2}}) {
		t.Fatalf("after the hostile packets: got %+v", got)
	}
}

// TestCaps: the peer list and the rumor store stop growing at their caps.
func TestCaps(t *testing.T) {
	g, out := startGossiper(t, func(c *Config) {
		c.MaxPeers = 3
		c.MaxOrigins = 2
		c.MaxRumors = 3
		c.MaxLog = 2
	})
	var ps []*rawPeer
	for range 5 {
		p := newRawPeer(t, g)
		p.send(&GossipPacket{Status: &StatusPacket{}})
		ps = append(ps, p)
	}
	poll(t, "five statuses", func() bool { return g.Stats().Packets == 5 })
	poll(t, "the peer cap", func() bool { return len(g.Peers()) == 3 && g.Stats().PeersRefused == 2 })

	p := ps[0]
	for _, o := range []string{"A", "B"} {
		p.send(rumor(o, 1, "x"))
		p.recvStatus()
	}
	// A third origin is refused and not acknowledged (an ack would make
	// the sender resend it at once, for ever).
	p.send(rumor("C", 1, "x"))
	p.send(rumor("A", 2, "y"))
	if got := p.recvStatus(); !slices.Equal(got, []PeerStatus{{"A", 3}, {"B", 2}}) {
		t.Fatalf("after a third origin: got %+v", got)
	}
	// MaxRumors is reached: A's third is refused too, and a status from a
	// peer that has more no longer makes us ask for it.
	inSync := func() int {
		return len(slices.DeleteFunc(out.Lines(), func(l string) bool { return l != "IN SYNC WITH "+p.addr() }))
	}
	before := inSync() // p's first, empty status found us in sync too
	p.send(rumor("A", 3, "z"))
	p.send(&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{"A", 9}, {"B", 2}, {"C", 5}}}})
	poll(t, "in sync despite the peer having more", func() bool { return inSync() == before+1 })
	if got := g.Stats().RumorsRefused; got != 2 {
		t.Errorf("refused rumors: got %d, want 2", got)
	}
	if got := g.Status(); !slices.Equal(got, []PeerStatus{{"A", 3}, {"B", 2}}) {
		t.Errorf("status: got %+v", got)
	}
	if got := g.Messages(); len(got) != 2 || got[1].Text != "y" {
		t.Errorf("the GUI's list holds %+v, want the last 2", got)
	}
	if _, err := g.SendClient("own"); err == nil {
		t.Error("a client message was accepted into a full store")
	}
}

// TestClientMessages: the UIPort takes the client's encoded message;
// anything else there is counted and dropped.
func TestClientMessages(t *testing.T) {
	g, out := startGossiper(t, func(c *Config) { c.UIAddr = "127.0.0.1:0" })
	c, err := net.Dial("udp4", g.UIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, b := range [][]byte{{0xff}, (&Message{}).Marshal(), (&Message{Text: "Hello"}).Marshal()} {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, "the client message", func() bool { return out.has("CLIENT MESSAGE Hello") })
	if got := g.Stats().ClientBad; got != 2 {
		t.Errorf("bad client datagrams: got %d, want 2 (garbage, empty text)", got)
	}
	if got := g.Status(); !slices.Equal(got, []PeerStatus{{"g", 2}}) {
		t.Errorf("status: got %+v", got)
	}
}

// TestSendRateLimited: a flood of tiny packets with a forged source makes
// the gossiper answer that source at most its send budget.
func TestSendRateLimited(t *testing.T) {
	const burst = 4096
	g, _ := startGossiper(t, func(c *Config) {
		c.MaxPacketBytes = burst
		c.SendRate = 1 // refills one byte a second: the burst is all there is
		c.SendBurst = burst
	})
	// Give the status some weight: 20 origins of 60 bytes.
	g.mu.Lock()
	for i := range 20 {
		if stored, _ := g.storeLocked(RumorMessage{Origin: fmt.Sprintf("%060d", i), ID: 1, Text: "x"}); !stored {
			t.Fatal("store")
		}
	}
	ack := len((&GossipPacket{Status: g.statusLocked()}).Marshal())
	g.mu.Unlock()
	p := newRawPeer(t, g)
	// Each rumor, out of order so never stored, is acknowledged with the
	// whole status: a 12-byte packet asks for a 1.3 KB answer.
	const n = 100
	for range n {
		p.send(rumor("zz", 5, "x"))
	}
	// The burst lets burst/ack answers through; every other one is
	// limited (the budget refills one byte a second).
	allowed := burst / ack
	poll(t, fmt.Sprintf("%d of %d answers of %d bytes limited", n-allowed, n, ack), func() bool {
		return g.Stats().SendLimited == uint64(n-allowed)
	})
}

// FuzzHandleDatagram feeds arbitrary datagrams from arbitrary loopback
// ports to one gossiper with small caps: it must never panic, and its
// tables must stay within their caps. What it sends is discarded (the
// sources are made up).
func FuzzHandleDatagram(f *testing.F) {
	for _, tc := range goldens {
		f.Add(uint16(5000), tc.pkt.Marshal())
	}
	f.Add(uint16(5001), rumor("A", 1, "x").Marshal())
	f.Add(uint16(5002), (&GossipPacket{Status: &StatusPacket{Want: []PeerStatus{{"A", 7}, {"B", 1}}}}).Marshal())
	g, _ := startGossiper(f, func(c *Config) {
		c.MaxPeers, c.MaxOrigins, c.MaxRumors, c.MaxStoreBytes, c.MaxLog = 4, 3, 10, 100, 5
		c.Logf = nil
	})
	g.testSend = func(netip.AddrPort, []byte) {}
	f.Fuzz(func(t *testing.T, port uint16, b []byte) {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), max(port, 1))
		g.handleDatagram(src, b)
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.peers) > g.cfg.MaxPeers || len(g.rumors) > g.cfg.MaxOrigins || g.nRumors > g.cfg.MaxRumors ||
			g.storeBytes > g.cfg.MaxStoreBytes || len(g.chatLog) > g.cfg.MaxLog || len(g.pending) > g.cfg.MaxPeers {
			t.Fatalf("over a cap: %d peers, %d origins, %d rumors, %d bytes, %d logged, %d pending",
				len(g.peers), len(g.rumors), g.nRumors, g.storeBytes, len(g.chatLog), len(g.pending))
		}
	})
}

// TestPendingBounded: statuses from more sources than the peer list
// holds are answered, but the mongerings awaiting acknowledgement stay
// within MaxPeers (found by FuzzHandleDatagram: made-up sources grew the
// table).
func TestPendingBounded(t *testing.T) {
	g, _ := startGossiper(t, func(c *Config) { c.MaxPeers = 2 })
	if _, err := g.SendClient("have this"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		p := newRawPeer(t, g)
		p.send(&GossipPacket{Status: &StatusPacket{}})
		if got := p.recvRumor(); got.Text != "have this" {
			t.Fatalf("answer: got %+v", got)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) > 2 {
		t.Errorf("%d mongerings tracked, want at most MaxPeers (2)", len(g.pending))
	}
}
