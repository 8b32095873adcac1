package chat

// The overlay driver runs the group's dissemination overlay, a pure state
// machine (chat/overlay: HyParView views and a Plumtree broadcast tree per
// origin), on the chat transport. One goroutine per node (run, started by
// Start, stopped by Shutdown) owns the machine and feeds it, one input at
// a time:
//
//   - Overlay frames from peers (handleOverlay, on the connection's own
//     goroutine: decoded with every bound checked, every peer ID in them a
//     member, a gossip payload verified like a pushed envelope) through a
//     bounded queue: when it is full the frame is dropped and counted
//     (Stats.OverlayDrops); grafts and anti-entropy repair what it carried.
//   - Our own room messages in tree mode (broadcast).
//   - Membership: memberlist members are the join contacts (a random live
//     one; again while the active view is empty), and a member that is no
//     longer live, or a neighbour whose link broke, is PeerDown.
//   - Time: Tick at the machine's NextDeadline.
//
// After each input it sends the machine's messages (sendFrame), keeps the
// links to its neighbours open (keepLink) and hands first receipts of
// rooms this node has joined to the receive pipeline (receive.go:
// duplicate check, signature, store, ordering; never forwarded by it: the
// tree forwards). The overlay spans the whole group, not one room: each
// peer keeps one small active view whatever its rooms, and every member
// relays every room's broadcasts, storing and showing only those of its
// rooms. Per-room overlays would cost a view and its connections per room
// and leave a room of a few members in a large group without relays.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/overlay"
)

const (
	// DefaultTreeThreshold is Config.TreeThreshold's default: groups of
	// more live members broadcast room messages over the tree. Measured
	// at 10, 20 and 50 peers in one process (docs/SCALE.md,
	// "Switch-over"), direct push had lower latency and higher throughput
	// at every size; what the tree buys is bounded connections and upload
	// per peer, which direct push cannot offer as groups grow past that.
	DefaultTreeThreshold = 50
	// overlayActiveSize is the active view: overlay.ActiveSizeFor(1000),
	// enough for groups up to thousands; a larger view floods an origin's
	// first broadcast to more copies and costs more connections.
	overlayActiveSize = 4
	// overlayInbox bounds the frames and broadcasts waiting for the
	// driver.
	overlayInbox = 4096
	// overlayCheckInterval is how often the driver checks its neighbours'
	// links and whether it must join again.
	overlayCheckInterval = 500 * time.Millisecond
	// overlayRejoin spaces joins while the active view stays empty.
	overlayRejoin = 2 * time.Second
	// overlayProbeInterval is how often each neighbour is probed (see
	// Overlay.probe in chat.proto): a one-sided link lasts about this
	// long.
	overlayProbeInterval = time.Second
	// overlayDrain bounds the inputs handled before the outputs are sent:
	// a burst shares one pass, and no input waits long behind it.
	overlayDrain = 64
)

// overlayInput is one input for the machine: a checked message from an
// authenticated member, or (from "") a broadcast of ours.
type overlayInput struct {
	from  string
	msg   overlay.Message
	probe bool // from holds us as a neighbour (isProbe)
	// env is a gossip msg.Payload decoded and passed by
	// checkOverlayPayload (signature included), or nil.
	env *chatpb.Envelope
}

// checkedPayload is what checkOverlayPayload made of one gossip payload:
// its envelope, and the payload's length (with the address of its first
// byte, the key it is kept under in overlayDriver.checked, it names that
// exact byte slice).
type checkedPayload struct {
	env *chatpb.Envelope
	len int
}

// pipelined is a first receipt on its way to the receive pipeline, with
// the envelope its payload was verified as on arrival (nil: decoded and
// verified by the pipeline).
type pipelined struct {
	overlay.Delivery
	env *chatpb.Envelope
}

