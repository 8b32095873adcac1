package peerster

// The gossiper: one UDP socket to the other gossipers, one to the local
// client, a ticker for anti-entropy and mongering timeouts, and the
// optional GUI. All protocol state sits behind one mutex, and every
// protocol line is written with it held, so the output of one event is
// never interleaved with another's.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// Stats are the gossiper's counters of what it received and dropped.
type Stats struct {
	Packets       uint64 // gossip datagrams received (dropped ones included)
	Malformed     uint64 // did not decode, or did not have exactly one field set
	Oversized     uint64 // datagram, name, address, text or status vector over its limit
	WrongType     uint64 // a known field with the wrong wire type or range
	Unexpected    uint64 // a packet kind the current mode does not handle
	Dropped       uint64 // dropped by fault injection (Config.DropRate)
	PeersRefused  uint64 // peers not learned because the peer list is full
	RumorsRefused uint64 // new rumors not stored because the store is full
	ClientBad     uint64 // client datagrams that did not decode or were too long
	SendLimited   uint64 // packets not sent: over the destination's send rate
}

// ChatMessage is one message as the GUI lists it.
type ChatMessage struct {
	Origin string `json:"origin"`
	ID     uint32 `json:"id"` // 0 for a simple message
	Text   string `json:"text"`
}

// pending is a rumor sent to a peer whose acknowledging status has not
// arrived yet.
type pending struct {
	rumor    RumorMessage
	deadline time.Time
}

