package order

import (
	"math"
	"slices"
	"testing"
)

// Gaps names the holes below the highest held message of an origin, in
// order and bounded by limit, and nothing above it (those may not have
// been sent yet).
func TestGaps(t *testing.T) {
	m := mustNew(t, "me", FIFO)
	if g := m.Gaps("a", 10); g != nil {
		t.Fatalf("nothing held: gaps %v, want none", g)
	}
	m.Receive(data("a", 1, 1), data("a", 3, 3), data("a", 6, 6), data("a", 7, 7), data("b", 2, 2))
	for _, c := range []struct {
		origin string
		limit  int
		want   []uint64
	}{
		{"a", 10, []uint64{2, 4, 5}},
		{"a", 2, []uint64{2, 4}},
		{"a", 0, nil},
		{"b", 10, []uint64{1}},
		{"c", 10, nil},
	} {
		if got := m.Gaps(c.origin, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Gaps(%s, %d) = %v, want %v", c.origin, c.limit, got, c.want)
		}
	}
	// A held message far ahead costs the limit, not its distance.
	m.Receive(data("c", 1<<62, 1<<62))
	if got := m.Gaps("c", 3); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("Gaps(c, 3) = %v, want [1 2 3]", got)
	}
	m.Receive(data("a", 2, 2))
	if got := m.Gaps("a", 10); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("after a:2, Gaps(a) = %v, want [4 5]", got)
	}
}

// Lacks names every seq from the next one needed through a given one that
// the machine does not hold: the holes and the tail after the highest
// held message, bounded by limit.
func TestLacks(t *testing.T) {
	m := mustNew(t, "me", FIFO)
	if g := m.Lacks("a", 0, 10); g != nil {
		t.Fatalf("through 0: lacks %v, want none", g)
	}
	m.Receive(data("a", 1, 1), data("a", 3, 3), data("a", 6, 6))
	for _, c := range []struct {
		origin  string
		through uint64
		limit   int
		want    []uint64
	}{
		{"a", 8, 10, []uint64{2, 4, 5, 7, 8}},
		{"a", 8, 3, []uint64{2, 4, 5}},
		{"a", 1, 10, nil},
		{"a", 6, 10, []uint64{2, 4, 5}},
		{"b", 2, 10, []uint64{1, 2}},
		{"b", 2, 0, nil},
	} {
		if got := m.Lacks(c.origin, c.through, c.limit); !slices.Equal(got, c.want) {
			t.Errorf("Lacks(%s, %d, %d) = %v, want %v", c.origin, c.through, c.limit, got, c.want)
		}
	}
	// Delivered seqs are not lacked; a far seq costs the limit.
	m.Receive(data("a", 2, 2))
	if got := m.Lacks("a", 1<<62, 3); !slices.Equal(got, []uint64{4, 5, 7}) {
		t.Errorf("after a:2, Lacks(a, 2^62, 3) = %v, want [4 5 7]", got)
	}
	if got := m.Lacks("c", math.MaxUint64, 2); !slices.Equal(got, []uint64{1, 2}) {
		t.Errorf("Lacks(c, max, 2) = %v, want [1 2]", got)
	}
}

// Blockers names the dependencies the machine has not received that hold
// back the head of each origin's causal wait: not a dependency received
// but itself held (its own blocker is named), not a later message's.
func TestBlockers(t *testing.T) {
	m := mustNew(t, "me", Causal)
	dep := func(origin string, seq uint64, deps map[string]uint64) Meta {
		d := data(origin, seq, seq)
		d.Deps = deps
		return d
	}
	all := func(string) int { return 10 }
	if got := m.Blockers(all); len(got) != 0 {
		t.Fatalf("nothing held: blockers %v", got)
	}
	m.Receive(
		dep("a", 1, map[string]uint64{"x": 2, "y": 1}), // x and y never came
		dep("a", 2, map[string]uint64{"z": 5}),         // behind a:1, not a head
		dep("b", 1, map[string]uint64{"c": 1}),         // c:1 came, but is held
		dep("c", 1, map[string]uint64{"w": 3}),
		dep("d", 1, map[string]uint64{"x": 9}), // x again: named once, the lowest seq and its head
		dep("e", 1, map[string]uint64{"y": 1}), // y again, same seq: the first head in origin order
	)
	want := []Blocked{
		{Origin: "w", Through: 3, By: ID{"c", 1}},
		{Origin: "x", Through: 2, By: ID{"a", 1}},
		{Origin: "y", Through: 1, By: ID{"a", 1}},
	}
	if got := m.Blockers(all); !slices.Equal(got, want) {
		t.Fatalf("blockers %+v, want %+v", got, want)
	}
	// want applies before the choice: with a's head left out, x is d's
	// (x:9) and y is e's; with one dependency per head, a names only x.
	noA := func(by string) int {
		if by == "a" {
			return 0
		}
		return 10
	}
	if got, w := m.Blockers(noA), []Blocked{want[0], {Origin: "x", Through: 9, By: ID{"d", 1}}, {Origin: "y", Through: 1, By: ID{"e", 1}}}; !slices.Equal(got, w) {
		t.Fatalf("blockers without a's: %+v, want %+v", got, w)
	}
	one := func(string) int { return 1 }
	if got, w := m.Blockers(one), []Blocked{want[0], want[1], {Origin: "y", Through: 1, By: ID{"e", 1}}}; !slices.Equal(got, w) {
		t.Fatalf("blockers, one per head: %+v, want %+v", got, w)
	}
	// w:1..3 come: c:1 and then b:1 are delivered, a:1 still waits.
	m.Receive(data("w", 1, 1), data("w", 2, 2), data("w", 3, 3))
	if got := m.Blockers(all); !slices.Equal(got, want[1:]) {
		t.Fatalf("after w came: blockers %+v, want %+v", got, want[1:])
	}
}