// overlayDriver owns one node's overlay.Node (see the file comment).
type overlayDriver struct {
	n  *Node
	m  *overlay.Node // only run's goroutine touches it; nil if it could not be built
	in chan overlayInput
	// toPipeline carries first receipts from run to the goroutine that
	// feeds them to the receive pipeline (feedPipeline), so that relaying
	// never waits for a store or a room lock.
	toPipeline chan []pipelined
	epoch      time.Time // the machine's clock is the time since epoch
	running    atomic.Bool

	// checked holds the envelopes of the gossip payloads stepped since the
	// last flush, by the address of the payload's first byte; run's
	// goroutine only, emptied by every flush (see input).
	checked map[*byte]checkedPayload

	lastJoin time.Duration   // run's goroutine only
	isActive map[string]bool // the active view, from Ready's Up and Down; run's goroutine only

	mu     sync.Mutex // guards the snapshots below
	active []string
	stats  overlay.Stats

	broadcasts, payloads, delivered, relayed, invalid, drops atomic.Uint64

	recent recentVerified // payloads checkOverlayPayload verified lately
}

func newOverlayDriver(n *Node) *overlayDriver {
	d := &overlayDriver{n: n, in: make(chan overlayInput, overlayInbox), toPipeline: make(chan []pipelined, overlayInbox),
		epoch: time.Now(), isActive: map[string]bool{}, checked: map[*byte]checkedPayload{}}
	cfg := overlay.DefaultConfig(n.id.ID, rand.Uint64())
	cfg.ActiveSize = overlayActiveSize
	cfg.MaxPayload = maxOverlayPayload
	// Memory per peer: payloads kept to answer grafts and the IDs that
	// detect duplicates are the machine's largest tables (2 MiB and about
	// 1 MB here); a graft beyond them goes unanswered and anti-entropy
	// repairs the message.
	cfg.MaxCache = 512
	cfg.MaxCacheBytes = 2 << 20
	cfg.MaxSeen = 16384
	// Chat links are TCP: a payload is late, not lost, unless its link
	// broke (and then the link's failure repairs the view). The
	// simulator's 400 ms graft timeout suits its fixed link latencies; on
	// a loaded machine a burst took up to 1.7 s to reach all of 30 peers
	// (TestTreeDeliversOnceToEveryMember), and every graft for a message
	// that was only late costs a copy and reshapes the tree (measured in
	// docs/SCALE.md, "Driving it from chat"). Anti-entropy (every second
	// by default) repairs a lost message about as fast anyway.
	cfg.GraftTimeout = 2 * time.Second
	cfg.GraftRetry = time.Second
	// Without fixed link latencies, tree optimisation chases scheduling
	// noise: each graft it makes for a path that looked shorter costs
	// duplicates until the old parent is pruned.
	cfg.OptimizeThreshold = 0
	m, err := overlay.New(cfg)
	if err != nil {
		n.logger.Printf("overlay disabled: %v", err) // a static configuration: TestOverlayConfig
		return d
	}
	d.m = m
	return d
}

func (d *overlayDriver) now() time.Duration { return time.Since(d.epoch) }

// run is the driver's goroutine; it returns when the node shuts down.
func (d *overlayDriver) run() {
	n := d.n
	if d.m == nil {
		return
	}
	d.running.Store(true)
	defer d.running.Store(false)
	piped := make(chan struct{})
	defer func() { <-piped }() // after the context ended: the feeder returns
	go func() {
		defer close(piped)
		d.feedPipeline()
	}()
	check := time.NewTicker(overlayCheckInterval)
	defer check.Stop()
	probe := time.NewTicker(overlayProbeInterval)
	defer probe.Stop()
	timer := time.NewTimer(overlayCheckInterval)
	defer timer.Stop()
	gen := n.memberGenChan()
	d.syncMembers()
	d.flush()
	for {
		d.arm(timer)
		select {
		case <-n.ctx.Done():
			return
		case in := <-d.in:
			d.input(in)
		drain:
			for range overlayDrain - 1 {
				select {
				case in = <-d.in:
					d.input(in)
				default:
					break drain
				}
			}
		case <-gen:
			gen = n.memberGenChan()
			d.syncMembers()
		case <-timer.C:
			d.m.Tick(d.now())
		case <-check.C:
			d.checkLinks()
			d.m.Tick(d.now())
		case <-probe.C:
			for p := range d.isActive {
				n.sendFrame(p, probeFrame())
			}
		}
		d.flush()
	}
}