// Gossiper is one Peerster node. It is safe for concurrent use.
type Gossiper struct {
	cfg  Config
	conn *net.UDPConn // gossip socket
	ui   *net.UDPConn // client socket, nil without UIAddr
	ln   net.Listener // GUI listener, nil without GUI
	srv  *http.Server
	addr netip.AddrPort // own gossip address, the relay address we send

	mu         sync.Mutex
	out        io.Writer
	name       string
	peers      []netip.AddrPort // in the order they were learned
	peerSet    map[netip.AddrPort]bool
	rumors     map[string][]RumorMessage // origin → its rumors, ID 1 at index 0
	nRumors    int
	storeBytes int
	pending    map[netip.AddrPort]pending
	chatLog    []ChatMessage
	seenSimple map[string]time.Time         // simple messages forwarded recently (loop breaker)
	limiters   map[netip.Addr]*rate.Limiter // send budgets by destination IP

	packets, malformed, oversized, wrongType, unexpected atomic.Uint64
	dropped, peersRefused, rumorsRefused, clientBad      atomic.Uint64
	sendLimited                                          atomic.Uint64

	// testSend, when set by a test, replaces the socket for sends.
	testSend func(to netip.AddrPort, b []byte)

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// ErrGUIUnavailable wraps the error of New when the GUI's TCP port cannot
// be bound (the client's UDP port could): a caller may start again
// without the GUI.
var ErrGUIUnavailable = errors.New("GUI unavailable")

// seenSimpleTTL is how long a forwarded simple message is remembered so
// that a copy arriving over a cycle of peers is not forwarded again.
// Simple messages carry no ID, so a repeat of the same text by the same
// origin within this time is not forwarded either (it is still printed).
const seenSimpleTTL = 30 * time.Second

// New validates cfg, binds the sockets and starts the gossiper. Close
// stops it.
func New(cfg Config) (*Gossiper, error) {
	if err := validName(cfg.Name, cfg.MaxNameBytes); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if cfg.RumorTimeout <= 0 || cfg.AntiEntropy <= 0 || cfg.MaxPacketBytes <= 0 || cfg.SendRate <= 0 || cfg.SendBurst < cfg.MaxPacketBytes {
		return nil, errors.New("config: timers and limits must be positive (start from DefaultConfig)")
	}
	laddr, err := net.ResolveUDPAddr("udp4", cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	g := &Gossiper{
		cfg:        cfg,
		out:        cfg.Output,
		name:       cfg.Name,
		peerSet:    map[netip.AddrPort]bool{},
		rumors:     map[string][]RumorMessage{},
		pending:    map[netip.AddrPort]pending{},
		seenSimple: map[string]time.Time{},
		limiters:   map[netip.Addr]*rate.Limiter{},
		done:       make(chan struct{}),
	}
	if g.out == nil {
		g.out = io.Discard
	}
	g.conn, err = net.ListenUDP("udp4", laddr)
	if err != nil {
		return nil, fmt.Errorf("listen gossip %s: %w", cfg.GossipAddr, err)
	}
	g.addr = unmap(g.conn.LocalAddr().(*net.UDPAddr).AddrPort())
	for _, p := range cfg.Peers {
		ap, err := resolvePeer(p)
		if err != nil {
			g.conn.Close()
			return nil, err
		}
		g.addPeerLocked(ap)
	}
	if cfg.UIAddr != "" {
		if err := g.listenUI(); err != nil {
			g.conn.Close()
			return nil, err
		}
	}
	g.wg.Add(2)
	go g.readLoop()
	go g.tickLoop()
	if g.ui != nil {
		g.wg.Add(1)
		go g.clientLoop()
	}
	if g.ln != nil {
		g.wg.Add(1)
		go g.serveGUI()
	}
	return g, nil
}

// listenUI binds the client's UDP socket and, with GUI, the web server's
// TCP listener on the same address.
func (g *Gossiper) listenUI() error {
	uaddr, err := net.ResolveUDPAddr("udp4", g.cfg.UIAddr)
	if err != nil {
		return fmt.Errorf("UI address %q: %w", g.cfg.UIAddr, err)
	}
	g.ui, err = net.ListenUDP("udp4", uaddr)
	if err != nil {
		return fmt.Errorf("listen UI %s: %w", g.cfg.UIAddr, err)
	}
	if !g.cfg.GUI {
		return nil
	}
	// The GUI takes the client socket's port, so that port 0 gives both
	// the same free port.
	g.ln, err = net.Listen("tcp4", g.ui.LocalAddr().String())
	if err != nil {
		g.ui.Close()
		return fmt.Errorf("%w: listen %s: %w", ErrGUIUnavailable, g.ui.LocalAddr(), err)
	}
	g.srv = g.newGUIServer()
	return nil
}

// resolvePeer parses a peer address given on the command line or the GUI.
func resolvePeer(s string) (netip.AddrPort, error) {
	a, err := net.ResolveUDPAddr("udp4", strings.TrimSpace(s))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("peer %q: %w", s, err)
	}
	ap := unmap(a.AddrPort())
	if !ap.Addr().IsValid() || ap.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("peer %q: want ip:port", s)
	}
	return ap, nil
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Addr returns the gossip address (the relay address this gossiper
// sends).
func (g *Gossiper) Addr() string { return g.addr.String() }

// UIAddr returns the client interface's address, empty without one.
func (g *Gossiper) UIAddr() string {
	if g.ui == nil {
		return ""
	}
	return g.ui.LocalAddr().String()
}

// Close stops every goroutine and closes the sockets. It is idempotent.
func (g *Gossiper) Close() error {
	g.closeOnce.Do(func() {
		close(g.done)
		g.conn.Close()
		if g.ui != nil {
			g.ui.Close()
		}
		if g.srv != nil {
			g.srv.Close()
		}
		g.wg.Wait()
	})
	return nil
}

// Stats returns a snapshot of the counters.
func (g *Gossiper) Stats() Stats {
	return Stats{
		Packets: g.packets.Load(), Malformed: g.malformed.Load(), Oversized: g.oversized.Load(),
		WrongType: g.wrongType.Load(), Unexpected: g.unexpected.Load(), Dropped: g.dropped.Load(),
		PeersRefused: g.peersRefused.Load(), RumorsRefused: g.rumorsRefused.Load(), ClientBad: g.clientBad.Load(),
		SendLimited: g.sendLimited.Load(),
	}
}

// Name returns the current origin name.
func (g *Gossiper) Name() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.name
}

// SetName changes the origin name (the GUI's Change button). Messages
// sent afterwards carry the new name, numbered after whatever the store
// already holds of it.
func (g *Gossiper) SetName(name string) error {
	if err := validName(name, g.cfg.MaxNameBytes); err != nil {
		return fmt.Errorf("name: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.name = name
	return nil
}

// Peers returns the known peers as ip:port, in the order they were
// learned.
func (g *Gossiper) Peers() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.peerStringsLocked()
}

// AddPeer adds a peer (the GUI's Add button).
func (g *Gossiper) AddPeer(addr string) error {
	ap, err := resolvePeer(addr)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.addPeerLocked(ap) && !g.peerSet[ap] && ap != g.addr {
		return fmt.Errorf("peer %s: the peer list is full (%d)", ap, g.cfg.MaxPeers)
	}
	return nil
}

// Messages returns the messages the GUI lists: the last Config.MaxLog
// received or sent, oldest first.
func (g *Gossiper) Messages() []ChatMessage {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.chatLog)
}

// Status returns the gossiper's vector clock (origins sorted by name).
func (g *Gossiper) Status() []PeerStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.statusLocked().Want
}

