package overlay

import (
	"slices"
	"testing"
	"time"
)

// graftNode is a Node with neighbours a and b whose graft timer adapts
// between 500 ms and 2 s.
func graftNode(t *testing.T) *Node {
	t.Helper()
	return graftNodeMin(t, 500*time.Millisecond)
}

// graftNodeMin is graftNode with GraftTimeoutMin least (0: a fixed timer).
func graftNodeMin(t *testing.T, least time.Duration) *Node {
	t.Helper()
	cfg := testConfig("me")
	cfg.GraftTimeout, cfg.GraftRetry, cfg.GraftTimeoutMin = 2*time.Second, time.Second, least
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	n.Ready()
	return n
}

// graftedAt announces id from b at now and ticks every 10 ms until the
// node grafts it; it returns how long after the announcement that was.
// b answers the graft at once: a grafted payload, however long after its
// announcement, is not a lateness (the timer made it so).
func graftedAt(t *testing.T, n *Node, now time.Duration, id MsgID) time.Duration {
	t.Helper()
	n.Step(now, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: id, Origin: "o"}}})
	n.Ready()
	for d := time.Duration(0); d <= 3*time.Second; d += 10 * time.Millisecond {
		n.Tick(now + d)
		for _, e := range n.Ready().Messages {
			if e.Msg.Kind == KindGraft && len(e.Msg.IDs) == 1 && e.Msg.IDs[0] == id {
				n.Step(now+d, "b", Message{Kind: KindGossip, Peer: "o", ID: id, Payload: []byte("x")})
				n.Ready()
				return d
			}
		}
	}
	t.Fatalf("no graft of %v within 3 s of its announcement", id)
	return 0
}

// late announces id from b at now and has its payload come from a, over
// the tree, after.
func late(n *Node, now, after time.Duration, id MsgID) {
	n.Step(now, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: id, Origin: "o"}}})
	n.Step(now+after, "a", Message{Kind: KindGossip, Peer: "o", ID: id, Payload: []byte("x")})
	n.Ready()
}

func TestGraftTimerAdapts(t *testing.T) {
	n := graftNode(t)
	// Nothing came late yet: a missing message is grafted after the
	// minimum, not the 2 s a loaded group needs.
	if got := graftedAt(t, n, time.Second, msgID(1)); got != 500*time.Millisecond {
		t.Fatalf("first graft %v after the announcement, want 500ms (the minimum)", got)
	}
	if got := n.GraftTimer(); got != 500*time.Millisecond {
		t.Fatalf("GraftTimer %v, want 500ms", got)
	}
	// A payload that came 700 ms after its announcement: the next one
	// waits twice that before it is grafted.
	late(n, 10*time.Second, 700*time.Millisecond, msgID(2))
	if got := graftedAt(t, n, 11*time.Second, msgID(3)); got != 1400*time.Millisecond {
		t.Fatalf("graft %v after the announcement once a payload came 700ms late, want 1.4s", got)
	}
	// Later than half the maximum: the timer stops at the maximum.
	late(n, 20*time.Second, 1500*time.Millisecond, msgID(4))
	if got := graftedAt(t, n, 22*time.Second, msgID(5)); got != 2*time.Second {
		t.Fatalf("graft %v after the announcement once a payload came 1.5s late, want 2s (the maximum)", got)
	}
	// Without a later lateness the timer halves every lateHalfLife:
	// 1.5 s seen at 21.5 s, two half-lives later 375 ms, the timer 750 ms.
	at := 21500*time.Millisecond + 2*lateHalfLife
	if got := graftedAt(t, n, at, msgID(6)); got != 750*time.Millisecond {
		t.Fatalf("graft %v after the announcement two half-lives on, want 750ms", got)
	}
	// And back at the minimum after enough of them.
	if got := graftedAt(t, n, at+10*lateHalfLife, msgID(7)); got != 500*time.Millisecond {
		t.Fatalf("graft %v after the announcement ten half-lives on, want 500ms", got)
	}
}