// arm sets timer to the machine's next deadline (at most a check interval
// away: NextDeadline is 0 while nothing is scheduled).
func (d *overlayDriver) arm(timer *time.Timer) {
	wait := overlayCheckInterval
	if dl := d.m.NextDeadline(); dl != 0 {
		wait = min(max(dl-d.now(), time.Millisecond), overlayCheckInterval)
	}
	timer.Reset(wait)
}

func (d *overlayDriver) input(in overlayInput) {
	now := d.now()
	if in.from == "" {
		if d.m.Broadcast(now, in.msg.ID, in.msg.Payload) {
			d.broadcasts.Add(1)
		}
		return
	}
	if in.probe {
		if !d.isActive[in.from] {
			d.n.sendFrame(in.from, overlayFrame(&overlay.Message{Kind: overlay.KindDisconnect}))
		}
		return
	}
	if in.msg.Kind == overlay.KindGossip {
		d.payloads.Add(1)
		if in.env != nil && len(in.msg.Payload) > 0 {
			// The machine delivers the very slice it is given (it keeps
			// payloads, never copies them), so a Delivery whose Payload
			// starts at this address with this length is these bytes,
			// which checkOverlayPayload decoded and verified: the
			// pipeline need not verify them again (~60 µs). A payload
			// the machine copied would just be verified again.
			d.checked[&in.msg.Payload[0]] = checkedPayload{env: in.env, len: len(in.msg.Payload)}
		}
	}
	d.m.Step(now, in.from, in.msg)
}

// flush carries out what the machine asked for. A message that cannot be
// sent because the link is gone reports the peer down, which may ask for
// more (a replacement neighbour): a few passes at most.
func (d *overlayDriver) flush() {
	n := d.n
	viewChanged := false
	for range 4 {
		rd := d.m.Ready()
		if len(rd.Messages) == 0 && len(rd.Deliveries) == 0 && len(rd.Up) == 0 && len(rd.Down) == 0 {
			break
		}
		var down []string
		for i := range rd.Messages {
			e := &rd.Messages[i]
			if !n.sendFrame(e.To, overlayFrame(&e.Msg)) && n.linkBroken(e.To) && !slices.Contains(down, e.To) {
				down = append(down, e.To)
			}
		}
		for _, p := range rd.Up {
			d.isActive[p] = true
			n.keepLink(p, true)
		}
		mesh := n.meshLinks()
		for _, p := range rd.Down {
			delete(d.isActive, p)
			if !mesh { // a small group keeps a link to every member
				n.keepLink(p, false)
			}
		}
		viewChanged = viewChanged || len(rd.Up) > 0 || len(rd.Down) > 0
		if len(rd.Deliveries) > 0 {
			d.delivered.Add(uint64(len(rd.Deliveries)))
			ps := d.pipelinedOf(rd.Deliveries)
			// The feeder keeps up unless the store stalls: then relaying
			// waits too (back-pressure) rather than lose first receipts,
			// which the machine would never deliver again.
			select {
			case d.toPipeline <- ps:
			case <-n.ctx.Done():
			}
		}
		now := d.now()
		for _, p := range down {
			d.m.PeerDown(now, p)
		}
	}
	// Every delivery of the payloads stepped so far was in a Ready above
	// (a Step delivers at once); duplicates and refused ones leave none.
	clear(d.checked)
	d.mu.Lock()
	d.stats = d.m.Stats()
	if viewChanged {
		d.active = d.m.Active()
	}
	d.mu.Unlock()
}

// pipelinedOf pairs each delivery with the envelope checkOverlayPayload
// verified for its payload: only a payload that is the very byte slice
// that was checked (same first byte, same length) gets one. Run's
// goroutine only.
func (d *overlayDriver) pipelinedOf(ds []overlay.Delivery) []pipelined {
	ps := make([]pipelined, len(ds))
	for i, dl := range ds {
		ps[i].Delivery = dl
		if len(dl.Payload) > 0 {
			if c, ok := d.checked[&dl.Payload[0]]; ok && c.len == len(dl.Payload) {
				ps[i].env = c.env
			}
		}
	}
	return ps
}

