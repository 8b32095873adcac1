package bench

// The hearsay system: N real chat.Nodes in this process, each with its own
// data directory, memberlist (LAN profile, like serf's default), TLS chat
// listener and Ed25519 identity. This file is the only place that knows
// the chat API, so that API changes stay local.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
)

// Hearsay is the hearsay System. Set fields before Start; the zero value
// uses the defaults.
type Hearsay struct {
	// Profile is the memberlist profile (chat.ProfileLAN when empty).
	Profile string
	// Room is the room messages go to (the lobby when empty; a room of
	// its own when SystemConfig.Order is set).
	Room string

	room    string // the room in use
	nodes   []*chat.Node
	dataDir string
	obs     Observer
	wg      sync.WaitGroup

	// wireBase is the TCP byte snapshot taken when the group was ready.
	wireBase  map[string]uint64
	wireKnown bool

	stopOnce sync.Once
	stopErr  error
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
	var ph startPhases
	for i := 0; i < cfg.Peers; i++ {
		c := chat.DefaultConfig()
		c.Nick = fmt.Sprintf("bench%d", i)
		c.DataDir = fmt.Sprintf("%s/peer%d", dir, i)
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
		if h.Profile != "" {
			c.MemberlistProfile = h.Profile
		}
		// The default event buffer and send queues, as a user runs them:
		// the throughput window (Spec.Window per sender) keeps the
		// messages in flight far below their capacity, and any event or
		// frame dropped would show as a lower delivered ratio.
		t0 := time.Now()
		n, err := chat.New(c)
		if err != nil {
			return errors.Join(fmt.Errorf("hearsay peer %d: %w", i, err), h.Stop())
		}
		t1 := time.Now()
		if err := n.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("hearsay peer %d: start: %w", i, err), h.Stop())
		}
		t2 := time.Now()
		h.nodes = append(h.nodes, n)
		h.wg.Add(1)
		go h.read(i, n)
		if i > 0 {
			if _, err := n.Join(ctx, []string{h.nodes[0].AdvertiseAddr()}); err != nil {
				return errors.Join(fmt.Errorf("hearsay peer %d: join: %w", i, err), h.Stop())
			}
		}
		t3 := time.Now()
		if h.room != chat.DefaultRoom || cfg.Order != "" {
			if _, err := n.JoinRoom(ctx, h.room, mode); err != nil {
				return errors.Join(fmt.Errorf("hearsay peer %d: join room %s: %w", i, h.room, err), h.Stop())
			}
		}
		ph.add(t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), time.Since(t3))
		if (i+1)%25 == 0 && i+1 < cfg.Peers {
			progress.printf("hearsay: %d of %d peers started; %s", i+1, cfg.Peers, ph)
		}
	}
	progress.printf("hearsay: %d peers started; %s", cfg.Peers, ph)
	err = settle(ctx, settleTimeout(cfg.Peers), "hearsay membership", progress, h.readiness(cfg.Peers))
	if err != nil {
		return errors.Join(err, h.Stop())
	}
	h.wireBase, h.wireKnown = tcpReceived()
	return nil
}

// startPhases adds up where starting the peers one after the other went:
// at large N the start is most of a run, and which step grows says why.
type startPhases struct{ create, start, join, room time.Duration }

func (p *startPhases) add(create, start, join, room time.Duration) {
	p.create += create
	p.start += start
	p.join += join
	p.room += room
}

func (p startPhases) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("chat.New %v, Start %v, Join %v, JoinRoom %v in all", r(p.create), r(p.start), r(p.join), r(p.room))
}

// readiness returns the condition Start waits for: every node sees all
// peers alive and has joined the bench room. It does not ask for a chat
// connection to every member: a node may keep links only to some
// neighbours (and dial the others when it needs them), so the message
// path is proven by the runner's warm-up instead, which waits until one
// message from every peer has reached every peer.
//
// The condition walks the nodes in order and remembers how far it got, so
// a poll costs one Members call (quadratic in the group size: display
// names compare each member with all others) instead of one per node:
// checking every node every 20 ms costs N³ and, at N=200, more CPU than
// the group itself while it settles. A node counted ready is not checked
// again; the warm-up catches one that regresses.
func (h *Hearsay) readiness(peers int) func() (bool, string) {
	next := 0
	return func() (bool, string) {
		for next < len(h.nodes) {
			alive, joined := h.nodeView(h.nodes[next])
			if alive < peers || !joined {
				return false, fmt.Sprintf("%d of %d peers ready; peer %d sees %d alive, joined the room: %v", next, peers, next, alive, joined)
			}
			next++
		}
		return true, fmt.Sprintf("%d of %d peers ready", next, peers)
	}
}

// nodeView returns how many members n sees alive (itself included) and
// whether it has joined the bench room.
func (h *Hearsay) nodeView(n *chat.Node) (alive int, joined bool) {
	for _, m := range n.Members() {
		if m.State == hearsay.StateAlive {
			alive++
		}
	}
	for _, r := range n.Rooms() {
		if r.Name == h.room {
			joined = r.Joined
			break
		}
	}
	return alive, joined
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
func (h *Hearsay) Counters() Counters {
	var c Counters
	for _, n := range h.nodes {
		c.Copies += n.Stats().Received
	}
	if h.wireKnown {
		if now, ok := tcpReceived(); ok {
			c.WireBytes, c.WireKnown = tcpDelta(h.wireBase, now), true
		}
	}
	return c
}

// Stop implements System: every node shuts down and the data directories
// are removed.
func (h *Hearsay) Stop() error {
	h.stopOnce.Do(func() {
		// No graceful Leave: the whole group goes away at once, and a
		// leave intent nobody is left to hear only costs time.
		var errs []error
		for _, n := range h.nodes {
			errs = append(errs, n.Shutdown())
		}
		h.wg.Wait()
		if h.dataDir != "" {
			errs = append(errs, os.RemoveAll(h.dataDir))
		}
		h.stopErr = errors.Join(errs...)
	})
	return h.stopErr
}
