// Package repltest provides in-memory implementations of the repl
// interfaces for tests: a fake chat peer and a fake bootstrap service.
package repltest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/repl"
)

var (
	_ repl.Peer      = (*Peer)(nil)
	_ repl.Lifecycle = (*Peer)(nil)
	_ repl.Rooms     = (*Peer)(nil)
	_ repl.Faults    = (*Peer)(nil)
	_ repl.Bootstrap = (*Bootstrap)(nil)
)

// Sent is a message the fake peer was asked to send.
type Sent struct {
	Room, Text, ID string
}

// Peer is a fake chat peer. It records what it is asked to do and emits
// the events the test gives it. Safe for concurrent use.
type Peer struct {
	mu       sync.Mutex
	id, nick string
	members  []hearsay.Member
	kv       map[string]string
	sent     []Sent
	seq      int
	started  bool
	shutDown bool
	joined   []string
	mlConfig []byte
	health   int
	rtt      time.Duration
	sendErr  error
	emitOwn  bool
	events   chan hearsay.Event
	rooms    map[string]*room
	faultsOn bool
	faults   repl.FaultSettings
	cut      map[string]bool
	now      func() time.Time
	direct   directFake // direct.go
}

// room is the fake peer's state of one room: what Send stored is its
// history (all delivered); heldBack are received but not delivered.
type room struct {
	mode     hearsay.OrderMode
	joined   bool
	members  []string
	history  []hearsay.Event
	heldBack []string
}

// SetEmitOwn makes Send also emit the message as an event, as the chat
// peer does (dropped when the events channel is full).
func (p *Peer) SetEmitOwn(on bool) {
	p.mu.Lock()
	p.emitOwn = on
	p.mu.Unlock()
}

// NewPeer returns a fake peer with the given ID and nick, alone in its
// group, with an events channel of capacity 64.
func NewPeer(id, nick string) *Peer {
	p := &Peer{id: id, nick: nick, kv: map[string]string{}, events: make(chan hearsay.Event, 64), cut: map[string]bool{},
		now: time.Now, rooms: map[string]*room{"lobby": {mode: hearsay.OrderCausal, joined: true, members: []string{id}}},
		mlConfig: []byte(`{"BindAddr":"127.0.0.1","BindPort":0,"ProbeInterval":"1s"}`), rtt: 1500 * time.Microsecond}
	p.members = []hearsay.Member{{ID: id, Nick: nick, Addr: "127.0.0.1:7946", ChatAddr: "127.0.0.1:7947", State: "alive"}}
	return p
}

// AddMember adds a member to the view.
func (p *Peer) AddMember(m hearsay.Member) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.members = append(p.members, m)
}

// Emit queues an incoming event; it blocks when 64 events are unread.
func (p *Peer) Emit(ev hearsay.Event) { p.events <- ev }

// CloseEvents closes the events channel, as a node's Shutdown does. No
// event may be emitted after it.
func (p *Peer) CloseEvents() { close(p.events) }

// SetSendError makes Send fail with err (nil: succeed).
func (p *Peer) SetSendError(err error) {
	p.mu.Lock()
	p.sendErr = err
	p.mu.Unlock()
}

// SentMessages returns the messages sent so far.
func (p *Peer) SentMessages() []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sent(nil), p.sent...)
}

// Joined returns the addresses given to Join.
func (p *Peer) Joined() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.joined...)
}

// ID implements repl.Peer.
func (p *Peer) ID() string { return p.id }

// Nick implements repl.Peer.
func (p *Peer) Nick() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nick
}

