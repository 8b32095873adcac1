// Package overlaysim simulates thousands of hearsay peers disseminating
// messages over the overlay (package overlay): the very overlay.Node state
// machines hearsay runs, driven by a discrete-event loop over a simulated
// network with per-link latency, message loss and churn. It is one
// goroutine with one seeded generator, so a Config always gives the same
// Result; there is no wall clock in it.
//
// The network: a fixed one-way latency per pair of peers, drawn uniformly
// from [LatencyMin, LatencyMax] by a hash of the pair (so a link is FIFO, as
// a TCP connection is), and each message lost with probability Loss. A
// message to a crashed peer is lost, and its sender hears of the failure
// after a round trip (a refused connection). When a peer crashes, each peer
// holding it in its active view hears of it after DetectDelay (a broken
// connection). Churn crashes a random live peer and starts a new one, which
// joins through a random live peer, at a steady rate.
//
// The workload: N peers join within JoinSpread (each through a random
// earlier one), the overlay settles for Settle, then Warmup + Messages
// broadcasts leave random live peers at Rate per second. The first Warmup
// shape the tree and are not measured. A measured message counts as
// reaching a peer if the peer delivered it within Window; the peers it
// must reach are those that had been up for JoinGrace when it was sent and
// were still up Window after.
package overlaysim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/hearsay-chat/hearsay/chat/overlay"
)

// Config is one simulation run.
type Config struct {
	Peers int
	Seed  uint64

	LatencyMin, LatencyMax time.Duration // one-way, per pair of peers
	Loss                   float64       // probability that a message is lost
	DetectDelay            time.Duration // until neighbours notice a crash
	// ChurnPerMinute is the fraction of peers replaced per minute during
	// the measured phase (0.01: 1 % of the peers crash, and as many new
	// ones join, every minute).
	ChurnPerMinute float64

	JoinSpread time.Duration // all peers join within it
	Settle     time.Duration // then the overlay settles
	JoinGrace  time.Duration // a peer must reach messages sent this long after it joined

	Warmup   int // broadcasts before the measured ones, not measured
	Messages int // measured broadcasts
	// Speakers is how many peers broadcast (a room's active speakers,
	// chosen at random; a crashed one is replaced by another live peer).
	// 0: each broadcast leaves a random live peer. Each origin has its
	// own tree, and its first broadcast floods the overlay to build it.
	Speakers int
	Rate     float64 // broadcasts per second
	Window   time.Duration
	Payload  int // bytes per broadcast

	// Overlay returns a peer's overlay configuration; nil means
	// overlay.DefaultConfig with ActiveSize = overlay.ActiveSizeFor(Peers).
	Overlay func(self string, seed uint64) overlay.Config
}

// DefaultConfig returns the reference run for n peers: a WAN-like
// network (10 to 100 ms one way), no loss, 1 % churn per minute, 100
// measured broadcasts at 5 per second.
func DefaultConfig(n int, seed uint64) Config {
	return Config{
		Peers:          n,
		Seed:           seed,
		LatencyMin:     10 * time.Millisecond,
		LatencyMax:     100 * time.Millisecond,
		DetectDelay:    2 * time.Second,
		ChurnPerMinute: 0.01,
		JoinSpread:     10 * time.Second,
		Settle:         20 * time.Second,
		JoinGrace:      5 * time.Second,
		Warmup:         20,
		Messages:       100,
		Speakers:       10,
		Rate:           5,
		Window:         10 * time.Second,
		Payload:        100,
	}
}

// Validate reports the first setting that cannot run.
func (c Config) Validate() error {
	switch {
	case c.Peers < 2 || c.Peers > 1_000_000:
		return fmt.Errorf("peers %d out of 2..1000000", c.Peers)
	case c.LatencyMin <= 0 || c.LatencyMax < c.LatencyMin:
		return errors.New("latency range must be positive and ordered")
	case c.Loss < 0 || c.Loss >= 1:
		return fmt.Errorf("loss %g out of [0, 1)", c.Loss)
	case c.ChurnPerMinute < 0 || c.ChurnPerMinute > 1:
		return fmt.Errorf("churn %g per minute out of [0, 1]", c.ChurnPerMinute)
	case c.Messages < 1 || c.Warmup < 0 || c.Rate <= 0 || c.Window <= 0 || c.Speakers < 0:
		return errors.New("messages, rate and window must be positive")
	case c.DetectDelay < 0 || c.JoinSpread < 0 || c.Settle < 0 || c.JoinGrace < 0 || c.Payload < 0:
		return errors.New("durations and payload must not be negative")
	}
	return nil
}