// A payload flagged Repaired came late because a frame was lost above us
// in the tree (a graft or a repair there), not because our links are
// slow: it does not lengthen the timer. Before the flag, every payload
// that a node's parent had grafted came late by the parent's timer, the
// node doubled it into its own, and its children did the same: under
// loss every timer sat at the maximum (TestAdaptiveTimerUnderLoss in
// overlaysim measures what that cost).
func TestGraftTimerIgnoresRepaired(t *testing.T) {
	n := graftNode(t)
	n.Step(10*time.Second, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: msgID(2), Origin: "o"}}})
	n.Step(10*time.Second+700*time.Millisecond, "a", Message{Kind: KindGossip, Peer: "o", ID: msgID(2), Payload: []byte("x"), Repaired: true})
	n.Ready()
	if got := n.GraftTimer(); got != 500*time.Millisecond {
		t.Fatalf("GraftTimer %v after a repaired payload came 700ms late, want 500ms (the minimum)", got)
	}
	// The same lateness without the flag still counts.
	late(n, 20*time.Second, 700*time.Millisecond, msgID(3))
	if got := n.GraftTimer(); got != 1400*time.Millisecond {
		t.Fatalf("GraftTimer %v after a payload came 700ms late, want 1.4s", got)
	}
}

// What a node relays says whether its own copy was repaired: a payload
// it grafted, one that came flagged, one from anti-entropy (Repaired),
// and a graft's answer carry the flag on; a payload that came down the
// tree in time does not.
func TestRepairedFlagRelayed(t *testing.T) {
	gossipTo := func(n *Node, to string) []Message {
		var out []Message
		for _, e := range n.Ready().Messages {
			if e.To == to && e.Msg.Kind == KindGossip {
				out = append(out, e.Msg)
			}
		}
		return out
	}
	// me has neighbours a and b; a third, c, is eager (a child) in o's tree.
	setup := func() *Node {
		n := graftNode(t)
		n.Step(0, "c", Message{Kind: KindNeighbor})
		n.Ready()
		return n
	}
	relayed := func(n *Node, id MsgID) bool {
		t.Helper()
		out := gossipTo(n, "c")
		if len(out) != 1 || out[0].ID != id {
			t.Fatalf("relayed to c: %+v, want %v", out, id)
		}
		return out[0].Repaired
	}

	n := setup()
	n.Step(time.Second, "a", Message{Kind: KindGossip, Peer: "o", ID: msgID(1), Payload: []byte("x")})
	if relayed(n, msgID(1)) {
		t.Error("a payload that came down the tree was relayed as repaired")
	}

	n = setup()
	n.Step(time.Second, "a", Message{Kind: KindGossip, Peer: "o", ID: msgID(1), Payload: []byte("x"), Repaired: true})
	if !relayed(n, msgID(1)) {
		t.Error("a payload that came flagged was relayed without the flag")
	}

	n = setup()
	n.Step(time.Second, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: msgID(1), Origin: "o"}}})
	n.Ready()
	n.Tick(1500 * time.Millisecond) // the timer, at its minimum: we graft from b
	if out := n.Ready().Messages; len(out) != 1 || out[0].To != "b" || out[0].Msg.Kind != KindGraft {
		t.Fatalf("after the timer: %+v, want a graft to b", out)
	}
	n.Step(1500*time.Millisecond, "b", Message{Kind: KindGossip, Peer: "o", ID: msgID(1), Payload: []byte("x")})
	if !relayed(n, msgID(1)) {
		t.Error("a payload we grafted was relayed without the flag")
	}

	n = setup()
	n.Step(time.Second, "a", Message{Kind: KindGossip, Peer: "o", ID: msgID(1), Payload: []byte("x")}) // a is o's parent
	n.Ready()
	if !n.Repaired(2*time.Second, "o", msgID(2), []byte("y")) {
		t.Fatal("the repaired message was not new")
	}
	if !relayed(n, msgID(2)) {
		t.Error("a payload from anti-entropy was relayed without the flag")
	}

	// A graft's answer: the grafting node got it late by its timer.
	// (b pruned us: it is announced the payload, and may graft it.)
	n = setup()
	n.Step(0, "b", Message{Kind: KindPrune, Peer: "o"})
	n.Step(time.Second, "a", Message{Kind: KindGossip, Peer: "o", ID: msgID(1), Payload: []byte("x")})
	n.Tick(2 * time.Second)
	n.Ready()
	n.Step(2*time.Second, "b", Message{Kind: KindGraft, Peer: "o", IDs: []MsgID{msgID(1)}})
	if out := gossipTo(n, "b"); len(out) != 1 || !out[0].Repaired {
		t.Errorf("graft answered with %+v, want the payload flagged repaired", out)
	}
}