// feedPipeline hands first receipts to the receive pipeline until the
// node shuts down.
func (d *overlayDriver) feedPipeline() {
	for {
		select {
		case <-d.n.ctx.Done():
			return
		case ds := <-d.toPipeline:
			d.deliver(ds)
		}
	}
}

// deliver hands first receipts to the receive pipeline, in runs of one
// sender (the pipeline takes the peer they came from); a message of a
// room this node has not joined was relayed by the machine and goes no
// further. A payload checkOverlayPayload verified reaches the pipeline as
// the envelope it verified, marked so: its signature is not checked twice.
func (d *overlayDriver) deliver(ds []pipelined) {
	var envs []*chatpb.Envelope
	var verified []bool
	from := ""
	for _, dl := range ds {
		env := dl.env
		if env == nil {
			env = new(chatpb.Envelope)
			if err := proto.Unmarshal(dl.Payload, env); err != nil {
				// Checked on arrival (checkOverlayPayload): cannot happen.
				d.invalid.Add(1)
				continue
			}
		}
		if d.n.joinedRoom(env.Room) == nil {
			d.relayed.Add(1)
			continue
		}
		if dl.From != from && len(envs) > 0 {
			d.n.receiveChecked(envs, verified, from, "")
			envs, verified = nil, nil
		}
		from = dl.From
		envs = append(envs, env)
		verified = append(verified, dl.env != nil)
	}
	if len(envs) > 0 {
		d.n.receiveChecked(envs, verified, from, "")
	}
}

// syncMembers reports members that are no longer live as down and joins
// through a live member if the overlay has no neighbour.
func (d *overlayDriver) syncMembers() {
	live := d.n.liveMembers()
	now := d.now()
	for _, p := range append(d.m.Active(), d.m.Passive()...) {
		if !live[p] {
			d.down(now, p)
		}
	}
	d.maybeJoin(live)
	d.n.keepLinks(d.isActive)
}

// checkLinks reports neighbours whose link broke, and joins again if the
// overlay lost every neighbour.
func (d *overlayDriver) checkLinks() {
	now := d.now()
	for _, p := range d.m.Active() {
		if d.n.linkBroken(p) {
			d.down(now, p)
		}
	}
	d.maybeJoin(d.n.liveMembers())
}

// down reports p down to the machine. A neighbour may still be alive (a
// member that looked dead for a moment, a stream that broke one way): it
// gets a disconnect, so that it drops us too rather than keep a one-sided
// link.
func (d *overlayDriver) down(now time.Duration, p string) {
	if d.isActive[p] {
		d.n.sendFrame(p, overlayFrame(&overlay.Message{Kind: overlay.KindDisconnect}))
	}
	d.m.PeerDown(now, p)
}