// Result is what one run measured.
type Result struct {
	Peers    int    `json:"peers"`
	Seed     uint64 `json:"seed"`
	Active   int    `json:"active_view"`
	Messages int    `json:"messages"`

	// Delivered is the deliveries to the peers each message had to reach,
	// over their number; Complete the messages that reached every one.
	Delivered float64 `json:"delivered_ratio"`
	Complete  int     `json:"complete_messages"`
	// Hops from the origin, over every delivery of a measured message.
	HopsP50 float64 `json:"hops_p50"`
	HopsP99 float64 `json:"hops_p99"`
	HopsMax float64 `json:"hops_max"`
	// Log2N is log2(Peers), for the target p99 hops ≤ log2 N + 2.
	Log2N float64 `json:"log2_n"`
	// Copies is payloads received (duplicates included) per delivery.
	Copies float64 `json:"copies_per_delivery"`
	// Time from the send until the last peer it had to reach delivered
	// it, over the complete messages, in milliseconds.
	FullP50ms float64 `json:"full_delivery_p50_ms"`
	FullP99ms float64 `json:"full_delivery_p99_ms"`
	FullMaxms float64 `json:"full_delivery_max_ms"`
	// Messages per live peer per second during the measured phase that
	// are not payloads: the tree's (IHAVE, GRAFT, PRUNE) and the views'
	// (join, neighbour, disconnect, shuffle).
	TreeOverhead float64 `json:"tree_msgs_per_peer_s"`
	ViewOverhead float64 `json:"view_msgs_per_peer_s"`
	// Churned is the number of peers crashed (and replaced) meanwhile.
	Churned int `json:"churned"`
	// Lost is the messages the network lost (Loss).
	Lost uint64 `json:"lost"`
	// Grafts sent, and missing messages given up, by all peers.
	Grafts  uint64 `json:"grafts"`
	GiveUps uint64 `json:"graft_give_ups"`
	// Events is the number of simulated events; SimSeconds the simulated
	// time.
	Events     uint64  `json:"events"`
	SimSeconds float64 `json:"sim_seconds"`
}

type peer struct {
	id    string
	node  *overlay.Node
	alive bool
	born  time.Duration
	died  time.Duration // 0 while alive
	// tickAt is the time of the Tick event that counts; others are stale.
	tickAt time.Duration
	// holders are the peers that hold this one in their active view (from
	// their Up/Down outputs): they hear of its crash.
	holders []int32
}

type msgTrack struct {
	origin int32
	sentAt time.Duration
	nPeers int      // peers that existed when it was sent
	got    []uint64 // bitset over peers [0, nPeers): delivered within Window
	last   time.Duration
}

type sim struct {
	cfg         Config
	onBroadcast func(s *sim, k int) // runSim's
	rng         *rand.Rand
	now         time.Duration
	q           eventQueue
	peers       []peer
	index       map[string]int32
	live        []int32 // indices of live peers, for uniform choice
	speakers    []int32
	warm        int

	msgs      []msgTrack
	byID      map[overlay.MsgID]int32
	measuring bool
	measStart time.Duration
	hops      []uint32
	sentKinds [overlay.NumKinds]uint64
	gossipIn  uint64 // payloads received by live peers, measured messages
	delivered uint64 // deliveries of measured messages
	churned   int
	lost      uint64
	events    uint64
	liveArea  float64 // ∫ live peers dt over the measured phase, peer·s
	lastArea  time.Duration
}

// Run runs one simulation. It is deterministic: one Config, one Result.
// It blocks for the whole run (a minute or two at 10,000 peers on a
// shared core); RunContext can be cancelled.
func Run(cfg Config) (Result, error) { return RunContext(context.Background(), cfg) }

// RunContext is Run, ending early with ctx's error once ctx is done.
func RunContext(ctx context.Context, cfg Config) (Result, error) {
	s, err := runSim(ctx, cfg, nil)
	if err != nil {
		return Result{}, err
	}
	return s.result(), nil
}