// SendClient handles text as a message from the local client: printed as
// CLIENT MESSAGE, then broadcast (simple mode) or numbered and mongered.
// It returns the rumor's ID (0 in simple mode).
func (g *Gossiper) SendClient(text string) (uint32, error) {
	if !utf8.ValidString(text) {
		return 0, errors.New("message is not UTF-8")
	}
	if text == "" {
		return 0, errors.New("empty message")
	}
	if len(text) > g.cfg.MaxTextBytes {
		return 0, fmt.Errorf("message of %d bytes: the limit is %d", len(text), g.cfg.MaxTextBytes)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.printf("CLIENT MESSAGE %s", printable(text, false))
	if g.cfg.Simple {
		g.printPeersLocked()
		g.logLocked(ChatMessage{Origin: g.name, Text: text})
		sm := &SimpleMessage{OriginalName: g.name, RelayPeerAddr: g.addr.String(), Contents: text}
		g.seenSimple[simpleKey(sm)] = time.Now()
		g.broadcastLocked(&GossipPacket{Simple: sm}, netip.AddrPort{})
		return 0, nil
	}
	next := uint32(len(g.rumors[g.name]) + 1)
	r := RumorMessage{Origin: g.name, ID: next, Text: text}
	if stored, _ := g.storeLocked(r); !stored {
		return 0, errors.New("the rumor store is full")
	}
	g.mongerLocked(r, netip.AddrPort{})
	return r.ID, nil
}

// readLoop receives gossip datagrams until Close.
func (g *Gossiper) readLoop() {
	defer g.wg.Done()
	// One byte more than the limit tells an oversized datagram from one
	// that fits exactly.
	buf := make([]byte, g.cfg.MaxPacketBytes+1)
	for {
		n, src, err := g.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if g.closed() {
				return
			}
			g.logf("read gossip: %v", err)
			continue
		}
		g.packets.Add(1)
		if g.cfg.DropRate > 0 && rand.Float64() < g.cfg.DropRate {
			g.dropped.Add(1)
			continue
		}
		if n > g.cfg.MaxPacketBytes {
			g.oversized.Add(1)
			continue
		}
		g.handleDatagram(unmap(src), buf[:n])
	}
}

// clientLoop receives client messages until Close.
func (g *Gossiper) clientLoop() {
	defer g.wg.Done()
	buf := make([]byte, g.cfg.MaxPacketBytes+1)
	for {
		n, _, err := g.ui.ReadFromUDPAddrPort(buf)
		if err != nil {
			if g.closed() {
				return
			}
			g.logf("read client: %v", err)
			continue
		}
		var m Message
		if n > g.cfg.MaxPacketBytes {
			g.clientBad.Add(1)
			continue
		}
		if err := m.Unmarshal(buf[:n]); err != nil {
			g.clientBad.Add(1)
			g.logf("client message: %v", err)
			continue
		}
		if _, err := g.SendClient(m.Text); err != nil {
			g.clientBad.Add(1)
			g.logf("client message: %v", err)
		}
	}
}