// The retry scales with the timer: at the minimum (a quarter of the
// maximum), a quarter of GraftRetry.
func TestGraftRetryScalesWithTimer(t *testing.T) {
	n := graftNode(t)
	n.Step(0, "a", Message{Kind: KindIHave, Announces: []Announce{{ID: msgID(1), Origin: "o"}}})
	n.Step(0, "b", Message{Kind: KindIHave, Announces: []Announce{{ID: msgID(1), Origin: "o"}}})
	n.Ready()
	var grafts []time.Duration
	for d := time.Duration(0); d <= 1500*time.Millisecond && len(grafts) < 2; d += 10 * time.Millisecond {
		n.Tick(d)
		for _, e := range n.Ready().Messages {
			if e.Msg.Kind == KindGraft && len(e.Msg.IDs) > 0 {
				grafts = append(grafts, d)
			}
		}
	}
	if len(grafts) != 2 || grafts[0] != 500*time.Millisecond || grafts[1] != 750*time.Millisecond {
		t.Fatalf("grafts at %v, want at 500ms and 750ms (GraftRetry 1s scaled by 500ms/2s)", grafts)
	}
}

// A fixed timer (GraftTimeoutMin 0, the simulator's) ignores lateness.
func TestGraftTimerFixedWithoutMinimum(t *testing.T) {
	n := graftNodeMin(t, 0)
	if got := graftedAt(t, n, time.Second, msgID(1)); got != 2*time.Second {
		t.Fatalf("graft %v after the announcement, want 2s", got)
	}
	late(n, 10*time.Second, 100*time.Millisecond, msgID(2))
	if got := n.GraftTimer(); got != 2*time.Second {
		t.Fatalf("GraftTimer %v after a lateness, want the fixed 2s", got)
	}
}

func TestGraftTimeoutMinValidated(t *testing.T) {
	cfg := testConfig("me")
	cfg.GraftTimeoutMin = cfg.GraftTimeout + time.Millisecond
	if _, err := New(cfg); err == nil {
		t.Error("a minimum above the graft timeout was accepted")
	}
	cfg.GraftTimeoutMin = -time.Millisecond
	if _, err := New(cfg); err == nil {
		t.Error("a negative minimum was accepted")
	}
}

