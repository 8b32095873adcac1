// Package chattest starts hearsay peers inside one test process: on
// 127.0.0.1 with free ports, memberlist's Local profile with aggressive
// timers, and helpers that wait for conditions by polling with a deadline
// (never fixed sleeps). Every node it starts is shut down by t.Cleanup.
//
// The chat library does not rejoin members it declared dead: in a running
// hearsay the discovery agent does. So each peer Start starts gets one
// too (Peer.Agent, a rejoin round every RejoinInterval, no bootstrap
// service), as it would have in production: a partition that outlives the
// dead declaration, or a false one on a loaded machine, heals.
package chattest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/discovery"
)

// RejoinInterval is how often the discovery agent of a test peer joins
// again the members its node saw fail.
const RejoinInterval = 200 * time.Millisecond

// noService is a bootstrap URL where nothing answers (port 1 is not
// served): the agents of test peers rejoin only the failed members their
// nodes report.
const noService = "http://127.0.0.1:1"

// DefaultTimeout is how long the helpers wait for a condition: generous,
// because the race detector and a loaded machine slow everything down;
// conditions normally hold within a fraction of a second.
const DefaultTimeout = 20 * time.Second

// FastSettings are memberlist settings for tests: gossip every 20 ms, probe
// every 200 ms, a failed node is declared dead within about a second.
func FastSettings() chat.MemberlistSettings {
	s, err := chat.DecodeMemberlistSettings([]byte(`{"profile":"local"}`))
	if err != nil {
		panic(err)
	}
	s.GossipInterval = chat.Duration(20 * time.Millisecond)
	s.ProbeInterval = chat.Duration(200 * time.Millisecond)
	s.ProbeTimeout = chat.Duration(100 * time.Millisecond)
	s.SuspicionMult = 2
	s.SuspicionMaxTimeoutMult = 2
	s.PushPullInterval = chat.Duration(500 * time.Millisecond)
	s.TCPTimeout = chat.Duration(2 * time.Second)
	s.GossipToTheDeadTime = chat.Duration(2 * time.Second)
	s.DeadNodeReclaimTime = chat.Duration(100 * time.Millisecond)
	return s
}

// Config returns a node configuration for tests: the given nick, a fresh
// data directory, 127.0.0.1 with free ports, FastSettings.
func Config(tb testing.TB, nick string) chat.Config {
	tb.Helper()
	cfg := chat.DefaultConfig()
	cfg.Nick = nick
	cfg.DataDir = tb.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.MemberlistProfile = chat.ProfileLocal
	s := FastSettings()
	cfg.Memberlist = &s
	cfg.HandshakeTimeout = 2 * time.Second
	cfg.LeaveTimeout = 2 * time.Second
	return cfg
}

// Peer is a started node with a recorder of its events.
type Peer struct {
	*chat.Node
	Rec *Recorder
	// Agent is the peer's discovery agent (see the package comment).
	Agent *discovery.Agent
}

// Start creates and starts a node with cfg, records its events and gives
// it a discovery agent that rejoins failed members. The agent is closed
// and the node shut down at the end of the test.
func Start(tb testing.TB, cfg chat.Config) *Peer {
	tb.Helper()
	n, err := chat.New(cfg)
	if err != nil {
		tb.Fatalf("new node: %v", err)
	}
	rec := Record(n)
	tb.Cleanup(func() {
		_ = n.Shutdown()
		rec.Wait()
	})
	if err := n.Start(context.Background()); err != nil {
		tb.Fatalf("start node %s: %v", cfg.Nick, err)
	}
	agent := OpenAgent(tb, n)
	tb.Cleanup(func() { // runs before the node's shutdown
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = agent.Close(ctx) // leaving a service that is not there fails: expected
	})
	return &Peer{Node: n, Rec: rec, Agent: agent}
}

// OpenAgent opens a discovery agent for the started node n that rejoins
// its failed members every RejoinInterval, with no bootstrap service, and
// registers n with it. The caller closes the agent (before shutting the
// node down); its data directory is a test temporary directory.
func OpenAgent(tb testing.TB, n *chat.Node) *discovery.Agent {
	tb.Helper()
	dcfg := discovery.DefaultConfig()
	dcfg.URLs = []string{noService}
	dcfg.DataDir = tb.TempDir()
	dcfg.RejoinInterval = RejoinInterval
	dcfg.RequestTimeout = 2 * time.Second
	agent, err := discovery.Open(context.Background(), dcfg)
	if err != nil {
		tb.Fatalf("discovery agent of %s: %v", n.Nick(), err)
	}
	_, _ = agent.Register(context.Background(), n) // no service answers: the error is expected
	return agent
}

