package sim

// The nemesis: a seeded generator of scripts. It writes the whole schedule
// (workload and faults) before anything runs, so a seed names one schedule
// and a failing one can be kept as a script under testdata/.

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/hearsay-chat/hearsay"
)

// RandomConfig shapes a random schedule.
type RandomConfig struct {
	// Peers is the number of peers (2 to 26; 0 means 4).
	Peers int
	// Steps is the number of random operations before the final heal and
	// check (0 means 40).
	Steps int
	// Mode is the ordering mode of the room under test.
	Mode hearsay.OrderMode
}

// Random returns the script of a random run for seed: peers start and
// join one room, then a random mix of sends, symmetric and one-way
// partitions, heals, crashes, restarts, changes of loss, delay and jitter
// and short pauses, with at least one partition and one crash; at the end
// the network heals, every crashed peer restarts and the checker runs.
// The same seed and configuration always give the same script.
func Random(seed uint64, c RandomConfig) string {
	if c.Peers <= 0 {
		c.Peers = 4
	}
	c.Peers = min(max(c.Peers, 2), 26)
	if c.Steps <= 0 {
		c.Steps = 40
	}
	if !c.Mode.Valid() {
		c.Mode = hearsay.OrderCausal
	}
	rng := rand.New(rand.NewPCG(seed, 0x6e656d65736973)) // "nemesis"
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	names := make([]string, c.Peers)
	for i := range names {
		names[i] = string(rune('a' + i))
	}
	live := slices.Clone(names)
	var crashed []string
	cut := false
	partitioned, didCrash := false, false

	line("# random run: seed %d, %d peers, %d steps, %v", seed, c.Peers, c.Steps, c.Mode)
	line("start %s", strings.Join(names, " "))
	line("create a #r %v", c.Mode)
	for _, n := range names[1:] {
		line("join %s #r", n)
	}
	pick := func(from []string) string { return from[rng.IntN(len(from))] }
	partition := func() {
		// A random split into two non-empty sides.
		perm := rng.Perm(len(names))
		k := 1 + rng.IntN(len(names)-1)
		var left, right []string
		for i, p := range perm {
			if i < k {
				left = append(left, names[p])
			} else {
				right = append(right, names[p])
			}
		}
		slices.Sort(left)
		slices.Sort(right)
		line("partition %s | %s", strings.Join(left, " "), strings.Join(right, " "))
		cut, partitioned = true, true
	}
	crash := func() {
		v := pick(live)
		live = slices.DeleteFunc(live, func(n string) bool { return n == v })
		crashed = append(crashed, v)
		line("crash %s", v)
		didCrash = true
	}
	for step := range c.Steps {
		switch {
		case step == c.Steps/3 && !partitioned:
			partition()
			continue
		case step == 2*c.Steps/3 && !didCrash && len(live) > 2:
			crash()
			continue
		}
		w := rng.IntN(100)
		switch {
		case w < 45:
			for range 1 + rng.IntN(3) {
				line("trysend %s #r", pick(live))
			}
		case w < 54:
			partition()
		case w < 59:
			from := pick(names)
			to := pick(names)
			if from != to {
				line("cut %s -> %s", from, to)
				cut = true
			}
		case w < 68:
			if cut {
				line("heal")
				cut = false
			}
		case w < 75:
			if len(live) > 2 {
				crash()
			}
		case w < 84:
			if len(crashed) > 0 {
				i := rng.IntN(len(crashed))
				line("restart %s", crashed[i])
				live = append(live, crashed[i])
				crashed = slices.Delete(crashed, i, i+1)
			}
		case w < 90:
			drop := []string{"0", "0.05", "0.2"}[rng.IntN(3)]
			delay := []string{"0s", "1ms", "5ms"}[rng.IntN(3)]
			jitter := []string{"0s", "10ms", "30ms"}[rng.IntN(3)]
			line("faults drop=%s delay=%s jitter=%s", drop, delay, jitter)
		default:
			line("run %dms", []int{50, 100, 200, 400}[rng.IntN(4)])
		}
	}
	line("heal")
	for _, n := range crashed {
		line("restart %s", n)
	}
	line("check")
	return b.String()
}
