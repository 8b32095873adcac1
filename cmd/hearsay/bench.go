package main

// `hearsay bench`: a thin command over package bench. It parses flags into
// a bench.Plan, builds the serf baseline's worker from its own module when
// asked, and prints a table or JSON lines.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hearsay-chat/hearsay/bench"
)

type benchOptions struct {
	peers      []int
	size       int
	rate       float64
	duration   time.Duration
	grace      time.Duration
	drop       float64
	order      string
	window     int
	costStep   int
	workloads  []string
	baselines  []string
	json       bool
	serfBin    string
	serfSrc    string
	inProcess  bool
	profDir    string
	profLoad   bool
	memProfDir string
	jsonOut    string
	store      string
	fanout     int
	tree       int
}

// newBenchCmd returns `hearsay bench`. Its parse step validates the
// options into a plan (a failure is a usageError); then it calls runF, or
// runBench when runF is nil (tests pass a runF that captures them).
func newBenchCmd(streams *ioStreams, runF func(context.Context, *benchOptions, *bench.Plan) error) *cobra.Command {
	def := bench.DefaultSpec()
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure hearsay against its baselines (naive, serf)",
		Long: `bench starts N peers on 127.0.0.1 in one process per run (real sockets,
memberlist, signatures and storage), lets membership settle, and runs the
workloads on hearsay and on each baseline in turn:

  latency     one sender at --rate: time until every other peer delivered
  throughput  every peer sends, at most --window messages in flight each
  traffic     copies received per message and peer; wire bytes per delivery
  loss        latency with --drop of the message frames dropped
  cost        CPU seconds and peak RSS at N and N+--cost-step peers, and the
              RSS of an idle single-peer process

Baselines: naive (a new TCP connection per message and member, no repair)
and serf (hashicorp/serf user events, default LAN settings), built from
bench/serfbench (run from the repository root, or give --serf-bin).
See docs/BENCHMARKS.md.`,
		Example: `  hearsay bench --peers 10 --workload latency,throughput
  hearsay bench --peers 3,10,20 --baseline naive,serf --json > results.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			plan, err := o.plan()
			if err != nil {
				return &usageError{err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), o, plan)
			}
			return runBench(cmd.Context(), streams, o, plan)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.peers, "peers", []int{def.Peers}, "group sizes N to run (comma-separated)")
	f.IntVar(&o.size, "size", def.Size, "message payload size in bytes")
	f.Float64Var(&o.rate, "rate", def.Rate, "messages per second of the single sender (latency, traffic, loss, cost)")
	f.DurationVar(&o.duration, "duration", time.Duration(def.Duration), "load duration of each run")
	f.DurationVar(&o.grace, "grace", time.Duration(def.Grace), "how long to wait for late deliveries after the load")
	f.Float64Var(&o.drop, "drop", def.Drop, "ratio of message frames dropped in the loss workload")
	f.StringVar(&o.order, "order", "", "room ordering mode for hearsay (fifo, causal, total, sequencer; empty: default)")
	f.IntVar(&o.window, "window", def.Window, "throughput: messages in flight per sender")
	f.IntVar(&o.costStep, "cost-step", 5, "cost: k in the per-extra-peer cost (runs at N and N+k)")
	f.StringSliceVar(&o.workloads, "workload", bench.Workloads, "workloads to run: "+strings.Join(bench.Workloads, ","))
	f.StringSliceVar(&o.baselines, "baseline", []string{"naive", "serf"}, "baselines to run beside hearsay: naive,serf (none for none)")
	f.BoolVar(&o.json, "json", false, "print one JSON object per line per system and workload")
	f.StringVar(&o.jsonOut, "json-out", "", "also write the JSON lines to this file (for scripts/benchplot)")
	f.StringVar(&o.store, "store", "", "experiment: hearsay message log, bolt (default) or memory")
	f.IntVar(&o.fanout, "fanout-threshold", 0, "experiment: hearsay eager-push-to-all threshold (0: the chat default)")
	f.IntVar(&o.tree, "tree-threshold", 0, "experiment: hearsay group size above which room messages go over the broadcast tree (0: the chat default, -1: never)")
	f.StringVar(&o.serfBin, "serf-bin", "", "serf baseline worker binary (default: build bench/serfbench with go build)")
	f.StringVar(&o.serfSrc, "serf-src", filepath.Join("bench", "serfbench"), "source directory of the serf baseline module")
	f.BoolVar(&o.inProcess, "in-process", false, "run hearsay and naive in this process instead of a fresh worker process per run")
	f.StringVar(&o.profDir, "cpuprofile-dir", "", "write a CPU profile of every hearsay and naive worker run into this directory")
	f.BoolVar(&o.profLoad, "cpuprofile-load", false, "with --cpuprofile-dir: profile only the load and its grace, not the group's start and warm-up")
	f.StringVar(&o.memProfDir, "memprofile-dir", "", "write a heap profile of every hearsay and naive worker run, taken after the load, into this directory")
	cmd.AddCommand(newBenchWorkerCmd(streams))
	return cmd
}

// plan validates the options and builds the plan (without its workers).
func (o *benchOptions) plan() (*bench.Plan, error) {
	spec := bench.DefaultSpec()
	spec.Size, spec.Rate, spec.Drop, spec.Order, spec.Window = o.size, o.rate, o.drop, o.order, o.window
	spec.Duration, spec.Grace = bench.Dur(o.duration), bench.Dur(o.grace)
	spec.Store, spec.FanoutThreshold, spec.TreeThreshold = o.store, o.fanout, o.tree
	if len(o.peers) == 0 {
		return nil, errors.New("--peers: give at least one group size")
	}
	for _, n := range o.peers {
		spec.Peers = n
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("--peers: %w", err)
		}
	}
	for _, w := range o.workloads {
		spec.Workload = w
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("--workload: %w", err)
		}
	}
	if o.costStep < 1 || o.costStep > 100 {
		return nil, fmt.Errorf("--cost-step %d: want 1 to 100", o.costStep)
	}
	systems := []string{"hearsay"}
	for _, b := range o.baselines {
		switch b {
		case "none", "":
		case "naive", "serf":
			if !slices.Contains(systems, b) {
				systems = append(systems, b)
			}
		default:
			return nil, fmt.Errorf("--baseline %q: want naive, serf or none", b)
		}
	}
	return &bench.Plan{Spec: spec, Peers: o.peers, Workloads: o.workloads, Systems: systems, CostStep: o.costStep}, nil
}

func runBench(ctx context.Context, streams *ioStreams, o *benchOptions, plan *bench.Plan) error {
	started := time.Now()
	plan.Progress = func(format string, args ...any) {
		fmt.Fprintf(streams.ErrOut, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	self, err := os.Executable()
	if err != nil && !o.inProcess {
		return fmt.Errorf("find own executable for worker processes (or use --in-process): %w", err)
	}
	serfBin := o.serfBin
	if slices.Contains(plan.Systems, "serf") && serfBin == "" {
		dir, err := os.MkdirTemp("", "hearsay-serfbench-")
		if err != nil {
			return fmt.Errorf("temp dir for the serf worker: %w", err)
		}
		defer os.RemoveAll(dir)
		plan.Progress("building the serf baseline from %s", o.serfSrc)
		serfBin, err = buildSerfWorker(ctx, o.serfSrc, dir)
		if err != nil {
			return err
		}
	}
	for _, dir := range []string{o.profDir, o.memProfDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("profile directory: %w", err)
		}
	}
	plan.Worker = func(system string, spec bench.Spec) (*exec.Cmd, error) {
		switch {
		case system == "serf":
			return exec.Command(serfBin), nil
		case o.inProcess:
			return nil, nil // run here
		}
		args := []string{"bench", "worker"}
		if o.profDir != "" {
			name := fmt.Sprintf("%s-%s-%d.cpu.pprof", system, spec.Workload, spec.Peers)
			args = append(args, "--cpuprofile", filepath.Join(o.profDir, name))
			if o.profLoad {
				args = append(args, "--cpuprofile-load")
			}
		}
		if o.memProfDir != "" {
			name := fmt.Sprintf("%s-%s-%d.heap.pprof", system, spec.Workload, spec.Peers)
			args = append(args, "--memprofile", filepath.Join(o.memProfDir, name))
		}
		return exec.Command(self, args...), nil
	}
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
	var werr error
	plan.OnResult = func(r bench.Result) {
		for _, w := range sinks {
			if err := bench.WriteJSON(w, r); err != nil && werr == nil {
				werr = fmt.Errorf("write results: %w", err)
			}
		}
	}
	results, err := plan.Run(ctx)
	if o.json {
		return errors.Join(err, werr)
	}
	if len(results) > 0 {
		if terr := bench.WriteTable(streams.Out, results); terr != nil {
			werr = errors.Join(werr, terr)
		}
	}
	return errors.Join(err, werr)
}

// buildSerfWorker builds the serf baseline module in src into dir and
// returns the binary's path.
func buildSerfWorker(ctx context.Context, src, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(src, "go.mod")); err != nil {
		return "", fmt.Errorf("serf baseline source %q not found (run from the repository root, or give --serf-src or --serf-bin, or --baseline naive): %w", src, err)
	}
	bin := filepath.Join(dir, "serfbench")
	cmd := exec.CommandContext(ctx, "go", "build", "-mod=mod", "-o", bin, ".")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build the serf baseline in %s: %w\n%s", src, err, out)
	}
	return bin, nil
}

// newBenchWorkerCmd is the hidden worker side of the bench: it runs one
// request read from stdin (see bench.ServeWorker).
func newBenchWorkerCmd(streams *ioStreams) *cobra.Command {
	var cpuprofile, memprofile string
	var loadOnly bool
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "Run one benchmark request from stdin (used by hearsay bench)",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var afterLoad []func()
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				defer pprof.StopCPUProfile() // a no-op when it was not started or has stopped
				if loadOnly {
					// Started by the run once the group is up and warm,
					// stopped after the grace: the profile shows the
					// steady state the workload measures.
					bench.BeforeLoad = func(bench.Spec) {
						if err := pprof.StartCPUProfile(f); err != nil {
							fmt.Fprintf(streams.ErrOut, "cpu profile: %v\n", err)
						}
					}
					afterLoad = append(afterLoad, pprof.StopCPUProfile)
				} else if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
			}
			if memprofile != "" {
				afterLoad = append(afterLoad, func() { writeHeapProfile(memprofile, streams.ErrOut) })
			}
			if len(afterLoad) > 0 {
				bench.AfterLoad = func(bench.Spec) {
					for _, f := range afterLoad {
						f()
					}
				}
			}
			return bench.ServeWorker(cmd.Context(), streams.In, streams.Out, bench.NewSystem)
		},
	}
	cmd.Flags().StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
	cmd.Flags().BoolVar(&loadOnly, "cpuprofile-load", false, "start the CPU profile after the warm-up and stop it after the grace")
	cmd.Flags().StringVar(&memprofile, "memprofile", "", "write a heap profile to this file after the load, before the group stops")
	return cmd
}

// writeHeapProfile writes the heap profile (after a collection, so that
// in-use is current) to path, and to path+".txt" how many goroutines run
// and the runtime's memory figures: at large N goroutine stacks are a
// share of the memory that the heap profile does not show. A failure is
// reported on errOut, not fatal: the run's result matters more than its
// profile.
func writeHeapProfile(path string, errOut io.Writer) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	summary := fmt.Sprintf("%d goroutines; heap in use %d MiB, stacks %d MiB, from the OS %d MiB\n",
		runtime.NumGoroutine(), ms.HeapInuse>>20, ms.StackInuse>>20, ms.Sys>>20)
	f, err := os.Create(path)
	if err == nil {
		err = pprof.WriteHeapProfile(f)
		err = errors.Join(err, f.Close())
	}
	err = errors.Join(err, os.WriteFile(path+".txt", []byte(summary), 0o644))
	if err != nil {
		fmt.Fprintf(errOut, "heap profile: %v\n", err)
	}
}
