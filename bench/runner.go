package bench

// The runner: one workload on one freshly started system. Every workload
// starts the group, lets membership settle, warms the message path up (one
// message from every peer, not measured), then drives its load and waits a
// grace period for late deliveries. Deliveries are timestamped in the
// Observer with time.Now, the same clock that stamped the send, so
// latencies of different systems are measured alike.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Workload names.
const (
	WorkloadLatency    = "latency"
	WorkloadThroughput = "throughput"
	WorkloadTraffic    = "traffic"
	WorkloadLoss       = "loss"
	WorkloadCost       = "cost"
	// WorkloadIdle is the cost of an idle group (used with Peers 1 for the
	// idle RSS of a single-peer process).
	WorkloadIdle = "idle"
)

// Workloads lists the public workload names in report order.
var Workloads = []string{WorkloadLatency, WorkloadThroughput, WorkloadTraffic, WorkloadLoss, WorkloadCost}

// Spec describes one run. Build it with DefaultSpec and change fields.
type Spec struct {
	Workload string  `json:"workload"`
	Peers    int     `json:"peers"`
	Size     int     `json:"size"`     // payload bytes
	Rate     float64 `json:"rate"`     // messages/s of the single sender (latency, traffic, loss, cost)
	Duration Dur     `json:"duration"` // load duration
	Drop     float64 `json:"drop"`     // loss: ratio of frames dropped
	Order    string  `json:"order"`    // ordering mode passed to the system
	// Window is the number of messages a sender may have in flight (not
	// yet delivered by every peer) in the throughput workload: the
	// closed loop that finds the rate the group sustains.
	Window int `json:"window"`
	// Grace is how long to wait after the last send for late deliveries.
	Grace Dur `json:"grace"`

	// Experiment knobs for hearsay, to attribute its figures (other
	// systems ignore them; the zero values are the product's defaults).
	// Store "memory" keeps the message log in memory instead of bbolt;
	// FanoutThreshold replaces chat's eager-push-to-all threshold;
	// TreeThreshold chat's group size above which room messages go over
	// the overlay's broadcast tree (-1: never).
	Store           string `json:"store,omitempty"`
	FanoutThreshold int    `json:"fanout_threshold,omitempty"`
	TreeThreshold   int    `json:"tree_threshold,omitempty"`
}

// Dur is a time.Duration that encodes as a string in JSON ("5s").
type Dur time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Dur) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Dur) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Dur(v)
	return nil
}

// DefaultSpec returns the defaults of `hearsay bench`.
func DefaultSpec() Spec {
	return Spec{
		Workload: WorkloadLatency,
		Peers:    10,
		Size:     100,
		Rate:     20,
		Duration: Dur(5 * time.Second),
		Drop:     0.2,
		Window:   8,
		Grace:    Dur(5 * time.Second),
	}
}

// Validate checks s.
func (s Spec) Validate() error {
	if !slices.Contains(Workloads, s.Workload) && s.Workload != WorkloadIdle {
		return fmt.Errorf("workload %q: want one of %v", s.Workload, Workloads)
	}
	switch {
	case s.Peers < 1 || s.Peers > 1000:
		return fmt.Errorf("peers %d: want 1 to 1000", s.Peers)
	case s.Peers < 2 && s.Workload != WorkloadIdle:
		return fmt.Errorf("peers %d: the %s workload needs at least 2", s.Peers, s.Workload)
	case s.Size < MinPayload || s.Size > MaxPayload:
		return fmt.Errorf("size %d: want %d to %d bytes", s.Size, MinPayload, MaxPayload)
	case s.Rate <= 0 || s.Rate > 100000:
		return fmt.Errorf("rate %g: want more than 0 and at most 100000 messages/s", s.Rate)
	case s.Duration <= 0 || time.Duration(s.Duration) > time.Hour:
		return fmt.Errorf("duration %v: want more than 0 and at most 1h", time.Duration(s.Duration))
	case s.Drop < 0 || s.Drop >= 1:
		return fmt.Errorf("drop %g: want 0 to less than 1", s.Drop)
	case s.Window < 1 || s.Window > 10000:
		return fmt.Errorf("window %d: want 1 to 10000", s.Window)
	case s.Grace < 0 || time.Duration(s.Grace) > 10*time.Minute:
		return fmt.Errorf("grace %v: want 0 to 10m", time.Duration(s.Grace))
	case s.Store != "" && s.Store != "memory" && s.Store != "bolt":
		return fmt.Errorf("store %q: want bolt (default) or memory", s.Store)
	case s.FanoutThreshold < 0 || s.FanoutThreshold > 10000:
		return fmt.Errorf("fanout threshold %d: want 0 (default) to 10000", s.FanoutThreshold)
	case s.TreeThreshold < -1 || s.TreeThreshold > 10000:
		return fmt.Errorf("tree threshold %d: want -1 (never), 0 (default) or up to 10000", s.TreeThreshold)
	}
	return nil
}

