package chat_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

const timeout = chattest.DefaultTimeout

func send(t *testing.T, p *chattest.Peer, text string) hearsay.MsgID {
	t.Helper()
	id, err := p.Send(context.Background(), "", text)
	if err != nil {
		t.Fatalf("%s send %q: %v", p.Nick(), text, err)
	}
	return id
}

func TestEveryoneReceivesEveryMessageOnce(t *testing.T) {
	peers := chattest.Cluster(t, 3, nil)
	const perPeer = 5
	want := map[string]string{}
	for i := 0; i < perPeer; i++ {
		for _, p := range peers {
			text := fmt.Sprintf("%s says %d", p.Nick(), i)
			want[send(t, p, text).String()] = text
		}
	}
	total := perPeer * len(peers)
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool {
			return len(p.Rec.Messages()) >= total
		}, "%s got %d messages, want %d", p.Nick(), len(p.Rec.Messages()), total)
	}
	for _, p := range peers {
		got := map[string]int{}
		for _, ev := range p.Rec.Messages() {
			got[ev.ID]++
			if want[ev.ID] != ev.Text {
				t.Errorf("%s: message %s text %q, want %q", p.Nick(), ev.ID, ev.Text, want[ev.ID])
			}
			if ev.Room != chat.DefaultRoom {
				t.Errorf("%s: message %s room %q, want %q", p.Nick(), ev.ID, ev.Room, chat.DefaultRoom)
			}
			if ev.Self != (ev.FromID == p.ID()) {
				t.Errorf("%s: message %s Self=%v from %s", p.Nick(), ev.ID, ev.Self, ev.FromID)
			}
		}
		for id, k := range got {
			if k != 1 {
				t.Errorf("%s: message %s shown %d times, want once", p.Nick(), id, k)
			}
		}
		if len(got) != total {
			t.Errorf("%s: %d distinct messages, want %d", p.Nick(), len(got), total)
		}
		st := p.Stats()
		// Every message stored once (own included). A copy may arrive twice
		// (a push slower than an anti-entropy round on a loaded machine
		// meets its repair): that is a counted duplicate, never a second
		// line, which the count above checks.
		if st.Sent != perPeer || st.Delivered != uint64(total) || st.Stored != uint64(total) || st.Forged != 0 {
			t.Errorf("%s: stats %+v", p.Nick(), st)
		}
	}
	// Per-origin order: each origin's messages arrive in seq order here
	// (one stream per pair, FIFO).
	for _, p := range peers {
		last := map[string]uint64{}
		for _, ev := range p.Rec.Messages() {
			id, err := hearsay.ParseMsgID(ev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if id.Seq <= last[id.Origin] {
				t.Errorf("%s: %s after seq %d", p.Nick(), ev.ID, last[id.Origin])
			}
			last[id.Origin] = id.Seq
		}
	}
}

func TestFailedAndLeftPeers(t *testing.T) {
	peers := chattest.Cluster(t, 3, nil)
	a, quitter, killed := peers[0], peers[1], peers[2]

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := quitter.Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if _, err := quitter.Send(ctx, "", "after leaving"); !errors.Is(err, chat.ErrLeft) {
		t.Errorf("send after leave: %v, want ErrLeft", err)
	}
	if err := quitter.Leave(ctx); !errors.Is(err, chat.ErrLeft) {
		t.Errorf("second leave: %v, want ErrLeft", err)
	}
	if err := quitter.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ev := a.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.FromID == quitter.ID() && ev.Type != hearsay.EventJoin }, "leave event")
	if ev.Type != hearsay.EventLeave {
		t.Errorf("quitter reported as %q (%s), want %q", ev.Type, ev.Text, hearsay.EventLeave)
	}

	if err := killed.Shutdown(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	ev = a.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.FromID == killed.ID() && ev.Type != hearsay.EventJoin }, "failed event")
	if ev.Type != hearsay.EventFailed {
		t.Errorf("killed peer reported as %q (%s), want %q", ev.Type, ev.Text, hearsay.EventFailed)
	}
	states := map[string]hearsay.MemberState{}
	for _, m := range a.Members() {
		states[m.ID] = m.State
	}
	if states[quitter.ID()] != hearsay.StateLeft || states[killed.ID()] != hearsay.StateDead {
		t.Errorf("members states %v; want %s left and %s dead", states, quitter.ID(), killed.ID())
	}
	if n := chattest.AliveCount(a.Node); n != 1 {
		t.Errorf("alive members %d, want 1", n)
	}
	// Shutdown is idempotent.
	if err := killed.Shutdown(); err != nil {
		t.Errorf("second shutdown: %v", err)
	}
}

