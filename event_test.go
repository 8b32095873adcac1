package hearsay_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
)

func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	for _, c := range []struct {
		ev   hearsay.Event
		want string
	}{
		{hearsay.Event{Type: hearsay.EventMessage, Time: at, Room: "lobby", From: "alice", FromID: "0123456789abcdef",
			ID: "0123456789abcdef/1", Text: "hello <b> & \"you\"", Self: true},
			`{"type":"message","time":"2026-11-21T10:00:00.123456789Z","room":"lobby","from":"alice","from_id":"0123456789abcdef","id":"0123456789abcdef/1","text":"hello \u003cb\u003e \u0026 \"you\""}`},
		{hearsay.Event{Type: hearsay.EventMessage, Time: at.Truncate(time.Second), Room: "ops", From: "bob", Text: "late", Late: true},
			`{"type":"message","time":"2026-11-21T10:00:00Z","room":"ops","from":"bob","text":"late","late":true}`},
		{hearsay.Event{Type: hearsay.EventSystem, Time: at.In(time.FixedZone("", 3600)).Truncate(time.Millisecond), Text: "a\nb"},
			`{"type":"system","time":"2026-11-21T11:00:00.123+01:00","text":"a\nb"}`},
		{hearsay.Event{Type: hearsay.EventError}, `{"type":"error","time":"0001-01-01T00:00:00Z"}`},
	} {
		b, err := json.Marshal(c.ev)
		if err != nil {
			t.Fatalf("marshal %+v: %v", c.ev, err)
		}
		if string(b) != c.want {
			t.Errorf("marshal %+v:\ngot  %s\nwant %s", c.ev, b, c.want)
		}
		var back hearsay.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		want := c.ev
		want.Self = false // not part of the JSON form
		if !back.Time.Equal(want.Time) {
			t.Errorf("round trip of %s: time %v, want %v", b, back.Time, want.Time)
		}
		back.Time, want.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(back, want) {
			t.Errorf("round trip of %s:\ngot  %+v\nwant %+v", b, back, want)
		}
	}
}

func TestEventUnmarshalErrors(t *testing.T) {
	for _, s := range []string{
		`{"time":"2026-11-21T10:00:00Z"}`,
		`{"type":"message"}`,
		`{"type":"message","time":"yesterday"}`,
		`{"type":1,"time":"2026-11-21T10:00:00Z"}`,
		`[]`,
	} {
		var ev hearsay.Event
		if err := json.Unmarshal([]byte(s), &ev); err == nil {
			t.Errorf("unmarshal %s: want an error, got %+v", s, ev)
		}
	}
	var ev hearsay.Event
	if err := json.Unmarshal([]byte(`{"type":"join","time":"2026-11-21T10:00:00Z","self":true,"new_key":1}`), &ev); err != nil || ev.Self || ev.Type != hearsay.EventJoin {
		t.Errorf("unknown keys: got %+v, %v", ev, err)
	}
}

// FuzzEventUnmarshalJSON: decoding never panics, and whatever decodes
// encodes to a form that decodes to the same event and encodes to the
// same bytes.
func FuzzEventUnmarshalJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"message","time":"2026-11-21T10:00:00.5Z","room":"lobby","from":"alice","from_id":"0123456789abcdef","id":"0123456789abcdef/1","text":"hello","late":true}`,
		`{"type":"nick","time":"2026-11-21T10:00:00+01:00","from":"bob","text":"alice"}`,
		`{"type":"x","time":"0001-01-01T00:00:00Z","text":"\u00ff\ud800"}`,
		`{"type":"system","time":"2026-11-21T10:00:00Z","text":null}`,
		`{}`, `null`, `"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev hearsay.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return
		}
		b1, err := json.Marshal(ev)
		if err != nil {
			t.Fatalf("marshal %+v (from %q): %v", ev, data, err)
		}
		var ev2 hearsay.Event
		if err := json.Unmarshal(b1, &ev2); err != nil {
			t.Fatalf("unmarshal own output %s: %v", b1, err)
		}
		if !ev2.Time.Equal(ev.Time) {
			t.Fatalf("time %v, want %v (from %s)", ev2.Time, ev.Time, b1)
		}
		a, b := ev, ev2
		a.Time, b.Time = time.Time{}, time.Time{}
		if a != b {
			t.Fatalf("round trip of %s:\ngot  %+v\nwant %+v", b1, b, a)
		}
		b2, err := json.Marshal(ev2)
		if err != nil || string(b2) != string(b1) {
			t.Fatalf("second encoding %s (%v), first %s", b2, err, b1)
		}
		if !strings.HasPrefix(string(b1), `{"type":`) {
			t.Fatalf("encoding %s does not start with the type", b1)
		}
	})
}
