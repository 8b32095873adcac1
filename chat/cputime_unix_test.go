//go:build unix

package chat

import (
	"syscall"
	"testing"
	"time"
)

// processCPU returns the CPU time (user and system) this process has used.
func processCPU(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start as
// "cpu-ns/op": on a shared, loaded machine it varies far less than the
// wall-clock ns/op (it counts the node's other goroutines too, a log's
// syncer for one).
func reportCPU(b *testing.B, start time.Duration, ops int) {
	if ops > 0 {
		b.ReportMetric(float64(processCPU(b)-start)/float64(ops), "cpu-ns/op")
	}
}

// ProcessCPUForTest is processCPU, for the tests of package chat_test.
func ProcessCPUForTest(tb testing.TB) time.Duration { return processCPU(tb) }