// Progress receives one-line progress notes; nil discards them.
type Progress func(format string, args ...any)

func (p Progress) printf(format string, args ...any) {
	if p != nil {
		p(format, args...)
	}
}

// AfterLoad, when not nil, is called by Run after the load and its grace,
// while the group still runs: the worker's --memprofile writes a heap
// profile there, when the group holds what it holds at its largest (after
// Stop, the live heap would be gone).
var AfterLoad func(Spec)

// BeforeLoad, when not nil, is called by Run after the warm-up, just
// before the load: with AfterLoad it brackets what a workload measures
// (the worker's --cpuprofile-load profiles only that window, not the
// group's start, which dominates a whole-run profile at large N).
var BeforeLoad func(Spec)

// Run runs spec's workload on sys: it starts sys, measures, and stops it.
// It blocks for about the workload's duration plus start-up and grace.
// A system that cannot do what the workload needs (a drop ratio) gives a
// Result whose Note says so, not an error.
func Run(ctx context.Context, sys System, spec Spec, progress Progress) (Result, error) {
	if err := spec.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{
		System: sys.Name(), Workload: spec.Workload, Peers: spec.Peers, Size: spec.Size,
		DurationS: time.Duration(spec.Duration).Seconds(), Order: spec.Order,
	}
	if spec.Store != "" || spec.FanoutThreshold != 0 || spec.TreeThreshold != 0 {
		res.Note = fmt.Sprintf("experiment: store %q, fanout threshold %d, tree threshold %d", spec.Store, spec.FanoutThreshold, spec.TreeThreshold)
	}
	cfg := SystemConfig{Peers: spec.Peers, Size: spec.Size, Order: spec.Order, Progress: progress,
		Store: spec.Store, FanoutThreshold: spec.FanoutThreshold, TreeThreshold: spec.TreeThreshold}
	switch spec.Workload {
	case WorkloadTraffic, WorkloadLoss: // they report bytes per delivery
	default:
		// Latency too: traffic runs the same load and reports the bytes,
		// and hearsay's count (every socket of the process read each
		// second, 9 % of the CPU of N=50's latency load) would fall on the
		// latencies it measures.
		cfg.NoWire = true
	}
	if spec.Workload == WorkloadLoss {
		cfg.Drop = spec.Drop
		res.Drop = spec.Drop
	}
	if spec.Workload != WorkloadThroughput && spec.Workload != WorkloadIdle {
		res.Rate = spec.Rate
	}

	// Cost is measured from a clean slate: return freed memory to the
	// OS and reset the kernel's peak-RSS mark before the peers start.
	debug.FreeOSMemory()
	peakReset := resetPeakRSS()

	// A group of N in-process peers may need ~N² descriptors (see
	// raiseFileLimit); the limit goes into the progress, so a run that
	// hits it can be told from one that is merely slow.
	files, err := raiseFileLimit()
	if err != nil {
		progress.printf("%s %s: %v", sys.Name(), spec.Workload, err)
	}

	rec := newRecorder(spec.Peers)
	progress.printf("%s %s: starting %d peers (open-file limit %d)", sys.Name(), spec.Workload, spec.Peers, files)
	fw := watchFiles(time.Second)
	defer fw.Stop()
	startedAt := time.Now()
	err = sys.Start(ctx, cfg, rec)
	defer sys.Stop()
	if errors.Is(err, ErrUnsupported) {
		res.Note = err.Error()
		return res, nil
	}
	if err != nil {
		if note := fw.nearLimit(); note != "" {
			err = fmt.Errorf("%w (%s)", err, note)
		}
		return res, fmt.Errorf("start %s with %d peers: %w", sys.Name(), spec.Peers, err)
	}
	up := time.Since(startedAt)
	res.UpS = F(up.Seconds())
	progress.printf("%s %s: %d peers up in %v (%d open files)", sys.Name(), spec.Workload, spec.Peers, up.Round(time.Millisecond), fw.Peak())

	if spec.Workload == WorkloadIdle {
		res, err := runIdle(ctx, spec, res)
		res.PeakFiles = fw.Stop()
		return res, err
	}

	var nextID atomic.Uint64
	warmStart := time.Now()
	if note := warmUp(ctx, sys, rec, spec, &nextID); note != "" {
		res.Note = note
	}
	warm := time.Since(warmStart)
	res.WarmUpS = F(warm.Seconds())
	progress.printf("%s %s: warm-up done in %v (%d open files)", sys.Name(), spec.Workload, warm.Round(time.Millisecond), fw.Peak())
	if spec.Workload != WorkloadCost {
		defer measureGC(spec.Peers)()
	}

	if BeforeLoad != nil {
		BeforeLoad(spec)
	}
	c0 := sys.Counters()
	cpu0 := cpuSeconds()
	first := nextID.Load()
	loadStart := time.Now()
	var loadTime time.Duration
	switch spec.Workload {
	case WorkloadThroughput:
		loadTime, err = driveWindow(ctx, sys, rec, spec, &nextID, progress)
	default:
		loadTime, err = driveRate(ctx, sys, rec, spec, &nextID, progress)
	}
	if err != nil {
		return res, err
	}
	last := nextID.Load()
	// Wait for the stragglers: until everything is delivered or the
	// grace period ends.
	rec.waitComplete(ctx, first, last, time.Duration(spec.Grace))
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	cpu1 := cpuSeconds()
	c1 := sys.Counters()
	t := rec.tally(first, last)
	if AfterLoad != nil {
		AfterLoad(spec)
	}

	res.Sent = t.sent
	receivers := float64(t.sent) * float64(spec.Peers-1)
	res.DeliveredRatio = F(Ratio(float64(t.deliveries), receivers))
	if d := rec.duplicates.Load(); d > 0 {
		res.Note = joinNote(res.Note, fmt.Sprintf("%d duplicate deliveries", d))
	}
	sum := Summarize(t.latencies)
	if sum.N > 0 {
		res.P50ms, res.P99ms, res.MaxMs = F(ms(sum.P50)), F(ms(sum.P99)), F(ms(sum.Max))
		if spec.Workload == WorkloadLatency || spec.Workload == WorkloadLoss {
			res.CDFms = make([]float64, len(sum.CDF))
			for i, d := range sum.CDF {
				res.CDFms[i] = ms(d)
			}
		}
	}
	if t.full < t.sent {
		res.Note = joinNote(res.Note, fmt.Sprintf("%d of %d messages never reached every peer (latency is of the %d that did); in send order: %s", t.sent-t.full, t.sent, t.full, t.shortList()))
	}
	switch spec.Workload {
	case WorkloadTraffic, WorkloadLatency, WorkloadLoss:
		res.CopiesPerMessage = F(Ratio(float64(c1.Copies-c0.Copies), receivers))
		if c1.WireKnown {
			if c1.WireBytes >= c0.WireBytes { // a count only grows; guard against a system's that does not
				res.BytesPerDelivery = F(Ratio(float64(c1.WireBytes-c0.WireBytes), float64(t.deliveries)))
			}
		}
		res.FrameBytesPerDelivery = frameBytesPerDelivery(c0, c1, t.deliveries)
	case WorkloadThroughput:
		// The rate is what was completed over the time it took: the
		// load phase plus however long the last in-flight messages
		// needed.
		span := max(loadTime, rec.lastFull(first, last).Sub(loadStart))
		res.MsgsPerS = F(Ratio(float64(t.full), span.Seconds()))
		res.DeliveriesPerS = F(Ratio(float64(t.deliveries), span.Seconds()))
		res.CopiesPerMessage = F(Ratio(float64(c1.Copies-c0.Copies), receivers))
		// The process's CPU over the load and the stragglers' wait: on a
		// shared machine the rate says how much CPU the system got, the
		// CPU per delivery what it did with it.
		res.CPUs = F(cpu1 - cpu0)
	case WorkloadCost:
		res.CPUs = F(cpu1 - cpu0)
		res.PeakRSSMB = F(peakRSSMB())
		if !peakReset {
			res.Note = joinNote(res.Note, "peak RSS is the process lifetime maximum")
		}
	}
	res.PeakFiles = fw.Stop()
	if note := limitNote(res.PeakFiles, files); note != "" {
		res.Note = joinNote(res.Note, note)
	}
	progress.printf("%s %s: done, %d sent, delivered ratio %.4f, %d open files at most", sys.Name(), spec.Workload, t.sent, *res.DeliveredRatio, res.PeakFiles)
	return res, nil
}

