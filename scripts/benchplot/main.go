// Command benchplot draws the figures of docs/BENCHMARKS.md from the JSON
// lines of `hearsay bench --json` (or --json-out): the latency distribution
// (CDF, log scale) of every system and group size in the latency workload,
// and the throughput (messages/s) against the group size, as SVG; with -md
// it also writes the results as Markdown tables, one per workload. Standard
// library only.
//
//	go run ./scripts/benchplot -in results.jsonl -out docs -md tables.md
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// result holds the fields of a bench result line that the plots and
// tables use.
type result struct {
	System           string    `json:"system"`
	Workload         string    `json:"workload"`
	Peers            int       `json:"peers"`
	CDFms            []float64 `json:"cdf_ms"`
	P50ms            *float64  `json:"p50_ms"`
	P99ms            *float64  `json:"p99_ms"`
	MaxMs            *float64  `json:"max_ms"`
	DeliveredRatio   *float64  `json:"delivered_ratio"`
	CopiesPerMessage *float64  `json:"copies_per_message"`
	BytesPerDelivery *float64  `json:"bytes_per_delivery"`
	MsgsPerS         *float64  `json:"msgs_per_s"`
	DeliveriesPerS   *float64  `json:"deliveries_per_s"`
	CPUs             *float64  `json:"cpu_s"`
	PeakRSSMB        *float64  `json:"peak_rss_mb"`
	IdleRSSMB        *float64  `json:"idle_rss_mb"`
	RSSPerPeerMB     *float64  `json:"rss_per_extra_peer_mb"`
	CPUPerPeerS      *float64  `json:"cpu_per_extra_peer_s"`
	UpS              *float64  `json:"up_s"`
	PeakFiles        int       `json:"peak_files"`
	Note             string    `json:"note"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchplot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "-", "JSON lines from hearsay bench --json (- for stdin)")
	out := fs.String("out", "docs", "directory for bench-latency.svg and bench-throughput.svg")
	md := fs.String("md", "", "also write the results as Markdown tables, one per workload, to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		r = f
	}
	results, err := readResults(r)
	if err != nil {
		return err
	}
	lat := latencySVG(results)
	thr := throughputSVG(results)
	if lat == "" && thr == "" {
		return errors.New("no latency or throughput results in the input")
	}
	if *md != "" {
		if err := os.WriteFile(*md, []byte(markdown(results)), 0o644); err != nil {
			return fmt.Errorf("write tables: %w", err)
		}
	}
	for name, svg := range map[string]string{"bench-latency.svg": lat, "bench-throughput.svg": thr} {
		if svg == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(*out, name), []byte(svg), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func readResults(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var res result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("input line %d: %w", line, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return out, nil
}

// Plot geometry.
const (
	width, height         = 720, 440
	left, right, top, bot = 70, 170, 40, 60
	plotW, plotH          = width - left - right, height - top - bot
)

var palette = map[string]string{"hearsay": "#1f77b4", "naive": "#2ca02c", "serf": "#d62728"}

// dashes tell group sizes apart in the latency plot (colours tell
// systems): one style per N of a run up to 8 sizes (3, 10, 20, 50, 100,
// 200 and two more).
var dashes = []string{"", "6,3", "2,3", "10,3,2,3", "1,2", "12,4", "4,2,1,2", "8,2,2,2,2,2"}

func color(system string) string {
	if c, ok := palette[system]; ok {
		return c
	}
	return "#7f7f7f"
}

type svgDoc struct{ b strings.Builder }

func (d *svgDoc) printf(format string, a ...any) { fmt.Fprintf(&d.b, format, a...) }

func newDoc(title string) *svgDoc {
	d := &svgDoc{}
	d.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	d.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	d.printf(`<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(title))
	d.printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", left, top, plotW, plotH)
	return d
}