// SetNick implements repl.Peer.
func (p *Peer) SetNick(n string) error {
	if n == "" || strings.ContainsAny(n, " \t#@") || len(n) > 32 {
		return fmt.Errorf("invalid nick %q: 1-32 characters without spaces, '#' or '@'", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nick = n
	p.members[0].Nick = n
	return nil
}

// Send implements repl.Peer.
func (p *Peer) Send(_ context.Context, room, text string) (hearsay.MsgID, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sendErr != nil {
		return hearsay.MsgID{}, p.sendErr
	}
	rm := p.rooms[room]
	if rm == nil || !rm.joined {
		return hearsay.MsgID{}, fmt.Errorf("not in #%s", room)
	}
	p.seq++
	mid := hearsay.MsgID{Origin: p.id, Seq: uint64(p.seq)}
	id := mid.String()
	p.sent = append(p.sent, Sent{Room: room, Text: text, ID: id})
	rm.history = append(rm.history, hearsay.Event{Type: hearsay.EventMessage, Time: p.now(), Room: room, From: p.nick, FromID: p.id, ID: id, Text: text})
	if p.emitOwn {
		select {
		case p.events <- hearsay.Event{Type: hearsay.EventMessage, Time: time.Now(), Room: room, From: p.nick, FromID: p.id, ID: id, Text: text}:
		default:
		}
	}
	return mid, nil
}

// Events implements repl.Peer.
func (p *Peer) Events() <-chan hearsay.Event { return p.events }

// Members implements repl.Peer.
func (p *Peer) Members() []hearsay.Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]hearsay.Member(nil), p.members...)
}

// Health implements repl.Peer.
func (p *Peer) Health() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.health
}

// Ping implements repl.Peer.
func (p *Peer) Ping(ctx context.Context, who string) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.members {
		if m.ID != p.id && (m.Nick == who || m.ID == who || m.DisplayName == who) {
			return p.rtt, nil
		}
	}
	return 0, fmt.Errorf("no member %q", who)
}

// KVSet implements repl.Peer.
func (p *Peer) KVSet(k, v string) error {
	if k == "" {
		return errors.New("empty key")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kv[k] = v
	return nil
}

// KVDel implements repl.Peer.
func (p *Peer) KVDel(k string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.kv[k]; !ok {
		return fmt.Errorf("no key %q", k)
	}
	delete(p.kv, k)
	return nil
}

// KVList implements repl.Peer.
func (p *Peer) KVList() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]string, len(p.kv))
	for k, v := range p.kv {
		out[k] = v
	}
	return out
}

// Stats implements repl.Peer: the messages sent, the other counters 0.
func (p *Peer) Stats() hearsay.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return hearsay.Stats{Sent: uint64(len(p.sent))}
}

// AdvertiseAddr implements repl.Peer.
func (p *Peer) AdvertiseAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return ""
	}
	return p.members[0].Addr
}

// MemberlistConfigJSON implements repl.Peer.
func (p *Peer) MemberlistConfigJSON() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.mlConfig...), nil
}

// LoadMemberlistConfigJSON implements repl.Peer.
func (p *Peer) LoadMemberlistConfigJSON(data []byte) error {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("decode memberlist config: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("memberlist is running; load the configuration before /ml start")
	}
	p.mlConfig = append([]byte(nil), data...)
	return nil
}

// Start marks the fake node started (it then has an AdvertiseAddr).
func (p *Peer) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shutDown {
		return errors.New("node shut down") // chat's node cannot start again
	}
	if p.started {
		return errors.New("already started")
	}
	p.started = true
	return nil
}

// Join implements repl.Lifecycle.
func (p *Peer) Join(_ context.Context, addrs []string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return 0, errors.New("memberlist not started")
	}
	p.joined = append(p.joined, addrs...)
	return len(addrs), nil
}

// Leave implements repl.Lifecycle.
func (p *Peer) Leave(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return errors.New("memberlist not started")
	}
	p.members[0].State = hearsay.StateLeft // as chat's node reports itself
	return nil
}

// Shutdown implements repl.Lifecycle.
func (p *Peer) Shutdown() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.started = false
	p.shutDown = true
	p.members[0].State = hearsay.StateDead // as chat's node reports itself
	return nil
}

// SetClock sets the clock that stamps the messages Send stores in the
// room history (time.Now by default), for deterministic transcripts.
func (p *Peer) SetClock(now func() time.Time) {
	p.mu.Lock()
	p.now = now
	p.mu.Unlock()
}

