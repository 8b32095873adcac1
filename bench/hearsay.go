package bench

// The hearsay system: N real chat.Nodes in this process, each with its own
// data directory, memberlist (LAN profile, like serf's default), TLS chat
// listener and Ed25519 identity. This file is the only place that knows
// the chat API, so that API changes stay local.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// Hearsay is the hearsay System. Set fields before Start; the zero value
// uses the defaults.
type Hearsay struct {
	// Profile is the memberlist profile (chat.ProfileLAN when empty).
	Profile string
	// Room is the room messages go to (the lobby when empty; a room of
	// its own when SystemConfig.Order is set).
	Room string

	room    string       // the room in use
	mu      sync.Mutex   // guards nodes while the peers start
	nodes   []*chat.Node // by peer index; nil where a start failed
	dataDir string
	obs     Observer
	wg      sync.WaitGroup
	resyncs sync.WaitGroup // readiness's background resyncs (Start waits for them)

	// The bytes received on the process's TCP sockets since the group
	// was ready: sampled every second (wireLoop), because links that are
	// not kept close when idle (chat/links.go) and a closed socket's count
	// is gone. Each sample adds what every socket received since the last
	// one (a new socket: all it received); what a socket received between
	// the last sample and its close is lost, and that is little: an idle
	// link closes after seconds without traffic.
	refusals refusals // the chat listeners' refusals by kind

	wireMu    sync.Mutex
	wireLast  map[string]uint64
	wireSum   uint64
	wireKnown bool
	wireStop  chan struct{}
	wireDone  chan struct{}

	stopOnce sync.Once
	stopErr  error
	progress Progress // Start's, for Stop's summary of the group's counters
}

var _ System = (*Hearsay)(nil)

// Name implements System.
func (h *Hearsay) Name() string { return "hearsay" }

// Start implements System. It starts the nodes, joins each to the first,
// and waits until every node sees every other as alive and has joined the
// room (see readiness).
func (h *Hearsay) Start(ctx context.Context, cfg SystemConfig, obs Observer) error {
	h.obs = obs
	// The default is the lobby in its default (causal) mode; an explicit
	// ordering mode gets a room of its own, created in that mode.
	h.room = chat.DefaultRoom
	if h.Room != "" {
		h.room = h.Room
	}
	var mode hearsay.OrderMode
	if cfg.Order != "" {
		m, err := hearsay.ParseOrderMode(cfg.Order)
		if err != nil {
			return fmt.Errorf("hearsay: %w", err)
		}
		mode = m
		h.room = "bench-" + cfg.Order
	}
	dir, err := os.MkdirTemp("", "hearsay-bench-")
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	h.dataDir = dir
	progress := Progress(cfg.Progress)
	h.progress = progress
	if err := h.startPeers(ctx, cfg, mode, progress); err != nil {
		return errors.Join(err, h.Stop())
	}
	ready, status := h.readiness(ctx, cfg.Peers)
	err = settle(ctx, settleTimeout(cfg.Peers), "hearsay membership", progress, ready, status)
	h.resyncs.Wait() // one may still run: memberlist cannot cancel a join
	if err != nil {
		return errors.Join(err, h.Stop())
	}
	if cfg.NoWire {
		return nil // wireKnown stays false: Counters reports no bytes
	}
	h.wireLast, h.wireKnown = tcpReceived()
	if h.wireKnown {
		h.wireStop, h.wireDone = make(chan struct{}), make(chan struct{})
		go h.wireLoop()
	}
	return nil
}

// wireLoop samples the TCP byte counts every second until Stop.
func (h *Hearsay) wireLoop() {
	defer close(h.wireDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-h.wireStop:
			return
		case <-t.C:
			h.sampleWire()
		}
	}
}

// sampleWire adds what the sockets received since the last sample.
func (h *Hearsay) sampleWire() uint64 {
	now, ok := tcpReceived()
	h.wireMu.Lock()
	defer h.wireMu.Unlock()
	if ok {
		h.wireSum += tcpDelta(h.wireLast, now)
		h.wireLast = now
	}
	return h.wireSum
}