func TestNickChangeAndDuplicateNicks(t *testing.T) {
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) {
		cfg.Nick = []string{"alice", "alice", "carol"}[i]
	})
	a1, a2, c := peers[0], peers[1], peers[2]
	names := map[string]string{}
	for _, m := range c.Members() {
		names[m.ID] = m.DisplayName
	}
	for _, a := range []*chattest.Peer{a1, a2} {
		if want := "alice#" + a.ID()[:4]; names[a.ID()] != want {
			t.Errorf("display name of %s: got %q, want %q", a.ID(), names[a.ID()], want)
		}
	}
	if names[c.ID()] != "carol" {
		t.Errorf("display name of carol: %q", names[c.ID()])
	}

	if err := a2.SetNick("bob"); err != nil {
		t.Fatal(err)
	}
	ev := c.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventNick && ev.FromID == a2.ID() }, "nick event")
	if ev.From != "bob" || ev.Text != "alice#"+a2.ID()[:4] {
		t.Errorf("nick event from %q text %q", ev.From, ev.Text)
	}
	own := a2.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventNick && ev.Self }, "own nick event")
	if own.From != "bob" || own.Text != "alice" {
		t.Errorf("own nick event from %q text %q, want bob, alice", own.From, own.Text)
	}
	chattest.WaitFor(t, timeout, func() bool {
		for _, m := range c.Members() {
			if m.ID == a1.ID() && m.DisplayName != "alice" {
				return false
			}
		}
		return true
	}, "alice is still disambiguated after bob's rename")

	// Messages carry the current display name.
	send(t, a2, "hi from bob")
	msg := c.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventMessage && ev.Text == "hi from bob" }, "bob's message")
	if msg.From != "bob" {
		t.Errorf("message from %q, want bob", msg.From)
	}
	if err := a1.SetNick("no spaces"); err == nil {
		t.Error("SetNick accepted a nick with a space")
	}
}

func TestForgedAlteredAndDuplicateEnvelopes(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a, b := peers[0], peers[1]
	signed := func(text string, seq uint64) *chatpb.Envelope { return signedLobby(a, text, seq) }
	// Every envelope takes a's next seq in the lobby: only the genuine one
	// may be stored, and it is next in a's stream, so b delivers it.
	next := a.NextSeqForTest("lobby")
	altered := signed("original", next)
	altered.Body = []byte("altered")
	stranger, err := chat.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	impostor := signed("impostor", next)
	impostor.OriginKey = stranger.Pub // a's ID with another key
	wrongSigner := signed("wrong signer", next)
	wrongSigner.Signature = stranger.Sign(chat.SigningBytes(wrongSigner))
	invalid := signed("bad room", next)
	invalid.Room = "Not A Room"
	invalid.Signature = a.Identity().Sign(chat.SigningBytes(invalid))
	good := signed("genuine", next)

	for _, e := range []*chatpb.Envelope{altered, impostor, wrongSigner, invalid, good, good, good} {
		if !a.SendEnvelopeForTest(b.ID(), e) {
			t.Fatal("could not queue test envelope")
		}
	}
	// Received counts on arrival; wait until each envelope has an outcome.
	chattest.WaitFor(t, timeout, func() bool {
		st := b.Stats()
		return st.Forged+st.Invalid+st.Duplicates+st.Delivered == 7
	}, "b handled only part of 7 envelopes: %+v", b.Stats())
	st := b.Stats()
	if st.Forged != 3 || st.Invalid != 1 || st.Duplicates != 2 || st.Delivered != 1 {
		t.Errorf("stats %+v: want forged 3, invalid 1, duplicates 2, delivered 1", st)
	}
	msgs := b.Rec.Messages()
	if len(msgs) != 1 || msgs[0].Text != "genuine" || msgs[0].FromID != a.ID() {
		t.Errorf("messages shown: %+v, want only the genuine one", msgs)
	}
}

