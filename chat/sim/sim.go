// Package sim is a multi-peer simulator for hearsay's chat layer, in the
// manner of etcd-io/raft's interaction environment and rafttest: N peers,
// each a real chat.Node (the protocol's own code, nothing re-implemented),
// in one process, driven by a script or by a seeded nemesis, and a checker
// of what every peer showed.
//
// # The network
//
// The chat streams run over transport.MemNetwork (frames encoded and
// decoded as on the wire), under the fault decorator transport.WithFaults
// (random loss, delay and reordering, seeded from the simulation's seed)
// and the simulation's own partitions, which cut one direction at a time,
// so both symmetric and one-way partitions can be made (chatnet.go).
// memberlist runs in process too, through Config.MemberlistTransport, on
// an in-process transport that honours the same partitions (memberlist.go):
// no socket is opened. memberlist traffic is partitioned but not randomly
// lost: the subject is the chat layer, and random loss of probes would only
// make membership flap.
//
// Each peer has its own data directory (a bbolt log and its identity), so
// a crash and a restart on the same directory work: Crash shuts the node
// down without leaving the group (as kill -9 would: its peers learn it is
// gone from their failure detector; its streams end at once, as the
// kernel would reset them), Restart starts a new node on the directory and
// joins it to the peers it can reach. What an in-process crash cannot do
// is lose writes the operating system had not yet flushed: Shutdown closes
// the log cleanly.
//
// # Determinism
//
// A simulation's faults are a function of its seed: the nemesis (Random)
// writes the whole schedule of operations as a script before anything
// runs, and each peer's loss and delay draw from a generator seeded from
// the simulation's seed. The peers themselves are real goroutines on real
// timers, so the interleaving of frames is not reproducible, only the
// schedule of faults and the workload. A failing randomized run prints its
// seed (HEARSAY_SIM_SEED) and its script; the script can be kept under
// testdata/ as a regression test.
//
// # Scripts
//
// One command per line; blank lines and lines starting with '#' are
// ignored. Rooms are written with their '#'.
//
//	start a b c            start peers a, b and c and join them into one group
//	create a #r total      a creates (or joins) room r with an ordering mode
//	join b #r              b joins r in the room's mode
//	send a #r hello        a sends "hello" (text optional); must succeed
//	trysend a #r           the same, but a failure is only logged
//	partition a | b c      cut every pair across groups, both ways (replaces any cut)
//	cut a -> b             additionally cut what a sends to b (one way)
//	heal                   remove every cut and rejoin the live peers
//	crash b                stop b without leaving the group
//	restart b              start b again on its data directory
//	faults drop=0.1 delay=2ms jitter=20ms   random faults on chat frames (faults off: none)
//	run 300ms              let the peers run (workload pacing, never synchronisation)
//	check                  wait for convergence, check safety and liveness
//	checker replayed-shown count what a restarted peer's log holds as shown (checker strict: the default)
//
// # The checker
//
// Check waits (polling with a deadline) until every live peer sees every
// other, every live member of each room has shown the same messages and
// holds none back, then checks what each showed over all its lives: no
// message twice, each origin's messages in seq order, every message a
// live peer's Send acknowledged, the log holding exactly what was shown,
// causal order in causal and total rooms (a message after everything its
// sender had shown when it sent it), and, in total and sequencer rooms, the
// same relative order of the messages two peers both showed in the common
// order (not marked late). Then every live member sends a probe, which
// must be shown everywhere, and the checks run again.
package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/chat/transport"
	"github.com/hearsay-chat/hearsay/discovery"
)

// Options configure a simulation.
type Options struct {
	// Seed seeds every random choice of the simulation's network (each
	// peer's loss and delay). Random derives its schedule from the same
	// seed.
	Seed uint64
	// Timeout bounds each wait for a condition (convergence, a peer seen
	// dead); zero means 30 s, generous for the race detector on a busy
	// machine.
	Timeout time.Duration
	// Tune, when not nil, changes a peer's configuration before its first
	// start (the simulator's own settings: chattest.Config, anti-entropy
	// every 100 ms, a discovery agent's rejoin round every 200 ms).
	Tune func(name string, cfg *chat.Config)
	// Logf, when not nil, receives a line per operation (tb.Logf by
	// default).
	Logf func(format string, args ...any)
	// ReplayedShown makes the checker count what a restarted peer's log
	// holds as shown. Before the shown marks (chat/shown.go) a restarted
	// node replayed its log silently, so a message it had stored but not
	// shown when it crashed was never shown; kept to check how a change
	// behaves without the marks' guarantee. False, the default, is strict:
	// every stored message shown exactly once over the peer's lives.
	ReplayedShown bool
}

