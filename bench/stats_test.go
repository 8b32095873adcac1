package bench

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", ms(7), 99, 7 * time.Millisecond},
		{"p0 is min", ms(1, 2, 3), 0, 1 * time.Millisecond},
		{"p100 is max", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"median odd", ms(1, 2, 3), 50, 2 * time.Millisecond},
		{"median even is lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 100 rounds up", hundred, 99.9, 100 * time.Millisecond},
		{"p1 of 100", hundred, 1, 1 * time.Millisecond},
		{"p99 of 10 is max", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"p90 of 10", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %g) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{5, 1, 4, 2, 3} // unsorted on purpose
	s := Summarize(in)
	if s.N != 5 || s.P50 != 3 || s.P99 != 5 || s.Max != 5 {
		t.Errorf("Summarize = %+v, want N 5, P50 3, P99 5, Max 5", s)
	}
	if in[0] != 5 {
		t.Errorf("Summarize sorted its input in place: %v", in)
	}
	if len(s.CDF) != 101 || s.CDF[0] != 1 || s.CDF[100] != 5 {
		t.Errorf("CDF = %v, want 101 points from 1 to 5", s.CDF)
	}
	for i := 1; i < len(s.CDF); i++ {
		if s.CDF[i] < s.CDF[i-1] {
			t.Fatalf("CDF not monotonic at %d: %v", i, s.CDF)
		}
	}
	if e := Summarize(nil); e.N != 0 || e.CDF != nil {
		t.Errorf("Summarize(nil) = %+v, want empty", e)
	}
}

func TestRatio(t *testing.T) {
	if got := Ratio(3, 4); got != 0.75 {
		t.Errorf("Ratio(3, 4) = %g, want 0.75", got)
	}
	if got := Ratio(3, 0); got != 0 {
		t.Errorf("Ratio(3, 0) = %g, want 0", got)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, id := range []uint64{0, 1, 0xdeadbeef, 1<<64 - 1} {
		for _, size := range []int{0, MinPayload, 100, 4096} {
			p := makePayload(id, size)
			if want := max(size, MinPayload); len(p) != want {
				t.Fatalf("makePayload(%d, %d) has %d bytes, want %d", id, size, len(p), want)
			}
			got, err := parsePayload(p)
			if err != nil || got != id {
				t.Errorf("parsePayload(makePayload(%d, %d)) = %d, %v", id, size, got, err)
			}
		}
	}
	for _, bad := range []string{"", "hsb", "xyz0000000000000001", "hsb00000000000000zz"} {
		if _, err := parsePayload([]byte(bad)); err == nil {
			t.Errorf("parsePayload(%q) succeeded, want an error", bad)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := newRecorder(3)
	t0 := time.Now()
	r.Deliver(2, makePayload(1, 40)) // before its send is registered
	r.register(0, 0, t0)
	r.register(1, 1, t0)
	r.Deliver(0, makePayload(0, 40)) // the sender's own echo: ignored
	r.Deliver(1, makePayload(0, 40))
	r.Deliver(1, makePayload(0, 40)) // duplicate
	r.Deliver(2, makePayload(0, 40))
	r.Deliver(7, makePayload(0, 40))     // no such peer
	r.Deliver(1, []byte("hello, world")) // not ours
	if !r.complete(0, 1) {
		t.Errorf("message 0 delivered by both receivers, complete = false")
	}
	if r.complete(0, 2) {
		t.Errorf("message 1 delivered by one receiver of two, complete = true")
	}
	tl := r.tally(0, 2)
	if tl.sent != 2 || tl.full != 1 || tl.deliveries != 3 || len(tl.latencies) != 1 {
		t.Errorf("tally = %+v, want sent 2, full 1, deliveries 3, 1 latency", tl)
	}
	if d, f := r.duplicates.Load(), r.foreign.Load(); d != 1 || f != 2 {
		t.Errorf("duplicates %d, foreign %d; want 1, 2", d, f)
	}
	r.forget(1)
	if !r.complete(0, 2) {
		t.Errorf("after forgetting message 1, complete(0, 2) = false")
	}
}

// BenchmarkRecorderDeliver measures the runner's own cost per delivery
// (parse the payload, match the send, stamp the time): it bounds how much
// the measurement adds to the latencies it reports.
func BenchmarkRecorderDeliver(b *testing.B) {
	const peers = 50
	r := newRecorder(peers)
	payloads := make([][]byte, 1024)
	for i := range payloads {
		payloads[i] = makePayload(uint64(i), 100)
		r.register(uint64(i), 0, time.Now())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Deliver(1+i%(peers-1), payloads[(i/(peers-1))%len(payloads)])
	}
}