func TestOversizeMessageRefused(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a, b := peers[0], peers[1]
	_, err := a.Send(context.Background(), "lobby", strings.Repeat("x", chat.MaxBodyBytes+1))
	if !errors.Is(err, chat.ErrTooLarge) {
		t.Fatalf("oversize send: err %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "65537") {
		t.Errorf("error %q does not say the size", err)
	}
	if st := a.Stats(); st.Sent != 0 {
		t.Errorf("refused message counted as sent: %+v", st)
	}
	max := strings.Repeat("y", chat.MaxBodyBytes)
	send(t, a, max)
	b.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventMessage && ev.Text == max }, "64 KiB message")

	for _, bad := range []struct{ room, text string }{{"lobby", ""}, {"lobby", "\xff\xfe"}, {"bad room", "x"}} {
		if _, err := a.Send(context.Background(), bad.room, bad.text); err == nil {
			t.Errorf("Send(%q, %q) accepted", bad.room, bad.text)
		}
	}
}

func TestClusterKeyMismatch(t *testing.T) {
	key1 := chat.ClusterKeyFromPassphrase("one")
	key2 := chat.ClusterKeyFromPassphrase("two")
	cases := []struct {
		name             string
		groupKey, ownKey []byte
	}{
		{"different keys", key1, key2},
		{"no key joining a keyed group", key1, nil},
		{"key joining an open group", nil, key2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gcfg := chattest.Config(t, "group")
			gcfg.ClusterKey = tc.groupKey
			group := chattest.Start(t, gcfg)
			cfg := chattest.Config(t, "stranger")
			cfg.ClusterKey = tc.ownKey
			s := chattest.Start(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			k, err := s.Join(ctx, []string{group.AdvertiseAddr()})
			if err == nil {
				t.Fatalf("join succeeded (%d contacts) across cluster keys", k)
			}
			if !errors.Is(err, chat.ErrClusterKey) || !strings.Contains(err.Error(), "--cluster-key") || strings.Contains(err.Error(), "\n") {
				t.Errorf("join error %q is not one clear line about the cluster key", err)
			}
			if n := chattest.AliveCount(group.Node); n != 1 {
				t.Errorf("group sees %d members, want 1", n)
			}
		})
	}
	t.Run("same key", func(t *testing.T) {
		peers := chattest.Cluster(t, 2, func(_ int, cfg *chat.Config) { cfg.ClusterKey = key1 })
		send(t, peers[0], "secret hello")
		peers[1].Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Text == "secret hello" }, "message in keyed group")
	})
}

func TestKVPropagates(t *testing.T) {
	peers := chattest.Cluster(t, 3, nil)
	a, b, c := peers[0], peers[1], peers[2]
	if err := a.KVSet("topic", "distributed systems"); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool { return p.KVList()["topic"] == "distributed systems" }, "%s lacks topic", p.Nick())
	}
	// A later change from another peer wins everywhere.
	if err := b.KVSet("topic", "gossip"); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool { return p.KVList()["topic"] == "gossip" }, "%s: topic %q", p.Nick(), p.KVList()["topic"])
	}
	if err := c.KVDel("topic"); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool { _, ok := p.KVList()["topic"]; return !ok }, "%s still has topic", p.Nick())
	}
	if err := a.KVSet("late", "joiner sees me"); err != nil {
		t.Fatal(err)
	}
	// A late joiner gets the state by push/pull.
	d := chattest.Start(t, chattest.Config(t, "late"))
	chattest.Join(t, d, a)
	chattest.WaitFor(t, timeout, func() bool {
		kv := d.KVList()
		_, deleted := kv["topic"]
		return kv["late"] == "joiner sees me" && !deleted
	}, "late joiner has %v", d.KVList())

	// The largest entry allowed still fits a gossip packet and spreads.
	bigKey, bigValue := strings.Repeat("k", chat.MaxKVKeyBytes), strings.Repeat("é", chat.MaxKVValueBytes/2)
	if err := b.KVSet(bigKey, bigValue); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		chattest.WaitFor(t, timeout, func() bool { return p.KVList()[bigKey] == bigValue }, "%s lacks the largest entry", p.Nick())
	}

	for _, bad := range []struct{ k, v string }{{"", "x"}, {"has space", "x"}, {strings.Repeat("k", 65), "x"}, {"k", strings.Repeat("v", 257)}} {
		if err := a.KVSet(bad.k, bad.v); err == nil {
			t.Errorf("KVSet(%q, %d bytes) accepted", bad.k, len(bad.v))
		}
	}
	if err := a.KVDel("never-set"); err == nil {
		t.Error("KVDel of a missing key succeeded")
	}
}

