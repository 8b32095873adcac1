package discovery_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
	"github.com/hearsay-chat/hearsay/discovery"
)

const timeout = chattest.DefaultTimeout

// The chat node is the agent's Node as it is.
var _ discovery.Node = (*chat.Node)(nil)

func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startAgent opens an agent for p with a rejoin round every interval and
// registers p with it; the agent is closed before p shuts down. A
// registration error is expected when no service answers.
func startAgent(tb testing.TB, p *chattest.Peer, cfg discovery.Config, interval time.Duration) *discovery.Agent {
	tb.Helper()
	cfg.DataDir = tb.TempDir()
	cfg.RejoinInterval = interval
	cfg.ProbeTimeout = time.Second
	cfg.Logf = func(string, ...any) {}
	a, err := discovery.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	_, _ = a.Register(context.Background(), p.Node)
	return a
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// A partition longer than memberlist's dead declaration heals through the
// agents' rejoin of failed members (chattest gives every peer an agent with
// no bootstrap service answering): nobody calls Join after the heal. The
// chat library does not reconnect by itself, so without the agents the
// sides stay apart.
func TestLongPartitionHealsByRejoin(t *testing.T) {
	const room = "split"
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		cfg.AntiEntropyInterval = 100 * time.Millisecond
		cfg.Faults = &chat.Faults{Seed: int64(i + 1)}
		// memberlist gossips to a member it declared dead for this long,
		// which heals a partition that ends within it; keep it short so
		// that only the agents can bring the sides together.
		cfg.Memberlist.GossipToTheDeadTime = chat.Duration(10 * time.Millisecond)
	})
	chattest.JoinRoom(t, room, 0, peers...)
	a, others := peers[0], peers[1:]
	for _, o := range others {
		if err := a.Partition(o.ID()); err != nil {
			t.Fatal(err)
		}
		if err := o.Partition(a.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range others {
		o.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventFailed && ev.FromID == a.ID() }, "a declared dead")
		a.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventFailed && ev.FromID == o.ID() }, "other side declared dead")
	}
	sent := []string{sendTo(t, a, room, "alone"), sendTo(t, others[0], room, "together")}
	// Every agent tries (and fails, behind the partition) before the heal.
	chattest.WaitFor(t, timeout, func() bool {
		for _, p := range peers {
			if p.Agent.Stats().Rejoins == 0 {
				return false
			}
		}
		return true
	}, "no rejoin attempt during the partition")
	for _, p := range peers {
		if err := p.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	chattest.WaitFor(t, timeout, func() bool {
		for _, p := range peers {
			if chattest.AliveCount(p.Node) != 3 || !sameSet(chattest.HistoryIDs(t, p.Node, room), sent) {
				return false
			}
		}
		return true
	}, "the sides did not meet again")
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool { return len(p.Rec.RoomMessages(room)) == len(sent) }, "%s shows the other side", p.Nick())
	}
}

// Two peers that started alone (each the first of its group) merge once
// both are registered with the same service: each sees the other as a
// contact that is not a member and joins it.
func TestSeparatePeersMergeThroughService(t *testing.T) {
	listen := freeAddr(t)
	cfg := discovery.DefaultConfig()
	cfg.LocalListen, cfg.LocalURL = listen, "http://"+listen
	p0 := chattest.Start(t, chattest.Config(t, "p0"))
	p1 := chattest.Start(t, chattest.Config(t, "p1"))
	startAgent(t, p0, cfg, 100*time.Millisecond) // serves the embedded default
	startAgent(t, p1, cfg, 100*time.Millisecond)
	chattest.WaitFor(t, timeout, func() bool {
		return chattest.AliveCount(p0.Node) == 2 && chattest.AliveCount(p1.Node) == 2
	}, "the two peers did not find each other through the service")
}

func sendTo(t *testing.T, p *chattest.Peer, room, text string) string {
	t.Helper()
	id, err := p.Send(context.Background(), room, text)
	if err != nil {
		t.Fatalf("%s send %q to #%s: %v", p.Nick(), text, room, err)
	}
	return id.String()
}
