package api_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// fakePeer is an in-memory Peer for the endpoint tests: a lobby and the
// rooms joined through it, messages appended to the room's history.
type fakePeer struct {
	mu      sync.Mutex
	nick    string
	rooms   map[string]*hearsay.RoomInfo
	history map[string][]hearsay.Event
	seq     uint64
	joined  []string // contact addresses joined
	joinErr error    // what JoinRoom and Join return, when set
	onSend  func(hearsay.Event)
}

const fakeID = "0123456789abcdef"

func newFakePeer() *fakePeer {
	return &fakePeer{nick: "alice", rooms: map[string]*hearsay.RoomInfo{
		"lobby": {Name: "lobby", Mode: hearsay.OrderCausal, Joined: true, Members: []string{fakeID}},
	}, history: map[string][]hearsay.Event{}}
}

func (p *fakePeer) ID() string { return fakeID }
func (p *fakePeer) Nick() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nick
}

func (p *fakePeer) SetNick(n string) error {
	if n == "" || len(n) > 32 || strings.ContainsAny(n, " <>") {
		return fmt.Errorf("invalid nick %q", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nick = n
	return nil
}

func (p *fakePeer) Send(_ context.Context, room, text string) (hearsay.MsgID, error) {
	p.mu.Lock()
	ri, ok := p.rooms[room]
	if !ok || !ri.Joined {
		p.mu.Unlock()
		return hearsay.MsgID{}, errors.New("room not joined")
	}
	p.seq++
	id := hearsay.MsgID{Origin: fakeID, Seq: p.seq}
	ev := hearsay.Event{Type: hearsay.EventMessage, Time: time.Now(), Room: room, From: p.nick, FromID: fakeID, ID: id.String(), Text: text}
	p.history[room] = append(p.history[room], ev)
	on := p.onSend
	p.mu.Unlock()
	if on != nil {
		on(ev)
	}
	return id, nil
}

func (p *fakePeer) Members() []hearsay.Member {
	return []hearsay.Member{{ID: fakeID, Nick: p.Nick(), DisplayName: p.Nick(), State: hearsay.StateAlive, Self: true}}
}
func (p *fakePeer) Health() int { return 0 }
func (p *fakePeer) Stats() hearsay.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return hearsay.Stats{Sent: p.seq, Delivered: p.seq, Streams: 0}
}

func (p *fakePeer) Rooms() []hearsay.RoomInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []hearsay.RoomInfo
	for _, ri := range p.rooms {
		out = append(out, *ri)
	}
	slices.SortFunc(out, func(a, b hearsay.RoomInfo) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

func (p *fakePeer) JoinRoom(_ context.Context, room string, mode hearsay.OrderMode) (hearsay.RoomInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.joinErr != nil {
		return hearsay.RoomInfo{}, p.joinErr
	}
	if mode == 0 {
		mode = hearsay.OrderCausal
	}
	ri, ok := p.rooms[room]
	if !ok {
		ri = &hearsay.RoomInfo{Name: room, Mode: mode}
		p.rooms[room] = ri
	}
	ri.Joined = true
	ri.Members = []string{fakeID}
	return *ri, nil
}

func (p *fakePeer) PartRoom(_ context.Context, room string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ri, ok := p.rooms[room]
	if !ok || !ri.Joined {
		return errors.New("room not joined")
	}
	ri.Joined = false
	ri.Members = nil
	return nil
}

func (p *fakePeer) History(room string, limit int) ([]hearsay.Event, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.history[room]
	if len(h) > limit {
		h = h[len(h)-limit:]
	}
	return slices.Clone(h), nil
}

func (p *fakePeer) Join(_ context.Context, addrs []string) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.joinErr != nil {
		return 0, p.joinErr
	}
	p.joined = append(p.joined, addrs...)
	return len(addrs), nil
}

func (p *fakePeer) AdvertiseAddr() string { return "127.0.0.1:7946" }