func TestPing(t *testing.T) {
	peers := chattest.Cluster(t, 2, func(i int, cfg *chat.Config) { cfg.Nick = []string{"alice", "bob"}[i] })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, who := range []string{"bob", peers[1].ID(), peers[1].ID()[:6]} {
		rtt, err := peers[0].Ping(ctx, who)
		if err != nil {
			t.Fatalf("ping %s: %v", who, err)
		}
		if rtt <= 0 || rtt > timeout {
			t.Errorf("ping %s: rtt %v", who, rtt)
		}
	}
	if _, err := peers[0].Ping(ctx, "nobody"); !errors.Is(err, chat.ErrUnknownPeer) {
		t.Errorf("ping nobody: %v, want ErrUnknownPeer", err)
	}
}

func TestLifecycleErrors(t *testing.T) {
	n, err := chat.New(chattest.Config(t, "manual"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	ctx := context.Background()
	if _, err := n.Send(ctx, "", "too early"); !errors.Is(err, chat.ErrNotStarted) {
		t.Errorf("send before start: %v", err)
	}
	if _, err := n.Join(ctx, []string{"127.0.0.1:1"}); !errors.Is(err, chat.ErrNotStarted) {
		t.Errorf("join before start: %v", err)
	}
	if n.AdvertiseAddr() != "" || n.Health() != -1 {
		t.Errorf("before start: addr %q health %d", n.AdvertiseAddr(), n.Health())
	}
	// The memberlist configuration can be changed before Start only.
	js, err := n.MemberlistConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	// Before Start the ports are those of BindAddr (port 0 here), not
	// the profile's 7946, which is never bound.
	if !strings.Contains(string(js), `"bind_port": 0,`) {
		t.Errorf("config before start does not show the bind port 0:\n%s", js)
	}
	js = []byte(strings.Replace(string(js), `"gossip_nodes": 3`, `"gossip_nodes": 4`, 1))
	if err := n.LoadMemberlistConfigJSON(js); err != nil {
		t.Fatalf("load config: %v", err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); !errors.Is(err, chat.ErrAlreadyStarted) {
		t.Errorf("second start: %v", err)
	}
	after, _ := n.MemberlistConfigJSON()
	if !strings.Contains(string(after), `"gossip_nodes": 4`) {
		t.Errorf("loaded setting not in effect:\n%s", after)
	}
	if _, port, _ := net.SplitHostPort(n.AdvertiseAddr()); !strings.Contains(string(after), `"bind_port": `+port+`,`) {
		t.Errorf("config after start does not show the bound port %s:\n%s", port, after)
	}
	if err := n.LoadMemberlistConfigJSON(js); err == nil {
		t.Error("config loaded after start")
	}
	if n.Health() != 0 {
		t.Errorf("health %d, want 0", n.Health())
	}
	// The user's own message shows in its own stream, even alone.
	if _, err := n.Send(ctx, "#lobby", "alone"); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-n.Events():
		if ev.Type != hearsay.EventMessage || ev.Text != "alone" || !ev.Self || ev.From != "manual" {
			t.Errorf("own event %+v", ev)
		}
	case <-time.After(timeout):
		t.Fatal("own message not in own events")
	}
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-n.Events(); ok {
		t.Error("events not closed by shutdown")
	}
	if _, err := n.Send(ctx, "", "after"); !errors.Is(err, chat.ErrShutdown) {
		t.Errorf("send after shutdown: %v", err)
	}
}

func TestSequenceNumbersSurviveRestart(t *testing.T) {
	cfg := chattest.Config(t, "restart")
	first := chattest.Start(t, cfg)
	id1 := send(t, first, "one")
	id2 := send(t, first, "two")
	if id1.Seq != 1 || id2.Seq != 2 {
		t.Fatalf("seqs %d, %d; want 1, 2", id1.Seq, id2.Seq)
	}
	if err := first.Shutdown(); err != nil {
		t.Fatal(err)
	}
	second := chattest.Start(t, cfg)
	if second.ID() != first.ID() {
		t.Fatalf("identity changed across restart: %s then %s", first.ID(), second.ID())
	}
	id3 := send(t, second, "three")
	if id3.Seq <= id2.Seq {
		t.Errorf("seq after restart %d, must be above %d", id3.Seq, id2.Seq)
	}
}

func TestSlowEventReaderIsToldNotBlocking(t *testing.T) {
	cfg := chattest.Config(t, "slow")
	cfg.EventBuffer = 2
	n, err := chat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	ctx := context.Background()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ { // nobody reads: Send must not block
		if _, err := n.Send(ctx, "", fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Stats().EventDrops; got != 3 {
		t.Errorf("event drops %d, want 3", got)
	}
	for i := 0; i < 2; i++ {
		if ev := <-n.Events(); ev.Text != fmt.Sprintf("m%d", i) {
			t.Errorf("event %d: %q", i, ev.Text)
		}
	}
	if _, err := n.Send(ctx, "", "after"); err != nil {
		t.Fatal(err)
	}
	notice := <-n.Events()
	if notice.Type != hearsay.EventError || !strings.Contains(notice.Text, "3 events were dropped") {
		t.Errorf("notice %+v", notice)
	}
	if ev := <-n.Events(); ev.Text != "after" {
		t.Errorf("after the notice: %+v", ev)
	}
}

// A killed peer restarted on the same data directory (same identity, new
// ports) is taken back by the group and continues its sequence numbers.
func TestKilledPeerRestarts(t *testing.T) {
	var cfgs []chat.Config
	peers := chattest.Cluster(t, 3, func(i int, cfg *chat.Config) { cfgs = append(cfgs, *cfg) })
	a, victim := peers[0], peers[2]
	first := send(t, victim, "before the crash")
	a.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.ID == first.String() }, "message before the crash")
	if err := victim.Shutdown(); err != nil {
		t.Fatal(err)
	}
	a.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.Type == hearsay.EventFailed && ev.FromID == victim.ID() }, "failure")

	back := chattest.Start(t, cfgs[2])
	if back.ID() != victim.ID() || back.AdvertiseAddr() == victim.AdvertiseAddr() {
		t.Fatalf("restart: id %s addr %s (was %s at %s)", back.ID(), back.AdvertiseAddr(), victim.ID(), victim.AdvertiseAddr())
	}
	chattest.Join(t, back, a)
	chattest.WaitConverged(t, peers[0], peers[1], back)
	again := send(t, back, "after the restart")
	if again.Seq <= first.Seq {
		t.Errorf("seq after restart %d, want above %d", again.Seq, first.Seq)
	}
	for _, p := range peers[:2] {
		p.Rec.WaitEvent(t, timeout, func(ev hearsay.Event) bool { return ev.ID == again.String() }, "message after the restart")
	}
}