// Sim is one simulation. Its methods are meant to be called from one
// goroutine (the test's); the peers run on their own.
type Sim struct {
	tb   testing.TB
	opts Options
	rng  *rand.Rand // seeds the peers' fault injectors

	chatNet *transport.MemNetwork
	mlNet   *mlNet
	lost    atomic.Uint64 // chat frames lost to cuts

	cutMu sync.RWMutex
	cuts  map[[2]string]bool // {from, to} peer IDs

	peers  map[string]*Peer // by name
	names  []string         // in start order
	faults transport.FaultSettings
	rooms  map[string]*simRoom
	texts  int // numbers the texts of sends without one
}

// Peer is one simulated peer: its name in scripts, its configuration and
// data directory, and each of its lives.
type Peer struct {
	Name string
	ID   string

	cfg  chat.Config
	node *chat.Node // nil while crashed
	inj  *transport.Injector
	// agent is the running life's discovery agent: it rejoins members
	// the node saw fail, as a peer's agent does in hearsay (nil while
	// crashed).
	agent *discovery.Agent
	lives []*chattest.Recorder // one per start, in order
}

// Node returns the running node, or nil while the peer is crashed.
func (p *Peer) Node() *chat.Node { return p.node }

// Live reports whether the peer runs.
func (p *Peer) Live() bool { return p.node != nil }

// simRoom is what the simulation knows of a room.
type simRoom struct {
	mode    hearsay.OrderMode
	members map[string]bool // names of the peers that joined it
	sent    []sentMsg       // acknowledged by Send, in send order
}

// sentMsg is one acknowledged message and what its sender had shown of
// the room when it sent it (its causal past, as far as the sender's
// events tell).
type sentMsg struct {
	id   string
	from string // peer name
	deps []string
}

// New creates an empty simulation. Every peer it starts is shut down by
// tb.Cleanup.
func New(tb testing.TB, opts Options) *Sim {
	tb.Helper()
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Logf == nil {
		opts.Logf = tb.Logf
	}
	s := &Sim{
		tb:      tb,
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x68656172736179)), // "hearsay"
		chatNet: transport.NewMemNetwork(0),
		cuts:    make(map[[2]string]bool),
		peers:   make(map[string]*Peer),
		rooms:   make(map[string]*simRoom),
	}
	s.mlNet = newMLNet(s.isCut)
	tb.Cleanup(func() {
		for _, name := range s.names {
			if p := s.peers[name]; p.node != nil {
				p.closeAgent()
				_ = p.node.Shutdown()
				p.lives[len(p.lives)-1].Wait()
				p.node = nil
			}
		}
	})
	return s
}

func (s *Sim) logf(format string, args ...any) { s.opts.Logf(format, args...) }

// isCut reports whether what peer from sends to peer to is lost. Safe for
// concurrent use (the transports call it).
func (s *Sim) isCut(from, to string) bool {
	s.cutMu.RLock()
	defer s.cutMu.RUnlock()
	return s.cuts[[2]string{from, to}]
}

// Peer returns the peer called name, or nil.
func (s *Sim) Peer(name string) *Peer { return s.peers[name] }

// live returns the running peers in start order.
func (s *Sim) live() []*Peer {
	var out []*Peer
	for _, name := range s.names {
		if p := s.peers[name]; p.node != nil {
			out = append(out, p)
		}
	}
	return out
}

func (s *Sim) peer(name string) (*Peer, error) {
	p := s.peers[name]
	if p == nil {
		return nil, fmt.Errorf("no peer %q", name)
	}
	return p, nil
}

func (s *Sim) livePeer(name string) (*Peer, error) {
	p, err := s.peer(name)
	if err != nil {
		return nil, err
	}
	if p.node == nil {
		return nil, fmt.Errorf("peer %s is crashed", name)
	}
	return p, nil
}

