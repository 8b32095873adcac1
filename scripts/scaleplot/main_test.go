package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `{"peers":100,"seed":1,"active_view":3,"messages":10,"delivered_ratio":1,"complete_messages":10,"hops_p50":4,"hops_p99":7,"hops_max":8,"log2_n":6.64,"copies_per_delivery":1.01,"full_delivery_p50_ms":300,"full_delivery_p99_ms":400,"tree_msgs_per_peer_s":5,"view_msgs_per_peer_s":0.8,"churn_per_minute":0.01,"speakers":10,"rate":5}
{"peers":1000,"seed":1,"active_view":4,"messages":10,"delivered_ratio":1,"complete_messages":10,"hops_p50":6,"hops_p99":9,"hops_max":12,"log2_n":9.97,"copies_per_delivery":1.02,"full_delivery_p50_ms":500,"full_delivery_p99_ms":900,"tree_msgs_per_peer_s":8,"view_msgs_per_peer_s":0.8,"churn_per_minute":0.01,"speakers":10,"rate":5}
{"peers":1000,"seed":1,"active_view":4,"messages":10,"delivered_ratio":0.96,"complete_messages":0,"hops_p50":8,"hops_p99":19,"hops_max":26,"log2_n":9.97,"copies_per_delivery":1.3,"churn_per_minute":0.01,"loss":0.05,"speakers":10,"rate":5}
`

func TestPlotsAndTable(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "t.md")
	var stderr bytes.Buffer
	if err := mainErr([]string{"-out", dir, "-md", md}, strings.NewReader(sample), &stderr); err != nil {
		t.Fatal(err)
	}
	hops, err := os.ReadFile(filepath.Join(dir, "scale-hops.svg"))
	if err != nil {
		t.Fatal(err)
	}
	// Two sizes in the first workload: two points per series; the lossy
	// run has another workload and stays out of the plot.
	if got := strings.Count(string(hops), "<circle"); got != 6 {
		t.Errorf("hops plot has %d points, want 3 series × 2 sizes", got)
	}
	if !strings.Contains(string(hops), "log2 N + 2") {
		t.Error("hops plot lacks the target line")
	}
	table, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(table), "\n"); got != 5 {
		t.Errorf("table has %d lines, want a header, a rule and 3 runs:\n%s", got, table)
	}
	if !strings.Contains(string(table), "| 0.9600 | 0/10 |") {
		t.Errorf("table lacks the lossy run:\n%s", table)
	}
}

func TestBadInput(t *testing.T) {
	for _, in := range []string{"", "{", `{"peers":0}`} {
		if err := mainErr([]string{"-out", t.TempDir()}, strings.NewReader(in), &bytes.Buffer{}); err == nil {
			t.Errorf("input %q: no error", in)
		}
	}
}