// runSim runs one simulation and returns its state at the end (the tests
// look at single messages). onBroadcast, if not nil, is called as the
// k-th broadcast leaves its origin, before the origin's machine sees it.
func runSim(ctx context.Context, cfg Config, onBroadcast func(s *sim, k int)) (*sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("overlay simulation: %w", err)
	}
	s := &sim{
		cfg:         cfg,
		rng:         rand.New(rand.NewPCG(cfg.Seed, 0x5ca1ab1e)),
		index:       make(map[string]int32, cfg.Peers*2),
		byID:        make(map[overlay.MsgID]int32),
		onBroadcast: onBroadcast,
	}
	if s.cfg.Overlay == nil {
		active := overlay.ActiveSizeFor(cfg.Peers)
		s.cfg.Overlay = func(self string, seed uint64) overlay.Config {
			c := overlay.DefaultConfig(self, seed)
			c.ActiveSize = active
			return c
		}
	}
	if err := s.run(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sim) run(ctx context.Context) error {
	cfg := s.cfg
	// Joins.
	for i := range cfg.Peers {
		at := time.Duration(0)
		if cfg.Peers > 1 {
			at = time.Duration(int64(cfg.JoinSpread) * int64(i) / int64(cfg.Peers))
		}
		s.q.push(event{at: at, kind: evJoin})
	}
	start := cfg.JoinSpread + cfg.Settle
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	total := cfg.Warmup + cfg.Messages
	measStart := start + time.Duration(cfg.Warmup)*interval
	end := start + time.Duration(total-1)*interval + cfg.Window
	// Pushed first: at measStart the measured phase begins before the
	// first measured broadcast leaves (ties go in insertion order).
	s.q.push(event{at: measStart, kind: evMeasure})
	for k := range total {
		s.q.push(event{at: start + time.Duration(k)*interval, kind: evBroadcast, to: int32(k)})
	}
	if cfg.ChurnPerMinute > 0 {
		every := time.Duration(float64(time.Minute) / (cfg.ChurnPerMinute * float64(cfg.Peers)))
		for at := measStart + every; at < end; at += every {
			s.q.push(event{at: at, kind: evChurn})
		}
	}
	for s.q.len() > 0 {
		ev := s.q.pop()
		if ev.at > end {
			break
		}
		s.now = ev.at
		s.events++
		if s.events%(1<<16) == 0 && ctx.Err() != nil {
			return fmt.Errorf("overlay simulation at %v: %w", s.now, ctx.Err())
		}
		if err := s.handle(ev); err != nil {
			return err
		}
	}
	s.accountLive(end)
	s.now = end
	return nil
}

// accountLive integrates the number of live peers over the measured phase.
func (s *sim) accountLive(now time.Duration) {
	if s.measuring && now > s.lastArea {
		s.liveArea += float64(len(s.live)) * (now - s.lastArea).Seconds()
	}
	s.lastArea = now
}

func (s *sim) handle(ev event) error {
	switch ev.kind {
	case evJoin:
		return s.startPeer()
	case evChurn:
		s.accountLive(s.now)
		if len(s.live) > 1 {
			s.crash(s.live[s.rng.IntN(len(s.live))])
			s.churned++
		}
		return s.startPeer()
	case evMeasure:
		s.measuring = true
		s.measStart = s.now
		s.lastArea = s.now
	case evBroadcast:
		s.broadcast(int(ev.to))
	case evMessage:
		p := &s.peers[ev.to]
		if !p.alive {
			return nil
		}
		if ev.msg.Kind == overlay.KindGossip {
			if _, ok := s.byID[ev.msg.ID]; ok && s.measured(ev.msg.ID) {
				s.gossipIn++
			}
		}
		p.node.Step(s.now, s.peers[ev.from].id, ev.msg)
		s.collect(ev.to)
	case evDown:
		p := &s.peers[ev.to]
		if !p.alive {
			return nil
		}
		p.node.PeerDown(s.now, s.peers[ev.from].id)
		s.collect(ev.to)
	case evTick:
		p := &s.peers[ev.to]
		if !p.alive || p.tickAt != ev.at {
			return nil // stale: a later or earlier tick replaced it
		}
		p.tickAt = 0
		p.node.Tick(s.now)
		s.collect(ev.to)
	}
	return nil
}

func (s *sim) measured(id overlay.MsgID) bool {
	return int(s.byID[id]) >= s.cfg.Warmup
}