// startParallel is how many peers start at once. A peer's start is
// mostly waiting (creating its message log and direct store is a few
// fsyncs; its identity, a key generation) and its join is a push/pull
// with peer 0 (memberlist serves up to 32 at once from one address), so a
// few at a time cut the start of a large group severalfold without
// loading the 2 cores more than the group's own connection set-up does.
const startParallel = 4

// startPeers creates and starts cfg.Peers nodes, startParallel at a time,
// and joins each (but the first) to peer 0 and to the bench room. On
// error the nodes started so far are in h.nodes (nil where none), for
// Stop.
func (h *Hearsay) startPeers(ctx context.Context, cfg SystemConfig, mode hearsay.OrderMode, progress Progress) error {
	h.nodes = make([]*chat.Node, cfg.Peers)
	var ph startPhases
	// Peer 0 first: every other joins it.
	if err := h.startPeer(ctx, cfg, mode, 0, "", &ph); err != nil {
		return err
	}
	seed := h.nodes[0].AdvertiseAddr()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		next    atomic.Int64
		errOnce sync.Once
		first   error
		started atomic.Int64
	)
	next.Store(1)
	started.Store(1)
	for range min(startParallel, cfg.Peers-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.Peers || ctx.Err() != nil {
					return
				}
				if err := h.startPeer(ctx, cfg, mode, i, seed, &ph); err != nil {
					errOnce.Do(func() { first = err })
					cancel()
					return
				}
				if k := started.Add(1); k%25 == 0 && int(k) < cfg.Peers {
					progress.printf("hearsay: %d of %d peers started; %s", k, cfg.Peers, &ph)
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	progress.printf("hearsay: %d peers started; %s", cfg.Peers, &ph)
	return nil
}

// startPeer creates and starts peer i, joins it to seed (unless empty) and
// to the bench room, and adds the time of each step to ph. Safe for
// concurrent use with other peers' starts.
func (h *Hearsay) startPeer(ctx context.Context, cfg SystemConfig, mode hearsay.OrderMode, i int, seed string, ph *startPhases) error {
	c := chat.DefaultConfig()
	c.Nick = fmt.Sprintf("bench%d", i)
	c.DataDir = fmt.Sprintf("%s/peer%d", h.dataDir, i)
	c.BindAddr = "127.0.0.1:0"
	if cfg.Drop > 0 {
		// The chat fault layer drops this ratio of every node's
		// outgoing chat frames; memberlist traffic is untouched.
		c.Faults = &chat.Faults{DropRatio: cfg.Drop}
	}
	if cfg.Store == "memory" {
		c.MessageLog = chat.MessageLogMemory
	}
	if cfg.FanoutThreshold > 0 {
		c.FanoutThreshold = cfg.FanoutThreshold
	}
	if cfg.TreeThreshold != 0 {
		c.TreeThreshold = cfg.TreeThreshold
	}
	if h.Profile != "" {
		c.MemberlistProfile = h.Profile
	}
	c.TuneChatTransport = func(tc *transport.TLSConfig) {
		sharedAddressBounds(tc, cfg.Peers)
		count := tc.OnRefused // the node's Stats.Refused
		tc.OnRefused = func(err error) {
			if count != nil {
				count(err)
			}
			h.refusals.add(err)
		}
	}
	c.TuneMemberlist = func(mc *memberlist.Config) { sharedMachineTimers(mc, cfg.Peers) }
	c.HandshakeTimeout = sharedMachineHandshake(c.HandshakeTimeout, cfg.Peers)
	// The default event buffer and send queues, as a user runs them: the
	// throughput window (Spec.Window per sender) keeps the messages in
	// flight far below their capacity, and any event or frame dropped
	// would show as a lower delivered ratio.
	t0 := time.Now()
	n, err := chat.New(c)
	if err != nil {
		return fmt.Errorf("hearsay peer %d: %w", i, err)
	}
	t1 := time.Now()
	if err := n.Start(ctx); err != nil {
		return errors.Join(fmt.Errorf("hearsay peer %d: start: %w", i, err), n.Shutdown())
	}
	t2 := time.Now()
	h.mu.Lock()
	h.nodes[i] = n
	h.mu.Unlock()
	h.wg.Add(1)
	go h.read(i, n)
	if seed != "" {
		if err := h.join(ctx, i, n, seed); err != nil {
			return err
		}
	}
	t3 := time.Now()
	if h.room != chat.DefaultRoom {
		if _, err := n.JoinRoom(ctx, h.room, mode); err != nil {
			return fmt.Errorf("hearsay peer %d: join room %s: %w", i, h.room, err)
		}
	}
	ph.add(t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
	return nil
}

// sharedAddressBounds lifts the chat listener's per-address bounds to its
// totals. Every peer of the bench dials from 127.0.0.1, so the bounds
// meant for one address (8 handshakes at once, 256 connections) bounded
// the whole group: when a peer joins, the others all dial it at once, and
// at N=80 the listeners refused 17,835 connections on the way to a full
// mesh (the dialers retry, with backoff), which left peers suspect for
// tens of seconds and the group unsettled past two minutes. The totals
// still apply (at least 64 handshakes and 1,024 connections, or two per
// peer), as they would to a listener whose peers each have an address.
func sharedAddressBounds(tc *transport.TLSConfig, peers int) {
	tc.MaxHandshakes = max(tc.MaxHandshakes, 64)
	tc.MaxHandshakesPerIP = tc.MaxHandshakes
	tc.MaxConns = max(tc.MaxConns, 1024, 2*peers)
	tc.MaxConnsPerIP = tc.MaxConns
}

// sharedMachineTimers slows memberlist's failure detector for a group of
// more than timerPeers on this one machine, in proportion to its size.
// The profile's timers (LAN: a probe every second, an ack expected within
// 500 ms) assume a machine per peer; here 200 peers share 2 cores, and
// while the group starts (hundreds of TLS handshakes, joins, room sets)
// a peer's memberlist goroutines wait for a CPU longer than that: live
// peers missed their acks, were suspected, then declared dead before they
// could refute, and the group never settled (N=200: after 3 min 50 s, 149
// of 200 peers saw every other, one of them 7 short). Probing every peer
// f times less often with an f times longer ack timeout (f = N /
// timerPeers) keeps the probes per second of the whole process what a
// group of timerPeers makes, and the suspicion timeout, a multiple of the
// probe interval, scales with it. TCPTimeout bounds a push/pull (a join,
// a resync): under the same load a peer 0 answering hundreds of joins
// took more than 10 s. Gossip is left alone: it is how members learn of
// each other, which the group waits for, and costs nothing when idle.
// The bench measures the chat path, not failure detection, and production
// keeps the profile's timers (a machine per peer).
func sharedMachineTimers(mc *memberlist.Config, peers int) {
	if peers <= timerPeers {
		return
	}
	f := time.Duration(peers) // scaled by peers/timerPeers, in integer steps of 1/timerPeers
	mc.ProbeInterval = mc.ProbeInterval * f / timerPeers
	mc.ProbeTimeout = mc.ProbeTimeout * f / timerPeers
	mc.TCPTimeout = max(mc.TCPTimeout, 30*time.Second)
}

// sharedMachineHandshake scales the chat handshake timeout d as
// sharedMachineTimers scales memberlist's, for the same reason: 100 peers
// starting on the loaded 2 cores counted 31,644 failed handshakes (and 0
// refused over a bound) in 7 minutes, with one of 100 peers ready. A TLS
// 1.3 handshake with X25519MLKEM768 and two Ed25519 signatures is about 2
// ms of CPU at each end, but a peer waits for a CPU with hundreds of
// others; one that takes longer than the timeout is lost, its dialer
// retries within 2 s, and the retries add to the load that made it slow.
func sharedMachineHandshake(d time.Duration, peers int) time.Duration {
	if peers <= timerPeers {
		return d
	}
	return d * time.Duration(peers) / timerPeers
}

// timerPeers is the group size up to which the profile's memberlist
// timers are kept: N=50 settles with them in seconds on this machine.
const timerPeers = 50

// refusals counts the chat listeners' refused connections by kind: what
// each costs, and so what a start that does not settle is short of,
// differs (a connection over a listener's bound costs an accept; one
// refused by Admit, whose dialer the listener does not know as a live
// member yet, a TLS handshake at both ends). Safe for concurrent use.
type refusals struct {
	busy, notAdmitted, failed atomic.Uint64
}

func (r *refusals) add(err error) {
	switch {
	case errors.Is(err, transport.ErrBusy):
		r.busy.Add(1)
	case errors.Is(err, transport.ErrNotAdmitted):
		r.notAdmitted.Add(1)
	default:
		r.failed.Add(1)
	}
}

func (r *refusals) String() string {
	return fmt.Sprintf("%d over a bound, %d not admitted, %d failed handshakes", r.busy.Load(), r.notAdmitted.Load(), r.failed.Load())
}

// joinAttempts bounds the joins a peer tries before its start fails.
const joinAttempts = 3

// join joins node n (peer i) to the group through seed, peer 0's address.
// A join that fails is tried again through another started peer, picked
// at random: peer 0 is the contact of every join and, in a group of 100
// that also sets up its ~10,000 chat connections meanwhile, it sometimes
// answers a push/pull after memberlist's 10 s TCP timeout (the join fails
// with "i/o timeout"); any member can introduce a new one.
func (h *Hearsay) join(ctx context.Context, i int, n *chat.Node, seed string) error {
	var errs []error
	for attempt := range joinAttempts {
		_, err := n.Join(ctx, []string{seed})
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("via %s: %w", seed, err))
		if ctx.Err() != nil || attempt == joinAttempts-1 {
			break
		}
		if other := h.randomPeer(i); other != nil {
			seed = other.AdvertiseAddr()
		}
	}
	return fmt.Errorf("hearsay peer %d: join: %w", i, errors.Join(errs...))
}

// randomPeer returns a started node other than peer i, or nil when there
// is none.
func (h *Hearsay) randomPeer(i int) *chat.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	var started []*chat.Node
	for j, n := range h.nodes {
		if n != nil && j != i {
			started = append(started, n)
		}
	}
	if len(started) == 0 {
		return nil
	}
	return started[rand.IntN(len(started))]
}

