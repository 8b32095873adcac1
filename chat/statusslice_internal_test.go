package chat

import (
	"fmt"
	"testing"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// A tree-mode status holds at most k entries, and a sweep of slices
// covers every origin exactly once: consecutive ranges from "" to "" with
// each origin of the vector in exactly one, and the receiver's range
// checks (handleStatus) accept each.
func TestStatusSliceSweep(t *testing.T) {
	for _, tc := range []struct{ origins, k int }{{0, 40}, {1, 40}, {40, 40}, {41, 40}, {100, 40}, {200, 16}, {7, 1}} {
		t.Run(fmt.Sprintf("%d origins by %d", tc.origins, tc.k), func(t *testing.T) {
			vv := msglog.VersionVector{}
			for i := range tc.origins {
				vv[fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)] = uint64(i + 1)
			}
			seen := map[string]int{}
			lo, slices := "", 0
			for {
				st, next := statusSlice("r", vv, lo, tc.k)
				slices++
				if len(st.Vector) > tc.k {
					t.Fatalf("slice of %d entries, want at most %d", len(st.Vector), tc.k)
				}
				if st.FromOrigin != lo || st.UntilOrigin != next {
					t.Fatalf("range [%q, %q), want [%q, %q)", st.FromOrigin, st.UntilOrigin, lo, next)
				}
				if next != "" && next <= lo {
					t.Fatalf("range [%q, %q) is empty: the receiver refuses it", lo, next)
				}
				got, ok := vectorOf(st.Vector)
				if !ok {
					t.Fatalf("vector refused: %v", st.Vector)
				}
				for o, s := range got {
					if !inRange(o, lo, next) || vv[o] != s {
						t.Fatalf("entry %s/%d outside [%q, %q) or wrong", o, s, lo, next)
					}
					seen[o]++
				}
				if next == "" {
					break
				}
				lo = next
				if slices > tc.origins+1 {
					t.Fatal("the sweep does not end")
				}
			}
			for o := range vv {
				if seen[o] != 1 {
					t.Errorf("origin %s in %d slices, want 1", o, seen[o])
				}
			}
			if want := max(1, (tc.origins+tc.k-1)/tc.k); slices != want {
				t.Errorf("%d slices, want %d", slices, want)
			}
		})
	}
}
