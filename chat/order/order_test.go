package order

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func mustNew(t testing.TB, self string, mode Mode) *Machine {
	t.Helper()
	m, err := New(DefaultConfig(self, mode))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func data(origin string, seq, lamport uint64) Meta {
	return Meta{Origin: origin, Seq: seq, Kind: KindData, Lamport: lamport}
}

// step is one scripted event on a single machine and what it must yield.
type step struct {
	recv    []Meta
	up      string
	down    string
	want    []string // delivered IDs, in order
	wantDup uint64   // duplicates counter after the step
	held    int      // Stats().Held after the step
}

func runSteps(t *testing.T, m *Machine, steps []step) {
	t.Helper()
	for i, s := range steps {
		var out Output
		switch {
		case s.up != "":
			out = m.MemberUp(s.up, uint64(i+10))
		case s.down != "":
			out = m.MemberDown(s.down)
		default:
			var err error
			out, err = m.Receive(s.recv...)
			if err != nil {
				t.Fatalf("step %d: Receive: %v", i, err)
			}
		}
		if got := ids(out.Deliver); !slices.Equal(got, s.want) && !(len(got) == 0 && len(s.want) == 0) {
			t.Fatalf("step %d: delivered %v, want %v", i, got, s.want)
		}
		st := m.Stats()
		if st.Duplicates != s.wantDup {
			t.Fatalf("step %d: duplicates %d, want %d", i, st.Duplicates, s.wantDup)
		}
		if st.Held != s.held {
			t.Fatalf("step %d: held %d, want %d (%v)", i, st.Held, s.held, m.HeldBack(0))
		}
	}
}

func TestFIFOScripts(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1"}},
			{recv: []Meta{data("a", 2, 2), data("b", 1, 1)}, want: []string{"a:2", "b:1"}},
		}},
		{"reorder", []step{
			{recv: []Meta{data("a", 3, 3)}, held: 1},
			{recv: []Meta{data("a", 2, 2)}, held: 2},
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1", "a:2", "a:3"}},
		}},
		{"duplicate delivered and held", []step{
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1"}},
			{recv: []Meta{data("a", 1, 1)}, wantDup: 1},
			{recv: []Meta{data("a", 3, 3), data("a", 3, 3)}, wantDup: 2, held: 1},
			{recv: []Meta{data("a", 2, 2)}, want: []string{"a:2", "a:3"}, wantDup: 2},
		}},
		{"origins independent", []step{
			{recv: []Meta{data("a", 2, 2), data("b", 1, 1)}, want: []string{"b:1"}, held: 1},
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1", "a:2"}},
		}},
		{"control messages are consumed, not delivered", []step{
			{recv: []Meta{{Origin: "a", Seq: 1, Kind: KindAck, Lamport: 1}, data("a", 2, 2)}, want: []string{"a:2"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, mustNew(t, "self", FIFO), tt.steps) })
	}
}