// measureGC prepares the garbage collector for a latency measurement of
// peers peers in this process and returns the function that restores it.
// The peers share one heap and one collector: at 50 peers a mark phase
// scans ~30,000 goroutine stacks and ~250 MB and lasts ~150 ms, during
// which every peer's receive path slows down at once, so a few messages
// per collection take ~5x the median. Each peer in its own process
// collects its own small heap in a few milliseconds, independently of the
// others. So the start-up garbage is collected before the load, and the
// collector runs a factor peers/10 (at least 1) less often during it, as
// if each group of 10 peers had a heap of its own. GOGC, when set, wins.
// The cost workload keeps the defaults: it measures CPU and memory.
//
// The heap may then grow to peers/10 times its live size between
// collections: at N=200, 21 times a live heap of hundreds of MB, more than
// the machine has. A soft memory limit of a third of the memory available
// when the load starts (GOMEMLIMIT, when set, wins) makes the collector
// run before that, as N separate processes would each have been bounded.
func measureGC(peers int) (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set || peers <= 10 {
		return func() {}
	}
	runtime.GC()
	old := debug.SetGCPercent(100 * peers / 10)
	oldLimit := int64(-1) // -1 reads the limit without changing it
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if avail := memAvailable(); avail > 0 {
			oldLimit = debug.SetMemoryLimit(int64(min(avail/3, math.MaxInt64)))
		}
	}
	return func() {
		debug.SetGCPercent(old)
		if oldLimit >= 0 {
			debug.SetMemoryLimit(oldLimit)
		}
	}
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// runIdle keeps the started group idle for the duration and reports the
// process's resident set.
func runIdle(ctx context.Context, spec Spec, res Result) (Result, error) {
	cpu0 := cpuSeconds()
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(time.Duration(spec.Duration)):
	}
	res.CPUs = F(cpuSeconds() - cpu0)
	res.IdleRSSMB = F(rssMB())
	res.PeakRSSMB = F(peakRSSMB())
	return res, nil
}

