package overlaysim

import (
	"math"
	"os"
	"testing"
	"time"
)

// checkTargets fails unless r meets the targets: every message
// reached every peer it had to, p99 hops ≤ log2 N + 2, copies ≤ 1.1.
func checkTargets(t *testing.T, r Result) {
	t.Helper()
	checkTargetsHops(t, r, 2)
}

// checkTargetsHops is checkTargets with p99 hops ≤ log2 N + extra.
func checkTargetsHops(t *testing.T, r Result, extra float64) {
	t.Helper()
	if r.Delivered != 1 || r.Complete != r.Messages {
		t.Errorf("N=%d seed %d: delivered %.5f, %d of %d messages complete; want every message everywhere",
			r.Peers, r.Seed, r.Delivered, r.Complete, r.Messages)
	}
	if limit := math.Log2(float64(r.Peers)) + extra; r.HopsP99 > limit {
		t.Errorf("N=%d seed %d: p99 hops %.0f, want at most log2 N + %.0f = %.1f", r.Peers, r.Seed, r.HopsP99, extra, limit)
	}
	if r.Copies > 1.1 {
		t.Errorf("N=%d seed %d: %.3f copies per delivery, want at most 1.1", r.Peers, r.Seed, r.Copies)
	}
}

func TestConvergenceManySeeds(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		// The churn, 1 % of the peers per minute: every target.
		r, err := Run(DefaultConfig(200, seed))
		if err != nil {
			t.Fatal(err)
		}
		checkTargets(t, r)
		// Ten times that (about 11 crashes and joins while measuring):
		// still every message everywhere and few copies; the repaired
		// trees' paths are up to a hop longer at the tail.
		cfg := DefaultConfig(200, seed)
		cfg.ChurnPerMinute = 0.1
		if r, err = Run(cfg); err != nil {
			t.Fatal(err)
		}
		if r.Churned == 0 {
			t.Fatalf("seed %d: no churn happened", seed)
		}
		checkTargetsHops(t, r, 3)
	}
}

// TestConvergenceUnderLossAndChurn loses 2 % of the messages from the
// first join on, views' messages included, with 10 % churn per minute:
// the overlay stays one, and messages reach every peer. A lost Join (or
// the contact's reply) left its peer outside the group while later
// peers joined through it, an overlay of their own that no view rule
// joined to the rest: seeds 1, 6 and 9 delivered 52 %, 99.5 % and 49 %,
// no message complete (hearsay sim --peers 200 --churn 0.1 --loss
// 0.02). What it checks is that: nearly every message complete. One
// delivery in tens of thousands may still be missed without a split
// (about one run in 100: a peer whose neighbours all push to it eagerly
// gets no announcement, and when every push is lost, say both of a peer
// with two neighbours, it never hears of the message; hearsay's
// anti-entropy repairs that, the simulator has none), and any change to
// the machine moves such a miss from seed to seed. The hop and copy
// targets are for a lossless network: grafts lengthen paths here.
func TestConvergenceUnderLossAndChurn(t *testing.T) {
	seeds := uint64(10)
	if testing.Short() {
		seeds = 1
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		cfg := DefaultConfig(200, seed)
		cfg.ChurnPerMinute = 0.1
		cfg.Loss = 0.02
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Churned == 0 || r.Lost == 0 {
			t.Fatalf("seed %d: %d peers churned and %d messages lost: the run did not exercise either", seed, r.Churned, r.Lost)
		}
		if r.Delivered < 0.999 || r.Complete < r.Messages*95/100 {
			t.Errorf("seed %d: delivered %.5f, %d of %d messages complete; want at least 99.9 %% and 95 %% (a split overlay leaves most incomplete)",
				seed, r.Delivered, r.Complete, r.Messages)
		} else if r.Delivered != 1 {
			t.Logf("seed %d: delivered %.5f, %d of %d messages complete", seed, r.Delivered, r.Complete, r.Messages)
		}
	}
}

func TestLossRepairedByGrafts(t *testing.T) {
	cfg := DefaultConfig(300, 7)
	cfg.Loss = 0.01
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Lost == 0 || r.Grafts == 0 {
		t.Fatalf("lost %d messages and sent %d grafts: the run did not exercise repair", r.Lost, r.Grafts)
	}
	if r.Delivered != 1 {
		t.Errorf("delivered %.5f with 1 %% loss, want 1 (grafts repair every lost push)", r.Delivered)
	}
}

func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig(150, 3)
	cfg.Loss = 0.02
	cfg.ChurnPerMinute = 0.2
	a, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("one config, two results:\n%+v\n%+v", a, b)
	}
}

func TestInvalidConfig(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"one peer":      func(c *Config) { c.Peers = 1 },
		"loss 1":        func(c *Config) { c.Loss = 1 },
		"latency order": func(c *Config) { c.LatencyMax = c.LatencyMin - 1 },
		"no messages":   func(c *Config) { c.Messages = 0 },
		"churn > 1":     func(c *Config) { c.ChurnPerMinute = 2 },
		"zero rate":     func(c *Config) { c.Rate = 0 },
	} {
		cfg := DefaultConfig(10, 1)
		mutate(&cfg)
		if _, err := Run(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestScaleTargets runs the reference runs, 1,000 and 10,000 peers
// with 1 % churn per minute (10,000 takes a minute or two on 2 cores):
// HEARSAY_SCALE_SIM=1 go test -run TestScaleTargets -timeout 30m ./chat/overlay/overlaysim/
func TestScaleTargets(t *testing.T) {
	if os.Getenv("HEARSAY_SCALE_SIM") == "" {
		t.Skip("set HEARSAY_SCALE_SIM=1 to run 1,000 and 10,000 peers")
	}
	for _, n := range []int{1000, 10000} {
		start := time.Now()
		r, err := Run(DefaultConfig(n, 1))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v (%v)", r, time.Since(start).Round(time.Second))
		checkTargets(t, r)
	}
}
