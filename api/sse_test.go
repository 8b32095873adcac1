package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

func publishN(ring *api.Ring, from, n int, room string) {
	for i := from; i < from+n; i++ {
		ring.Publish(hearsay.Event{Type: hearsay.EventMessage, Time: time.Unix(1700000000, int64(i)).UTC(), Room: room, From: "alice",
			FromID: fakeID, ID: fmt.Sprintf("%s/%d", fakeID, i), Text: fmt.Sprintf("m%d", i)})
	}
}

func client(srv *api.Server) *api.Client {
	return &api.Client{BaseURL: srv.URL(), Token: srv.Token()}
}

// TestEventsResumeAfterDrop: a client drops its stream after some
// events; more are published while it is away; resuming with the last
// ID it saw gives exactly the rest: nothing lost, nothing twice. The data
// of each event is its --json line.
func TestEventsResumeAfterDrop(t *testing.T) {
	srv, ring := startServer(t, newFakePeer(), nil)
	c := client(srv)
	self, err := c.Self(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	publishN(ring, 1, 10, "lobby")
	first := collect(t, c, "", self.EventsID, 4)
	publishN(ring, 11, 10, "lobby") // while the client is away
	rest := collect(t, c, "", first[len(first)-1].ID, 16)
	all := append(first, rest...)
	for i, s := range all {
		want := fmt.Sprintf("m%d", i+1)
		if s.Event.Text != want {
			t.Fatalf("event %d: %q, want %q (all: %v)", i, s.Event.Text, want, texts(all))
		}
		if s.ID != fmt.Sprintf("%s-%d", ring.Epoch(), i+1) {
			t.Errorf("event %d: id %q", i, s.ID)
		}
		line, _ := json.Marshal(s.Event)
		if string(line) != string(s.JSON) {
			t.Errorf("event %d data %s, want the --json line %s", i, s.JSON, line)
		}
	}
	// Live: an event published while the stream waits arrives.
	done := make(chan []api.Streamed, 1)
	go func() { done <- collect(t, c, "", all[len(all)-1].ID, 1) }()
	publishN(ring, 21, 1, "lobby")
	if got := <-done; got[0].Event.Text != "m21" {
		t.Errorf("live event %q, want m21", got[0].Event.Text)
	}
}

func texts(ss []api.Streamed) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Event.Text)
	}
	return out
}

// TestEventsGap: a client further behind than the ring holds is told how
// many events it missed, then gets the oldest held; an ID of another run
// of the peer is told too.
func TestEventsGap(t *testing.T) {
	srv, ring := startServer(t, newFakePeer(), nil) // ring of 64
	c := client(srv)
	publishN(ring, 1, 100, "lobby")
	got := collect(t, c, "", ring.Epoch()+"-0", 2)
	if got[0].Event.Type != api.EventGap || !strings.Contains(got[0].Event.Text, "36 events were missed") {
		t.Errorf("first event %+v, want a gap of 36", got[0].Event)
	}
	if got[1].Event.Text != "m37" {
		t.Errorf("after the gap %q, want m37", got[1].Event.Text)
	}
	for _, id := range []string{"0123456789ab-5", "garbage", ring.Epoch() + "-1000"} {
		got = collect(t, c, "", id, 2)
		if got[0].Event.Type != api.EventGap || got[1].Event.Text != "m37" {
			t.Errorf("resume from %q: %+v then %q, want a gap then m37", id, got[0].Event, got[1].Event.Text)
		}
	}
}

// TestEventsRoomFilter: ?room= keeps that room's events; resuming a
// filtered stream neither repeats nor loses that room's events.
func TestEventsRoomFilter(t *testing.T) {
	srv, ring := startServer(t, newFakePeer(), nil)
	c := client(srv)
	self, _ := c.Self(context.Background())
	publishN(ring, 1, 3, "lobby")
	publishN(ring, 4, 3, "dev")
	publishN(ring, 7, 3, "lobby")
	publishN(ring, 10, 3, "dev")
	a := collect(t, c, "#dev", self.EventsID, 2)
	b := collect(t, c, "dev", a[1].ID, 4)
	if got := strings.Join(texts(append(a, b...)), " "); got != "m4 m5 m6 m10 m11 m12" {
		t.Errorf("dev events %q", got)
	}
}

// openStreams reads the open-streams gauge from the server's metrics.
func openStreams(t *testing.T, m *api.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "hearsay_api_event_streams" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestEventsEndOnClose: Close ends open streams at once rather than
// waiting for them (a stream is never idle, so the HTTP server alone
// would wait for its whole timeout).
func TestEventsEndOnClose(t *testing.T) {
	p := newFakePeer()
	m := api.NewMetrics()
	ring := api.NewRing(8)
	m.Attach(p, ring)
	srv, err := api.Start(p, api.Config{Metrics: m, Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	c := client(srv)
	errc := make(chan error, 1)
	go func() {
		errc <- c.StreamEvents(context.Background(), "", "", func(api.Streamed) error { return nil })
	}()
	if !chattest.Poll(chattest.DefaultTimeout, func() bool { return openStreams(t, m) == 1 }) {
		t.Fatal("the stream did not open")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("close with an open stream: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v, want io.EOF", err)
		}
	case <-time.After(chattest.DefaultTimeout):
		t.Fatal("the stream did not end when the server closed")
	}
	if n := openStreams(t, m); n != 0 {
		t.Errorf("%v streams open after close", n)
	}
}
