package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sampleInput returns bench JSON lines: two latency CDFs and three
// throughput points.
func sampleInput() string {
	pts := make([]string, 101)
	for i := range pts {
		pts[i] = strconv.Itoa(i + 1)
	}
	cdf := strings.Join(pts, ",")
	return `{"system":"hearsay","workload":"latency","peers":10,"cdf_ms":[` + cdf + `]}
{"system":"serf","workload":"latency","peers":10,"cdf_ms":[` + cdf + `]}
{"system":"hearsay","workload":"throughput","peers":3,"msgs_per_s":2500}
{"system":"hearsay","workload":"throughput","peers":10,"msgs_per_s":1800}
{"system":"naive","workload":"throughput","peers":10,"msgs_per_s":900}
`
}

func TestRunWritesBothPlots(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	if err := run([]string{"-out", dir}, strings.NewReader(sampleInput()), &stderr); err != nil {
		t.Fatalf("run: %v (%s)", err, stderr.String())
	}
	for name, wants := range map[string][]string{
		"bench-latency.svg":    {"<svg", "hearsay, N=10", "serf, N=10", "polyline"},
		"bench-throughput.svg": {"<svg", "hearsay", "naive", "circle"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, w := range wants {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	var stderr bytes.Buffer
	if err := run([]string{"-out", t.TempDir()}, strings.NewReader("not json\n"), &stderr); err == nil {
		t.Error("run accepted a line that is not JSON")
	}
	if err := run([]string{"-out", t.TempDir()}, strings.NewReader(`{"system":"x","workload":"cost","peers":3}`+"\n"), &stderr); err == nil {
		t.Error("run accepted input with nothing to plot")
	}
}

func TestMarkdownTables(t *testing.T) {
	rs, err := readResults(strings.NewReader(sampleInput() + `{"system":"serf","workload":"cost","peers":10,"cpu_s":0.25,"idle_rss_mb":14.1,"note":"a|b"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	md := markdown(rs)
	for _, want := range []string{"#### latency", "#### throughput", "#### cost", "| hearsay | 3 | 2500 |", "| serf | 10 | 0.25 |", "14.1", "a/b"} {
		if !strings.Contains(md, want) {
			t.Errorf("tables lack %q:\n%s", want, md)
		}
	}
}