func (s *sim) startPeer() error {
	i := int32(len(s.peers))
	id := fmt.Sprintf("p%07d", i)
	nd, err := overlay.New(s.cfg.Overlay(id, s.rng.Uint64()))
	if err != nil {
		return fmt.Errorf("start peer %s: %w", id, err)
	}
	s.peers = append(s.peers, peer{id: id, node: nd, alive: true, born: s.now})
	s.index[id] = i
	if len(s.live) > 0 {
		contact := s.live[s.rng.IntN(len(s.live))]
		nd.Join(s.now, s.peers[contact].id)
	}
	s.live = append(s.live, i)
	s.collect(i)
	return nil
}

func (s *sim) crash(i int32) {
	p := &s.peers[i]
	p.alive = false
	p.died = s.now
	k := slices.Index(s.live, i)
	s.live[k] = s.live[len(s.live)-1]
	s.live = s.live[:len(s.live)-1]
	for _, h := range p.holders {
		if s.peers[h].alive {
			s.q.push(event{at: s.now + s.cfg.DetectDelay, kind: evDown, to: h, from: i})
		}
	}
	p.holders = nil
}

func (s *sim) broadcast(k int) {
	if len(s.live) == 0 {
		return
	}
	origin := s.pickOrigin()
	if origin < 0 {
		return
	}
	var id overlay.MsgID
	id[0], id[1], id[2], id[3] = byte(k), byte(k>>8), byte(k>>16), byte(k>>24)
	id[15] = 1
	n := len(s.peers)
	s.byID[id] = int32(k)
	for len(s.msgs) <= k {
		s.msgs = append(s.msgs, msgTrack{origin: -1})
	}
	s.msgs[k] = msgTrack{origin: origin, sentAt: s.now, nPeers: n, got: make([]uint64, (n+63)/64)}
	if s.onBroadcast != nil {
		s.onBroadcast(s, k)
	}
	s.peers[origin].node.Broadcast(s.now, id, make([]byte, s.cfg.Payload))
	s.collect(origin)
}

// pickOrigin returns the next broadcast's origin: a random speaker (the
// set filled up, and crashed ones replaced, with random live peers that
// have been up for JoinGrace), or -1 if there is none.
func (s *sim) pickOrigin() int32 {
	random := func() int32 {
		for range 64 {
			c := s.live[s.rng.IntN(len(s.live))]
			if s.now-s.peers[c].born >= s.cfg.JoinGrace {
				return c
			}
		}
		return -1
	}
	if s.cfg.Speakers == 0 {
		return random()
	}
	for i, sp := range s.speakers {
		if !s.peers[sp].alive {
			s.speakers[i] = random()
		}
	}
	for len(s.speakers) < s.cfg.Speakers {
		s.speakers = append(s.speakers, random())
	}
	// Warmup goes round the speakers, so that each has built its tree
	// before the measured phase; then speakers are chosen at random.
	var o int32
	if s.measuring {
		o = s.speakers[s.rng.IntN(len(s.speakers))]
	} else {
		o = s.speakers[s.warm%len(s.speakers)]
		s.warm++
	}
	if o >= 0 && !s.peers[o].alive {
		return -1
	}
	return o
}

// latency is the fixed one-way delay of the link between a and b.
func (s *sim) latency(a, b int32) time.Duration {
	if a > b {
		a, b = b, a
	}
	h := uint64(a)*0x9e3779b97f4a7c15 ^ uint64(b)*0xc2b2ae3d27d4eb4f ^ s.cfg.Seed
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	span := int64(s.cfg.LatencyMax - s.cfg.LatencyMin)
	if span == 0 {
		return s.cfg.LatencyMin
	}
	return s.cfg.LatencyMin + time.Duration(h%uint64(span+1))
}

