package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestServeWorker(t *testing.T) {
	spec := smokeSpec(WorkloadLatency)
	req, err := json.Marshal(WorkerRequest{System: "naive", Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ServeWorker(ctx, bytes.NewReader(append(req, '\n')), &out, NewSystem); err != nil {
		t.Fatalf("ServeWorker: %v", err)
	}
	var results, progress int
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var l workerLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		switch {
		case l.Result != nil:
			results++
			if l.Result.System != "naive" || l.Result.Sent == 0 || l.Result.DeliveredRatio == nil || *l.Result.DeliveredRatio != 1 {
				t.Errorf("result %+v, want naive with every message delivered", *l.Result)
			}
		case l.Progress != "":
			progress++
		default:
			t.Errorf("unexpected line %q", sc.Text())
		}
	}
	if results != 1 || progress == 0 {
		t.Errorf("got %d results and %d progress lines, want 1 and some", results, progress)
	}
}

func TestServeWorkerBadRequests(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "no request line"},
		{"not json", "hello\n", "decode worker request"},
		{"unknown field", `{"system":"naive","bogus":1}` + "\n", "unknown field"},
		{"bad spec", `{"system":"naive","spec":{"workload":"latency","peers":0}}` + "\n", "peers 0"},
		{"unknown system", `{"system":"carrier-pigeon","spec":` + mustJSON(t, smokeSpec(WorkloadLatency)) + "}\n", "carrier-pigeon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ServeWorker(context.Background(), strings.NewReader(tt.in), &out, NewSystem)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			var l workerLine
			if jerr := json.Unmarshal(out.Bytes(), &l); jerr != nil || l.Error == "" {
				t.Errorf("output %q: want one error line", out.String())
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSpecValidate(t *testing.T) {
	ok := DefaultSpec()
	if err := ok.Validate(); err != nil {
		t.Fatalf("DefaultSpec invalid: %v", err)
	}
	bad := map[string]func(*Spec){
		"workload":  func(s *Spec) { s.Workload = "chaos" },
		"one peer":  func(s *Spec) { s.Peers = 1 },
		"size":      func(s *Spec) { s.Size = 3 },
		"rate":      func(s *Spec) { s.Rate = 0 },
		"duration":  func(s *Spec) { s.Duration = 0 },
		"drop":      func(s *Spec) { s.Drop = 1 },
		"window":    func(s *Spec) { s.Window = 0 },
		"neg grace": func(s *Spec) { s.Grace = -1 },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			s := DefaultSpec()
			mutate(&s)
			if err := s.Validate(); err == nil {
				t.Errorf("Validate accepted %+v", s)
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	rs := []Result{
		{System: "hearsay", Workload: "latency", Peers: 10, P50ms: F(0.5), P99ms: F(1.25), DeliveredRatio: F(1)},
		{System: "serf", Workload: "cost", Peers: 10, CPUs: F(0.5), PeakRSSMB: F(20), IdleRSSMB: F(12.5), RSSPerPeerMB: F(0.25)},
		{System: "hearsay", Workload: "traffic", Peers: 3, BytesPerDelivery: F(300),
			FrameBytesPerDelivery: map[string]float64{"envelope": 250.5, "status": 10.25, UnframedKind: 39.25}},
	}
	if err := WriteTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{"hearsay", "1.25", "1.0000", "idle peer process 12.5 MB", "+0.25 MB per extra peer",
		"bytes per delivery by frame kind", "envelope", "250.5", "10.2", "unframed", "39.2"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	// The largest share first, what no frame accounts for last.
	if e, s, u := strings.Index(got, "envelope"), strings.Index(got, "status"), strings.Index(got, "unframed"); !(e < s && s < u) {
		t.Errorf("kind columns out of order (envelope %d, status %d, unframed %d):\n%s", e, s, u, got)
	}
}
