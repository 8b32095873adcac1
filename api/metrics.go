package api

// /metrics in the Prometheus text format. The counters are read from the
// peer when Prometheus scrapes (a collector, not counters kept twice):
// every field of hearsay.Stats becomes hearsay_<json name>_total (a
// counter) or hearsay_<json name> (a gauge, for the int fields that are
// current sizes), found by reflection so a counter added to Stats is
// exported without touching this file. Per-room gauges and counters,
// membership by state, memberlist's health score, queue sizes and the
// event ring's fill come from the same peer calls /v1/ uses. The two
// latency histograms are fed by the chat node as messages flow (Metrics
// implements chat.Observer).

import (
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hearsay-chat/hearsay"
)

// Metrics holds the peer's Prometheus registry. Create it before the chat
// node (its Observer methods go in the node's config) and Attach the peer
// once it exists.
type Metrics struct {
	reg             *prometheus.Registry
	sendStored      prometheus.Histogram
	receiveDelivery prometheus.Histogram
	coll            *collector
}

// latencyBuckets span 50 µs (a local store) to about 30 s (a message held
// back behind a partition).
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 4, 11)

// NewMetrics returns the metrics of one peer, on a registry of its own
// (several peers in one test process do not collide). It also exports the
// Go runtime and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.sendStored = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hearsay_send_stored_seconds",
		Help:    "Time from a send until the message is committed to the local log.",
		Buckets: latencyBuckets,
	})
	m.receiveDelivery = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "hearsay_receive_delivered_seconds",
		Help:    "Time a message received from a peer waited from its arrival until its ordering let it be delivered.",
		Buckets: latencyBuckets,
	})
	m.coll = &collector{}
	m.reg.MustRegister(m.sendStored, m.receiveDelivery, m.coll,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// SendStored implements chat.Observer.
func (m *Metrics) SendStored(d time.Duration) { m.sendStored.Observe(d.Seconds()) }

// ReceiveDelivered implements chat.Observer.
func (m *Metrics) ReceiveDelivered(d time.Duration) { m.receiveDelivery.Observe(d.Seconds()) }

// Attach sets the peer and event ring the collector reads at each scrape
// (before, a scrape shows the histograms and runtime only). Call it once,
// before the server starts (Start adds its stream count).
func (m *Metrics) Attach(p Peer, ring *Ring) {
	m.coll.peer, m.coll.ring = p, ring
}

// Registry returns the registry (tests gather it directly).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// statsField is one field of hearsay.Stats as a metric.
type statsField struct {
	index int
	desc  *prometheus.Desc
	kind  prometheus.ValueType
}

// statsFields describes every field of hearsay.Stats: uint64 fields are
// counters since Start, int fields are current sizes (gauges).
var statsFields = func() []statsField {
	t := reflect.TypeFor[hearsay.Stats]()
	var out []statsField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		help := "hearsay.Stats." + f.Name + " (see /v1/stats)."
		switch f.Type.Kind() {
		case reflect.Uint64:
			out = append(out, statsField{i, prometheus.NewDesc("hearsay_"+name+"_total", help, nil, nil), prometheus.CounterValue})
		case reflect.Int:
			out = append(out, statsField{i, prometheus.NewDesc("hearsay_"+name, help, nil, nil), prometheus.GaugeValue})
		}
	}
	return out
}()