// tickLoop runs anti-entropy and the mongering timeouts until Close.
func (g *Gossiper) tickLoop() {
	defer g.wg.Done()
	ae := time.NewTicker(g.cfg.AntiEntropy)
	defer ae.Stop()
	// Timeouts are checked at a tenth of their length: a mongering waits
	// between 1 and 1.1 timeouts.
	to := time.NewTicker(max(g.cfg.RumorTimeout/10, time.Millisecond))
	defer to.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-ae.C:
			g.antiEntropy()
		case now := <-to.C:
			g.expire(now)
		}
	}
}

func (g *Gossiper) closed() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// handleDatagram decodes, checks and dispatches one gossip datagram.
func (g *Gossiper) handleDatagram(src netip.AddrPort, b []byte) {
	var p GossipPacket
	if err := p.Unmarshal(b); err != nil {
		switch {
		case errors.Is(err, ErrWrongType):
			g.wrongType.Add(1)
		case errors.Is(err, ErrTooMany):
			g.oversized.Add(1)
		default:
			g.malformed.Add(1)
		}
		g.logf("packet from %s: %v", src, err)
		return
	}
	if err := g.checkLimits(&p); err != nil {
		g.oversized.Add(1)
		g.logf("packet from %s: %v", src, err)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case p.Simple != nil && g.cfg.Simple:
		g.handleSimpleLocked(src, p.Simple)
	case p.Rumor != nil && !g.cfg.Simple:
		g.handleRumorLocked(src, *p.Rumor)
	case p.Status != nil && !g.cfg.Simple:
		g.handleStatusLocked(src, p.Status)
	default:
		g.unexpected.Add(1)
	}
}

// checkLimits bounds the strings of a decoded packet.
func (g *Gossiper) checkLimits(p *GossipPacket) error {
	c := &g.cfg
	switch {
	case p.Simple != nil:
		s := p.Simple
		if len(s.OriginalName) > c.MaxNameBytes || len(s.RelayPeerAddr) > c.MaxAddrBytes || len(s.Contents) > c.MaxTextBytes {
			return errors.New("simple message: a field is over its limit")
		}
	case p.Rumor != nil:
		if len(p.Rumor.Origin) > c.MaxNameBytes || len(p.Rumor.Text) > c.MaxTextBytes {
			return errors.New("rumor: a field is over its limit")
		}
	case p.Status != nil:
		for _, ps := range p.Status.Want {
			if len(ps.Identifier) > c.MaxNameBytes {
				return errors.New("status: an identifier is over its limit")
			}
		}
	}
	return nil
}

// addPeerLocked learns a peer; it reports whether the peer is new.
// Caller holds mu (or owns g exclusively, in New).
func (g *Gossiper) addPeerLocked(ap netip.AddrPort) bool {
	if ap == g.addr || g.peerSet[ap] {
		return false
	}
	if len(g.peers) >= g.cfg.MaxPeers {
		g.peersRefused.Add(1)
		return false
	}
	g.peerSet[ap] = true
	g.peers = append(g.peers, ap)
	return true
}

func (g *Gossiper) peerStringsLocked() []string {
	out := make([]string, len(g.peers))
	for i, p := range g.peers {
		out[i] = p.String()
	}
	return out
}

// randomPeerLocked picks a random known peer other than not; ok is false
// when there is none.
func (g *Gossiper) randomPeerLocked(not netip.AddrPort) (netip.AddrPort, bool) {
	var cand []netip.AddrPort
	for _, p := range g.peers {
		if p != not {
			cand = append(cand, p)
		}
	}
	if len(cand) == 0 {
		return netip.AddrPort{}, false
	}
	return cand[rand.IntN(len(cand))], true
}

