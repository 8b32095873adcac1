package order

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// A room with more authors than one message can name keeps working: each
// message names only the deps that are new since our previous message,
// at most MaxDepsPerMessage per message, the surplus in acks numbered just
// before it; a receiver still delivers it only after all of them. (Before,
// every message carried the whole delivered vector: with more than 1,024
// authors every later message of the room was invalid everywhere.)
func TestCausalManyAuthors(t *testing.T) {
	const authors = 3*MaxDepsPerMessage + 17
	var all []Meta
	for i := range authors {
		all = append(all, data(fmt.Sprintf("o%04d", i), 1, 1))
	}
	me := mustNew(t, "me", Causal)
	if _, err := me.Receive(all...); err != nil {
		t.Fatal(err)
	}
	msg, out, err := me.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Send) != 3 {
		t.Fatalf("%d acks before the message, want 3", len(out.Send))
	}
	named := map[string]uint64{}
	var stream []Meta
	for _, x := range append(slices.Clone(out.Send), msg) {
		if len(x.Deps) > MaxDepsPerMessage {
			t.Fatalf("%s names %d deps, at most %d", x.ID(), len(x.Deps), MaxDepsPerMessage)
		}
		for o, s := range x.Deps {
			named[o] = s
		}
		stream = append(stream, x)
	}
	if msg.Seq != 4 || len(named) != authors {
		t.Fatalf("message seq %d naming %d authors, want seq 4 and %d", msg.Seq, len(named), authors)
	}

	// A member missing one author's message delivers nothing of ours
	// until it has it, whichever of our messages names it.
	other := mustNew(t, "x", Causal)
	o, err := other.Receive(append(slices.Clone(all[:authors-1]), stream...)...)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(ids(o.Deliver), msg.ID().String()) {
		t.Fatalf("delivered %s before its dependency %s", msg.ID(), all[authors-1].ID())
	}
	o, _ = other.Receive(all[authors-1])
	if got := ids(o.Deliver); !slices.Equal(got, []string{all[authors-1].ID().String(), msg.ID().String()}) {
		t.Fatalf("after the missing dependency delivered %v", got)
	}

	// The next message names only what is new since.
	me.Receive(data("o0000", 2, 5))
	msg2, out2, err := me.Next()
	if err != nil || len(out2.Send) != 0 {
		t.Fatalf("second message: %v, %d acks", err, len(out2.Send))
	}
	if len(msg2.Deps) != 1 || msg2.Deps["o0000"] != 2 {
		t.Fatalf("second message deps %v, want only o0000:2", msg2.Deps)
	}
}

// After a restart the replay of our own messages rebuilds what they
// named, so the next message stays compact.
func TestCausalDepsCompactAfterReplay(t *testing.T) {
	m := mustNew(t, "me", Causal)
	m.Restore(1, 3)
	own := data("me", 1, 3)
	own.Deps = map[string]uint64{"a": 2}
	m.Receive(data("a", 1, 1), data("a", 2, 2), own, data("b", 1, 4))
	m.Resume()
	msg, _, err := m.Next()
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Deps) != 1 || msg.Deps["b"] != 1 {
		t.Fatalf("deps %v, want only b:1 (a:2 was named by me:1)", msg.Deps)
	}
}

// Counters near the top of uint64 never wrap: values over MaxSeq are
// invalid, floors over it are ignored, and a hostile or damaged restored
// state makes Resume return at once instead of looping (before: a floor
// of 2^64-1 made next seq wrap to 0 and Resume loop without end).
func TestCountersNeverWrap(t *testing.T) {
	m := mustNew(t, "me", Causal)
	for _, bad := range []Meta{
		data("a", math.MaxUint64, 1),
		data("a", MaxSeq+1, 1),
		data("a", 1, math.MaxUint64),
		{Origin: "a", Seq: 1, Kind: KindData, Deps: map[string]uint64{"b": math.MaxUint64}},
	} {
		if _, err := m.Receive(bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
	m.Floor("a", math.MaxUint64, 0)
	m.Floor("me", math.MaxUint64, math.MaxUint64)
	if w := m.WantOf("a"); w != 1 {
		t.Fatalf("want a:%d after a floor over MaxSeq, want a:1", w)
	}
	out, _ := m.Receive(data("a", 1, 1))
	if len(out.Deliver) != 1 {
		t.Fatalf("a:1 not delivered after a hostile floor: %v", out)
	}

	for _, last := range []uint64{math.MaxUint64, MaxSeq, 1_000_000} {
		t.Run(fmt.Sprint(last), func(t *testing.T) {
			m := mustNew(t, "me", Causal)
			start := time.Now()
			m.Restore(last, last)
			m.Receive(data("me", 1, 1))
			out := m.Resume()
			if len(out.Send) != 0 {
				t.Fatalf("Resume filled %d seqs of a gap only a damaged log has", len(out.Send))
			}
			if m.Stats().Exhausted == 0 {
				t.Fatal("unfilled gap not counted")
			}
			msg, _, err := m.Next()
			if last >= MaxSeq {
				if err == nil {
					t.Fatalf("Next at MaxSeq gave %+v, want ErrExhausted", msg)
				}
			} else if err != nil || msg.Seq != last+1 {
				t.Fatalf("Next: %+v %v, want seq %d", msg, err, last+1)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("restore took %v", d)
			}
		})
	}
}
