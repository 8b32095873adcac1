package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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

// largeInput is a run with N from 3 to 200 and three systems: 18 latency
// CDFs and throughput points spanning three decades, one of them 0.
func largeInput() string {
	pts := make([]string, 101)
	for i := range pts {
		pts[i] = strconv.Itoa(i + 1)
	}
	cdf := strings.Join(pts, ",")
	var b strings.Builder
	rate := map[int]string{3: "3900", 10: "1800", 20: "1000", 50: "150", 100: "40", 200: "0"}
	for _, n := range []int{3, 10, 20, 50, 100, 200} {
		for _, sys := range []string{"hearsay", "naive", "serf"} {
			b.WriteString(`{"system":"` + sys + `","workload":"latency","peers":` + strconv.Itoa(n) + `,"cdf_ms":[` + cdf + "]}\n")
		}
		b.WriteString(`{"system":"hearsay","workload":"throughput","peers":` + strconv.Itoa(n) + `,"msgs_per_s":` + rate[n] + "}\n")
	}
	b.WriteString(`{"system":"hearsay","workload":"cost","peers":200,"cpu_s":9.5,"up_s":61.3,"peak_files":1234}` + "\n")
	return b.String()
}

func TestLargeN(t *testing.T) {
	rs, err := readResults(strings.NewReader(largeInput()))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("throughput axis", func(t *testing.T) {
		svg := throughputSVG(rs)
		// Every N has its tick label, and on a log scale the smallest
		// sizes are not crowded: the labels 3 and 10 are ~70 px apart
		// (on a linear axis to 200 they were 17).
		x := logAxis(3, 200, left, plotW)
		if gap := x(10) - x(3); gap < 40 {
			t.Errorf("N=3 and N=10 are %.1f px apart, want room for their labels", gap)
		}
		for _, n := range []string{">3<", ">10<", ">20<", ">50<", ">100<", ">200<"} {
			if !strings.Contains(svg, n) {
				t.Errorf("throughput plot lacks the tick label %s", n)
			}
		}
		// The rate of 0 at N=200 is an open circle on the bottom axis.
		want := `cy="` + strconv.Itoa(top+plotH) + `.0" r="3.5" fill="white"`
		if !strings.Contains(svg, want) {
			t.Errorf("throughput plot lacks the open circle of the 0 rate (%s)", want)
		}
	})
	t.Run("latency legend", func(t *testing.T) {
		svg := latencySVG(rs)
		if got := strings.Count(svg, "<polyline"); got != 18 {
			t.Fatalf("%d CDFs, want 18", got)
		}
		for _, label := range []string{"hearsay, N=3", "serf, N=200", "naive, N=100"} {
			if !strings.Contains(svg, label) {
				t.Errorf("legend lacks %q", label)
			}
		}
		// Six sizes, six dash styles.
		seen := map[string]bool{}
		for _, n := range []int{3, 10, 20, 50, 100, 200} {
			seen[dashes[slices.Index(peerSizes(rs), n)%len(dashes)]] = true
		}
		if len(seen) != 6 {
			t.Errorf("%d dash styles for 6 group sizes", len(seen))
		}
		// The last legend entry stays inside the plot's height.
		last := top + 10 + 17*max(10, min(18, (plotH-10)/18))
		if last > top+plotH {
			t.Errorf("last legend entry at y=%d, below the plot (%d)", last, top+plotH)
		}
	})
	t.Run("cost table", func(t *testing.T) {
		md := markdown(rs)
		for _, want := range []string{"group up s", "open files", "| 61.3 | 1234 |"} {
			if !strings.Contains(md, want) {
				t.Errorf("cost table lacks %q:\n%s", want, md)
			}
		}
	})
}