// collect acts on a peer's outputs: messages onto the network, deliveries
// into the measurements, view changes into the crash notification lists,
// and its next timer.
func (s *sim) collect(i int32) {
	p := &s.peers[i]
	rd := p.node.Ready()
	for _, e := range rd.Messages {
		if s.measuring {
			s.sentKinds[e.Msg.Kind]++
		}
		to, ok := s.index[e.To]
		if !ok {
			continue
		}
		lat := s.latency(i, to)
		if !s.peers[to].alive {
			// Refused: the sender hears of it after a round trip.
			s.q.push(event{at: s.now + 2*lat, kind: evDown, to: i, from: to})
			continue
		}
		if s.cfg.Loss > 0 && s.rng.Float64() < s.cfg.Loss {
			s.lost++
			continue
		}
		s.q.push(event{at: s.now + lat, kind: evMessage, to: to, from: i, msg: e.Msg})
	}
	for _, d := range rd.Deliveries {
		s.deliver(i, d)
	}
	for _, u := range rd.Up {
		if t, ok := s.index[u]; ok && !slices.Contains(s.peers[t].holders, i) {
			s.peers[t].holders = append(s.peers[t].holders, i)
		}
	}
	for _, d := range rd.Down {
		if t, ok := s.index[d]; ok {
			h := s.peers[t].holders
			if k := slices.Index(h, i); k >= 0 {
				h[k] = h[len(h)-1]
				s.peers[t].holders = h[:len(h)-1]
			}
		}
	}
	if at := p.node.NextDeadline(); at > 0 && (p.tickAt == 0 || at < p.tickAt) {
		at = max(at, s.now)
		p.tickAt = at
		s.q.push(event{at: at, kind: evTick, to: i})
	}
}

func (s *sim) deliver(i int32, d overlay.Delivery) {
	k, ok := s.byID[d.ID]
	if !ok || int(k) < s.cfg.Warmup {
		return
	}
	m := &s.msgs[k]
	if s.now-m.sentAt > s.cfg.Window || int(i) >= m.nPeers {
		return
	}
	m.got[i/64] |= 1 << (i % 64)
	m.last = max(m.last, s.now)
	s.delivered++
	s.hops = append(s.hops, d.Hops)
}

func (s *sim) result() Result {
	cfg := s.cfg
	r := Result{
		Peers:      cfg.Peers,
		Seed:       cfg.Seed,
		Active:     s.cfg.Overlay("x", 0).ActiveSize,
		Log2N:      math.Log2(float64(cfg.Peers)),
		Churned:    s.churned,
		Lost:       s.lost,
		Events:     s.events,
		SimSeconds: s.now.Seconds(),
	}
	var need, got float64
	var full []float64
	for k := cfg.Warmup; k < len(s.msgs); k++ {
		m := &s.msgs[k]
		if m.origin < 0 {
			continue
		}
		r.Messages++
		complete := true
		for i := range m.nPeers {
			p := &s.peers[i]
			if int32(i) == m.origin || m.sentAt-p.born < cfg.JoinGrace || p.born > m.sentAt {
				continue
			}
			if !p.alive && p.died <= m.sentAt+cfg.Window {
				continue
			}
			need++
			if m.got[i/64]&(1<<(i%64)) != 0 {
				got++
			} else {
				complete = false
			}
		}
		if complete {
			r.Complete++
			full = append(full, float64(m.last-m.sentAt)/float64(time.Millisecond))
		}
	}
	if need > 0 {
		r.Delivered = got / need
	}
	hops := make([]float64, len(s.hops))
	for i, h := range s.hops {
		hops[i] = float64(h)
	}
	r.HopsP50, r.HopsP99, r.HopsMax = quantiles(hops)
	r.FullP50ms, r.FullP99ms, r.FullMaxms = quantiles(full)
	if s.delivered > 0 {
		r.Copies = float64(s.gossipIn) / float64(s.delivered)
	}
	if s.liveArea > 0 {
		var tree, view uint64
		for k, c := range s.sentKinds {
			switch overlay.Kind(k) {
			case overlay.KindGossip:
			case overlay.KindIHave, overlay.KindGraft, overlay.KindPrune:
				tree += c
			default:
				view += c
			}
		}
		r.TreeOverhead = float64(tree) / s.liveArea
		r.ViewOverhead = float64(view) / s.liveArea
	}
	for i := range s.peers {
		st := s.peers[i].node.Stats()
		r.Grafts += st.GraftsSent
		r.GiveUps += st.GraftGiveUps
	}
	return r
}

// quantiles returns the 50th and 99th percentiles (nearest rank) and the
// maximum; zeros for no data.
func quantiles(xs []float64) (p50, p99, mx float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(xs)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(xs)))) - 1
		return xs[max(0, min(i, len(xs)-1))]
	}
	return rank(0.50), rank(0.99), xs[len(xs)-1]
}