// warmUp sends one message from every peer and waits (at most
// warmUpTimeout) until they are delivered, so that connections exist
// before measuring. It returns a note, naming the messages that fell
// short, when the warm-up did not complete.
func warmUp(ctx context.Context, sys System, rec *recorder, spec Spec, nextID *atomic.Uint64) string {
	first := nextID.Load()
	for p := 0; p < spec.Peers; p++ {
		id := nextID.Add(1) - 1
		rec.register(id, p, time.Now())
		if err := sys.Send(ctx, p, makePayload(id, spec.Size)); err != nil {
			return fmt.Sprintf("warm-up send failed: %v", err)
		}
	}
	last := nextID.Load()
	wait := warmUpTimeout(spec.Peers, spec.Workload)
	if !rec.waitComplete(ctx, first, last, wait) && ctx.Err() == nil {
		// Which peers' messages, as for the load's: the warm-up sends
		// one from each peer in peer order, so #k is peer k-1's.
		t := rec.tally(first, last)
		return fmt.Sprintf("warm-up incomplete after %v (%d of %d peers' messages not everywhere: %s)", wait, t.sent-t.full, t.sent, t.shortList())
	}
	return ""
}

// warmUpTimeout is how long the warm-up of a group of peers may take: 10 s
// (5 s under loss), plus 100 ms per peer above 50. Its N messages make
// N(N−1) deliveries, and a system that connects lazily sets its
// connections up during it (a hearsay full mesh of 100 is ~10,000 TLS
// handshakes of ~1 ms CPU each, on 2 cores shared by the whole group).
// Under loss a system without repair never completes it; with repair,
// each peer's one warm-up message has no successor to reveal a loss, so
// only anti-entropy rounds (1 s) repair it.
func warmUpTimeout(peers int, workload string) time.Duration {
	base := 10 * time.Second
	if workload == WorkloadLoss {
		base = 5 * time.Second
	}
	return base + time.Duration(max(0, peers-50))*100*time.Millisecond
}

// driveRate sends from peer 0 at spec.Rate for spec.Duration. When a Send
// takes longer than the interval the missed ticks are skipped (the
// achieved rate is Sent/Duration).
func driveRate(ctx context.Context, sys System, rec *recorder, spec Spec, nextID *atomic.Uint64, progress Progress) (time.Duration, error) {
	interval := time.Duration(float64(time.Second) / spec.Rate)
	start := time.Now()
	end := start.Add(time.Duration(spec.Duration))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastNote := start
	for {
		id := nextID.Add(1) - 1
		rec.register(id, 0, time.Now())
		if err := sys.Send(ctx, 0, makePayload(id, spec.Size)); err != nil {
			return 0, fmt.Errorf("send: %w", err)
		}
		if time.Since(lastNote) >= 2*time.Second {
			lastNote = time.Now()
			progress.printf("%s %s: %.0f%% of %v", sys.Name(), spec.Workload, 100*time.Since(start).Seconds()/time.Duration(spec.Duration).Seconds(), time.Duration(spec.Duration))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case now := <-tick.C:
			if !now.Before(end) {
				return time.Since(start), nil
			}
		}
	}
}

