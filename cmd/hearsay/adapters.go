package main

// Adapters from the concrete chat node and bootstrap client to the small
// interfaces the REPL declares (STYLE.md: the consumer owns the interface).

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hearsay-chat/hearsay"
	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/repl"
)

// peerAdapter makes a *chat.Node a repl.Peer and repl.Lifecycle. Its event
// goroutine converts chat events to REPL events; it ends when the node
// closes its Events channel (Shutdown) or stop is called.
type peerAdapter struct {
	*chat.Node
	events chan repl.Event
	done   chan struct{}
	stop   chan struct{}
	once   sync.Once
}

var (
	_ repl.Peer      = (*peerAdapter)(nil)
	_ repl.Lifecycle = (*peerAdapter)(nil)
	_ repl.Rooms     = (*peerAdapter)(nil)
)

func newPeerAdapter(n *chat.Node) *peerAdapter {
	a := &peerAdapter{Node: n, events: make(chan repl.Event, 256), done: make(chan struct{}), stop: make(chan struct{})}
	go a.pump()
	return a
}

func (a *peerAdapter) pump() {
	defer close(a.done)
	defer close(a.events)
	in := a.Node.Events()
	for {
		select {
		case <-a.stop:
			return
		case ev, ok := <-in:
			if !ok {
				return
			}
			select {
			case a.events <- toReplEvent(ev):
			case <-a.stop:
				return
			}
		}
	}
}

// Close stops the event goroutine and waits for it.
func (a *peerAdapter) Close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}

func toReplEvent(ev hearsay.Event) repl.Event {
	return repl.Event{Type: ev.Type, Time: ev.Time, Room: ev.Room, From: ev.From, FromID: ev.FromID, ID: ev.ID, Text: ev.Text, Late: ev.Late}
}

func (a *peerAdapter) Events() <-chan repl.Event { return a.events }

