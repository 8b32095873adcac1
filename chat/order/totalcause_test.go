package order

import (
	"maps"
	"slices"
	"testing"
)

// feed hands msgs to m and returns what it showed; control messages it
// sent are returned too, for the test to pass on.
func feed(t *testing.T, m *Machine, msgs ...Meta) Output {
	t.Helper()
	out, err := m.Receive(msgs...)
	if err != nil {
		t.Fatalf("%s Receive: %v", m.cfg.Self, err)
	}
	return out
}

// shown lists Output.Show's IDs, a late one suffixed "(late)".
func shown(outs ...Output) []string {
	var s []string
	for _, o := range outs {
		for _, m := range o.Show {
			id := m.ID().String()
			if m.Late {
				id += "(late)"
			}
			s = append(s, id)
		}
	}
	return s
}

// TestTotalCausalAcrossFailure: c shows b:1 and then sends c:2; d has
// declared b down and gets c:2 before b:1. d must not show c:2 before b:1
// (chat/sim TestRandom/total seed 2: "d showed c/9 at 13 but its cause b/4
// at 23"): a member declared down stops counting for acks, so only the
// deps c:2 carries tell d that it needs b:1. In the second case d's order
// has passed b:1's place when it comes: it is shown late, but still
// before c:2.
func TestTotalCausalAcrossFailure(t *testing.T) {
	t.Run("cause in order", func(t *testing.T) {
		b, c, d := mustNew(t, "b", Total), mustNew(t, "c", Total), mustNew(t, "d", Total)
		b.MemberUp("c", 2)
		c.MemberUp("b", 1)
		d.MemberUp("b", 1)
		d.MemberUp("c", 2)
		d.MemberDown("b")

		b1 := mustNext(t, b)
		out := feed(t, c, b1) // c acks b:1 and shows it (c's view: b and c)
		if got := shown(out); !slices.Equal(got, []string{"b:1"}) {
			t.Fatalf("c showed %v, want [b:1]", got)
		}
		c1 := out.Send[0]
		c2 := mustNext(t, c)
		if want := map[string]uint64{"b": 1}; !maps.Equal(c2.Deps, want) {
			t.Fatalf("c:2 deps %v, want %v", c2.Deps, want)
		}

		got := shown(feed(t, d, c1, c2))
		if len(got) != 0 {
			t.Fatalf("d showed %v before b:1 came", got)
		}
		held := d.HeldBack(0)
		if len(held) != 1 || held[0].ID != c2.ID() || held[0].Waits != b1.ID() {
			t.Fatalf("d holds %+v, want c:2 waiting for b:1", held)
		}
		if want := []Blocked{{Origin: "b", Through: 1, By: c2.ID()}}; !slices.Equal(d.Blockers(func(string) int { return 10 }), want) {
			t.Fatalf("d blockers %+v, want %+v", d.Blockers(func(string) int { return 10 }), want)
		}
		got = shown(feed(t, d, b1))
		if want := []string{"b:1", "c:2"}; !slices.Equal(got, want) {
			t.Fatalf("d showed %v once b:1 came, want %v", got, want)
		}
	})
	t.Run("cause late", func(t *testing.T) {
		b, c, d := mustNew(t, "b", Total), mustNew(t, "c", Total), mustNew(t, "d", Total)
		b.MemberUp("c", 2)
		c.MemberUp("b", 1)
		c.MemberUp("d", 3)
		d.MemberUp("b", 1)
		d.MemberUp("c", 2)
		d.MemberDown("b")

		b1 := mustNext(t, b) // (1, b)
		d1 := mustNext(t, d) // (1, d): after b:1
		out := feed(t, c, b1, d1)
		if got := shown(out); !slices.Equal(got, []string{"b:1"}) {
			t.Fatalf("c showed %v, want [b:1]", got)
		}
		c1 := out.Send[0]
		c2 := mustNext(t, c)

		// c's ack takes d's order past (1, d), so past b:1's place.
		var got []string
		out = feed(t, d, c1)
		got = append(got, shown(out)...)
		got = append(got, shown(feed(t, d, c2))...)
		got = append(got, shown(feed(t, d, b1))...)
		if want := []string{"d:1", "b:1(late)", "c:2"}; !slices.Equal(got, want) {
			t.Fatalf("d showed %v, want %v", got, want)
		}
	})
}

// mustNext returns m's next data message.
func mustNext(t *testing.T, m *Machine) Meta {
	t.Helper()
	msg, _, err := m.Next()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}
