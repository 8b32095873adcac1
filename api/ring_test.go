package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
)

// TestRing: numbering, wrap-around, the missed count and positions.
func TestRing(t *testing.T) {
	r := api.NewRing(4)
	if after, ok := r.Position(""); after != 0 || !ok {
		t.Errorf("empty ring: Position(\"\") = %d, %v", after, ok)
	}
	for i := 1; i <= 6; i++ {
		r.Publish(hearsay.Event{Type: "message", Text: strconv.Itoa(i)})
	}
	if r.Last() != 6 || r.Len() != 4 {
		t.Fatalf("last %d len %d, want 6 and 4", r.Last(), r.Len())
	}
	for _, tc := range []struct {
		after      uint64
		max        int
		want       string
		wantMissed uint64
	}{
		{0, 10, "3 4 5 6", 2},
		{2, 10, "3 4 5 6", 0},
		{3, 2, "4 5", 0},
		{5, 10, "6", 0},
		{6, 10, "", 0},
		{99, 10, "", 0},
	} {
		got, missed, _ := r.After(tc.after, tc.max)
		var s []string
		for _, e := range got {
			s = append(s, e.Event.Text)
			if e.ID != fmt.Sprintf("%s-%d", r.Epoch(), e.Seq) || e.Event.Text != strconv.FormatUint(e.Seq, 10) {
				t.Errorf("entry %+v", e)
			}
		}
		if strings.Join(s, " ") != tc.want || missed != tc.wantMissed {
			t.Errorf("After(%d, %d) = %q missed %d, want %q missed %d", tc.after, tc.max, s, missed, tc.want, tc.wantMissed)
		}
	}
	for _, tc := range []struct {
		id    string
		after uint64
		ok    bool
	}{
		{"", 6, true},
		{r.Epoch() + "-4", 4, true},
		{r.Epoch() + "-0", 0, true},
		{r.Epoch() + "-7", 2, false},
		{"other-4", 2, false},
		{r.Epoch() + "-x", 2, false},
		{r.Epoch(), 2, false},
	} {
		after, ok := r.Position(tc.id)
		if after != tc.after || ok != tc.ok {
			t.Errorf("Position(%q) = %d, %v, want %d, %v", tc.id, after, ok, tc.after, tc.ok)
		}
	}
	// A reader waiting on an empty read is woken by the next Publish.
	_, _, wait := r.After(6, 1)
	select {
	case <-wait:
		t.Fatal("woken before a publish")
	default:
	}
	r.Publish(hearsay.Event{Type: "message"})
	<-wait
}

// FuzzRingPosition: any client-sent Last-Event-ID gives a position
// within the ring's range, never a panic.
func FuzzRingPosition(f *testing.F) {
	r := api.NewRing(8)
	for range 20 {
		r.Publish(hearsay.Event{Type: "message"})
	}
	f.Add(r.Epoch() + "-5")
	f.Add(r.Epoch() + "-18446744073709551615")
	f.Add("-")
	f.Add("")
	f.Fuzz(func(t *testing.T, id string) {
		after, ok := r.Position(id)
		if after > r.Last() {
			t.Fatalf("Position(%q) = %d beyond the last event %d", id, after, r.Last())
		}
		if !ok && after != r.Last()-uint64(r.Len()) {
			t.Fatalf("Position(%q) of another run = %d, want the oldest held", id, after)
		}
		got, _, _ := r.After(after, 100)
		if len(got) > r.Len() {
			t.Fatalf("After gave %d events from a ring of %d", len(got), r.Len())
		}
	})
}

// FuzzStreamEvents: the client's SSE reader takes any bytes a server
// sends without panicking, and every event it hands on decoded.
func FuzzStreamEvents(f *testing.F) {
	f.Add([]byte("id: a-1\ndata: {\"type\":\"message\",\"time\":\"2026-01-01T00:00:00Z\",\"text\":\"hi\"}\n\n: keep-alive\n\n"))
	f.Add([]byte("event: gap\ndata: {\"type\":\"gap\",\"time\":\"2026-01-01T00:00:00Z\"}\n\n"))
	f.Add([]byte("data: {\"type\":\n\n"))
	f.Add([]byte("data: " + strings.Repeat("x", 70000) + "\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &api.Client{BaseURL: "http://fuzz", Token: "t", HTTP: &http.Client{Transport: bodyTransport(body)}}
		err := c.StreamEvents(context.Background(), "", "", func(s api.Streamed) error {
			if s.Event.Type == "" {
				t.Fatalf("event without a type from %q", s.JSON)
			}
			return nil
		})
		if err == nil {
			t.Fatal("StreamEvents returned nil; it ends with io.EOF or an error")
		}
	})
}

// bodyTransport answers every request with 200 and body.
type bodyTransport []byte

func (b bodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
		Body: io.NopCloser(bufio.NewReader(bytes.NewReader(b))), Request: req}, nil
}

// TestRingByteBound: large events are dropped oldest first once the
// ring's text passes its byte bound, and the newest is always kept.
func TestRingByteBound(t *testing.T) {
	r := api.NewRing(1000)
	big := strings.Repeat("x", 64<<10)
	for i := 1; i <= 600; i++ {
		r.Publish(hearsay.Event{Type: "message", Text: big + strconv.Itoa(i)})
	}
	if n := r.Len(); n >= 600 || n*len(big) > api.DefaultRingBytes || n < api.DefaultRingBytes/len(big)-2 {
		t.Fatalf("ring holds %d events of 64 KiB, want about %d", n, api.DefaultRingBytes/len(big))
	}
	got, missed, _ := r.After(0, 1000)
	if missed != uint64(600-len(got)) || got[len(got)-1].Event.Text != big+"600" || got[0].Seq != uint64(600-len(got)+1) {
		t.Errorf("After(0): %d events from seq %d, missed %d", len(got), got[0].Seq, missed)
	}
	huge := strings.Repeat("y", api.DefaultRingBytes+1)
	r.Publish(hearsay.Event{Type: "message", Text: huge})
	if got, _, _ := r.After(600, 10); len(got) != 1 || got[0].Event.Text != huge || r.Len() != 1 {
		t.Errorf("an event over the bound: ring holds %d", r.Len())
	}
}