// startPhases adds up where starting the peers went: at large N the
// start is a large part of a run, and which step grows says why. Safe for
// concurrent use.
type startPhases struct {
	mu                        sync.Mutex
	create, start, join, room time.Duration
}

func (p *startPhases) add(create, start, join, room time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.create += create
	p.start += start
	p.join += join
	p.room += room
}

func (p *startPhases) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("chat.New %v, Start %v, Join %v, JoinRoom %v summed over the peers", r(p.create), r(p.start), r(p.join), r(p.room))
}

// readiness returns the condition Start waits for: every node sees all
// peers alive in memberlist and has joined the bench room, and a status
// for progress notes. A member shown suspect (alive in memberlist, but
// this node's chat connection to it has been failing for longer than the
// handshake timeout) counts: at N=90 one of 8,010 connections stayed down
// for a minute while everything else was ready, and whether the group
// delivers despite it is for the warm-up to say. It does not ask for a chat connection to every member: a node
// may keep links only to some neighbours (and dial the others when it
// needs them), so the message path is proven by the runner's warm-up
// instead, which waits until one message from every peer has reached
// every peer.
//
// The condition walks the nodes in order and remembers how far it got, so
// a poll costs one Members call (quadratic in the group size: display
// names compare each member with all others) instead of one per node:
// checking every node every 20 ms costs N³ and, at N=200, more CPU than
// the group itself while it settles. A node counted ready is not checked
// again; the warm-up catches one that regresses.
//
// A node that still misses members resyncAfter after it became the one
// waited for gets a push/pull with another peer (a Join: memberlist's full
// state exchange). Peers joining at once through peer 0 learn of each
// other only from gossip, and at N=50 on a loaded machine some alive
// announcements were lost, leaving a few peers unknown to others until
// memberlist's own push/pull, every 60 s at that size (30 s scaled with
// N): the group then took a minute to settle for want of a sync that a
// real deployment, whose peers do not all join in the same seconds, does
// not wait for.
func (h *Hearsay) readiness(ctx context.Context, peers int) (cond func() bool, status func() string) {
	next := 0
	waitingFor, since := -1, time.Now()
	resyncs := 0
	tries := map[int]int{}    // resyncs per node
	var resyncing atomic.Bool // one resync at a time
	cond = func() bool {
		for next < len(h.nodes) {
			v := h.nodeView(h.nodes[next])
			if v.alive+v.suspect >= peers && v.joined {
				next++
				continue
			}
			switch {
			case next != waitingFor:
				waitingFor, since = next, time.Now()
			case time.Since(since) > resyncAfter && !resyncing.Load():
				// In the background: a push/pull with a peer starved
				// of CPU takes up to memberlist's TCP timeout (30 s at
				// large N), and a poll blocked that long left nodes
				// that were ready meanwhile uncounted (N=60 on the
				// loaded machine: one resync in 55 s, the node waited
				// for seeing every member for most of them).
				resyncing.Store(true)
				i, k := next, tries[next]
				h.resyncs.Add(1)
				go func() {
					defer h.resyncs.Done()
					defer resyncing.Store(false)
					h.resync(ctx, i, k)
				}()
				tries[next]++
				resyncs++
				since = time.Now()
			}
			return false
		}
		return true
	}
	status = func() string {
		var refused uint64
		streams := 0
		for _, n := range h.nodes {
			st := n.Stats()
			refused += st.Refused
			streams += st.Streams
		}
		s := fmt.Sprintf("%d of %d peers ready", next, peers)
		if next < len(h.nodes) {
			v := h.nodeView(h.nodes[next])
			s += fmt.Sprintf("; peer %d sees %d alive and %d suspect, joined the room: %v", next, v.alive, v.suspect, v.joined)
		}
		return s + fmt.Sprintf("; %d chat connections up, %d refused so far (%s); %d membership resyncs", streams, refused, &h.refusals, resyncs)
	}
	return cond, status
}