var (
	descRoomMembers   = prometheus.NewDesc("hearsay_room_members", "Live members of a joined room, this peer included.", []string{"room"}, nil)
	descRoomHeld      = prometheus.NewDesc("hearsay_room_held_back", "Messages of a room waiting for their ordering condition.", []string{"room"}, nil)
	descRoomReceived  = prometheus.NewDesc("hearsay_room_received_total", "Chat messages of a room stored since start (own included).", []string{"room"}, nil)
	descRoomDelivered = prometheus.NewDesc("hearsay_room_delivered_total", "Chat messages of a room delivered since start (own included).", []string{"room"}, nil)
	descRoomsJoined   = prometheus.NewDesc("hearsay_rooms_joined", "Rooms this peer has joined.", nil, nil)
	descMembers       = prometheus.NewDesc("hearsay_members", "Members in the memberlist view by state, this peer included.", []string{"state"}, nil)
	descHealth        = prometheus.NewDesc("hearsay_memberlist_health_score", "memberlist's health (awareness) score: 0 is healthy, higher means this node is slow to answer probes.", nil, nil)
	descSendQueued    = prometheus.NewDesc("hearsay_send_queued_frames", "Frames waiting in the send queues of all peer streams.", nil, nil)
	descEventsQueued  = prometheus.NewDesc("hearsay_events_queued", "Events waiting in the node's event channel for their reader.", nil, nil)
	descRingEvents    = prometheus.NewDesc("hearsay_api_ring_events", "Events held by the API's event ring (for resuming streams).", nil, nil)
	descRingLast      = prometheus.NewDesc("hearsay_api_events_total", "Events published to the API's event ring since start.", nil, nil)
	descAPIStreams    = prometheus.NewDesc("hearsay_api_event_streams", "Open /v1/events streams.", nil, nil)
)

// collector reads the peer at each scrape.
type collector struct {
	peer    Peer
	ring    *Ring
	streams func() int
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range statsFields {
		ch <- f.desc
	}
	for _, d := range []*prometheus.Desc{descRoomMembers, descRoomHeld, descRoomReceived, descRoomDelivered, descRoomsJoined,
		descMembers, descHealth, descSendQueued, descEventsQueued, descRingEvents, descRingLast, descAPIStreams} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.peer == nil {
		return
	}
	st := reflect.ValueOf(c.peer.Stats())
	for _, f := range statsFields {
		v := st.Field(f.index)
		var x float64
		if v.Kind() == reflect.Uint64 {
			x = float64(v.Uint())
		} else {
			x = float64(v.Int())
		}
		ch <- prometheus.MustNewConstMetric(f.desc, f.kind, x)
	}
	joined := 0
	for _, ri := range c.peer.Rooms() {
		if !ri.Joined {
			continue
		}
		joined++
		ch <- prometheus.MustNewConstMetric(descRoomMembers, prometheus.GaugeValue, float64(len(ri.Members)), ri.Name)
		ch <- prometheus.MustNewConstMetric(descRoomHeld, prometheus.GaugeValue, float64(ri.HeldBack), ri.Name)
		ch <- prometheus.MustNewConstMetric(descRoomReceived, prometheus.CounterValue, float64(ri.Received), ri.Name)
		ch <- prometheus.MustNewConstMetric(descRoomDelivered, prometheus.CounterValue, float64(ri.Delivered), ri.Name)
	}
	ch <- prometheus.MustNewConstMetric(descRoomsJoined, prometheus.GaugeValue, float64(joined))
	states := map[hearsay.MemberState]int{hearsay.StateAlive: 0, hearsay.StateSuspect: 0, hearsay.StateDead: 0, hearsay.StateLeft: 0}
	for _, m := range c.peer.Members() {
		states[m.State]++
	}
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(n), string(s))
	}
	ch <- prometheus.MustNewConstMetric(descHealth, prometheus.GaugeValue, float64(c.peer.Health()))
	if q, ok := c.peer.(QueuePeer); ok {
		send, events := q.QueueLens()
		ch <- prometheus.MustNewConstMetric(descSendQueued, prometheus.GaugeValue, float64(send))
		ch <- prometheus.MustNewConstMetric(descEventsQueued, prometheus.GaugeValue, float64(events))
	}
	if c.ring != nil {
		ch <- prometheus.MustNewConstMetric(descRingEvents, prometheus.GaugeValue, float64(c.ring.Len()))
		ch <- prometheus.MustNewConstMetric(descRingLast, prometheus.CounterValue, float64(c.ring.Last()))
	}
	if c.streams != nil {
		ch <- prometheus.MustNewConstMetric(descAPIStreams, prometheus.GaugeValue, float64(c.streams()))
	}
}