// AddRoom makes a room known to the fake peer (as gossip would), joined
// or not, with members (peer IDs); mode 0 is causal. An existing room is
// replaced.
func (p *Peer) AddRoom(name string, mode hearsay.OrderMode, joined bool, members ...string) {
	if mode == 0 {
		mode = hearsay.OrderCausal
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rooms[name] = &room{mode: mode, joined: joined, members: append([]string(nil), members...)}
}

// AddHistory stores a delivered message in a known room (ev.Room picks
// the room; the type becomes "message").
func (p *Peer) AddHistory(ev hearsay.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rm := p.rooms[ev.Room]
	if rm == nil {
		return fmt.Errorf("no room %q", ev.Room)
	}
	ev.Type = hearsay.EventMessage
	rm.history = append(rm.history, ev)
	return nil
}

// SetHeldBack sets the descriptions of a room's held-back messages.
func (p *Peer) SetHeldBack(name string, held ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rm := p.rooms[name]
	if rm == nil {
		return fmt.Errorf("no room %q", name)
	}
	rm.heldBack = append([]string(nil), held...)
	return nil
}

// JoinRoom implements repl.Rooms with the chat peer's rules: a new room
// takes mode (default causal); an existing room keeps its mode and
// refuses another.
func (p *Peer) JoinRoom(ctx context.Context, name string, mode hearsay.OrderMode) (hearsay.RoomInfo, error) {
	if err := ctx.Err(); err != nil {
		return hearsay.RoomInfo{}, err
	}
	if mode != 0 && !mode.Valid() {
		return hearsay.RoomInfo{}, fmt.Errorf("unknown ordering mode %d", mode)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rm := p.rooms[name]
	if rm == nil {
		if mode == 0 {
			mode = hearsay.OrderCausal
		}
		rm = &room{mode: mode}
		p.rooms[name] = rm
	} else if mode != 0 && mode != rm.mode {
		// Named like chat's errors, which carry the room.
		return hearsay.RoomInfo{}, fmt.Errorf("join #%s: room #%s has ordering %s, not %s", name, name, rm.mode, mode)
	}
	rm.joined = true
	found := false
	for _, m := range rm.members {
		found = found || m == p.id
	}
	if !found {
		rm.members = append(rm.members, p.id)
	}
	return infoLocked(name, rm), nil
}

// PartRoom implements repl.Rooms.
func (p *Peer) PartRoom(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	rm := p.rooms[name]
	if rm == nil || !rm.joined {
		return fmt.Errorf("part #%s: not in #%s", name, name)
	}
	rm.joined = false
	for i, m := range rm.members {
		if m == p.id {
			rm.members = append(rm.members[:i], rm.members[i+1:]...)
			break
		}
	}
	return nil
}

func infoLocked(name string, rm *room) hearsay.RoomInfo {
	return hearsay.RoomInfo{Name: name, Mode: rm.mode, Joined: rm.joined, Members: append([]string(nil), rm.members...),
		Received: uint64(len(rm.history) + len(rm.heldBack)), Delivered: uint64(len(rm.history)), HeldBack: len(rm.heldBack)}
}

// Rooms implements repl.Rooms, sorted by name.
func (p *Peer) Rooms() []hearsay.RoomInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]hearsay.RoomInfo, 0, len(p.rooms))
	for n, rm := range p.rooms {
		out = append(out, infoLocked(n, rm))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// History implements repl.Rooms.
func (p *Peer) History(name string, limit int) ([]hearsay.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rm := p.rooms[name]
	if rm == nil {
		return nil, fmt.Errorf("no room %q", name)
	}
	h := rm.history
	if limit > 0 && len(h) > limit {
		h = h[len(h)-limit:]
	}
	return append([]hearsay.Event(nil), h...), nil
}

// HeldBack implements repl.Rooms.
func (p *Peer) HeldBack(name string, limit int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	rm := p.rooms[name]
	if rm == nil {
		return nil
	}
	h := rm.heldBack
	if limit > 0 && len(h) > limit {
		h = h[:limit]
	}
	return append([]string(nil), h...)
}

// EnableFaults switches the fake's fault injection on, as hearsay
// --faults does at start.
func (p *Peer) EnableFaults(fs repl.FaultSettings) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faultsOn, p.faults = true, fs
}

// FaultSettings implements repl.Faults.
func (p *Peer) FaultSettings() (repl.FaultSettings, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults, p.faultsOn
}