// Cluster starts n peers (nicks p0, p1, …, or as changed by tune), joins
// them all through the first, and waits until every peer sees every other
// one alive with an established chat stream.
func Cluster(tb testing.TB, n int, tune func(i int, cfg *chat.Config)) []*Peer {
	tb.Helper()
	peers := make([]*Peer, n)
	for i := range peers {
		cfg := Config(tb, fmt.Sprintf("p%d", i))
		if tune != nil {
			tune(i, &cfg)
		}
		peers[i] = Start(tb, cfg)
	}
	for _, p := range peers[1:] {
		Join(tb, p, peers[0])
	}
	WaitConverged(tb, peers...)
	return peers
}

// Join joins p to the group of contact.
func Join(tb testing.TB, p, contact *Peer) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	if _, err := p.Join(ctx, []string{contact.AdvertiseAddr()}); err != nil {
		tb.Fatalf("join %s to %s: %v", p.Nick(), contact.Nick(), err)
	}
}

// WaitConverged waits until each peer sees all the others alive, has an
// open chat stream to each, and knows them all as members of the lobby.
func WaitConverged(tb testing.TB, peers ...*Peer) {
	tb.Helper()
	WaitFor(tb, DefaultTimeout, func() bool {
		for _, p := range peers {
			if AliveCount(p.Node) != len(peers) || !LinksUp(p.Stats(), len(peers)) {
				return false
			}
		}
		return true
	}, "peers did not converge")
	WaitRoomMembers(tb, chat.DefaultRoom, peers...)
}

// LinksUp reports whether a peer of a group of n with stats st has every
// link it keeps established: one to each other member in a small group,
// one to each overlay neighbour in a group above Config.TreeThreshold
// (chat/links.go).
func LinksUp(st hearsay.Stats, n int) bool {
	if st.KeptDown != 0 {
		return false
	}
	// A large group: a kept link per overlay neighbour (the driver keeps
	// exactly the machine's active view's links, chat/overlaydrv.go
	// syncKept; a former neighbour's may still be kept by membership
	// while the group is small).
	return st.KeptLinks == n-1 || (st.OverlayNeighbors > 0 && st.KeptLinks >= st.OverlayNeighbors)
}

// WaitRoomMembers waits until each peer has joined room and sees exactly
// the given peers as its live members.
func WaitRoomMembers(tb testing.TB, room string, peers ...*Peer) {
	tb.Helper()
	ok := Poll(DefaultTimeout, func() bool {
		for _, p := range peers {
			if !RoomHas(p.Node, room, peers...) {
				return false
			}
		}
		return true
	})
	if !ok {
		tb.Fatalf("timed out after %v: room #%s members did not converge:%s", DefaultTimeout, room, roomDiff(room, peers))
	}
}

// roomDiff says, for each peer that does not see exactly peers in room,
// whom it lacks and whom it has too many: which member's room set went
// missing is what tells one cause from another.
func roomDiff(room string, peers []*Peer) string {
	nick := make(map[string]string, len(peers))
	for _, p := range peers {
		nick[p.ID()] = p.Nick()
	}
	var b strings.Builder
	for _, p := range peers {
		var members []string
		joined := false
		for _, ri := range p.Rooms() {
			if ri.Name == room {
				members, joined = ri.Members, ri.Joined
			}
		}
		var lack, extra []string
		for _, q := range peers {
			if !slices.Contains(members, q.ID()) {
				lack = append(lack, q.Nick())
			}
		}
		for _, id := range members {
			if nick[id] == "" {
				extra = append(extra, id)
			}
		}
		if !joined || len(lack) > 0 || len(extra) > 0 {
			fmt.Fprintf(&b, "\n  %s (joined %v) lacks %v, has others %v", p.Nick(), joined, lack, extra)
		}
	}
	return b.String()
}

// RoomHas reports whether n has joined room and sees exactly peers as its
// live members.
func RoomHas(n *chat.Node, room string, peers ...*Peer) bool {
	for _, ri := range n.Rooms() {
		if ri.Name != room {
			continue
		}
		if !ri.Joined || len(ri.Members) != len(peers) {
			return false
		}
		for _, p := range peers {
			if !slices.Contains(ri.Members, p.ID()) {
				return false
			}
		}
		return true
	}
	return false
}