func (d *svgDoc) end() string {
	d.printf("</svg>\n")
	return d.b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// latencySVG draws the latency CDFs on a log-scale x axis.
func latencySVG(results []result) string {
	var rs []result
	for _, r := range results {
		if r.Workload == "latency" && len(r.CDFms) == 101 {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return ""
	}
	lo, hi := math.Inf(1), 0.0
	for _, r := range rs {
		for _, v := range r.CDFms {
			v = math.Max(v, 0.01)
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	x := func(v float64) float64 {
		return left + (math.Log10(math.Max(v, 0.01))-dlo)/(dhi-dlo)*plotW
	}
	y := func(p float64) float64 { return top + plotH - p/100*plotH }
	d := newDoc("Latency to every other peer (latency workload): CDF")
	for e := dlo; e <= dhi; e++ {
		xx := x(math.Pow(10, e))
		d.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", xx, top, xx, top+plotH)
		d.printf(`<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", xx, top+plotH+16, fmtMs(math.Pow(10, e)))
	}
	for p := 0.0; p <= 100; p += 25 {
		d.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(p), left+plotW, y(p))
		d.printf(`<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left-6, y(p)+4, p)
	}
	d.printf(`<text x="%d" y="%d" text-anchor="middle">latency (ms, log scale)</text>`+"\n", left+plotW/2, height-20)
	d.printf(`<text x="18" y="%d" transform="rotate(-90 18 %d)" text-anchor="middle">messages delivered to all</text>`+"\n", top+plotH/2, top+plotH/2)
	sizes := peerSizes(rs)
	for i, r := range rs {
		var pts []string
		for p, v := range r.CDFms {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(v), y(float64(p))))
		}
		dash := dashes[slices.Index(sizes, r.Peers)%len(dashes)]
		d.printf(`<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", color(r.System), dash, strings.Join(pts, " "))
		legend(d, i, len(rs), color(r.System), dash, fmt.Sprintf("%s, N=%d", r.System, r.Peers))
	}
	return d.end()
}

// legend draws entry i of n beside the plot; entries are 18 px apart, or
// closer when n of them would not fit its height (N up to 200 with three
// systems is 18 entries in the latency plot).
func legend(d *svgDoc, i, n int, col, dash, label string) {
	step := 18
	if n > 0 && (plotH-10)/n < step {
		step = max(10, (plotH-10)/n)
	}
	ly := top + 10 + i*step
	lx := left + plotW + 14
	d.printf(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", lx, ly, lx+26, ly, col, dash)
	d.printf(`<text x="%d" y="%d">%s</text>`+"\n", lx+32, ly+4, esc(label))
}

func peerSizes(rs []result) []int {
	var s []int
	for _, r := range rs {
		if !slices.Contains(s, r.Peers) {
			s = append(s, r.Peers)
		}
	}
	slices.Sort(s)
	return s
}

func fmtMs(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%g", v)
	}
	return fmt.Sprintf("%.0f", v)
}

// throughputSVG draws messages/s against N, one line per system, on log
// scales: group sizes from 3 to 200 and rates from thousands down to a
// few per second would crowd a linear plot's small N and flatten its
// large N into the axis. A rate of 0 (nothing reached every peer) has no
// place on a log scale: it is an open circle on the bottom axis, not
// joined to the line.
func throughputSVG(results []result) string {
	bySys := map[string][]result{}
	var systems []string
	lo, hi := math.Inf(1), 0.0
	for _, r := range results {
		if r.Workload != "throughput" || r.MsgsPerS == nil {
			continue
		}
		if _, ok := bySys[r.System]; !ok {
			systems = append(systems, r.System)
		}
		bySys[r.System] = append(bySys[r.System], r)
		if v := *r.MsgsPerS; v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if len(systems) == 0 {
		return ""
	}
	if hi == 0 { // every rate is 0
		lo, hi = 1, 10
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi == ylo {
		yhi++
	}
	sizes := peerSizes(flatten(bySys))
	x := logAxis(float64(sizes[0]), float64(sizes[len(sizes)-1]), left, plotW)
	y := func(t float64) float64 {
		if t <= 0 {
			return top + plotH
		}
		return top + plotH - (math.Log10(t)-ylo)/(yhi-ylo)*plotH
	}
	d := newDoc("Throughput against group size (throughput workload)")
	for e := ylo; e <= yhi; e++ {
		t := math.Pow(10, e)
		d.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(t), left+plotW, y(t))
		d.printf(`<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(t)+4, fmtMs(t))
	}
	for _, n := range sizes {
		d.printf(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", x(float64(n)), top, x(float64(n)), top+plotH)
		d.printf(`<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(float64(n)), top+plotH+16, n)
	}
	d.printf(`<text x="%d" y="%d" text-anchor="middle">peers N (log scale)</text>`+"\n", left+plotW/2, height-20)
	d.printf(`<text x="18" y="%d" transform="rotate(-90 18 %d)" text-anchor="middle">messages/s delivered to all (log scale; 0 on the axis)</text>`+"\n", top+plotH/2, top+plotH/2)
	for i, s := range systems {
		rs := bySys[s]
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.Peers, b.Peers) })
		var pts []string
		for _, r := range rs {
			px, py := x(float64(r.Peers)), y(*r.MsgsPerS)
			if *r.MsgsPerS <= 0 {
				d.printf(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="white" stroke="%s"/>`+"\n", px, py, color(s))
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px, py))
			d.printf(`<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px, py, color(s))
		}
		if len(pts) > 1 {
			d.printf(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color(s), strings.Join(pts, " "))
		}
		legend(d, i, len(systems), color(s), "", s)
	}
	return d.end()
}

// logAxis maps [lo, hi] onto [start, start+length] on a log scale, with a
// margin of 4 % at both ends so that the extreme points are not on the
// frame. A single value maps to the middle.
func logAxis(lo, hi float64, start, length int) func(float64) float64 {
	if hi <= lo {
		return func(float64) float64 { return float64(start) + float64(length)/2 }
	}
	a, b := math.Log10(lo), math.Log10(hi)
	m := (b - a) * 0.04
	a, b = a-m, b+m
	return func(v float64) float64 { return float64(start) + (math.Log10(v)-a)/(b-a)*float64(length) }
}

func flatten(m map[string][]result) []result {
	var out []result
	for _, rs := range m {
		out = append(out, rs...)
	}
	return out
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// column is one column of a Markdown table.
type column struct {
	head string
	get  func(result) string
}

func num(p *float64, prec int) string {
	if p == nil {
		return "–"
	}
	return strconv.FormatFloat(*p, 'f', prec, 64)
}

var (
	colSystem  = column{"system", func(r result) string { return r.System }}
	colPeers   = column{"N", func(r result) string { return strconv.Itoa(r.Peers) }}
	colP50     = column{"p50 ms", func(r result) string { return num(r.P50ms, 2) }}
	colP99     = column{"p99 ms", func(r result) string { return num(r.P99ms, 2) }}
	colMax     = column{"max ms", func(r result) string { return num(r.MaxMs, 2) }}
	colRatio   = column{"delivered", func(r result) string { return num(r.DeliveredRatio, 4) }}
	colCopies  = column{"copies/msg/peer", func(r result) string { return num(r.CopiesPerMessage, 2) }}
	colBytes   = column{"bytes/delivery", func(r result) string { return num(r.BytesPerDelivery, 0) }}
	colMsgs    = column{"msgs/s", func(r result) string { return num(r.MsgsPerS, 0) }}
	colDeliv   = column{"deliveries/s", func(r result) string { return num(r.DeliveriesPerS, 0) }}
	colCPU     = column{"cpu s", func(r result) string { return num(r.CPUs, 2) }}
	colRSS     = column{"peak RSS MB", func(r result) string { return num(r.PeakRSSMB, 1) }}
	colIdle    = column{"idle 1-peer RSS MB", func(r result) string { return num(r.IdleRSSMB, 1) }}
	colRSSPeer = column{"MB per extra peer", func(r result) string { return num(r.RSSPerPeerMB, 2) }}
	colCPUPeer = column{"cpu s per extra peer", func(r result) string { return num(r.CPUPerPeerS, 3) }}
	colUp      = column{"group up s", func(r result) string { return num(r.UpS, 1) }}
	colFiles   = column{"open files", func(r result) string {
		if r.PeakFiles <= 0 {
			return "–"
		}
		return strconv.Itoa(r.PeakFiles)
	}}
	colNote = column{"note", func(r result) string { return strings.ReplaceAll(r.Note, "|", "/") }}
)

// workloadColumns are the columns that apply to each workload.
var workloadColumns = map[string][]column{
	"latency":    {colSystem, colPeers, colP50, colP99, colMax, colRatio, colNote},
	"throughput": {colSystem, colPeers, colMsgs, colDeliv, colP50, colP99, colRatio, colNote},
	"traffic":    {colSystem, colPeers, colCopies, colBytes, colRatio, colNote},
	"loss":       {colSystem, colPeers, colRatio, colP50, colP99, colMax, colNote},
	"cost":       {colSystem, colPeers, colCPU, colRSS, colIdle, colRSSPeer, colCPUPeer, colUp, colFiles, colNote},
}

// markdown renders one table per workload, rows sorted by N then system
// order of appearance.
func markdown(results []result) string {
	var b strings.Builder
	for _, w := range []string{"latency", "throughput", "traffic", "loss", "cost"} {
		var rs []result
		for _, r := range results {
			if r.Workload == w {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.SortStableFunc(rs, func(a, b result) int { return cmp.Compare(a.Peers, b.Peers) })
		cols := workloadColumns[w]
		fmt.Fprintf(&b, "#### %s\n\n|", w)
		for _, c := range cols {
			fmt.Fprintf(&b, " %s |", c.head)
		}
		b.WriteString("\n|")
		for range cols {
			b.WriteString(" --- |")
		}
		b.WriteString("\n")
		for _, r := range rs {
			b.WriteString("|")
			for _, c := range cols {
				fmt.Fprintf(&b, " %s |", c.get(r))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	return b.String()
}