// resyncAfter is how long readiness waits for a node to see every member
// before it syncs the node's membership (see readiness).
const resyncAfter = 5 * time.Second

// resync exchanges peer i's membership state with another peer: a
// memberlist push/pull (a Join). Its k-th resync goes to the k-th of the
// other peers in order, peer 0 first (every peer joined through it, so it
// is the one most likely to know them all), then the next ones, so that
// repeated resyncs reach whoever holds what i misses. It blocks for up to
// memberlist's TCP timeout; a failure is left to the next attempt.
func (h *Hearsay) resync(ctx context.Context, i, k int) {
	if len(h.nodes) < 2 {
		return
	}
	j := k % (len(h.nodes) - 1) // index among the others
	if j >= i {
		j++
	}
	_, _ = h.nodes[i].Join(ctx, []string{h.nodes[j].AdvertiseAddr()})
}

// view is what one node sees of the group.
type view struct {
	alive, suspect int // members, itself included
	joined         bool
}

// nodeView returns what n sees: how many members are alive (itself
// included) and suspect, and whether it has joined the bench room.
func (h *Hearsay) nodeView(n *chat.Node) view {
	var v view
	for _, m := range n.Members() {
		switch m.State {
		case hearsay.StateAlive:
			v.alive++
		case hearsay.StateSuspect:
			v.suspect++
		}
	}
	for _, r := range n.Rooms() {
		if r.Name == h.room {
			v.joined = r.Joined
			break
		}
	}
	return v
}

