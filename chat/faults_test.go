package chat_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

func withFaults(f chat.Faults) func(int, *chat.Config) {
	return func(_ int, cfg *chat.Config) { cfg.Faults = &f }
}

func TestFaultsOffByDefault(t *testing.T) {
	p := chattest.Start(t, chattest.Config(t, "plain"))
	if err := p.SetFaults(chat.Faults{DropRatio: 1}); !errors.Is(err, chat.ErrNoFaults) {
		t.Errorf("SetFaults without Config.Faults: %v", err)
	}
	if err := p.Partition("x"); !errors.Is(err, chat.ErrNoFaults) {
		t.Errorf("Partition without Config.Faults: %v", err)
	}
}

func TestFaultsDropAndRecover(t *testing.T) {
	peers := chattest.Cluster(t, 2, withFaults(chat.Faults{Seed: 1}))
	a, b := peers[0], peers[1]
	if err := a.SetFaults(chat.Faults{DropRatio: 1}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetFaults(chat.Faults{DropRatio: 1.5}); err == nil {
		t.Error("drop ratio 1.5 accepted")
	}
	lost := send(t, a, "lost")
	// Every frame a sends is dropped now, the message's and any other
	// (a room-set refresh, a status): at least one drop, not exactly one.
	chattest.WaitFor(t, timeout, func() bool { return a.Stats().FaultDrops >= 1 }, "drop not counted")
	if err := a.SetFaults(chat.Faults{}); err != nil {
		t.Fatal(err)
	}
	kept := send(t, a, "kept")
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.ID == kept.String() }, "message after the faults end")
	// The dropped message is repaired (anti-entropy) and shown once, before
	// the later one (per-origin order).
	var got []string
	for _, ev := range b.Rec.Messages() {
		got = append(got, ev.ID)
	}
	if len(got) != 2 || got[0] != lost.String() || got[1] != kept.String() {
		t.Errorf("b showed %v, want [%s %s]", got, lost, kept)
	}
}

func TestFaultsJitterKeepsOriginOrder(t *testing.T) {
	peers := chattest.Cluster(t, 2, withFaults(chat.Faults{Jitter: chat.Duration(40 * time.Millisecond), Seed: 7}))
	a, b := peers[0], peers[1]
	const n = 30
	for i := 0; i < n; i++ {
		send(t, a, fmt.Sprintf("m%02d", i))
	}
	chattest.WaitFor(t, timeout, func() bool { return len(b.Rec.Messages()) == n }, "b has %d of %d", len(b.Rec.Messages()), n)
	// Jitter reorders the frames (each frame's delay is drawn
	// independently); the room's ordering puts them back in seq order.
	var last uint64
	seen := map[string]bool{}
	for _, ev := range b.Rec.Messages() {
		id, _ := hearsay.ParseMsgID(ev.ID)
		if id.Seq <= last {
			t.Errorf("%s shown after seq %d", ev.ID, last)
		}
		last = id.Seq
		if seen[ev.ID] {
			t.Errorf("%s shown twice", ev.ID)
		}
		seen[ev.ID] = true
	}
}

func TestPartitionAndHeal(t *testing.T) {
	peers := chattest.Cluster(t, 2, withFaults(chat.Faults{}))
	a, b := peers[0], peers[1]
	if err := a.Partition(b.Nick()); err != nil {
		t.Fatal(err)
	}
	if err := b.Partition(a.ID()); err != nil {
		t.Fatal(err)
	}
	if got := a.Partitioned(); len(got) != 1 || got[0] != b.ID() {
		t.Errorf("Partitioned() = %v", got)
	}
	a.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventFailed && ev.FromID == b.ID() }, "b failed behind the partition")
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventFailed && ev.FromID == a.ID() }, "a failed behind the partition")

	if err := a.Heal(); err != nil {
		t.Fatal(err)
	}
	if err := b.Heal(); err != nil {
		t.Fatal(err)
	}
	// The chat library does not rejoin members it declared dead; the
	// peers' discovery agents do, every chattest.RejoinInterval. Join at
	// once instead of waiting for them.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := a.Join(ctx, []string{b.AdvertiseAddr()}); err != nil {
		t.Fatalf("rejoin after heal: %v", err)
	}
	chattest.WaitConverged(t, a, b)
	id := send(t, a, "healed")
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.ID == id.String() }, "message after the heal")
}

// TestNickReachesAMemberThatLostTheGossip: a member that receives no
// memberlist packet while a nick changes still learns the nick at once.
// Gossip reaches a member of a small group only a couple of times
// (memberlist's retransmit limit), so carol, cut off from every packet,
// would wait for the next push/pull (an hour here, 15 s on the local
// profile); the renamed node's push/pull over TCP, which the partition
// lets in (incoming streams cannot be told apart), brings it now.
func TestNickReachesAMemberThatLostTheGossip(t *testing.T) {
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		cfg.Nick = []string{"alice", "bob", "carol"}[i]
		cfg.Faults = &chat.Faults{Seed: int64(i + 1)}
		// No periodic push/pull: it would bring carol the nick anyway.
		// Joins then spread by gossip alone, so it is sent more often than
		// the two times of the local profile (the partition drops every
		// copy to carol however many there are).
		cfg.Memberlist.PushPullInterval = chat.Duration(time.Hour)
		cfg.Memberlist.RetransmitMult = 8
	})
	a, b, c := peers[0], peers[1], peers[2]
	if err := c.Partition(a.ID(), b.ID()); err != nil {
		t.Fatal(err)
	}
	if err := b.SetNick("bobby"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*chattest.Peer{a, c} {
		p.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool {
			return ev.Type == hearsay.EventNick && ev.FromID == b.ID() && ev.From == "bobby" && ev.Text == "bob"
		}, p.Nick()+" sees bob's new nick")
	}
	if st := c.Stats(); st.FaultDrops == 0 {
		t.Errorf("carol dropped no packet while partitioned: the test did not cut the gossip off (%+v)", st)
	}
}
