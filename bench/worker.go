package bench

// The worker protocol runs one workload in a fresh process, so that every
// run starts from a clean process (no goroutines, heap or peak RSS left by
// the previous system) and so that a system with dependencies of its own
// (serf, in its own module) runs the same measurement code as hearsay.
//
// The parent writes one JSON request line on the worker's stdin:
//
//	{"system":"serf","spec":{"workload":"latency","peers":10,…}}
//
// and the worker answers with JSON lines on stdout, any number of
// {"progress":"…"} then exactly one {"result":{…}} or {"error":"…"}, and
// exits.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// WorkerRequest is the request line of the worker protocol.
type WorkerRequest struct {
	System string `json:"system"`
	Spec   Spec   `json:"spec"`
}

// workerLine is one answer line of the worker protocol.
type workerLine struct {
	Progress string  `json:"progress,omitempty"`
	Result   *Result `json:"result,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// maxWorkerLine bounds one protocol line (a result with its CDF is a few
// KB).
const maxWorkerLine = 1 << 20

// ServeWorker answers one worker request: it reads the request line from
// in, builds the system with newSystem, runs the workload, and writes
// progress lines and the result (or the error) to out. It blocks for the
// whole run. The returned error is also written to out when it can be.
func ServeWorker(ctx context.Context, in io.Reader, out io.Writer, newSystem func(name string) (System, error)) error {
	var mu sync.Mutex // progress comes from the run's goroutines
	write := func(l workerLine) error {
		b, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("encode worker line: %w", err)
		}
		mu.Lock()
		defer mu.Unlock()
		_, err = out.Write(append(b, '\n'))
		return err
	}
	fail := func(err error) error {
		_ = write(workerLine{Error: err.Error()})
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), maxWorkerLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return fail(fmt.Errorf("read worker request: %w", err))
		}
		return fail(errors.New("read worker request: no request line"))
	}
	var req WorkerRequest
	dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fail(fmt.Errorf("decode worker request: %w", err))
	}
	if err := req.Spec.Validate(); err != nil {
		return fail(fmt.Errorf("worker request: %w", err))
	}
	sys, err := newSystem(req.System)
	if err != nil {
		return fail(err)
	}
	progress := func(format string, args ...any) {
		_ = write(workerLine{Progress: fmt.Sprintf(format, args...)})
	}
	res, err := Run(ctx, sys, req.Spec, progress)
	if err != nil {
		return fail(err)
	}
	return write(workerLine{Result: &res})
}

// RunWorker runs req in the worker process cmd (not yet started): it
// writes the request, relays progress lines to progress, and returns the
// result. It blocks until the worker exits; cancelling ctx kills it.
func RunWorker(ctx context.Context, cmd *exec.Cmd, req WorkerRequest, progress Progress) (Result, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Result{}, fmt.Errorf("encode worker request: %w", err)
	}
	cmd.Stdin = bytes.NewReader(append(b, '\n'))
	var stderr tailBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Result{}, fmt.Errorf("worker stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start worker %s: %w", cmd.Path, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()

	var res *Result
	var werr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 4096), maxWorkerLine)
	for sc.Scan() {
		var l workerLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			werr = fmt.Errorf("worker said %q: not a protocol line: %w", truncate(sc.Text(), 200), err)
			continue
		}
		switch {
		case l.Result != nil:
			res = l.Result
		case l.Error != "":
			werr = errors.New(l.Error)
		case l.Progress != "":
			progress.printf("%s", l.Progress)
		}
	}
	scanErr := sc.Err()
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return Result{}, ctx.Err()
	case res != nil:
		return *res, nil
	case werr != nil:
		return Result{}, fmt.Errorf("worker %s: %w", req.System, werr)
	case scanErr != nil:
		return Result{}, fmt.Errorf("worker %s: read: %w", req.System, scanErr)
	}
	return Result{}, fmt.Errorf("worker %s exited without a result (%v): %s", req.System, waitErr, stderr.String())
}

// tailBuffer keeps the last 4 KB written to it (a worker's stderr).
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = append(t.b[:0], t.b[len(t.b)-4096:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// NewSystem returns a new System of this package by name: "hearsay" or
// "naive". Other names are an error (serf runs in its own module).
func NewSystem(name string) (System, error) {
	switch name {
	case "hearsay":
		return &Hearsay{}, nil
	case "naive":
		return &Naive{}, nil
	}
	return nil, fmt.Errorf("system %q: want hearsay or naive here (serf runs as its own worker)", name)
}