// SetFaultSettings implements repl.Faults.
func (p *Peer) SetFaultSettings(fs repl.FaultSettings) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.faultsOn {
		return errors.New("fault injection is not enabled")
	}
	if fs.DropRatio < 0 || fs.DropRatio > 1 || fs.Delay < 0 || fs.Jitter < 0 {
		return fmt.Errorf("invalid fault settings %+v", fs)
	}
	p.faults = fs
	return nil
}

// Partition implements repl.Faults: each name must be a live member's
// nick or ID.
func (p *Peer) Partition(peers ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.faultsOn {
		return errors.New("fault injection is not enabled")
	}
	var ids []string
	for _, who := range peers {
		id := ""
		for _, m := range p.members {
			if m.ID != p.id && m.State == "alive" && (m.Nick == who || m.ID == who || m.DisplayName == who) {
				id = m.ID
			}
		}
		if id == "" {
			return fmt.Errorf("no live member %q", who)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		p.cut[id] = true
	}
	return nil
}

// Heal implements repl.Faults.
func (p *Peer) Heal() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.faultsOn {
		return errors.New("fault injection is not enabled")
	}
	clear(p.cut)
	return nil
}

// Partitioned implements repl.Faults.
func (p *Peer) Partitioned() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.cut))
	for id := range p.cut {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Bootstrap is an in-memory bootstrap service with the max-peers rule.
type Bootstrap struct {
	mu       sync.Mutex
	contacts map[string]repl.Contact
	cfg      repl.BootstrapConfig
	now      func() time.Time
}

// NewBootstrap returns an empty fake service (max 3 peers).
func NewBootstrap(now func() time.Time) *Bootstrap {
	return &Bootstrap{contacts: map[string]repl.Contact{}, now: now,
		cfg: repl.BootstrapConfig{MaxPeers: 3, MinRefillCandidates: 10, LeaseTTL: time.Minute}}
}

// Add stores a contact directly.
func (b *Bootstrap) Add(c repl.Contact) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.contacts[c.ID] = c
}

// Join implements repl.Bootstrap.
func (b *Bootstrap) Join(_ context.Context, c repl.Contact) (repl.JoinResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.contacts[c.ID]; ok {
		return repl.JoinResult{Stored: true, Renewed: true, NumPeers: len(b.contacts)}, nil
	}
	if len(b.contacts) >= b.cfg.MaxPeers {
		return repl.JoinResult{NumPeers: len(b.contacts)}, nil
	}
	c.Since, c.Expires = b.now(), b.now().Add(b.cfg.LeaseTTL)
	b.contacts[c.ID] = c
	return repl.JoinResult{Stored: true, NumPeers: len(b.contacts)}, nil
}

// Refill implements repl.Bootstrap.
func (b *Bootstrap) Refill(ctx context.Context, c repl.Contact) (repl.JoinResult, error) {
	return b.Join(ctx, c)
}

// Leave implements repl.Bootstrap.
func (b *Bootstrap) Leave(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.contacts, id)
	return nil
}

// List implements repl.Bootstrap.
func (b *Bootstrap) List(_ context.Context, n int) ([]repl.Contact, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []repl.Contact
	for _, c := range b.contacts {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// Reset implements repl.Bootstrap.
func (b *Bootstrap) Reset(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.contacts)
	b.contacts = map[string]repl.Contact{}
	return n, nil
}

// Config implements repl.Bootstrap.
func (b *Bootstrap) Config(context.Context) (repl.BootstrapConfig, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg, nil
}

// SetConfig implements repl.Bootstrap.
func (b *Bootstrap) SetConfig(_ context.Context, u repl.BootstrapConfigUpdate) (repl.BootstrapConfig, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if u.MaxPeers != nil {
		b.cfg.MaxPeers = *u.MaxPeers
	}
	if u.MinRefillCandidates != nil {
		b.cfg.MinRefillCandidates = *u.MinRefillCandidates
	}
	if u.LeaseTTL != nil {
		b.cfg.LeaseTTL = *u.LeaseTTL
	}
	return b.cfg, nil
}
