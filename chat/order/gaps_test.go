package order

import (
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