// expireAfter is how long a throughput message may hold its sender's
// window slot before the slot is given back (the message is then counted
// as not fully delivered unless it completes before the end): 2 s, plus
// 40 ms per peer above 50. A larger group takes longer to deliver a
// message to everyone under full load (every peer sends and every message
// costs N−1 verifications in this process), and a slot given back while
// the message is still on its way lets more than the window into flight.
func expireAfter(peers int) time.Duration {
	return 2*time.Second + time.Duration(max(0, peers-50))*40*time.Millisecond
}

// driveWindow runs every peer as a sender with at most spec.Window
// messages in flight each, for spec.Duration: a closed loop that sends as
// fast as the group delivers.
func driveWindow(ctx context.Context, sys System, rec *recorder, spec Spec, nextID *atomic.Uint64, progress Progress) (time.Duration, error) {
	slots := make([]chan struct{}, spec.Peers)
	for i := range slots {
		slots[i] = make(chan struct{}, spec.Window)
	}
	release := func(m *msgRec) {
		rec.mu.Lock()
		if m.released {
			rec.mu.Unlock()
			return
		}
		m.released = true
		rec.mu.Unlock()
		<-slots[m.from]
	}
	rec.mu.Lock()
	rec.onFull = release
	rec.mu.Unlock()
	defer func() {
		rec.mu.Lock()
		rec.onFull = nil
		rec.mu.Unlock()
	}()

	lctx, cancel := context.WithTimeout(ctx, time.Duration(spec.Duration))
	defer cancel()
	start := time.Now()
	first := nextID.Load()
	var wg sync.WaitGroup
	errc := make(chan error, spec.Peers)

	// The janitor gives back the slots of messages stuck for expireAfter
	// (lost by a system without repair), so that a sender never stalls.
	expire := expireAfter(spec.Peers)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		low := first
		lastNote := time.Now()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			var stuck []*msgRec
			rec.mu.Lock()
			hi := uint64(len(rec.msgs))
			for id := low; id < hi; id++ {
				m := rec.msgs[id]
				if m == nil || m.released {
					if id == low {
						low++
					}
					continue
				}
				if time.Since(m.sent) > expire {
					stuck = append(stuck, m)
				}
			}
			rec.mu.Unlock()
			for _, m := range stuck {
				release(m)
			}
			if time.Since(lastNote) >= 2*time.Second {
				lastNote = time.Now()
				progress.printf("%s throughput: %.0f%% of %v, %d sent", sys.Name(), 100*time.Since(start).Seconds()/time.Duration(spec.Duration).Seconds(), time.Duration(spec.Duration), nextID.Load()-first)
			}
		}
	}()
	for p := 0; p < spec.Peers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-lctx.Done():
					return
				case slots[p] <- struct{}{}:
				}
				id := nextID.Add(1) - 1
				rec.register(id, p, time.Now())
				// A send that has begun completes even when the load
				// phase ends meanwhile (ctx, not lctx): a message half
				// sent would count as lost.
				if err := sys.Send(ctx, p, makePayload(id, spec.Size)); err != nil {
					rec.forget(id)
					if ctx.Err() == nil {
						errc <- fmt.Errorf("send from peer %d: %w", p, err)
						cancel()
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return elapsed, ctx.Err()
}

// frameBytesPerDelivery divides the frame bytes written between c0 and c1
// by deliveries, per frame kind, with the wire bytes the frames do not
// account for as "unframed" (TLS handshakes, memberlist's TCP push/pulls:
// the kernel counts them, the nodes do not). Nil when the system does not
// count frames or nothing was delivered.
func frameBytesPerDelivery(c0, c1 Counters, deliveries int) map[string]float64 {
	if c1.FrameBytes == nil || deliveries == 0 {
		return nil
	}
	out := make(map[string]float64, len(c1.FrameBytes)+1)
	var framed uint64
	for k, v := range c1.FrameBytes {
		if v0 := c0.FrameBytes[k]; v > v0 { // a count only grows
			framed += v - v0
			out[k] = *F(float64(v-v0) / float64(deliveries))
		}
	}
	if c1.WireKnown && c1.WireBytes >= c0.WireBytes {
		if wire := c1.WireBytes - c0.WireBytes; wire > framed {
			out[UnframedKind] = *F(float64(wire-framed) / float64(deliveries))
		}
	}
	return out
}