// settleTimeout is how long a group of n may take to converge.
func settleTimeout(n int) time.Duration { return 30*time.Second + time.Duration(n)*time.Second }

// read forwards node i's message events to the observer until the events
// channel closes (Shutdown).
func (h *Hearsay) read(i int, n *chat.Node) {
	defer h.wg.Done()
	for ev := range n.Events() {
		if ev.Type == hearsay.EventMessage && !ev.Self {
			h.obs.Deliver(i, []byte(ev.Text))
		}
	}
}

// Send implements System.
func (h *Hearsay) Send(ctx context.Context, from int, payload []byte) error {
	if from < 0 || from >= len(h.nodes) {
		return fmt.Errorf("hearsay: no peer %d", from)
	}
	_, err := h.nodes[from].Send(ctx, h.room, string(payload))
	return err
}

// Counters implements System. Copies are envelopes the nodes received from
// peers (Stats.Received: duplicates, anti-entropy repairs and, in the total
// orders, ordering control messages included). WireBytes are the bytes
// received on the process's TCP sockets since the group was ready (the
// kernel's count: TLS chat connections with their length prefixes, TLS
// records and protobuf; memberlist's UDP gossip is not included).
// FrameBytes are the bytes the nodes wrote to their links per frame kind
// (chat Stats.FrameBytes).
func (h *Hearsay) Counters() Counters {
	var c Counters
	for _, n := range h.nodes {
		st := n.Stats()
		c.Copies += st.Received
		for k, v := range st.FrameBytes {
			if c.FrameBytes == nil {
				c.FrameBytes = make(map[string]uint64)
			}
			c.FrameBytes[k] += v
		}
	}
	if h.wireKnown {
		c.WireBytes, c.WireKnown = h.sampleWire(), true
	}
	return c
}