func TestCausalScripts(t *testing.T) {
	dep := func(m Meta, deps map[string]uint64) Meta { m.Deps = deps; return m }
	tests := []struct {
		name  string
		steps []step
	}{
		{"reply waits for the message it answers", []step{
			{recv: []Meta{dep(data("b", 1, 2), map[string]uint64{"a": 1})}, held: 1},
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1", "b:1"}},
		}},
		{"transitive chain arriving backwards", []step{
			{recv: []Meta{dep(data("c", 1, 3), map[string]uint64{"a": 1, "b": 1})}, held: 1},
			{recv: []Meta{dep(data("b", 1, 2), map[string]uint64{"a": 1})}, held: 2},
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1", "b:1", "c:1"}},
		}},
		{"concurrent messages deliver independently", []step{
			{recv: []Meta{data("a", 1, 1), data("b", 1, 1)}, want: []string{"a:1", "b:1"}},
		}},
		{"fifo within an origin despite satisfied deps", []step{
			{recv: []Meta{data("a", 2, 2)}, held: 1},
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1", "a:2"}},
		}},
		{"duplicate of a held message", []step{
			{recv: []Meta{dep(data("b", 1, 2), map[string]uint64{"a": 1})}, held: 1},
			{recv: []Meta{dep(data("b", 1, 2), map[string]uint64{"a": 1})}, held: 1, wantDup: 1},
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1", "b:1"}, wantDup: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runSteps(t, mustNew(t, "self", Causal), tt.steps) })
	}
}

func TestCausalNextCarriesDeps(t *testing.T) {
	m := mustNew(t, "me", Causal)
	if _, err := m.Receive(data("a", 1, 1), data("a", 2, 2), data("b", 1, 1)); err != nil {
		t.Fatal(err)
	}
	msg, out, err := m.Next()
	if err != nil {
		t.Fatal(err)
	}
	if msg.Seq != 1 || msg.Lamport != 3 {
		t.Fatalf("got seq %d lamport %d, want 1 and 3", msg.Seq, msg.Lamport)
	}
	if want := map[string]uint64{"a": 2, "b": 1}; len(msg.Deps) != 2 || msg.Deps["a"] != 2 || msg.Deps["b"] != 1 {
		t.Fatalf("got deps %v, want %v", msg.Deps, want)
	}
	if got := ids(out.Deliver); !slices.Equal(got, []string{"me:1"}) {
		t.Fatalf("own message delivered %v, want [me:1]", got)
	}
	if _, err := m.Receive(msg); err != nil || m.Stats().Duplicates != 1 {
		t.Fatalf("echo of own message: err %v, duplicates %d, want 1", err, m.Stats().Duplicates)
	}
}

func TestTotalScripts(t *testing.T) {
	t.Run("waits for every live member then delivers by timestamp", func(t *testing.T) {
		m := mustNew(t, "c", Total)
		m.MemberUp("a", 1)
		m.MemberUp("b", 2)
		runSteps(t, m, []step{
			// b:1 (L=1) and a:1 (L=1): order by (lamport, origin) is a:1, b:1.
			{recv: []Meta{data("b", 1, 1)}, held: 1},
			// b:1 at L=1 already puts b past (1, a): a:1 goes first.
			{recv: []Meta{data("a", 1, 1)}, want: []string{"a:1"}, held: 1},
			// a's stream is at (1, a), not past (1, b), until its ack.
			{recv: []Meta{{Origin: "a", Seq: 2, Kind: KindAck, Lamport: 3}}, want: []string{"b:1"}},
			{recv: []Meta{{Origin: "b", Seq: 2, Kind: KindAck, Lamport: 3}}},
		})
	})
	t.Run("receiving data makes one ack for the batch", func(t *testing.T) {
		m := mustNew(t, "c", Total)
		m.MemberUp("a", 1)
		out, err := m.Receive(data("a", 1, 5), data("a", 2, 6))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Send) != 1 || out.Send[0].Kind != KindAck || out.Send[0].Lamport != 7 || out.Send[0].Seq != 1 {
			t.Fatalf("got sends %+v, want one ack c:1 at lamport 7", out.Send)
		}
		if got := ids(out.Deliver); !slices.Equal(got, []string{"a:1", "a:2"}) {
			t.Fatalf("delivered %v, want [a:1 a:2]", got)
		}
	})
	t.Run("member failure unblocks", func(t *testing.T) {
		m := mustNew(t, "c", Total)
		m.MemberUp("a", 1)
		m.MemberUp("b", 2)
		runSteps(t, m, []step{
			{recv: []Meta{data("a", 1, 1)}, held: 1},
			{recv: []Meta{{Origin: "a", Seq: 2, Kind: KindAck, Lamport: 4}}, held: 1},
			{down: "b", want: []string{"a:1"}},
		})
		if got := m.HeldBack(0); len(got) != 0 {
			t.Fatalf("held back %v after b went down", got)
		}
	})
	t.Run("late message from a member declared down", func(t *testing.T) {
		m := mustNew(t, "c", Total)
		m.MemberUp("a", 1)
		m.MemberUp("b", 2)
		m.Receive(data("a", 1, 5))
		out := m.MemberDown("b")
		if got := ids(out.Deliver); !slices.Equal(got, []string{"a:1"}) {
			t.Fatalf("delivered %v, want [a:1]", got)
		}
		out, _ = m.Receive(data("b", 1, 2))
		if len(out.Deliver) != 0 || len(out.Late) != 1 || m.Stats().Late != 1 {
			t.Fatalf("got deliver %v late %v, want b:1 late only", ids(out.Deliver), ids(out.Late))
		}
	})
	t.Run("joining member is waited for", func(t *testing.T) {
		m := mustNew(t, "c", Total)
		m.MemberUp("a", 1)
		m.MemberUp("d", 5)
		runSteps(t, m, []step{
			{recv: []Meta{data("a", 1, 1), {Origin: "a", Seq: 2, Kind: KindAck, Lamport: 3}}, held: 1},
			{recv: []Meta{{Origin: "d", Seq: 1, Kind: KindAck, Lamport: 2}}, want: []string{"a:1"}},
		})
	})
	t.Run("busy when too much of our own is pending", func(t *testing.T) {
		cfg := DefaultConfig("c", Total)
		cfg.MaxInFlight = 2
		m, _ := New(cfg)
		m.MemberUp("a", 1)
		for range 2 {
			if _, _, err := m.Next(); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := m.Next(); !errors.Is(err, ErrBusy) {
			t.Fatalf("got %v, want ErrBusy", err)
		}
		m.Receive(Meta{Origin: "a", Seq: 1, Kind: KindAck, Lamport: 10})
		if _, _, err := m.Next(); err != nil {
			t.Fatalf("after acks: %v", err)
		}
	})
}

func TestValidation(t *testing.T) {
	m := mustNew(t, "me", Sequencer)
	bad := []Meta{
		{Origin: "", Seq: 1, Kind: KindData},
		{Origin: "a", Seq: 0, Kind: KindData},
		{Origin: "a", Seq: 1, Kind: 99},
		{Origin: "a", Seq: 1, Kind: KindStamp, Epoch: 0},
		{Origin: "a", Seq: 1, Kind: KindStamp, Epoch: 1, Stamped: []ID{{"b", 1}}},
		{Origin: "a", Seq: 1, Kind: KindStamp, Epoch: 1, Global: 1, Stamped: []ID{{"", 1}}},
		{Origin: "a", Seq: 1, Kind: KindStamp, Epoch: 1, Global: ^uint64(0), Stamped: []ID{{"b", 1}, {"b", 2}}},
		{Origin: "a", Seq: 1, Kind: KindData, Deps: map[string]uint64{"b": 0}},
	}
	for i, b := range bad {
		if _, err := m.Receive(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: got %v, want ErrInvalid", i, err)
		}
	}
	if got := m.Stats().Invalid; got != uint64(len(bad)) {
		t.Fatalf("invalid counter %d, want %d", got, len(bad))
	}
	if _, err := New(Config{Self: "x", Mode: Causal}); err == nil {
		t.Fatal("New with zero bounds: want error")
	}
}

func TestBoundedHoldBack(t *testing.T) {
	cfg := DefaultConfig("me", FIFO)
	cfg.MaxHeld = 2
	m, _ := New(cfg)
	m.Receive(data("a", 5, 5), data("a", 3, 3))
	// Full: a:4 is closer to its turn than a:5, so a:5 is evicted.
	out, _ := m.Receive(data("a", 4, 4))
	if got := out.Refused; len(got) != 1 || got[0] != (ID{"a", 5}) {
		t.Fatalf("refused %v, want [a:5]", got)
	}
	// Full, and a:6 is further than anything held: refused itself.
	out, _ = m.Receive(data("a", 6, 6))
	if got := out.Refused; len(got) != 1 || got[0] != (ID{"a", 6}) {
		t.Fatalf("refused %v, want [a:6]", got)
	}
	// An in-sequence message that delivers at once is always taken.
	out, _ = m.Receive(data("a", 1, 1), data("a", 2, 2))
	if got := ids(out.Deliver); !slices.Equal(got, []string{"a:1", "a:2", "a:3", "a:4"}) {
		t.Fatalf("delivered %v", got)
	}
	if w := m.Want()["a"]; w != 5 {
		t.Fatalf("Want a = %d, want 5", w)
	}
	out, _ = m.Receive(data("a", 5, 5), data("a", 6, 6))
	if got := ids(out.Deliver); !slices.Equal(got, []string{"a:5", "a:6"}) {
		t.Fatalf("refeed delivered %v", got)
	}
	if st := m.Stats(); st.Refused != 2 || st.Held != 0 {
		t.Fatalf("stats %+v, want 2 refused, 0 held", st)
	}
}

func TestCausalBoundNeverDeadlocks(t *testing.T) {
	s := newSim(t, Causal, "a", "b", "c")
	s.cfg = nil
	for _, n := range s.nodes {
		n.m.cfg.MaxHeld = 3
	}
	// c misses everything from a; b replies to each of a's messages.
	for range 6 {
		s.send("a")
		for len(s.queue) > 0 {
			p := s.queue[0]
			s.queue = s.queue[1:]
			if p.msg.Origin == "a" && p.to == "c" {
				continue
			}
			s.recv(p.to, p.msg)
		}
		s.send("b")
		s.flush()
	}
	if st := s.node("c").m.Stats(); st.Held > 3 || st.Refused == 0 {
		t.Fatalf("c stats %+v: want held <= 3 and some refused", st)
	}
	s.converge()
	for _, id := range s.ids {
		n := s.node(id)
		checkInvariants(t, Causal, n)
		if len(n.delivered) != 12 {
			t.Fatalf("%s delivered %d, want 12", id, len(n.delivered))
		}
	}
}

func TestFloorAndRestart(t *testing.T) {
	m := mustNew(t, "me", Causal)
	// Restart: seqs up to 7 of ours and 3 of a were pruned; 4..5 of a kept.
	m.Floor("me", 7, 20)
	m.Floor("a", 3, 9)
	out, _ := m.Receive(data("a", 5, 11), data("a", 4, 10))
	if got := ids(out.Deliver); !slices.Equal(got, []string{"a:4", "a:5"}) {
		t.Fatalf("delivered %v, want [a:4 a:5]", got)
	}
	msg, _, _ := m.Next()
	if msg.Seq != 8 || msg.Lamport <= 20 {
		t.Fatalf("next own message %d at lamport %d, want seq 8 after lamport 20", msg.Seq, msg.Lamport)
	}
	out, _ = m.Receive(data("a", 2, 2))
	if len(out.Deliver) != 0 || m.Stats().Duplicates != 1 {
		t.Fatal("message below the floor must count as duplicate")
	}
}

func TestHeldBackReasons(t *testing.T) {
	m := mustNew(t, "c", Total)
	m.MemberUp("a", 1)
	m.MemberUp("b", 2)
	m.Receive(data("a", 1, 1), data("b", 3, 3))
	hb := m.HeldBack(0)
	if len(hb) != 2 {
		t.Fatalf("held back %v, want 2", hb)
	}
	if !strings.Contains(hb[0].Reason, "waiting for acks from b") {
		t.Errorf("a:1 reason %q", hb[0].Reason)
	}
	if !strings.Contains(hb[1].Reason, "gap: waiting for b:1") {
		t.Errorf("b:3 reason %q", hb[1].Reason)
	}
}

func TestResumeFillsOwnGaps(t *testing.T) {
	m := mustNew(t, "me", Causal)
	m.Restore(5, 10) // seqs 3 and 5 were reserved but never stored
	out, _ := m.Receive(data("me", 1, 1), data("me", 2, 2), data("me", 4, 4))
	if got := ids(out.Deliver); !slices.Equal(got, []string{"me:1", "me:2"}) {
		t.Fatalf("replay delivered %v", got)
	}
	out = m.Resume()
	if got := ids(out.Deliver); !slices.Equal(got, []string{"me:4"}) {
		t.Fatalf("resume delivered %v, want [me:4]", got)
	}
	if got := ids(out.Send); !slices.Equal(got, []string{"me:3", "me:5"}) {
		t.Fatalf("resume sent %v, want fillers [me:3 me:5]", got)
	}
	for _, f := range out.Send {
		if f.Kind != KindAck || f.Lamport <= 10 {
			t.Fatalf("filler %+v: want an ack after lamport 10", f)
		}
	}
	// Another member receiving the fillers is not stuck on the gaps.
	other := mustNew(t, "x", Causal)
	o2, _ := other.Receive(append([]Meta{data("me", 1, 1), data("me", 2, 2), data("me", 4, 4)}, out.Send...)...)
	if got := ids(o2.Deliver); !slices.Equal(got, []string{"me:1", "me:2", "me:4"}) {
		t.Fatalf("other member delivered %v", got)
	}
	msg, out, err := m.Next()
	if err != nil || msg.Seq != 6 || msg.Lamport <= 12 || len(out.Deliver) != 1 {
		t.Fatalf("next after resume: %+v %v %v", msg, ids(out.Deliver), err)
	}
}

// A total-order member that crashed after accepting a message and before
// storing its ack must ack it again when its replay reaches it: the others
// (and the member itself) wait for its stream to pass the message.
func TestRestoreAcksWhatTheCrashLeftUnacked(t *testing.T) {
	m := mustNew(t, "b", Total)
	m.MemberUp("a", 1)
	m.MemberUp("b", 2)
	m.Restore(1, 7) // b:1 stored; the ack reserved after a:2 was not
	out, _ := m.Receive(data("a", 1, 5), data("a", 2, 7), data("b", 1, 6))
	out2 := m.Resume()
	var acks []Meta
	for _, o := range append(out.Send, out2.Send...) {
		if o.Origin == "b" && o.Kind == KindAck {
			acks = append(acks, o)
		}
	}
	if len(acks) == 0 || acks[len(acks)-1].Lamport <= 7 {
		t.Fatalf("restore sent acks %v, want one after lamport 7", acks)
	}
	if acks[0].Seq != 2 {
		t.Fatalf("first ack has seq %d, want 2 (after the stored b:1)", acks[0].Seq)
	}
	// a's messages are delivered once a's stream is past them too.
	o3, _ := m.Receive(Meta{Origin: "a", Seq: 3, Kind: KindAck, Lamport: 20})
	got := append(append(ids(out.Deliver), ids(out2.Deliver)...), ids(o3.Deliver)...)
	for _, want := range []string{"a:1", "b:1", "a:2"} {
		if !slices.Contains(got, want) {
			t.Fatalf("delivered %v, want %s among them", got, want)
		}
	}
	if hb := m.HeldBack(0); len(hb) != 0 {
		t.Fatalf("still held back after the ack: %+v", hb)
	}
}

// An origin's late message and its next one delivered in the same call are
// shown in seq order: Output.Show keeps the machine's order (shown as
// Deliver then Late, c:2 appeared before c:1; chat/sim TestRandom/total
// seed 3).
func TestShowKeepsLateBeforeLaterSeqs(t *testing.T) {
	m := mustNew(t, "a", Total)
	for range 2 { // alone: our messages deliver at once
		if _, _, err := m.Next(); err != nil {
			t.Fatal(err)
		}
	}
	m.MemberUp("c", 2)
	out, _ := m.Receive(data("c", 1, 1), data("c", 2, 10))
	if got := ids(out.Late); !slices.Equal(got, []string{"c:1"}) {
		t.Fatalf("late %v, want [c:1]", got)
	}
	if got := ids(out.Show); !slices.Equal(got, []string{"c:1", "c:2"}) {
		t.Fatalf("show %v, want [c:1 c:2]", got)
	}
	if !out.Show[0].Late || out.Show[1].Late {
		t.Fatalf("late flags %v %v, want true false", out.Show[0].Late, out.Show[1].Late)
	}
}

// TestCausalDepsOmitWhatOthersImply: an entry another origin's delivered
// message named is not named again; concurrent messages (that name
// nothing of each other) all are.
func TestCausalDepsOmitWhatOthersImply(t *testing.T) {
	m := mustNew(t, "me", Causal)
	b1 := data("b", 1, 2)
	b1.Deps = map[string]uint64{"a": 1}
	c1 := data("c", 1, 3)
	c1.Deps = map[string]uint64{"b": 1}
	if _, err := m.Receive(data("a", 1, 1), b1, c1, data("d", 1, 1)); err != nil {
		t.Fatal(err)
	}
	msg, _, err := m.Next()
	if err != nil {
		t.Fatal(err)
	}
	// a:1 is implied by b:1, b:1 by c:1; c:1 and d:1 are concurrent.
	if want := map[string]uint64{"c": 1, "d": 1}; !maps.Equal(msg.Deps, want) {
		t.Fatalf("deps %v, want %v", msg.Deps, want)
	}
	// a grows past what b named: a:2 is named.
	if _, err := m.Receive(data("a", 2, 4)); err != nil {
		t.Fatal(err)
	}
	msg, _, err = m.Next()
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"a": 2}; !maps.Equal(msg.Deps, want) {
		t.Fatalf("deps %v, want %v", msg.Deps, want)
	}
}
