// Command scaleplot draws the figures of docs/SCALE.md from the JSON lines
// of `hearsay sim --json` (or --json-out): hops (p50, p99 and the bound
// log2 N + 2) and the costs (copies per delivery, overlay messages per
// peer per second, time to full delivery) against the group size N, as
// SVG, and with -md the runs as a Markdown table. The plots use the runs
// with the first line's workload (churn, loss, speakers, rate), averaged
// over seeds per N; the table lists every run. Standard library only.
//
//	go run ./scripts/scaleplot -in docs/scale-results.jsonl -out docs -md tables.md
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// run holds the fields of a `hearsay sim` line that the plots and the
// table use.
type run struct {
	Peers        int     `json:"peers"`
	Seed         uint64  `json:"seed"`
	Active       int     `json:"active_view"`
	Messages     int     `json:"messages"`
	Delivered    float64 `json:"delivered_ratio"`
	Complete     int     `json:"complete_messages"`
	HopsP50      float64 `json:"hops_p50"`
	HopsP99      float64 `json:"hops_p99"`
	HopsMax      float64 `json:"hops_max"`
	Log2N        float64 `json:"log2_n"`
	Copies       float64 `json:"copies_per_delivery"`
	FullP50ms    float64 `json:"full_delivery_p50_ms"`
	FullP99ms    float64 `json:"full_delivery_p99_ms"`
	TreeOverhead float64 `json:"tree_msgs_per_peer_s"`
	ViewOverhead float64 `json:"view_msgs_per_peer_s"`
	Churned      int     `json:"churned"`
	Lost         uint64  `json:"lost"`
	Grafts       uint64  `json:"grafts"`
	Churn        float64 `json:"churn_per_minute"`
	Loss         float64 `json:"loss"`
	Speakers     int     `json:"speakers"`
	Rate         float64 `json:"rate"`
	LatMin       float64 `json:"latency_min_ms"`
	LatMax       float64 `json:"latency_max_ms"`
	Optimize     uint32  `json:"optimize_threshold"`
	Wall         float64 `json:"wall_seconds"`
}

func (r run) workload() string {
	return fmt.Sprintf("churn %g/min, loss %g, %d speakers, %g msgs/s, links %g-%g ms, optimise %d",
		r.Churn, r.Loss, r.Speakers, r.Rate, r.LatMin, r.LatMax, r.Optimize)
}

func main() {
	if err := mainErr(os.Args[1:], os.Stdin, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "scaleplot:", err)
		os.Exit(1)
	}
}

func mainErr(args []string, stdin io.Reader, stderr io.Writer) error {
	fs := flag.NewFlagSet("scaleplot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "-", "JSON lines from hearsay sim --json (- for stdin)")
	out := fs.String("out", ".", "directory for scale-hops.svg and scale-cost.svg")
	md := fs.String("md", "", "also write the runs as a Markdown table to this file")
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
	runs, err := readRuns(r)
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return errors.New("no runs in the input")
	}
	pts := byN(runs)
	files := map[string]string{
		"scale-hops.svg": hopsSVG(pts, runs[0].workload()),
		"scale-cost.svg": costSVG(pts, runs[0].workload()),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(*out, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	if *md != "" {
		if err := os.WriteFile(*md, []byte(markdown(runs)), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *md, err)
		}
	}
	return nil
}

func readRuns(r io.Reader) ([]run, error) {
	var out []run
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var x run
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if x.Peers < 1 {
			return nil, fmt.Errorf("line %d: no peers", line)
		}
		out = append(out, x)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return out, nil
}

// point is the mean over seeds of the runs at one N with the first run's
// workload.
type point struct {
	n                                                 int
	hops50, hops99, copies, tree, view, full99, log2n float64
}

func byN(runs []run) []point {
	w := runs[0].workload()
	sums := map[int]*point{}
	counts := map[int]float64{}
	for _, r := range runs {
		if r.workload() != w {
			continue
		}
		p := sums[r.Peers]
		if p == nil {
			p = &point{n: r.Peers, log2n: r.Log2N}
			sums[r.Peers] = p
		}
		p.hops50 += r.HopsP50
		p.hops99 += r.HopsP99
		p.copies += r.Copies
		p.tree += r.TreeOverhead
		p.view += r.ViewOverhead
		p.full99 += r.FullP99ms
		counts[r.Peers]++
	}
	var out []point
	for n, p := range sums {
		c := counts[n]
		p.hops50, p.hops99, p.copies = p.hops50/c, p.hops99/c, p.copies/c
		p.tree, p.view, p.full99 = p.tree/c, p.view/c, p.full99/c
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b point) int { return a.n - b.n })
	return out
}

