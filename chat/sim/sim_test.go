package sim_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/sim"
)

// knownBug is how a script under testdata/ that reproduces an open bug
// starts: "# known bug: <symptom>". TestScripts skips it, naming the
// symptom, unless HEARSAY_SIM_KNOWN=1.
const knownBug = "# known bug:"

// TestScripts runs every script under testdata/, one subtest per file,
// with the strict checker.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scripts under testdata/")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			script, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(string(script), "\n"); strings.HasPrefix(first, knownBug) && os.Getenv("HEARSAY_SIM_KNOWN") == "" {
				t.Skipf("%s (HEARSAY_SIM_KNOWN=1 runs it)", strings.TrimSpace(first[1:]))
			}
			s := sim.New(t, sim.Options{Seed: 1, Tune: verbose(t)})
			if err := s.Run(string(script)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// randomRuns says which seeds TestRandom runs for each mode, and how
// long each schedule is: two fixed seeds of 24 steps by default (the same
// schedules on every run); HEARSAY_SIM_SEED=N runs seed N only;
// HEARSAY_SIM_ROUNDS=N (or HEARSAY_SIM_LONG=1: 25 rounds) runs N seeds
// from a random base, printed; HEARSAY_SIM_STEPS=N sets the steps (60 in
// long runs).
func randomRuns(t *testing.T) (seeds []uint64, steps int) {
	steps = 24
	long := os.Getenv("HEARSAY_SIM_LONG") != "" || os.Getenv("HEARSAY_SIM_ROUNDS") != ""
	if long {
		steps = 60
	}
	if v := os.Getenv("HEARSAY_SIM_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HEARSAY_SIM_STEPS=%q: want a positive number", v)
		}
		steps = n
	}
	if v := os.Getenv("HEARSAY_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HEARSAY_SIM_SEED=%q: %v", v, err)
		}
		return []uint64{seed}, steps
	}
	rounds := 0
	if os.Getenv("HEARSAY_SIM_LONG") != "" {
		rounds = 25
	}
	if v := os.Getenv("HEARSAY_SIM_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("HEARSAY_SIM_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	if rounds == 0 {
		return []uint64{1, 2}, steps
	}
	base := uint64(time.Now().UnixNano())
	t.Logf("random base seed %d", base)
	for i := range rounds {
		seeds = append(seeds, base+uint64(i))
	}
	return seeds, steps
}

// randomKnownBugs are the modes whose random runs find open bugs in most
// seeds (docs/RELIABILITY.md, "Simulated"). By default TestRandom skips
// them, naming the symptoms; the scripts under testdata/ still run these
// modes through crashes and partitions.
var randomKnownBugs = map[hearsay.OrderMode]string{
	hearsay.OrderSequencer: "seed 1, about one run in four: the sequencer shows its own stamp and crashes before " +
		"the stamp leaves; the quorum that takes over voids it and orders the message elsewhere " +
		"(docs/RELIABILITY.md: a sequencer that fails may have shown its last stamps in an order the others voided)",
}

// knownSeedBugs are default seeds of the modes that otherwise pass whose
// runs fail in some runs, not all: open bugs, docs/RELIABILITY.md
// "Simulated". None today (fifo and causal seed 2, "gap: waiting for c:2"
// after a restart, was fixed by feeding the ordering from the log when it
// lags it: room.lagsLogLocked).
var knownSeedBugs = map[hearsay.OrderMode]map[uint64]string{}

