package api

// GET /v1/events: the peer's events as Server-Sent Events. Each event's
// data is the event's JSON, exactly as --json prints it (hearsay.Event's
// MarshalJSON), and its id is the ring's ID. A client that reconnects with
// Last-Event-ID (the header, or ?last_event_id= for clients that cannot
// set headers) gets every event after that one, none twice, as long as
// the ring still holds them; otherwise a "gap" event says how many it
// missed. ?room= keeps only that room's events.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// EventGap is the SSE event name (and the JSON type) of the notice that
// events were missed: the client fell behind by more than the ring holds,
// or resumed with an ID of an earlier run of the peer.
const EventGap = "gap"

// sseBatch bounds the events written per flush.
const sseBatch = 256

// sseWriteTimeout bounds each write to a stream: a client that stops
// reading is dropped instead of holding its goroutine (and a stream slot)
// for ever. It resumes with Last-Event-ID when it comes back.
const sseWriteTimeout = 30 * time.Second

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// arm gives the writes that follow sseWriteTimeout to complete.
	arm := func() error { return rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)) }
	flush := rc.Flush
	var room string
	if v := r.URL.Query().Get("room"); v != "" {
		var err error
		if room, err = ParseRoom(v); err != nil {
			writeError(w, err)
			return
		}
	}
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if len(last) > 64 {
		writeError(w, Errorf(ECodeInvalid, "Last-Event-ID is too long"))
		return
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		writeError(w, Errorf(ECodeUnavailable, "too many event streams are open (%d)", maxStreams))
		return
	}
	ring := s.cfg.Ring
	after, known := ring.Position(last)

	if arm() != nil {
		writeError(w, Errorf(ECodeInternal, "streaming is not supported by this connection"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !known {
		writeGap(w, "", fmt.Sprintf("event ID %q is not of this run of the peer: events before the next one may be missing", last))
	}
	fmt.Fprintf(w, ": hearsay events\n\n")
	if flush() != nil {
		return
	}

	keep := time.NewTicker(s.cfg.KeepAlive)
	defer keep.Stop()
	for {
		if arm() != nil {
			return
		}
		entries, missed, wait := ring.After(after, sseBatch)
		if missed > 0 {
			writeGap(w, "", fmt.Sprintf("%d events were missed: this client fell behind by more than the peer keeps", missed))
		}
		for _, e := range entries {
			after = e.Seq
			if room != "" && e.Event.Room != room {
				continue
			}
			b, err := json.Marshal(e.Event)
			if err != nil {
				continue
			}
			// JSON has no raw newlines, so one data line is the event.
			if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", e.ID, b); err != nil {
				return
			}
		}
		if len(entries) > 0 || missed > 0 {
			if flush() != nil {
				return
			}
			if len(entries) == sseBatch {
				continue
			}
		}
		select {
		case <-wait:
		case <-keep.C:
			if arm() != nil {
				return
			}
			if _, err := fmt.Fprintf(w, ": keep-alive\n\n"); err != nil || flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

func writeGap(w http.ResponseWriter, id, text string) {
	b, _ := json.Marshal(hearsay.Event{Type: EventGap, Time: time.Now(), Text: text})
	if id != "" {
		fmt.Fprintf(w, "id: %s\n", id)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", EventGap, b)
}