// config returns a new peer's configuration.
func (s *Sim) config(name string) chat.Config {
	cfg := chattest.Config(s.tb, name)
	cfg.AntiEntropyInterval = 100 * time.Millisecond
	if s.opts.Tune != nil {
		s.opts.Tune(name, &cfg)
	}
	return cfg
}

// Start starts new peers called names, joins them into the group of the
// live peers (or into one new group) and waits until every live peer sees
// every other with an open chat stream, unless a partition is in force.
func (s *Sim) Start(names ...string) error {
	for _, name := range names {
		if name == "" || strings.ContainsAny(name, " |#") {
			return fmt.Errorf("bad peer name %q", name)
		}
		if s.peers[name] != nil {
			return fmt.Errorf("peer %s exists (restart it instead)", name)
		}
		p := &Peer{Name: name, cfg: s.config(name)}
		s.peers[name] = p
		s.names = append(s.names, name)
		if err := s.boot(p); err != nil {
			return err
		}
	}
	if len(s.cuts) == 0 {
		return s.waitGroup()
	}
	return nil
}

// boot starts p's node (a first start or a restart) and joins it to the
// live peers it can reach.
func (s *Sim) boot(p *Peer) error {
	cfg := p.cfg
	p.inj = transport.NewInjector(s.peerFaults())
	cfg.ChatTransport = func(l transport.Local) (transport.Transport, error) {
		ct := &cutTransport{Transport: s.chatNet.Listen(l), self: l.ID, cut: s.isCut, lost: &s.lost}
		return transport.WithFaults(ct, p.inj), nil
	}
	cfg.MemberlistTransport = func() (memberlist.Transport, error) { return s.mlNet.listen(p.ID), nil }
	n, err := chat.New(cfg)
	if err != nil {
		return fmt.Errorf("new peer %s: %w", p.Name, err)
	}
	p.ID = n.ID()
	rec := chattest.Record(n)
	if err := n.Start(context.Background()); err != nil {
		_ = n.Shutdown()
		rec.Wait()
		return fmt.Errorf("start peer %s: %w", p.Name, err)
	}
	p.node = n
	p.lives = append(p.lives, rec)
	var contacts []string
	for _, q := range s.live() {
		if q != p && !s.isCut(p.ID, q.ID) && !s.isCut(q.ID, p.ID) {
			contacts = append(contacts, q.node.AdvertiseAddr())
		}
	}
	if len(contacts) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		if _, err := n.Join(ctx, contacts); err != nil {
			s.logf("%s: join: %v (heal rejoins it)", p.Name, err)
		}
	}
	p.agent = chattest.OpenAgent(s.tb, n)
	return nil
}

// closeAgent stops the discovery agent of the running life, if any.
func (p *Peer) closeAgent() {
	if p.agent == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.agent.Close(ctx) // leaving a service that is not there fails: expected
	p.agent = nil
}

// peerFaults returns the fault settings for a new life of a peer: those in
// force, with a seed from the simulation's generator.
func (s *Sim) peerFaults() transport.FaultSettings {
	f := s.faults
	f.Seed = int64(s.rng.Uint64()>>1) | 1 // never 0, which means "random"
	return f
}

// SetFaults sets the random faults on every peer's chat frames, now and
// after restarts (the seed is the simulation's).
func (s *Sim) SetFaults(f transport.FaultSettings) {
	s.faults = f
	s.faults.Seed = 0
	for _, p := range s.live() {
		p.inj.Set(s.peerFaults())
	}
}

// Crash stops a peer at once, without telling the group.
func (s *Sim) Crash(name string) error {
	p, err := s.livePeer(name)
	if err != nil {
		return err
	}
	p.closeAgent()
	err = p.node.Shutdown()
	p.lives[len(p.lives)-1].Wait()
	p.node = nil
	if err != nil {
		return fmt.Errorf("crash %s: %w", name, err)
	}
	return nil
}