// Concurrent Sends still reach each peer in seq order (FIFO per origin).
func TestConcurrentSendsKeepOriginOrder(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a, b := peers[0], peers[1]
	const writers, each = 4, 25
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for i := 0; i < each; i++ {
				if _, err := a.Send(context.Background(), "", fmt.Sprintf("w%d-%d", w, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	chattest.WaitFor(t, timeout, func() bool { return len(b.Rec.Messages()) == writers*each }, "b has %d messages", len(b.Rec.Messages()))
	for i, ev := range b.Rec.Messages() {
		if want := fmt.Sprintf("%s/%d", a.ID(), i+1); ev.ID != want {
			t.Fatalf("message %d is %s, want %s", i, ev.ID, want)
		}
	}
}

// signedLobby returns a lobby chat envelope from p with the given seq,
// signed by p's key, for tests that inject envelopes by hand.
func signedLobby(p *chattest.Peer, text string, seq uint64) *chatpb.Envelope {
	e := &chatpb.Envelope{Seq: seq, Room: "lobby", Kind: chatpb.Kind_KIND_CHAT, Body: []byte(text), SentUnixNano: time.Now().UnixNano()}
	chat.SignEnvelope(p.Identity(), e)
	return e
}

// TestMembersAfterLeave: a node that left still lists its members and its
// address once memberlist has dropped its own entry (GossipToTheDeadTime
// after the leave): they read memberlist's LocalNode, which then
// dereferenced a nil entry and panicked (a discovery agent still running
// after Leave called Members).
func TestMembersAfterLeave(t *testing.T) {
	peers := chattest.Cluster(t, 2, nil)
	a := peers[0]
	addr := a.AdvertiseAddr()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	chattest.WaitFor(t, timeout, a.SelfReapedForTest, "memberlist never dropped the left node's own entry")
	if got := a.AdvertiseAddr(); got != addr {
		t.Errorf("advertised address after leave: %q, want %q", got, addr)
	}
	ms := a.Members()
	if len(ms) == 0 || ms[0].ID != a.ID() || !ms[0].Self {
		t.Errorf("members after leave: %+v, want this node first", ms)
	}
}