// maybeJoin joins through a random live member that is not a neighbour
// while the active view is empty, or short with no passive peer to ask,
// at most every overlayRejoin. The second case is a small component cut
// off from the rest: peers that joined the overlay through each other at
// the same moment (a group starting up) know nobody else, and the
// machine would only join its contact again, one of them. memberlist
// knows every member, so the driver can do what the views cannot.
func (d *overlayDriver) maybeJoin(live map[string]bool) {
	now := d.now()
	if !d.participating() || d.lastJoin != 0 && now-d.lastJoin < overlayRejoin {
		return
	}
	active := d.m.Active()
	if len(active) > 0 && (len(active) >= overlayActiveSize || len(d.m.Passive()) > 0) {
		return
	}
	ids := make([]string, 0, len(live))
	for id := range live {
		if !slices.Contains(active, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	slices.Sort(ids)
	d.lastJoin = now
	d.m.Join(now, ids[rand.IntN(len(ids))])
}

// handleOverlay takes an Overlay frame from the authenticated member from
// (the connection's goroutine): checked here, then queued for the driver.
func (n *Node) handleOverlay(pb *chatpb.Overlay, from string) {
	d := n.ovl
	if isProbe(pb) {
		select {
		case d.in <- overlayInput{from: from, probe: true}:
		default:
			d.drops.Add(1)
		}
		return
	}
	m, err := decodeOverlay(pb)
	if err == nil {
		err = n.admitOverlay(&m)
	}
	var env *chatpb.Envelope
	if err == nil && m.Kind == overlay.KindGossip {
		env, err = n.checkOverlayPayload(&m)
	}
	if err != nil {
		d.invalid.Add(1)
		n.logger.Printf("drop overlay frame from %s: %v", from, err)
		return
	}
	select {
	case d.in <- overlayInput{from: from, msg: m, env: env}:
	default:
		d.drops.Add(1)
	}
}

// admitOverlay checks that the peer IDs m names are members: the machine
// may make a peer it hears of a neighbour or a passive peer, so only live
// members with a verified node meta enter it; a shuffle's other entries
// are left out. The tree's origin (gossip, graft, prune, announces) must
// be a member identity (memberkeys.go), live or not.
func (n *Node) admitOverlay(m *overlay.Message) error {
	switch m.Kind {
	case overlay.KindForwardJoin, overlay.KindShuffle:
		if !n.liveMember(m.Peer) {
			return fmt.Errorf("%w: overlay %s names %q, not a live member", ErrInvalid, m.Kind, m.Peer)
		}
	case overlay.KindGossip, overlay.KindGraft, overlay.KindPrune:
		if !n.speakers.isMember(m.Peer) {
			return fmt.Errorf("%w: overlay %s for origin %q, not a member identity", ErrInvalid, m.Kind, m.Peer)
		}
	case overlay.KindIHave:
		m.Announces = slices.DeleteFunc(m.Announces, func(a overlay.Announce) bool { return !n.speakers.isMember(a.Origin) })
		if len(m.Announces) == 0 {
			return fmt.Errorf("%w: overlay ihave of no member's messages", ErrInvalid)
		}
	}
	if len(m.Peers) > 0 {
		m.Peers = slices.DeleteFunc(m.Peers, func(p string) bool { return !n.liveMember(p) })
	}
	return nil
}

// checkOverlayPayload checks a gossip payload as the receive pipeline
// checks an envelope before it stores one (limits, kind, a member
// identity's signature), and that it travels under its own ID and tree
// origin, before the machine relays it: an invalid payload is never
// passed on. A payload byte-for-byte equal to the stored message was
// verified when it was stored. It returns the payload decoded: the
// envelope whose signature holds, which the driver hands to the pipeline
// for this payload's delivery instead of verifying it again (deliver).
func (n *Node) checkOverlayPayload(m *overlay.Message) (*chatpb.Envelope, error) {
	env := new(chatpb.Envelope)
	if err := proto.Unmarshal(m.Payload, env); err != nil {
		return nil, fmt.Errorf("%w: overlay payload: %v", ErrInvalid, err)
	}
	if err := validateEnvelope(env); err != nil {
		return nil, fmt.Errorf("%w: overlay payload: %v", ErrInvalid, err)
	}
	switch {
	case env.Origin != m.Peer:
		return nil, fmt.Errorf("%w: overlay payload of %s in the tree of %s", ErrInvalid, env.Origin, m.Peer)
	case overlayMsgID(env.Room, env.Origin, env.Seq) != m.ID:
		return nil, fmt.Errorf("%w: overlay payload %s/%d under another message's id", ErrInvalid, env.Origin, env.Seq)
	case env.Kind == chatpb.Kind_KIND_SYSTEM || env.Kind == chatpb.Kind_KIND_DIRECT || env.Kind == chatpb.Kind_KIND_RECEIPT:
		return nil, fmt.Errorf("%w: overlay payload %s/%d of kind %s", ErrInvalid, env.Origin, env.Seq, env.Kind)
	case !n.speakers.knows(env.Origin, env.OriginKey):
		return nil, fmt.Errorf("%w: overlay payload %s/%d: origin is not a member identity", ErrInvalid, env.Origin, env.Seq)
	}
	if n.ovl.recent.has(m.ID, m.Payload) {
		return env, nil // a copy of a payload verified a moment ago (overlaycheck.go)
	}
	if rec, err := n.log.Get(n.ctx, env.Room, env.Origin, env.Seq); err == nil && bytes.Equal(rec.Data, m.Payload) {
		return env, nil
	}
	if err := n.verify.check([]*chatpb.Envelope{env})[0]; err != nil {
		return nil, fmt.Errorf("overlay payload: %w", err)
	}
	n.ovl.recent.add(m.ID, m.Payload)
	return env, nil
}

// broadcast queues env, one of our room messages, for the tree; false when
// the driver is not running or its queue is full (the caller pushes it
// directly instead).
func (d *overlayDriver) broadcast(env *chatpb.Envelope) bool {
	if !d.running.Load() {
		return false
	}
	payload, err := proto.Marshal(env)
	if err != nil || len(payload) > maxOverlayPayload {
		return false
	}
	m := overlay.Message{Kind: overlay.KindGossip, ID: overlayMsgID(env.Room, env.Origin, env.Seq), Payload: payload}
	select {
	case d.in <- overlayInput{msg: m}:
		return true
	default:
		return false
	}
}

// participating reports whether this peer joins the overlay on its own:
// the tree is enabled and the group has more than half TreeThreshold live
// members. Smaller groups push directly and pay nothing for the overlay
// (no joins, so no neighbours and no probes); a peer still answers and
// relays for those that join it, and a group growing towards the
// threshold is in the overlay well before any member counts past it and
// broadcasts over the tree.
func (d *overlayDriver) participating() bool {
	t := d.n.cfg.TreeThreshold
	return t >= 0 && 2*d.n.numMembers() > t
}

// treeMode reports whether our room messages go over the tree: the tree is
// enabled, the group has more than Config.TreeThreshold live members, and
// the overlay has a neighbour to send to.
func (d *overlayDriver) treeMode() bool {
	t := d.n.cfg.TreeThreshold
	if t < 0 || !d.running.Load() || d.n.numMembers() <= t {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.active) > 0
}

// neighbours returns the active view as of the last input.
func (d *overlayDriver) neighbours() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.active)
}