// sendLocked encodes and sends one packet. UDP sends do not block on the
// peer, so holding mu is fine.
func (g *Gossiper) sendLocked(to netip.AddrPort, p *GossipPacket) {
	b := p.Marshal()
	if len(b) > g.cfg.MaxPacketBytes {
		g.logf("send to %s: packet of %d bytes over the limit, not sent", to, len(b))
		return
	}
	if !g.allowSendLocked(to, len(b)) {
		g.sendLimited.Add(1)
		return
	}
	if g.testSend != nil {
		g.testSend(to, b)
		return
	}
	if _, err := g.conn.WriteToUDPAddrPort(b, to); err != nil && !g.closed() {
		g.logf("send to %s: %v", to, err)
	}
}

// maxLimiters bounds the per-address send budgets kept; when it is
// reached they are all forgotten (a fresh budget is one burst).
const maxLimiters = 4096

// allowSendLocked takes n bytes from the send budget of to's IP address
// (shared by its ports, so a forged source cannot multiply a victim's
// budget by naming many ports). Caller holds mu.
func (g *Gossiper) allowSendLocked(to netip.AddrPort, n int) bool {
	l := g.limiters[to.Addr()]
	if l == nil {
		if len(g.limiters) >= maxLimiters {
			clear(g.limiters)
		}
		l = rate.NewLimiter(rate.Limit(g.cfg.SendRate), g.cfg.SendBurst)
		g.limiters[to.Addr()] = l
	}
	return l.AllowN(time.Now(), n)
}

func (g *Gossiper) broadcastLocked(p *GossipPacket, except netip.AddrPort) {
	for _, peer := range g.peers {
		if peer != except {
			g.sendLocked(peer, p)
		}
	}
}

// printf writes one protocol line. Caller holds mu (lines of one event
// stay together).
func (g *Gossiper) printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...) + "\n"
	if _, err := io.WriteString(g.out, line); err != nil {
		g.logf("output: %v", err)
	}
}

func (g *Gossiper) printPeersLocked() {
	g.printf("PEERS %s", strings.Join(g.peerStringsLocked(), ","))
}

func (g *Gossiper) logf(format string, args ...any) {
	if g.cfg.Logf != nil {
		g.cfg.Logf(format, args...)
	}
}

// logLocked appends to the GUI's message list, dropping the oldest beyond
// MaxLog.
func (g *Gossiper) logLocked(m ChatMessage) {
	if g.cfg.MaxLog <= 0 {
		return
	}
	if len(g.chatLog) >= g.cfg.MaxLog {
		n := copy(g.chatLog, g.chatLog[len(g.chatLog)-g.cfg.MaxLog+1:])
		g.chatLog = g.chatLog[:n]
	}
	g.chatLog = append(g.chatLog, m)
}

// validName checks a name we use as our own origin: non-empty, within the
// limit, UTF-8 and printable without spaces, so the output lines (which
// separate fields by spaces) stay parseable.
func validName(name string, limit int) error {
	switch {
	case name == "":
		return errors.New("empty")
	case limit > 0 && len(name) > limit:
		return fmt.Errorf("%d bytes, the limit is %d", len(name), limit)
	case !utf8.ValidString(name):
		return errors.New("not UTF-8")
	case printable(name, true) != name:
		return fmt.Errorf("%q: only printable characters, no spaces", name)
	}
	return nil
}

// printable returns s as it may appear in an output line: control,
// format (bidi, zero-width) and line-separator characters become U+FFFD,
// so a peer's text cannot start a fake line or rewrite the terminal; with
// noSpace, white space too (names are space-separated fields).
func printable(s string, noSpace bool) string {
	clean := func(r rune) bool {
		if noSpace && unicode.IsSpace(r) {
			return false
		}
		return r == ' ' || (unicode.IsPrint(r) && !unicode.Is(unicode.Cf, r))
	}
	ok := true
	for _, r := range s {
		if !clean(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if clean(r) {
			return r
		}
		return unicode.ReplacementChar
	}, s)
}