// A neighbour that grafts the same MaxIHave IDs again and again gets each
// payload at most graftAnswers times, those it was announced; one that
// was never announced them (it had them pushed) gets none. Without the
// bound every Graft, a few bytes, cost MaxIHave cached payloads.
func TestGraftAmplificationBounded(t *testing.T) {
	cfg := testConfig("me")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	n.Step(0, "a", Message{Kind: KindPrune, Peer: "o"}) // a lazy in o's tree: announced to
	// o's first payload to pass here is announced to the eager
	// neighbours too (forward): c is owed that one, none of ids.
	n.Step(0, "b", Message{Kind: KindGossip, Peer: "o", ID: msgID(cfg.MaxIHave + 1), Payload: []byte("first")})
	n.Ready()
	ids := make([]MsgID, cfg.MaxIHave)
	for i := range ids {
		ids[i] = msgID(i + 1)
		n.Step(0, "b", Message{Kind: KindGossip, Peer: "o", ID: ids[i], Payload: make([]byte, 1000)})
	}
	n.Tick(cfg.LazyInterval) // the announcements to a leave
	announced := 0
	for _, e := range n.Ready().Messages {
		if e.To == "a" && e.Msg.Kind == KindIHave {
			for _, a := range e.Msg.Announces {
				if slices.Contains(ids, a.ID) {
					announced++
				}
			}
		}
	}
	if announced != len(ids) {
		t.Fatalf("%d IDs announced to a, want %d", announced, len(ids))
	}
	const rounds = 10
	sent := map[string]map[MsgID]int{"a": {}, "c": {}}
	for r := range rounds {
		for _, p := range []string{"a", "c"} {
			n.Step(cfg.LazyInterval+time.Duration(r)*time.Millisecond, p, Message{Kind: KindGraft, Peer: "o", IDs: ids})
		}
		for _, e := range n.Ready().Messages {
			if e.Msg.Kind == KindGossip && sent[e.To] != nil {
				sent[e.To][e.Msg.ID]++
			}
		}
	}
	for _, id := range ids {
		if got := sent["a"][id]; got != graftAnswers {
			t.Fatalf("a, announced %v and grafting it %d times, was sent it %d times, want %d", id, rounds, got, graftAnswers)
		}
	}
	if got := len(sent["c"]); got != 0 {
		t.Fatalf("c, never announced the IDs, was sent %d of them", got)
	}
	if got, want := n.Stats().GraftRefused, uint64(rounds*2*len(ids)-graftAnswers*len(ids)); got != want {
		t.Fatalf("GraftRefused %d, want %d", got, want)
	}
}

// A neighbour that leaves the view takes what it was owed along: the one
// that takes its slot is owed nothing, and the neighbours in the slots
// above keep theirs.
func TestGraftOwedFollowsViewSlots(t *testing.T) {
	cfg := testConfig("me")
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c"} {
		n.Step(0, p, Message{Kind: KindNeighbor})
	}
	n.Step(0, "a", Message{Kind: KindPrune, Peer: "o"})
	n.Step(0, "c", Message{Kind: KindPrune, Peer: "o"})
	id := msgID(1)
	n.Step(0, "b", Message{Kind: KindGossip, Peer: "o", ID: id, Payload: []byte("x")})
	n.Tick(cfg.LazyInterval) // announced to a and c
	n.PeerDown(cfg.LazyInterval, "a")
	n.Step(cfg.LazyInterval, "d", Message{Kind: KindNeighbor})
	n.Ready()
	answered := func(p string) bool {
		n.Step(cfg.LazyInterval, p, Message{Kind: KindGraft, Peer: "o", IDs: []MsgID{id}})
		for _, e := range n.Ready().Messages {
			if e.To == p && e.Msg.Kind == KindGossip && e.Msg.ID == id {
				return true
			}
		}
		return false
	}
	if !answered("c") {
		t.Error("c, announced the message, lost it when a left the view")
	}
	if answered("d") {
		t.Error("d, in the view after the announcement, was sent the message")
	}
}

// The retry scales without overflow at long timers: a 10 s timeout and a
// 5 s retry (each some 10^10 ns, their product past int64) wait 5 s.
func TestGraftRetryLongTimers(t *testing.T) {
	cfg := testConfig("me")
	cfg.GraftTimeout, cfg.GraftRetry, cfg.GraftTimeoutMin = 10*time.Second, 5*time.Second, 10*time.Second
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := n.graftRetry(); got != 5*time.Second {
		t.Fatalf("graftRetry %v, want 5s", got)
	}
}