// explicit reports whether the run asked for known bugs or random seeds.
func explicit() bool {
	for _, v := range []string{"HEARSAY_SIM_KNOWN", "HEARSAY_SIM_SEED", "HEARSAY_SIM_ROUNDS", "HEARSAY_SIM_LONG"} {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// TestRandom runs random schedules (sends, partitions both ways and one
// way, crashes, restarts, loss, delay and reordering) for every ordering
// mode and checks each with the checker.
func TestRandom(t *testing.T) {
	seeds, steps := randomRuns(t)
	for _, mode := range hearsay.OrderModes() {
		t.Run(mode.String(), func(t *testing.T) {
			if bug := randomKnownBugs[mode]; bug != "" && !explicit() {
				t.Skipf("known bug: %s (HEARSAY_SIM_KNOWN=1, HEARSAY_SIM_SEED, HEARSAY_SIM_ROUNDS or HEARSAY_SIM_LONG runs it)", bug)
			}
			for _, seed := range seeds {
				t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
					if bug := knownSeedBugs[mode][seed]; bug != "" && !explicit() {
						t.Skipf("known bug: %s (HEARSAY_SIM_SEED=%d runs it)", bug, seed)
					}
					script := sim.Random(seed, sim.RandomConfig{Peers: 4, Steps: steps, Mode: mode})
					s := sim.New(t, sim.Options{Seed: seed, Tune: verbose(t)})
					if err := s.Run(script); err != nil {
						t.Errorf("%v\nrepeat with: HEARSAY_SIM_SEED=%d HEARSAY_SIM_STEPS=%d go test -race -run 'TestRandom/%s' ./chat/sim/\nscript:\n%s", err, seed, steps, mode, script)
					}
				})
			}
		})
	}
}

// verbose, with HEARSAY_SIM_VERBOSE=1, sends each node's own log (not
// memberlist's) to the test log.
func verbose(t *testing.T) func(string, *chat.Config) {
	if os.Getenv("HEARSAY_SIM_VERBOSE") == "" {
		return nil
	}
	return func(name string, cfg *chat.Config) {
		cfg.LogOutput = logWriter{t: t, name: name}
	}
}

type logWriter struct {
	t    *testing.T
	name string
}

func (w logWriter) Write(b []byte) (int, error) {
	if line := string(b); !strings.HasPrefix(line, "memberlist:") {
		w.t.Logf("%s %s", w.name, strings.TrimSpace(line))
	}
	return len(b), nil
}

// The nemesis is a function of its seed, and every schedule has a
// partition and a crash, and ends healed with everyone restarted.
func TestRandomScriptIsItsSeed(t *testing.T) {
	cfg := sim.RandomConfig{Peers: 4, Steps: 24, Mode: hearsay.OrderTotal}
	for seed := uint64(1); seed <= 50; seed++ {
		a, b := sim.Random(seed, cfg), sim.Random(seed, cfg)
		if a != b {
			t.Fatalf("seed %d gave two scripts:\n%s\n---\n%s", seed, a, b)
		}
		if !strings.Contains(a, "\npartition ") || !strings.Contains(a, "\ncrash ") {
			t.Errorf("seed %d: no partition or no crash:\n%s", seed, a)
		}
		lines := strings.Split(strings.TrimSpace(a), "\n")
		if lines[len(lines)-1] != "check" {
			t.Errorf("seed %d: does not end with check", seed)
		}
		crashed := map[string]bool{}
		for _, l := range lines {
			f := strings.Fields(l)
			switch f[0] {
			case "crash":
				crashed[f[1]] = true
			case "restart":
				delete(crashed, f[1])
			}
		}
		if len(crashed) > 0 {
			t.Errorf("seed %d: %v never restarted", seed, crashed)
		}
	}
	if sim.Random(1, cfg) == sim.Random(2, cfg) {
		t.Error("seeds 1 and 2 gave the same script")
	}
}

// The faults of a script reach the traffic: a partition loses frames
// and packets, loss drops frames, and a bad script line is an error.
func TestFaultsBite(t *testing.T) {
	s := sim.New(t, sim.Options{Seed: 7})
	err := s.Run(`
start a b c
create a #r fifo
join b #r
join c #r
faults drop=0.3
partition a | b c
send a #r one
send b #r two
run 300ms
heal
faults off
check
`)
	if err != nil {
		t.Fatal(err)
	}
	cut, random := s.Lost()
	if cut == 0 || random == 0 {
		t.Errorf("lost %d to the partition and %d to random loss: want both > 0", cut, random)
	}
	for _, bad := range []string{"partition a b", "cut a b", "send a r", "faults drop=2", "run 1h", "crash z", "restart a", "frobnicate"} {
		if err := s.Exec(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
