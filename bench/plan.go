package bench

import (
	"context"
	"fmt"
	"os/exec"
	"time"
)

// Plan is a whole benchmark: every workload, at every group size, on every
// system, one run each. Runs are interleaved (for each size and workload,
// every system in turn), so that the noise of a shared machine falls on
// all systems alike.
type Plan struct {
	// Spec holds the workload parameters; its Workload and Peers are set
	// per run.
	Spec Spec
	// Peers are the group sizes to run.
	Peers []int
	// Workloads and Systems to run, in order.
	Workloads []string
	Systems   []string
	// CostStep is k in the per-extra-peer cost, measured by running the
	// cost workload at N and N+k (default 5).
	CostStep int
	// Worker, when not nil, returns the command of a fresh worker process
	// for a system (see RunWorker). When Worker is nil or returns a nil
	// command, the system runs in this process with NewSystem (then cost
	// figures share the process).
	Worker func(system string, spec Spec) (*exec.Cmd, error)
	// Progress receives progress notes; nil discards them.
	Progress Progress
	// OnResult, when not nil, is called with each result as it is ready.
	OnResult func(Result)
}

// Run runs the plan and returns every result. A run that fails does not
// stop the plan: its result carries the error in Note. Run returns an
// error only when ctx ends.
func (p *Plan) Run(ctx context.Context) ([]Result, error) {
	step := p.CostStep
	if step <= 0 {
		step = 5
	}
	var out []Result
	emit := func(r Result) {
		out = append(out, r)
		if p.OnResult != nil {
			p.OnResult(r)
		}
	}
	for _, n := range p.Peers {
		for _, w := range p.Workloads {
			for _, sys := range p.Systems {
				spec := p.Spec
				spec.Workload, spec.Peers = w, n
				var r Result
				var err error
				if w == WorkloadCost {
					r, err = p.runCost(ctx, sys, spec, step)
				} else {
					r, err = p.runOne(ctx, sys, spec)
				}
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				if err != nil {
					r = Result{System: sys, Workload: w, Peers: n, Note: "failed: " + err.Error()}
				}
				emit(r)
			}
		}
	}
	return out, nil
}

// runOne runs one workload in a worker or in this process.
func (p *Plan) runOne(ctx context.Context, system string, spec Spec) (Result, error) {
	if p.Worker != nil {
		cmd, err := p.Worker(system, spec)
		if err != nil {
			return Result{}, err
		}
		if cmd != nil {
			return RunWorker(ctx, cmd, WorkerRequest{System: system, Spec: spec}, p.Progress)
		}
	}
	sys, err := NewSystem(system)
	if err != nil {
		return Result{}, err
	}
	r, err := Run(ctx, sys, spec, p.Progress)
	if err == nil && (spec.Workload == WorkloadCost || spec.Workload == WorkloadIdle) {
		r.Note = joinNote(r.Note, "in-process: runs share one process, so RSS includes what earlier runs left")
	}
	return r, err
}

// runCost measures an idle single-peer process, then the cost workload at
// N and at N+step, and folds them into one result at N.
func (p *Plan) runCost(ctx context.Context, system string, spec Spec, step int) (Result, error) {
	idle := spec
	idle.Workload, idle.Peers = WorkloadIdle, 1
	idle.Duration = Dur(min(time.Duration(spec.Duration), 3*time.Second))
	ri, err := p.runOne(ctx, system, idle)
	if err != nil {
		return Result{}, fmt.Errorf("idle peer: %w", err)
	}
	r, err := p.runOne(ctx, system, spec)
	if err != nil {
		return Result{}, err
	}
	bigger := spec
	bigger.Peers = spec.Peers + step
	rb, err := p.runOne(ctx, system, bigger)
	if err != nil {
		return Result{}, fmt.Errorf("cost at %d peers: %w", bigger.Peers, err)
	}
	r.IdleRSSMB = ri.IdleRSSMB
	if r.PeakRSSMB != nil && rb.PeakRSSMB != nil {
		r.RSSPerPeerMB = F((*rb.PeakRSSMB - *r.PeakRSSMB) / float64(step))
	}
	if r.CPUs != nil && rb.CPUs != nil {
		r.CPUPerPeerS = F((*rb.CPUs - *r.CPUs) / float64(step))
	}
	return r, nil
}
