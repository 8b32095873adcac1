package peerster_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/peerster"
)

// events collects what a tapped event channel carries.
type events struct {
	mu  sync.Mutex
	evs []hearsay.Event
}

func collect(t *testing.T, ch <-chan hearsay.Event) *events {
	e := &events{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			e.mu.Lock()
			e.evs = append(e.evs, ev)
			e.mu.Unlock()
		}
	}()
	t.Cleanup(func() { <-done }) // the channel closes with the node's Shutdown
	return e
}

func (e *events) has(room, text string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.evs, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.Room == room && ev.Text == text
	})
}

func hasMessage(g *peerster.Gossiper, origin, text string) bool {
	return slices.ContainsFunc(g.Messages(), func(m peerster.ChatMessage) bool { return m.Origin == origin && m.Text == text })
}

// TestBridge: a Peerster gossiper's client message reaches the bridged
// room on two hearsay peers (the bridge's and another), and a message sent
// in the room by the other peer reaches the Peerster gossiper, under the
// bridge's name; neither is echoed back across the bridge.
func TestBridge(t *testing.T) {
	const room = "peerster"
	// p0 hosts the bridge: its events go through the bridge's tap.
	cfg0 := chattest.Config(t, "p0")
	n0, err := chat.New(cfg0)
	if err != nil {
		t.Fatal(err)
	}
	gcfg := peerster.DefaultConfig()
	gcfg.Name = "bridge"
	gcfg.GossipAddr = "127.0.0.1:0"
	br, err := peerster.NewBridge(peerster.BridgeConfig{Gossiper: gcfg, Room: room, Chat: n0, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	rec0 := collect(t, peerster.Tap(n0.Events(), br.HandleEvent, nil))
	t.Cleanup(func() {
		br.Close()
		n0.Shutdown()
	})
	if err := n0.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	agent := chattest.OpenAgent(t, n0)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = agent.Close(ctx)
	})
	p0 := &chattest.Peer{Node: n0, Agent: agent}
	p1 := chattest.Start(t, chattest.Config(t, "p1"))
	chattest.Join(t, p1, p0)
	chattest.WaitConverged(t, p0, p1)
	chattest.JoinRoom(t, room, 0, p0, p1)

	// A Peerster node that knows only the bridge.
	pcfg := peerster.DefaultConfig()
	pcfg.Name = "nodeA"
	pcfg.GossipAddr = "127.0.0.1:0"
	pcfg.Peers = []string{br.Gossiper().Addr()}
	node, err := peerster.New(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })

	// Peerster → hearsay, on both peers.
	if _, err := node.SendClient("Hello hearsay"); err != nil {
		t.Fatal(err)
	}
	const bridged = "nodeA@peerster: Hello hearsay"
	p1.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool {
		return ev.Type == hearsay.EventMessage && ev.Room == room && ev.Text == bridged && ev.FromID == n0.ID()
	}, "the Peerster message in #peerster on p1")
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool { return rec0.has(room, bridged) }, "the Peerster message in #peerster on p0")

	// hearsay → Peerster, under the bridge's name.
	if _, err := p1.Send(context.Background(), room, "Hello Peerster"); err != nil {
		t.Fatal(err)
	}
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
		return hasMessage(node, "bridge", "p1@hearsay: Hello Peerster")
	}, "the hearsay message at the Peerster node")
	// A message typed by the bridge's own user crosses too.
	if _, err := n0.Send(context.Background(), room, "from the bridge host"); err != nil {
		t.Fatal(err)
	}
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
		return hasMessage(node, "bridge", "p0@hearsay: from the bridge host")
	}, "the bridge host's message at the Peerster node")

	// No echo: the bridge's post of nodeA's message was not rumored back
	// (it was delivered before p1's message, which did cross), and no
	// hearsay message came back into the room from Peerster.
	for _, m := range node.Messages() {
		if strings.Contains(m.Text, "@peerster: ") {
			t.Errorf("the Peerster node got an echo: %+v", m)
		}
	}
	for _, ev := range p1.Rec.RoomMessages(room) {
		if strings.Contains(ev.Text, "@hearsay: ") {
			t.Errorf("the room got an echo: %+v", ev)
		}
	}
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool {
		s := br.Stats()
		return s.ToHearsay == 1 && s.ToPeerster == 2 && s.Dropped == 0
	}, "bridge stats: 1 to hearsay, 2 to Peerster, none dropped")
	// Messages of another room stay out of Peerster.
	if _, err := p1.Send(context.Background(), chat.DefaultRoom, "lobby only"); err != nil {
		t.Fatal(err)
	}
	p1.Rec.WaitEvent(t, chattest.DefaultTimeout, func(ev hearsay.Event) bool { return ev.Text == "lobby only" }, "the lobby message")
	chattest.WaitFor(t, chattest.DefaultTimeout, func() bool { return rec0.has(chat.DefaultRoom, "lobby only") }, "the lobby message on p0")
	if s := br.Stats(); s.ToPeerster != 2 {
		t.Errorf("a lobby message crossed the bridge: %+v", s)
	}
}