// overlayStats fills the overlay's counters.
func (n *Node) overlayStats(st *hearsay.Stats) {
	d := n.ovl
	d.mu.Lock()
	ms, k := d.stats, len(d.active)
	d.mu.Unlock()
	st.OverlayNeighbors = k
	st.OverlayBroadcasts, st.OverlayPayloads = d.broadcasts.Load(), d.payloads.Load()
	st.OverlayDelivered, st.OverlayRelayed = d.delivered.Load(), d.relayed.Load()
	st.OverlayDuplicates = ms.Duplicates
	st.OverlayIHave, st.OverlayGrafts, st.OverlayPrunes = ms.Sent[overlay.KindIHave], ms.GraftsSent, ms.Sent[overlay.KindPrune]
	st.OverlayInvalid = d.invalid.Load() + ms.Invalid
	st.OverlayDrops = d.drops.Load()
}

// liveMember reports whether id is a live member (alive or suspect) with a
// verified node meta. It takes n.mu.
func (n *Node) liveMember(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.members[id]
	return m != nil && m.Valid && (m.State == hearsay.StateAlive || m.State == hearsay.StateSuspect)
}

// liveMembers returns the live members with a verified node meta. It
// takes n.mu.
func (n *Node) liveMembers() map[string]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	live := make(map[string]bool, len(n.members))
	for id, m := range n.members {
		if m.Valid && (m.State == hearsay.StateAlive || m.State == hearsay.StateSuspect) {
			live[id] = true
		}
	}
	return live
}

// memberGenChan returns the channel closed at the next membership change.
func (n *Node) memberGenChan() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.memberGen
}
