package bench

import (
	"context"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestSettle(t *testing.T) {
	t.Run("done", func(t *testing.T) {
		polls := 0
		err := settle(context.Background(), time.Minute, "three polls", nil, func() bool {
			polls++
			return polls == 3
		}, nil)
		if err != nil || polls != 3 {
			t.Fatalf("settle: err %v after %d polls, want nil after 3", err, polls)
		}
	})
	t.Run("timeout says where it stands", func(t *testing.T) {
		err := settle(context.Background(), 50*time.Millisecond, "the impossible", nil, func() bool { return false },
			func() string { return "7 of 9 peers ready" })
		if err == nil || !strings.Contains(err.Error(), "the impossible") || !strings.Contains(err.Error(), "7 of 9 peers ready") {
			t.Fatalf("err = %v, want a timeout naming the condition and its last status", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := settle(ctx, time.Minute, "never", nil, func() bool { return false }, nil)
		if err != context.Canceled {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

// TestTimeoutsScale checks that the waits of a run grow with the group
// size above 50 peers and stay what they were below (the published small-N
// figures were measured with them).
func TestTimeoutsScale(t *testing.T) {
	tests := []struct {
		peers              int
		warm, warmLoss, ex time.Duration
	}{
		{3, 10 * time.Second, 5 * time.Second, 2 * time.Second},
		{50, 10 * time.Second, 5 * time.Second, 2 * time.Second},
		{100, 15 * time.Second, 10 * time.Second, 4 * time.Second},
		{200, 25 * time.Second, 20 * time.Second, 8 * time.Second},
	}
	for _, tt := range tests {
		if got := warmUpTimeout(tt.peers, WorkloadLatency); got != tt.warm {
			t.Errorf("warmUpTimeout(%d, latency) = %v, want %v", tt.peers, got, tt.warm)
		}
		if got := warmUpTimeout(tt.peers, WorkloadLoss); got != tt.warmLoss {
			t.Errorf("warmUpTimeout(%d, loss) = %v, want %v", tt.peers, got, tt.warmLoss)
		}
		if got := expireAfter(tt.peers); got != tt.ex {
			t.Errorf("expireAfter(%d) = %v, want %v", tt.peers, got, tt.ex)
		}
		if settleTimeout(tt.peers) < settleTimeout(3)+time.Duration(tt.peers-3)*time.Second {
			t.Errorf("settleTimeout(%d) = %v: want at least a second more per peer", tt.peers, settleTimeout(tt.peers))
		}
	}
}

// TestMeasureGCBoundsMemory: the collector setting of a large group's
// measured phase comes with a soft memory limit (a third of the available
// memory), and restore puts both back.
func TestMeasureGCBoundsMemory(t *testing.T) {
	if memAvailable() == 0 {
		t.Skip("available memory unknown on this platform")
	}
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		if _, set := os.LookupEnv(env); set {
			t.Skipf("%s is set: measureGC leaves the collector alone", env)
		}
	}
	before := debug.SetMemoryLimit(-1)
	restore := measureGC(200)
	during := debug.SetMemoryLimit(-1)
	restore()
	if during == before || during <= 0 || uint64(during) > memAvailable() {
		t.Errorf("memory limit during the load %d (before %d), want a third of the available %d", during, before, memAvailable())
	}
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("memory limit %d after restore, want %d", after, before)
	}
}