// summarize writes the group's counters that explain copies and cost
// (where the duplicates came from: repairs, gap pulls, full queues) as a
// progress note, summed over the peers since they started.
func (h *Hearsay) summarize() {
	var sum hearsay.Stats
	var timers time.Duration
	var nodes int
	for _, n := range h.nodes {
		if n == nil {
			continue
		}
		st := n.Stats()
		nodes++
		timers += st.OverlayGraftTimer
		sum.OverlayGrafts += st.OverlayGrafts
		sum.OverlayGraftRefused += st.OverlayGraftRefused
		sum.Received += st.Received
		sum.Duplicates += st.Duplicates
		sum.RepairSent += st.RepairSent
		sum.Repaired += st.Repaired
		sum.GapPulls += st.GapPulls
		sum.TailPulls += st.TailPulls
		sum.StatusSent += st.StatusSent
		sum.QueueDrops += st.QueueDrops
		sum.FramesOut += st.FramesOut
		sum.BatchesOut += st.BatchesOut
	}
	h.progress.printf("hearsay: counters of the group: received %d, duplicates %d, repairs sent %d, new from repairs %d, gap pulls %d, tail pulls %d, statuses %d, queue drops %d, frames out %d (%d batches), tree grafts %d (%d refused), graft timer %v on average at the end",
		sum.Received, sum.Duplicates, sum.RepairSent, sum.Repaired, sum.GapPulls, sum.TailPulls, sum.StatusSent, sum.QueueDrops, sum.FramesOut, sum.BatchesOut,
		sum.OverlayGrafts, sum.OverlayGraftRefused, (timers / time.Duration(max(nodes, 1))).Round(time.Millisecond))
	h.summarizeHeldBack()
	if h.nodes[0] == nil || h.nodes[0].Stats().OverlayBroadcasts == 0 {
		return // the sender pushed to every member: the overlay carried nothing
	}
	views := make(map[string][]string, len(h.nodes))
	for _, n := range h.nodes {
		if n != nil {
			views[n.ID()] = n.OverlayNeighbours()
		}
	}
	if line := overlaySplitLine(views); line != "" {
		h.progress.printf("%s", line)
	}
}

// overlaySplitLine returns the note that the overlay whose active views
// are views ended split, with its components' sizes; "" when it is whole
// or carried nothing. A pure function, so that the note can be tested.
func overlaySplitLine(views map[string][]string) string {
	sizes := overlayComponents(views)
	if len(sizes) <= 1 {
		return ""
	}
	return fmt.Sprintf("hearsay: the overlay is split: components of %v peers (a peer outside the sender's gets none of its tree's messages)", sizes)
}

