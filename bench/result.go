package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
)

// Result is the outcome of one workload on one system. Its JSON form is one
// line of `hearsay bench --json`; a figure that does not apply to the
// workload is left out (nil).
type Result struct {
	System   string `json:"system"`
	Workload string `json:"workload"`
	Peers    int    `json:"peers"`

	// Workload parameters, for the record.
	Size      int     `json:"size,omitempty"`
	Rate      float64 `json:"rate,omitempty"`
	DurationS float64 `json:"duration_s,omitempty"`
	Drop      float64 `json:"drop,omitempty"`
	Order     string  `json:"order,omitempty"`

	// Sent is the number of measured messages published.
	Sent int `json:"sent,omitempty"`

	// Latency from send to delivery by every other peer, of the messages
	// that reached every peer.
	P50ms *float64 `json:"p50_ms,omitempty"`
	P99ms *float64 `json:"p99_ms,omitempty"`
	MaxMs *float64 `json:"max_ms,omitempty"`
	// CDFms is the latency distribution: percentiles 0 to 100.
	CDFms []float64 `json:"cdf_ms,omitempty"`

	// DeliveredRatio is deliveries / (sent × (peers − 1)).
	DeliveredRatio *float64 `json:"delivered_ratio,omitempty"`
	// CopiesPerMessage is copies received from the network / (sent ×
	// (peers − 1)); 1.0 is the optimum.
	CopiesPerMessage *float64 `json:"copies_per_message,omitempty"`
	// BytesPerDelivery is the wire bytes received / deliveries; compare
	// with Size.
	BytesPerDelivery *float64 `json:"bytes_per_delivery,omitempty"`
	// FrameBytesPerDelivery breaks the bytes per delivery down by chat
	// frame kind (hearsay: the frames its links wrote, with their length
	// prefix and TLS record overhead, chat Stats.FrameBytes) / deliveries;
	// UnframedKind is the rest of BytesPerDelivery (TLS handshakes,
	// memberlist's TCP push/pulls). Counted on the sending side, so the
	// kinds may sum to a little more or less than BytesPerDelivery (frames
	// in flight when the count was taken).
	FrameBytesPerDelivery map[string]float64 `json:"frame_bytes_per_delivery,omitempty"`

	MsgsPerS       *float64 `json:"msgs_per_s,omitempty"`
	DeliveriesPerS *float64 `json:"deliveries_per_s,omitempty"`

	// Cost: CPU seconds (user + system) of the whole process during the
	// load (throughput: and until the last message was delivered or the
	// grace ended), and its peak resident set.
	CPUs      *float64 `json:"cpu_s,omitempty"`
	PeakRSSMB *float64 `json:"peak_rss_mb,omitempty"`
	// IdleRSSMB is the resident set of a process running one idle peer.
	IdleRSSMB *float64 `json:"idle_rss_mb,omitempty"`
	// RSSPerPeerMB and CPUPerPeerS are the cost of one more in-process
	// peer: the difference between runs at N and N+k, divided by k.
	RSSPerPeerMB *float64 `json:"rss_per_extra_peer_mb,omitempty"`
	CPUPerPeerS  *float64 `json:"cpu_per_extra_peer_s,omitempty"`

	// UpS is the time from starting the peers until the group was ready
	// (every peer sees every other; see each System's Start), WarmUpS the
	// warm-up after it (one message from every peer delivered by every
	// peer, or the warm-up's timeout), in seconds.
	UpS     *float64 `json:"up_s,omitempty"`
	WarmUpS *float64 `json:"warmup_s,omitempty"`
	// PeakFiles is the most descriptors the process had open during the
	// run (sampled every second; -1 when it cannot tell): at large N an
	// in-process group's connections need about two per link.
	PeakFiles int `json:"peak_files,omitempty"`

	// Note says what limits or qualifies the figures ("not supported
	// yet", warm-up incomplete…).
	Note string `json:"note,omitempty"`
}

// F returns a pointer to x rounded to 3 decimals, for Result fields.
func F(x float64) *float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 3, 64), 64)
	return &r
}

// WriteJSON writes r as one JSON line.
func WriteJSON(w io.Writer, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// WriteTable writes results as an aligned text table, one row per result.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\tworkload\tpeers\tp50 ms\tp99 ms\tmax ms\tdelivered\tcopies/msg\tB/delivery\tmsgs/s\tdeliveries/s\tcpu s\tpeak RSS MB\t\tnote")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\t%s\n",
			r.System, r.Workload, r.Peers, cell(r.P50ms, 2), cell(r.P99ms, 2), cell(r.MaxMs, 2),
			cell(r.DeliveredRatio, 4), cell(r.CopiesPerMessage, 2), cell(r.BytesPerDelivery, 0),
			cell(r.MsgsPerS, 0), cell(r.DeliveriesPerS, 0), cell(r.CPUs, 2), cell(r.PeakRSSMB, 1), costNote(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeKindTable(w, results)
}

// UnframedKind is the key of FrameBytesPerDelivery for the wire bytes no
// frame accounts for.
const UnframedKind = "unframed"

// writeKindTable writes, for the results that have one, the breakdown of
// bytes per delivery by frame kind: a row per result, a column per kind
// seen in any of them, the largest share first and "unframed" last.
func writeKindTable(w io.Writer, results []Result) error {
	total := map[string]float64{}
	var rows []Result
	for _, r := range results {
		if len(r.FrameBytesPerDelivery) == 0 {
			continue
		}
		rows = append(rows, r)
		for k, v := range r.FrameBytesPerDelivery {
			total[k] += v
		}
	}
	if len(rows) == 0 {
		return nil
	}
	kinds := make([]string, 0, len(total))
	for k := range total {
		if k != UnframedKind {
			kinds = append(kinds, k)
		}
	}
	sort.Slice(kinds, func(i, j int) bool {
		if total[kinds[i]] != total[kinds[j]] {
			return total[kinds[i]] > total[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	if _, ok := total[UnframedKind]; ok {
		kinds = append(kinds, UnframedKind)
	}
	if _, err := fmt.Fprintln(w, "\nbytes per delivery by frame kind:"); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "system\tworkload\tpeers")
	for _, k := range kinds {
		fmt.Fprintf(tw, "\t%s", k)
	}
	fmt.Fprintln(tw, "\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d", r.System, r.Workload, r.Peers)
		for _, k := range kinds {
			if v, ok := r.FrameBytesPerDelivery[k]; ok {
				fmt.Fprintf(tw, "\t%s", strconv.FormatFloat(v, 'f', 1, 64))
			} else {
				fmt.Fprint(tw, "\t-")
			}
		}
		fmt.Fprintln(tw, "\t")
	}
	return tw.Flush()
}

func costNote(r Result) string {
	s := r.Note
	add := func(t string) {
		if s != "" {
			s += "; "
		}
		s += t
	}
	if r.IdleRSSMB != nil {
		add(fmt.Sprintf("idle peer process %.1f MB", *r.IdleRSSMB))
	}
	if r.RSSPerPeerMB != nil {
		add(fmt.Sprintf("+%.2f MB per extra peer", *r.RSSPerPeerMB))
	}
	if r.CPUPerPeerS != nil {
		add(fmt.Sprintf("+%.3f cpu s per extra peer", *r.CPUPerPeerS))
	}
	return s
}

func cell(p *float64, prec int) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', prec, 64)
}
