// Package allocs measures a function's allocations in tests that run
// beside other work in the same process.
package allocs

import "testing"

// MinPerRun returns the fewest allocations per run of f over trials
// measurements of testing.AllocsPerRun(runs, f).
//
// AllocsPerRun counts every allocation the process makes while it runs,
// not only f's. A test that follows one which started and stopped a
// cluster shares the process with the runtime's finalizer goroutine,
// which runs the finalizers of the connections and files the cluster
// closed whenever a collection finds them (no goroutine of ours is left;
// the finalizer goroutine does not show in a goroutine dump). Such noise
// only ever adds, so the least of a few measurements is f's own count: a
// check that f allocates nothing, or at most k times, then fails only
// when f does, not when a collection happens to run a finalizer.
func MinPerRun(trials, runs int, f func()) float64 {
	least := testing.AllocsPerRun(runs, f)
	for i := 1; i < trials && least > 0; i++ {
		least = min(least, testing.AllocsPerRun(runs, f))
	}
	return least
}