// Restart starts a crashed peer again on its data directory. It first
// waits until no live peer sees the old life alive any more: memberlist
// refuses a known name at a new address while the old one is alive, as a
// restarted process that came back too soon would find.
func (s *Sim) Restart(name string) error {
	p, err := s.peer(name)
	if err != nil {
		return err
	}
	if p.node != nil {
		return fmt.Errorf("peer %s is running (crash it first)", name)
	}
	if err := s.waitFor(func() bool {
		for _, q := range s.live() {
			for _, m := range q.node.Members() {
				if m.ID == p.ID && m.State == hearsay.StateAlive {
					return false
				}
			}
		}
		return true
	}, func() string { return fmt.Sprintf("the live peers still see %s alive", name) }); err != nil {
		return err
	}
	return s.boot(p)
}

// Partition cuts every pair of peers in different groups, both ways,
// replacing the cuts in force. Peers in no group keep talking to everyone.
func (s *Sim) Partition(groups ...[]string) error {
	ids := make([][]string, len(groups))
	for i, g := range groups {
		for _, name := range g {
			p, err := s.peer(name)
			if err != nil {
				return err
			}
			ids[i] = append(ids[i], p.ID)
		}
	}
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	clear(s.cuts)
	for i := range ids {
		for j := range ids {
			if i == j {
				continue
			}
			for _, a := range ids[i] {
				for _, b := range ids[j] {
					s.cuts[[2]string{a, b}] = true
				}
			}
		}
	}
	return nil
}

// Cut additionally cuts what from sends to to (one way).
func (s *Sim) Cut(from, to string) error {
	a, err := s.peer(from)
	if err != nil {
		return err
	}
	b, err := s.peer(to)
	if err != nil {
		return err
	}
	s.cutMu.Lock()
	defer s.cutMu.Unlock()
	s.cuts[[2]string{a.ID, b.ID}] = true
	return nil
}

// Heal removes every cut and joins every live peer to the others, as
// cmd/hearsay's discovery (bootstrap service, cached contacts) would after
// a partition that outlived memberlist's memory of the dead.
func (s *Sim) Heal() error {
	s.cutMu.Lock()
	clear(s.cuts)
	s.cutMu.Unlock()
	live := s.live()
	for _, p := range live {
		var contacts []string
		for _, q := range live {
			if q != p {
				contacts = append(contacts, q.node.AdvertiseAddr())
			}
		}
		if len(contacts) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		_, err := p.node.Join(ctx, contacts)
		cancel()
		if err != nil {
			return fmt.Errorf("heal: rejoin %s: %w", p.Name, err)
		}
	}
	return nil
}

// cutsInForce reports whether any cut is in force.
func (s *Sim) cutsInForce() bool {
	s.cutMu.RLock()
	defer s.cutMu.RUnlock()
	return len(s.cuts) > 0
}

// JoinRoom makes peer name join room: with mode (0: the room's mode) and,
// when no cut is in force, waits until every live member sees every
// other.
func (s *Sim) JoinRoom(name, room string, mode hearsay.OrderMode) error {
	p, err := s.livePeer(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	ri, err := p.node.JoinRoom(ctx, room, mode)
	if err != nil {
		return fmt.Errorf("%s join #%s: %w", name, room, err)
	}
	r := s.rooms[ri.Name]
	if r == nil {
		r = &simRoom{mode: ri.Mode, members: make(map[string]bool)}
		s.rooms[ri.Name] = r
	}
	r.members[name] = true
	if ri.Mode != r.mode {
		return fmt.Errorf("%s joined #%s in mode %v, the room's first member chose %v", name, ri.Name, ri.Mode, r.mode)
	}
	if s.cutsInForce() {
		return nil
	}
	return s.waitRoomMembers(ri.Name)
}

// Send sends text (a generated one when empty) from peer name to room and
// records it when acknowledged. It retries while the room is restoring
// after a restart, up to the timeout.
func (s *Sim) Send(name, room, text string) (hearsay.MsgID, error) {
	return s.send(name, room, text, s.opts.Timeout)
}

func (s *Sim) send(name, room, text string, retry time.Duration) (hearsay.MsgID, error) {
	p, err := s.livePeer(name)
	if err != nil {
		return hearsay.MsgID{}, err
	}
	room = strings.TrimPrefix(room, "#")
	r := s.rooms[room]
	if r == nil || !r.members[name] {
		return hearsay.MsgID{}, fmt.Errorf("%s has not joined #%s", name, room)
	}
	if text == "" {
		s.texts++
		text = fmt.Sprintf("%s-%d", name, s.texts)
	}
	deps := p.shownIDs(room)
	// Poll: a room restoring after a restart takes messages again once it
	// has heard from its members.
	var id hearsay.MsgID
	chattest.Poll(retry, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
		defer cancel()
		id, err = p.node.Send(ctx, room, text)
		return !errors.Is(err, chat.ErrRestoring)
	})
	if err != nil {
		return hearsay.MsgID{}, fmt.Errorf("%s send to #%s: %w", name, room, err)
	}
	r.sent = append(r.sent, sentMsg{id: id.String(), from: name, deps: deps})
	return id, nil
}