// summarizeHeldBack writes, when peers hold messages back at the end (a
// run whose messages fell short at them, as a rule), how many, and for
// the first few why: the ordering condition each first message waits for
// and what the peer's log holds of its origin.
func (h *Hearsay) summarizeHeldBack() {
	var peers []heldBackPeer
	for i, n := range h.nodes {
		if n == nil {
			continue
		}
		held := n.HeldBack(h.room, 2)
		if len(held) == 0 {
			continue
		}
		p := heldBackPeer{index: i, held: held}
		if len(peers) < heldBackShown {
			p.neighbours = n.Stats().OverlayNeighbors
		}
		peers = append(peers, p)
	}
	if line := heldBackLine(peers); line != "" {
		h.progress.printf("%s", line)
	}
}

// heldBackShown is how many of the peers holding messages back the
// summary describes; the rest are only counted.
const heldBackShown = 3

// heldBackPeer is what the summary says of a peer that holds messages
// back: its index in the group, its overlay neighbours, and why its first
// held messages wait (chat.Node.HeldBack's lines).
type heldBackPeer struct {
	index, neighbours int
	held              []string
}

// heldBackLine returns summarizeHeldBack's note for the peers that hold
// messages back (each with at least one held line), in the group's order;
// "" when there are none. A pure function, so that the note can be tested.
func heldBackLine(peers []heldBackPeer) string {
	if len(peers) == 0 {
		return ""
	}
	lines := make([]string, 0, heldBackShown)
	for _, p := range peers[:min(len(peers), heldBackShown)] {
		lines = append(lines, fmt.Sprintf("peer %d (%d neighbours): %s", p.index, p.neighbours, strings.Join(p.held, "; ")))
	}
	return fmt.Sprintf("hearsay: %d peers hold messages back at the end; %s", len(peers), strings.Join(lines, " | "))
}

// overlayComponents returns the sizes of the connected components of the
// overlay whose active views are views (a link counts from either end),
// largest first; none when no peer has a neighbour (direct push).
func overlayComponents(views map[string][]string) []int {
	parent := make(map[string]string, len(views))
	var find func(string) string
	find = func(x string) string {
		p, ok := parent[x]
		if !ok {
			parent[x] = x
			return x
		}
		if p == x {
			return x
		}
		root := find(p)
		parent[x] = root
		return root
	}
	linked := false
	for id, ns := range views {
		find(id)
		for _, nb := range ns {
			linked = true
			if a, b := find(id), find(nb); a != b {
				parent[a] = b
			}
		}
	}
	if !linked {
		return nil
	}
	count := map[string]int{}
	for id := range parent {
		count[find(id)]++
	}
	sizes := make([]int, 0, len(count))
	for _, c := range count {
		sizes = append(sizes, c)
	}
	slices.SortFunc(sizes, func(a, b int) int { return b - a })
	return sizes
}

// Stop implements System: every node shuts down and the data directories
// are removed.
func (h *Hearsay) Stop() error {
	h.stopOnce.Do(func() {
		if h.wireStop != nil {
			close(h.wireStop)
			<-h.wireDone
		}
		h.summarize()
		// No graceful Leave: the whole group goes away at once, and a
		// leave intent nobody is left to hear only costs time. Shutdowns
		// run startParallel at a time (each closes a message log with a
		// durable commit: one after the other, 200 peers took seconds).
		errs := make([]error, len(h.nodes))
		sem := make(chan struct{}, startParallel)
		var wg sync.WaitGroup
		for i, n := range h.nodes {
			if n == nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				errs[i] = n.Shutdown()
				<-sem
			}()
		}
		wg.Wait()
		h.wg.Wait()
		if h.dataDir != "" {
			errs = append(errs, os.RemoveAll(h.dataDir))
		}
		h.stopErr = errors.Join(errs...)
	})
	return h.stopErr
}
