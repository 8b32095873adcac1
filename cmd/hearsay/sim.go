package main

// `hearsay sim`: a thin command over chat/overlay/overlaysim, the
// discrete-event simulation of the dissemination overlay (HyParView +
// Plumtree) for large groups. It parses flags into simulation configs,
// runs them one after the other, and prints a table or JSON lines.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hearsay-chat/hearsay/chat/overlay"
	"github.com/hearsay-chat/hearsay/chat/overlay/overlaysim"
)

type simOptions struct {
	peers      []int
	seed       uint64
	seeds      int
	churn      float64
	loss       float64
	latencyMin time.Duration
	latencyMax time.Duration
	messages   int
	warmup     int
	rate       float64
	speakers   int
	window     time.Duration
	active     int
	optimize   int
	json       bool
	jsonOut    string
}

// newSimCmd returns `hearsay sim`. Its parse step validates the options
// into configs (a failure is a usageError); then it calls runF, or runSim
// when runF is nil (tests pass a runF that captures them).
func newSimCmd(streams *ioStreams, runF func(context.Context, *simOptions, []overlaysim.Config) error) *cobra.Command {
	def := overlaysim.DefaultConfig(1000, 1)
	o := &simOptions{}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate the large-group overlay (HyParView + Plumtree) with thousands of peers",
		Long: `sim runs hearsay's dissemination overlay -- the same state machines a peer
runs -- for N simulated peers in one goroutine: a discrete-event network
with a fixed latency per link (uniform in --latency-min..--latency-max),
--loss of the messages lost, and --churn of the peers replaced per minute.
N peers join within 10 s, the overlay settles for 20 s, --warmup broadcasts
build the trees, then --messages broadcasts at --rate are measured:

  delivered   deliveries / peers each message had to reach (up 5 s before
              it was sent, still up 10 s after); complete: messages that
              reached every one
  hops        links crossed from the origin, p50/p99/max over deliveries
  copies      payloads received (duplicates included) per delivery
  full        time until the last peer delivered, p50/p99 (ms)
  tree, view  overlay messages per live peer per second that are not
              payloads: IHAVE/GRAFT/PRUNE, and the views' maintenance

A run is a function of its flags and seed. 10,000 peers took 34 s and
0.8 GB on 2 cores (docs/SCALE.md, "Results").`,
		Example: `  hearsay sim --peers 1000,10000
  hearsay sim --peers 200 --seeds 20 --churn 0.1 --loss 0.01 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgs, err := o.configs()
			if err != nil {
				return &usageError{err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), o, cfgs)
			}
			return runSim(cmd.Context(), streams, o, cfgs)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.peers, "peers", []int{1000}, "group sizes N to simulate (comma-separated)")
	f.Uint64Var(&o.seed, "seed", def.Seed, "first seed")
	f.IntVar(&o.seeds, "seeds", 1, "runs per N, with seeds seed, seed+1, ...")
	f.Float64Var(&o.churn, "churn", def.ChurnPerMinute, "fraction of the peers replaced per minute (crash one, join a new one)")
	f.Float64Var(&o.loss, "loss", def.Loss, "probability that a message is lost")
	f.DurationVar(&o.latencyMin, "latency-min", def.LatencyMin, "shortest one-way link latency")
	f.DurationVar(&o.latencyMax, "latency-max", def.LatencyMax, "longest one-way link latency")
	f.IntVar(&o.messages, "messages", def.Messages, "measured broadcasts")
	f.IntVar(&o.warmup, "warmup", def.Warmup, "broadcasts before the measured ones (they build each speaker's tree)")
	f.Float64Var(&o.rate, "rate", def.Rate, "broadcasts per second")
	f.IntVar(&o.speakers, "speakers", def.Speakers, "peers that broadcast (0: a random peer each time)")
	f.DurationVar(&o.window, "window", def.Window, "time a message has to reach every peer")
	f.IntVar(&o.active, "active", 0, "active view size (0: ceil(log10 N) + 1, at least 3)")
	f.IntVar(&o.optimize, "optimize", -1, "Plumtree tree optimisation threshold in hops (0: off; -1: the default)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per run")
	f.StringVar(&o.jsonOut, "json-out", "", "also write the JSON lines to this file (for scripts/scaleplot)")
	return cmd
}

// configs validates the options into one config per N and seed.
func (o *simOptions) configs() ([]overlaysim.Config, error) {
	if len(o.peers) == 0 {
		return nil, errors.New("--peers: give at least one group size")
	}
	if o.seeds < 1 || o.seeds > 10000 {
		return nil, fmt.Errorf("--seeds %d: want 1 to 10000", o.seeds)
	}
	if o.active < 0 || o.active > 32 {
		return nil, fmt.Errorf("--active %d: want 0 to 32", o.active)
	}
	if o.optimize < -1 || o.optimize > 64 {
		return nil, fmt.Errorf("--optimize %d: want -1 to 64", o.optimize)
	}
	var out []overlaysim.Config
	for _, n := range o.peers {
		for k := range o.seeds {
			c := overlaysim.DefaultConfig(n, o.seed+uint64(k))
			c.ChurnPerMinute, c.Loss = o.churn, o.loss
			c.LatencyMin, c.LatencyMax = o.latencyMin, o.latencyMax
			c.Messages, c.Warmup, c.Rate, c.Speakers, c.Window = o.messages, o.warmup, o.rate, o.speakers, o.window
			active, optimize := o.active, o.optimize
			if active == 0 {
				active = overlay.ActiveSizeFor(n)
			}
			c.Overlay = func(self string, seed uint64) overlay.Config {
				oc := overlay.DefaultConfig(self, seed)
				oc.ActiveSize = active
				if optimize >= 0 {
					oc.OptimizeThreshold = uint32(optimize)
				}
				return oc
			}
			if err := c.Validate(); err != nil {
				return nil, fmt.Errorf("--peers %d: %w", n, err)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// simLine is one JSON line: the result and what produced it.
type simLine struct {
	overlaysim.Result
	ChurnPerMinute float64 `json:"churn_per_minute"`
	Loss           float64 `json:"loss"`
	Speakers       int     `json:"speakers"`
	Rate           float64 `json:"rate"`
	LatencyMinMs   float64 `json:"latency_min_ms"`
	LatencyMaxMs   float64 `json:"latency_max_ms"`
	Optimize       uint32  `json:"optimize_threshold"`
	WallSeconds    float64 `json:"wall_seconds"`
}

func runSim(ctx context.Context, streams *ioStreams, o *simOptions, cfgs []overlaysim.Config) error {
	var sinks []io.Writer
	if o.json {
		sinks = append(sinks, streams.Out)
	}
	if o.jsonOut != "" {
		f, err := os.Create(o.jsonOut)
		if err != nil {
			return fmt.Errorf("--json-out: %w", err)
		}
		defer f.Close()
		sinks = append(sinks, f)
	}
	var tw *tabwriter.Writer
	if !o.json {
		tw = tabwriter.NewWriter(streams.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "N\tseed\tactive\tdelivered\tcomplete\thops p50\tp99\tmax\tlog2N+2\tcopies\tfull p50 ms\tp99 ms\ttree/peer/s\tview/peer/s\tchurned\tlost\tgrafts\t")
	}
	for _, c := range cfgs {
		fmt.Fprintf(streams.ErrOut, "simulating N=%d seed %d\n", c.Peers, c.Seed)
		start := time.Now()
		r, err := overlaysim.RunContext(ctx, c)
		if err != nil {
			return fmt.Errorf("simulate N=%d seed %d: %w", c.Peers, c.Seed, err)
		}
		line := simLine{Result: r, ChurnPerMinute: c.ChurnPerMinute, Loss: c.Loss, Speakers: c.Speakers,
			Rate: c.Rate, LatencyMinMs: ms(c.LatencyMin), LatencyMaxMs: ms(c.LatencyMax),
			Optimize: c.Overlay("x", 0).OptimizeThreshold, WallSeconds: math.Round(time.Since(start).Seconds()*10) / 10}
		if len(sinks) > 0 {
			b, err := json.Marshal(line)
			if err != nil {
				return fmt.Errorf("encode result: %w", err)
			}
			for _, w := range sinks {
				if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
					return fmt.Errorf("write result: %w", err)
				}
			}
		}
		if tw != nil {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.5f\t%d/%d\t%.0f\t%.0f\t%.0f\t%.1f\t%.3f\t%.0f\t%.0f\t%.2f\t%.2f\t%d\t%d\t%d\t\n",
				r.Peers, r.Seed, r.Active, r.Delivered, r.Complete, r.Messages, r.HopsP50, r.HopsP99, r.HopsMax,
				r.Log2N+2, r.Copies, r.FullP50ms, r.FullP99ms, r.TreeOverhead, r.ViewOverhead, r.Churned, r.Lost, r.Grafts)
		}
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
