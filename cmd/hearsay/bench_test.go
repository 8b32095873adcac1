package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/bench"
)

func TestBenchCommandInProcess(t *testing.T) {
	var out, errOut bytes.Buffer
	streams := &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
	code := run([]string{"bench", "--in-process", "--baseline", "naive", "--peers", "2,3",
		"--workload", "latency", "--duration", "200ms", "--rate", "50", "--json"}, streams)
	if code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errOut.String())
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r struct {
			System         string   `json:"system"`
			Workload       string   `json:"workload"`
			Peers          int      `json:"peers"`
			P99            *float64 `json:"p99_ms"`
			DeliveredRatio *float64 `json:"delivered_ratio"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if r.Workload != "latency" || r.P99 == nil || r.DeliveredRatio == nil || *r.DeliveredRatio != 1 {
			t.Errorf("result %s: want a latency result with every message delivered", sc.Text())
		}
		seen[r.System+"/"+string(rune('0'+r.Peers))] = true
	}
	for _, want := range []string{"hearsay/2", "naive/2", "hearsay/3", "naive/3"} {
		if !seen[want] {
			t.Errorf("no result for %s; got %v", want, seen)
		}
	}
	if !strings.Contains(errOut.String(), "starting") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
}

func TestBenchCommandBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--peers", "1"},
		{"bench", "--workload", "chaos"},
		{"bench", "--baseline", "raft"},
		{"bench", "--drop", "1.5"},
	} {
		var out, errOut bytes.Buffer
		streams := &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
		if code := run(args, streams); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (usage); stderr %q", args, code, errOut.String())
		}
	}
}

// The worker's heap profile is a pprof file, and beside it the goroutine
// count and the runtime's memory figures the profile does not show.
func TestWriteHeapProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.pprof")
	var errOut bytes.Buffer
	writeHeapProfile(path, &errOut)
	if errOut.Len() > 0 {
		t.Fatalf("errors: %s", errOut.String())
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof files are gzipped protobuf
		t.Fatalf("profile: %d bytes, %v", len(b), err)
	}
	txt, err := os.ReadFile(path + ".txt")
	if err != nil || !strings.Contains(string(txt), "goroutines; heap in use") {
		t.Fatalf("summary %q, %v", txt, err)
	}
	writeHeapProfile(filepath.Join(t.TempDir(), "missing", "heap.pprof"), &errOut)
	if !strings.Contains(errOut.String(), "heap profile:") {
		t.Fatalf("an unwritable path reported %q", errOut.String())
	}
}

// With --cpuprofile-load the worker profiles the load alone: the run
// starts the profile after the warm-up and stops it after the grace, and
// the file is a pprof profile once the worker returns.
func TestBenchWorkerProfilesTheLoad(t *testing.T) {
	t.Cleanup(func() { bench.BeforeLoad, bench.AfterLoad = nil, nil })
	spec := bench.DefaultSpec()
	spec.Workload, spec.Peers, spec.Size, spec.Rate = bench.WorkloadLatency, 2, 64, 50
	spec.Duration, spec.Grace = bench.Dur(200*time.Millisecond), bench.Dur(2*time.Second)
	req, err := json.Marshal(bench.WorkerRequest{System: "naive", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	var out, errOut bytes.Buffer
	streams := &ioStreams{In: bytes.NewReader(append(req, '\n')), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
	if code := run([]string{"bench", "worker", "--cpuprofile", path, "--cpuprofile-load"}, streams); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s\nstdout:\n%s", code, errOut.String(), out.String())
	}
	if bench.BeforeLoad == nil || bench.AfterLoad == nil {
		t.Fatal("the worker did not hook the load's start and end")
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof files are gzipped protobuf
		t.Fatalf("profile: %d bytes, %v", len(b), err)
	}
	if !strings.Contains(out.String(), `"result"`) {
		t.Errorf("no result line:\n%s", out.String())
	}
}
