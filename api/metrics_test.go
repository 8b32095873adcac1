package api_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// livePeer is a real chat node with its API: its events pumped into the
// ring (what cmd/hearsay's tee does), its latencies into the metrics.
type livePeer struct {
	node *chat.Node
	srv  *api.Server
	ring *api.Ring
}

func startLive(t *testing.T, nick string) *livePeer {
	t.Helper()
	m := api.NewMetrics()
	cfg := chattest.Config(t, nick)
	cfg.Observer = m
	n, err := chat.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ring := api.NewRing(0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ends when Shutdown closes Events
		defer wg.Done()
		for ev := range n.Events() {
			ring.Publish(ev)
		}
	}()
	t.Cleanup(func() {
		n.Shutdown()
		wg.Wait()
	})
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Attach(n, ring)
	srv, err := api.Start(n, api.Config{DataDir: cfg.DataDir, Ring: ring, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return &livePeer{node: n, srv: srv, ring: ring}
}

// scrape GETs /metrics and parses it with Prometheus's text parser.
func scrape(t *testing.T, p *livePeer) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", p.srv.URL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.srv.Token())
	req.Header.Set("Accept", "text/plain") // the text format, not protobuf
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %s", res.Status)
	}
	if ct := expfmt.ResponseFormat(res.Header); ct.FormatType() != expfmt.TypeTextPlain {
		t.Fatalf("/metrics content type %q, want the text format", res.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value returns the value of the family's metric whose labels include
// the given pairs (-1 when none).
func value(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf, ok := mfs[name]
	if !ok {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetricsMoveWithMessages: two real peers; a scrape parses with the
// Prometheus text parser, has every Stats counter, and the counters,
// per-room gauges and both latency histograms move as messages flow.
func TestMetricsMoveWithMessages(t *testing.T) {
	a, b := startLive(t, "alice"), startLive(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), chattest.DefaultTimeout)
	defer cancel()
	if _, err := b.node.Join(ctx, []string{a.node.AdvertiseAddr()}); err != nil {
		t.Fatal(err)
	}
	chattest.WaitConverged(t, &chattest.Peer{Node: a.node}, &chattest.Peer{Node: b.node})

	before := scrape(t, a)
	for _, name := range []string{"hearsay_sent_total", "hearsay_received_total", "hearsay_delivered_total", "hearsay_duplicates_total",
		"hearsay_forged_total", "hearsay_queue_drops_total", "hearsay_streams", "hearsay_held_back", "hearsay_strangers_total",
		"hearsay_memberlist_health_score", "hearsay_send_queued_frames", "hearsay_events_queued", "hearsay_api_ring_events",
		"hearsay_send_stored_seconds", "hearsay_receive_delivered_seconds", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("scrape lacks %s", name)
		}
	}
	if got := value(before, "hearsay_members", "state", "alive"); got != 2 {
		t.Errorf("alive members %v, want 2", got)
	}
	if got := value(before, "hearsay_room_members", "room", "lobby"); got != 2 {
		t.Errorf("lobby members %v, want 2", got)
	}

	const n = 5
	for i := range n {
		if _, err := a.node.Send(ctx, "lobby", "from alice"); err != nil {
			t.Fatal(err, i)
		}
		if _, err := b.node.Send(ctx, "lobby", "from bob"); err != nil {
			t.Fatal(err, i)
		}
	}
	var after map[string]*dto.MetricFamily
	if !chattest.Poll(chattest.DefaultTimeout, func() bool {
		after = scrape(t, a)
		// Events reach the ring after delivery, through the event
		// reader's goroutine: wait for both.
		return value(after, "hearsay_delivered_total")-value(before, "hearsay_delivered_total") >= 2*n &&
			value(after, "hearsay_api_events_total")-max(0, value(before, "hearsay_api_events_total")) >= 2*n
	}) {
		t.Fatalf("delivered did not move by %d: %v → %v", 2*n, value(before, "hearsay_delivered_total"), value(after, "hearsay_delivered_total"))
	}
	for _, tc := range []struct {
		name   string
		labels []string
		min    float64
	}{
		{"hearsay_sent_total", nil, n},
		{"hearsay_received_total", nil, n},
		{"hearsay_stored_total", nil, 2 * n},
		{"hearsay_room_received_total", []string{"room", "lobby"}, 2 * n},
		{"hearsay_room_delivered_total", []string{"room", "lobby"}, 2 * n},
		{"hearsay_send_stored_seconds", nil, n},       // a's own sends
		{"hearsay_receive_delivered_seconds", nil, n}, // bob's messages at a
		{"hearsay_api_events_total", nil, 2 * n},
	} {
		moved := value(after, tc.name, tc.labels...) - max(0, value(before, tc.name, tc.labels...))
		if moved < tc.min {
			t.Errorf("%s%v moved by %v, want at least %v", tc.name, tc.labels, moved, tc.min)
		}
	}
}