// AliveCount counts the members n sees alive, itself included.
func AliveCount(n *chat.Node) int {
	k := 0
	for _, m := range n.Members() {
		if m.State == hearsay.StateAlive {
			k++
		}
	}
	return k
}

// WaitFor polls cond every 5 ms until it holds, failing the test with msg
// after timeout.
func WaitFor(tb testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	tb.Helper()
	if !Poll(timeout, cond) {
		tb.Fatalf("timed out after %v: "+msg, append([]any{timeout}, args...)...)
	}
}

// Poll polls cond every 5 ms until it holds (true) or timeout passes
// (false).
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// Recorder drains a node's Events channel into memory (so the node never
// drops events in tests) until the channel closes.
type Recorder struct {
	mu     sync.Mutex
	events []hearsay.Event
	notify chan struct{} // closed and replaced on each event
	done   chan struct{}
}

// Record starts recording n's events.
func Record(n *chat.Node) *Recorder {
	r := &Recorder{notify: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for ev := range n.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			close(r.notify)
			r.notify = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

// Wait blocks until the node's Events channel is closed (by Shutdown).
func (r *Recorder) Wait() { <-r.done }

// Events returns a copy of the events so far.
func (r *Recorder) Events() []hearsay.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Filter returns the events so far that match keep.
func (r *Recorder) Filter(keep func(hearsay.Event) bool) []hearsay.Event {
	var out []hearsay.Event
	for _, ev := range r.Events() {
		if keep(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// Messages returns the message events so far.
func (r *Recorder) Messages() []hearsay.Event {
	return r.Filter(func(ev hearsay.Event) bool { return ev.Type == hearsay.EventMessage })
}

// Len returns the number of events recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// WaitEvent waits until an event matching match has been recorded and
// returns the first one.
func (r *Recorder) WaitEvent(tb testing.TB, timeout time.Duration, match func(hearsay.Event) bool, what string) hearsay.Event {
	tb.Helper()
	return r.WaitEventAfter(tb, timeout, 0, match, what)
}

// WaitEventAfter is WaitEvent looking only at events from index start on
// (see Len).
func (r *Recorder) WaitEventAfter(tb testing.TB, timeout time.Duration, start int, match func(hearsay.Event) bool, what string) hearsay.Event {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	closed := false
	for {
		r.mu.Lock()
		for _, ev := range r.events[min(start, len(r.events)):] {
			if match(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		ch := r.notify
		r.mu.Unlock()
		if closed {
			tb.Fatalf("events closed before %s", what)
		}
		select {
		case <-ch:
		case <-r.done:
			closed = true
		case <-deadline.C:
			tb.Fatalf("timed out after %v waiting for %s; events: %v", timeout, what, r.Events())
		}
	}
}

// JoinRoom makes every peer join room with mode (0 for the room's mode or
// the default) and waits until each sees all of them as members.
func JoinRoom(tb testing.TB, room string, mode hearsay.OrderMode, peers ...*Peer) {
	tb.Helper()
	for _, p := range peers {
		if _, err := p.JoinRoom(context.Background(), room, mode); err != nil {
			tb.Fatalf("%s join #%s: %v", p.Nick(), room, err)
		}
	}
	WaitRoomMembers(tb, room, peers...)
}

// RoomMessages returns the message events of room recorded so far.
func (r *Recorder) RoomMessages(room string) []hearsay.Event {
	return r.Filter(func(ev hearsay.Event) bool { return ev.Type == hearsay.EventMessage && ev.Room == room })
}

// HistoryIDs returns the IDs of the messages n's log holds for room (at
// most 10000), oldest first.
func HistoryIDs(tb testing.TB, n *chat.Node, room string) []string {
	tb.Helper()
	evs, err := n.History(room, 10000)
	if err != nil {
		tb.Fatalf("history #%s: %v", room, err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

// WaitRoomSeen waits until every observer lists room with exactly members
// as its live members (joined or not: a peer outside the room sees its
// members from their announcements).
func WaitRoomSeen(tb testing.TB, room string, members []*Peer, observers ...*Peer) {
	tb.Helper()
	want := make([]string, len(members))
	for i, m := range members {
		want[i] = m.ID()
	}
	slices.Sort(want)
	WaitFor(tb, DefaultTimeout, func() bool {
		for _, o := range observers {
			ok := false
			for _, ri := range o.Rooms() {
				if ri.Name == room {
					got := slices.Clone(ri.Members)
					slices.Sort(got)
					ok = slices.Equal(got, want)
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, "room #%s not seen with its %d members", room, len(members))
}