// A chart: N on a log axis, one or more series on a linear axis.
type series struct {
	label, color, dash string
	y                  []float64
}

const (
	width, height      = 640, 360
	left, right        = 60, 170
	top, bottom        = 46, 50
	plotW, plotH       = width - left - right, height - top - bottom
	fontAttr           = `font-family="sans-serif" font-size="12"`
	legendX, legendRow = width - right + 12, 18
)

func chart(title, subtitle, ylabel string, ns []int, ss []series) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="18" %s font-weight="bold">%s</text>`+"\n", left, fontAttr, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="34" font-family="sans-serif" font-size="10">%s</text>`+"\n", left, esc(subtitle))
	ymax := 0.0
	for _, s := range ss {
		for _, v := range s.y {
			ymax = max(ymax, v)
		}
	}
	step := niceStep(ymax / 5)
	ymax = math.Ceil(ymax/step) * step
	if ymax == 0 {
		ymax, step = 1, 0.2
	}
	xmin, xmax := math.Log10(float64(ns[0])), math.Log10(float64(ns[len(ns)-1]))
	if xmax == xmin {
		xmin, xmax = xmin-0.5, xmax+0.5
	}
	x := func(n int) float64 { return left + (math.Log10(float64(n))-xmin)/(xmax-xmin)*plotW }
	y := func(v float64) float64 { return top + plotH - v/ymax*plotH }
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", left, top, plotW, plotH)
	for v := 0.0; v <= ymax+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, left+plotW, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" %s text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, fontAttr, trim(v))
	}
	for _, n := range ns {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" %s text-anchor="middle">%d</text>`+"\n", x(n), top+plotH+18, fontAttr, n)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" %s text-anchor="middle">peers N (log scale)</text>`+"\n", left+plotW/2, height-10, fontAttr)
	fmt.Fprintf(&b, `<text x="14" y="%d" %s transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>`+"\n", top+plotH/2, fontAttr, top+plotH/2, esc(ylabel))
	for i, s := range ss {
		var pts []string
		for k, n := range ns {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(n), y(s.y[k])))
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", strings.Join(pts, " "), s.color, s.dash)
		for k, n := range ns {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(n), y(s.y[k]), s.color)
		}
		ly := top + 10 + i*legendRow
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", legendX, legendX+24, ly, ly, s.color, s.dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" %s>%s</text>`+"\n", legendX+30, ly+4, fontAttr, esc(s.label))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func hopsSVG(pts []point, workload string) string {
	ns := make([]int, len(pts))
	var p50, p99, bound []float64
	for i, p := range pts {
		ns[i] = p.n
		p50 = append(p50, p.hops50)
		p99 = append(p99, p.hops99)
		bound = append(bound, p.log2n+2)
	}
	return chart("Hops from the origin to each receiver", workload, "hops", ns, []series{
		{"p50", "#1f77b4", "", p50},
		{"p99", "#d62728", "", p99},
		{"target log2 N + 2", "#555", "6 4", bound},
	})
}

func costSVG(pts []point, workload string) string {
	ns := make([]int, len(pts))
	var copies, tree, view, full []float64
	for i, p := range pts {
		ns[i] = p.n
		copies = append(copies, p.copies)
		tree = append(tree, p.tree)
		view = append(view, p.view)
		full = append(full, p.full99/1000)
	}
	return chart("Costs against the group size", workload, "per delivery / per peer·s / s", ns, []series{
		{"copies per delivery", "#2ca02c", "", copies},
		{"tree msgs/peer/s", "#ff7f0e", "", tree},
		{"view msgs/peer/s", "#9467bd", "", view},
		{"full delivery p99 (s)", "#8c564b", "4 3", full},
	})
}

func markdown(runs []run) string {
	var b strings.Builder
	b.WriteString("| N | active | workload | seed | delivered | complete | hops p50 / p99 / max | log2 N + 2 | copies | full p50 / p99 ms | tree msgs/peer/s | view msgs/peer/s | churned | lost | grafts |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %d | %d | %s | %d | %.4f | %d/%d | %.0f / %.0f / %.0f | %.1f | %.3f | %.0f / %.0f | %.2f | %.2f | %d | %d | %d |\n",
			r.Peers, r.Active, r.workload(), r.Seed, r.Delivered, r.Complete, r.Messages, r.HopsP50, r.HopsP99, r.HopsMax,
			r.Log2N+2, r.Copies, r.FullP50ms, r.FullP99ms, r.TreeOverhead, r.ViewOverhead, r.Churned, r.Lost, r.Grafts)
	}
	return b.String()
}

func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*mag {
			return m * mag
		}
	}
	return 10 * mag
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