// shown returns the message events of room that p showed, over all its
// lives, in order.
func (p *Peer) shown(room string) []hearsay.Event {
	var out []hearsay.Event
	for _, rec := range p.lives {
		out = append(out, rec.RoomMessages(room)...)
	}
	return out
}

func (p *Peer) shownIDs(room string) []string {
	evs := p.shown(room)
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

// waitFor polls cond until it holds or the timeout passes; then it returns
// an error saying what (why is called only then).
func (s *Sim) waitFor(cond func() bool, why func() string) error {
	if chattest.Poll(s.opts.Timeout, cond) {
		return nil
	}
	return fmt.Errorf("timed out after %v: %s", s.opts.Timeout, why())
}

// waitGroup waits until every live peer sees every other alive with an
// open chat stream.
func (s *Sim) waitGroup() error {
	return s.waitFor(func() bool {
		live := s.live()
		for _, p := range live {
			if chattest.AliveCount(p.node) != len(live) || !chattest.LinksUp(p.node.Stats(), len(live)) {
				return false
			}
		}
		return true
	}, func() string {
		var b strings.Builder
		b.WriteString("the live peers do not all see each other:")
		for _, p := range s.live() {
			fmt.Fprintf(&b, " %s sees %d alive, %d streams;", p.Name, chattest.AliveCount(p.node), p.node.Stats().Streams)
		}
		return b.String()
	})
}

// liveMembers returns the live peers that joined room.
func (s *Sim) liveMembers(room string) []*Peer {
	var out []*Peer
	for _, p := range s.live() {
		if s.rooms[room].members[p.Name] {
			out = append(out, p)
		}
	}
	return out
}

// waitRoomMembers waits until every live member of room lists exactly the
// live members.
func (s *Sim) waitRoomMembers(room string) error {
	return s.waitFor(func() bool {
		ms := s.liveMembers(room)
		var want []*chattest.Peer
		for _, p := range ms {
			want = append(want, &chattest.Peer{Node: p.node})
		}
		for _, p := range ms {
			if !chattest.RoomHas(p.node, room, want...) {
				return false
			}
		}
		return true
	}, func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "the live members of #%s do not all see each other:", room)
		for _, p := range s.liveMembers(room) {
			for _, ri := range p.node.Rooms() {
				if ri.Name == room {
					fmt.Fprintf(&b, " %s sees %s;", p.Name, strings.Join(s.namesOf(ri.Members), ","))
				}
			}
		}
		return b.String()
	})
}

// namesOf turns peer IDs into names, sorted.
func (s *Sim) namesOf(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		name := id
		for _, p := range s.peers {
			if p.ID == id {
				name = p.Name
			}
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// rename replaces the peer IDs in s with names, for readable failures.
func (s *Sim) rename(text string) string {
	for _, p := range s.peers {
		text = strings.ReplaceAll(text, p.ID, p.Name)
	}
	return text
}

// Rooms returns the names of the rooms the simulation created, sorted.
func (s *Sim) Rooms() []string {
	out := make([]string, 0, len(s.rooms))
	for name := range s.rooms {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Lost returns how many chat frames and memberlist packets the
// simulation's partitions and full buffers lost, and how many chat frames
// the random faults dropped.
func (s *Sim) Lost() (cut, random uint64) {
	for _, p := range s.peers {
		random += p.inj.Drops()
	}
	return s.lost.Load() + s.mlNet.Lost(), random
}
