package bench

import (
	"strings"
	"testing"
	"time"
)

// A tally names the messages that did not reach every peer, in send
// order, with how many peers lacked each: the bench's note says whether
// the stragglers are a burst's last messages or scattered.
func TestTallyNamesShortMessages(t *testing.T) {
	r := newRecorder(4) // peer 0 sends, peers 1 to 3 receive
	now := time.Now()
	for id := range uint64(12) {
		r.register(id, 0, now)
	}
	for id := range uint64(12) {
		for peer := 1; peer <= 3; peer++ {
			switch {
			case id == 3 && peer == 2, id >= 9 && peer != 1:
				continue // id 3 lacked by one peer, ids 9 to 11 by two
			}
			r.Deliver(peer, makePayload(id, 64))
		}
	}
	got := r.tally(2, 12) // the load's messages: ids 2 to 11
	if got.sent != 10 || got.full != 6 {
		t.Fatalf("tally sent %d full %d, want 10 and 6", got.sent, got.full)
	}
	want := []shortMsg{{index: 1, missing: 1}, {index: 7, missing: 2}, {index: 8, missing: 2}, {index: 9, missing: 2}}
	if len(got.short) != len(want) {
		t.Fatalf("short %+v, want %+v", got.short, want)
	}
	for i := range want {
		if got.short[i] != want[i] {
			t.Fatalf("short %+v, want %+v", got.short, want)
		}
	}
	if l := got.shortList(); l != "#2 lacked by 1, #8 lacked by 2, #9 lacked by 2, #10 lacked by 2" {
		t.Errorf("short list %q", l)
	}
	// Bounded: at most maxShort named however many fall short.
	r = newRecorder(2)
	for id := range uint64(3 * maxShort) {
		r.register(id, 0, now)
	}
	if got := r.tally(0, 3*maxShort); len(got.short) != maxShort || got.short[maxShort-1].missing != 1 {
		t.Fatalf("short %+v, want the first %d, each lacked by the one receiver", got.short, maxShort)
	} else if l := got.shortList(); !strings.HasSuffix(l, "#8 lacked by 1, …") {
		t.Errorf("short list of %d of %d: %q, want the first %d and an ellipsis", 3*maxShort, 3*maxShort, l, maxShort)
	}
}