func (a *peerAdapter) Send(ctx context.Context, room, text string) (string, error) {
	id, err := a.Node.Send(ctx, room, text)
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

func (a *peerAdapter) Members() []repl.Member {
	ms := a.Node.Members()
	out := make([]repl.Member, len(ms))
	for i, m := range ms {
		out[i] = repl.Member{ID: m.ID, Nick: m.Nick, DisplayName: m.DisplayName, Addr: m.Addr, ChatAddr: m.ChatAddr, State: string(m.State)}
	}
	return out
}

func (a *peerAdapter) Stats() []repl.Stat {
	s := a.Node.Stats()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	return []repl.Stat{
		{Name: "sent", Value: u(s.Sent)},
		{Name: "received (envelopes from peers)", Value: u(s.Received)},
		{Name: "stored (received, all rooms)", Value: u(s.Stored)},
		{Name: "delivered (shown, all rooms)", Value: u(s.Delivered)},
		{Name: "held back now (all rooms)", Value: strconv.Itoa(s.HeldBack)},
		{Name: "late (total order, shown out of sequence)", Value: u(s.Late)},
		{Name: "ordering control sent", Value: u(s.ControlSent)},
		{Name: "anti-entropy digests sent/received", Value: u(s.StatusSent) + "/" + u(s.StatusReceived)},
		{Name: "anti-entropy bytes sent", Value: u(s.AntiEntropyBytes)},
		{Name: "repairs sent / new from repairs", Value: u(s.RepairSent) + "/" + u(s.Repaired)},
		{Name: "held-back overflow (refed later)", Value: u(s.HeldDrops)},
		{Name: "for rooms not joined (dropped)", Value: u(s.Unjoined)},
		{Name: "rejoin attempts", Value: u(s.Reconnects)},
		{Name: "duplicates", Value: u(s.Duplicates)},
		{Name: "forged (dropped)", Value: u(s.Forged)},
		{Name: "invalid (dropped)", Value: u(s.Invalid)},
		{Name: "bad frames", Value: u(s.BadFrames)},
		{Name: "refused streams", Value: u(s.Refused)},
		{Name: "fault-injection drops", Value: u(s.FaultDrops)},
		{Name: "send-queue drops", Value: u(s.QueueDrops)},
		{Name: "event drops", Value: u(s.EventDrops)},
		{Name: "frames out", Value: u(s.FramesOut)},
		{Name: "batch frames out", Value: u(s.BatchesOut)},
		{Name: "kv updates", Value: u(s.KVUpdates)},
		{Name: "kv refused", Value: u(s.KVDrops)},
		{Name: "chat streams", Value: strconv.Itoa(s.Streams)},
		{Name: "members", Value: strconv.Itoa(len(a.Node.Members()))},
		{Name: "health score", Value: strconv.Itoa(a.Node.Health())},
	}
}

// JoinRoom implements repl.Rooms (PartRoom and HeldBack are the node's).
func (a *peerAdapter) JoinRoom(ctx context.Context, room, mode string) (repl.RoomInfo, error) {
	var m hearsay.OrderMode
	if mode != "" {
		var err error
		if m, err = hearsay.ParseOrderMode(mode); err != nil {
			return repl.RoomInfo{}, err
		}
	}
	ri, err := a.Node.JoinRoom(ctx, room, m)
	if err != nil {
		return repl.RoomInfo{}, err
	}
	return toReplRoom(ri), nil
}

// Rooms implements repl.Rooms.
func (a *peerAdapter) Rooms() []repl.RoomInfo {
	rs := a.Node.Rooms()
	out := make([]repl.RoomInfo, len(rs))
	for i, r := range rs {
		out[i] = toReplRoom(r)
	}
	return out
}

// History implements repl.Rooms.
func (a *peerAdapter) History(room string, limit int) ([]repl.Event, error) {
	evs, err := a.Node.History(room, limit)
	if err != nil {
		return nil, err
	}
	out := make([]repl.Event, len(evs))
	for i, ev := range evs {
		out[i] = toReplEvent(ev)
	}
	return out, nil
}

func toReplRoom(r hearsay.RoomInfo) repl.RoomInfo {
	return repl.RoomInfo{Name: r.Name, Mode: r.Mode.String(), Joined: r.Joined, Members: r.Members,
		Received: r.Received, Delivered: r.Delivered, HeldBack: r.HeldBack}
}

// bootstrapAdapter makes a *bootstrapapi.Client a repl.Bootstrap.
type bootstrapAdapter struct {
	c *bootstrapapi.Client
}

var _ repl.Bootstrap = bootstrapAdapter{}

func toJoinRequest(c repl.Contact) bootstrapapi.JoinRequest {
	return bootstrapapi.JoinRequest{ID: c.ID, Nick: c.Nick, Addr: c.Addr, Protocol: protocolName}
}

func toJoinResult(r bootstrapapi.JoinResponse) repl.JoinResult {
	return repl.JoinResult{Stored: r.Stored, Renewed: r.Renewed, Replaced: r.Replaced, NumPeers: r.NumPeers}
}

func (b bootstrapAdapter) Join(ctx context.Context, c repl.Contact) (repl.JoinResult, error) {
	r, err := b.c.Join(ctx, toJoinRequest(c))
	return toJoinResult(r), err
}

func (b bootstrapAdapter) Refill(ctx context.Context, c repl.Contact) (repl.JoinResult, error) {
	r, err := b.c.Refill(ctx, toJoinRequest(c))
	return toJoinResult(r), err
}

func (b bootstrapAdapter) Leave(ctx context.Context, id string) error {
	r, err := b.c.Leave(ctx, id)
	if err == nil && !r.Removed {
		return fmt.Errorf("%s was not registered with the bootstrap service", id)
	}
	return err
}

func (b bootstrapAdapter) List(ctx context.Context, n int) ([]repl.Contact, error) {
	r, err := b.c.List(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]repl.Contact, len(r.Peers))
	for i, p := range r.Peers {
		out[i] = repl.Contact{ID: p.ID, Nick: p.Nick, Addr: p.Addr, Since: p.Since, Expires: p.Expires}
	}
	return out, nil
}

func (b bootstrapAdapter) Reset(ctx context.Context) (int, error) {
	r, err := b.c.Reset(ctx)
	return r.Removed, err
}

func toReplConfig(c bootstrapapi.Config) repl.BootstrapConfig {
	return repl.BootstrapConfig{MaxPeers: c.MaxPeers, MinRefillCandidates: c.MinRefillCandidates, LeaseTTL: c.LeaseTTL()}
}

func (b bootstrapAdapter) Config(ctx context.Context) (repl.BootstrapConfig, error) {
	c, err := b.c.Config(ctx)
	return toReplConfig(c), err
}

func (b bootstrapAdapter) SetConfig(ctx context.Context, u repl.BootstrapConfigUpdate) (repl.BootstrapConfig, error) {
	var cu bootstrapapi.ConfigUpdate
	cu.MaxPeers, cu.MinRefillCandidates = u.MaxPeers, u.MinRefillCandidates
	if u.LeaseTTL != nil {
		if *u.LeaseTTL%time.Second != 0 {
			return repl.BootstrapConfig{}, fmt.Errorf("lease TTL %s: must be whole seconds", *u.LeaseTTL)
		}
		secs := int64(*u.LeaseTTL / time.Second)
		cu.LeaseTTLSeconds = &secs
	}
	c, err := b.c.SetConfig(ctx, cu)
	return toReplConfig(c), err
}
