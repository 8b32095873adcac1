package hearsay_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay"
)

func TestParseOrderMode(t *testing.T) {
	for s, want := range map[string]hearsay.OrderMode{
		"fifo": hearsay.OrderFIFO, "Causal": hearsay.OrderCausal, " total ": hearsay.OrderTotal,
		"lamport": hearsay.OrderTotal, "SEQUENCER": hearsay.OrderSequencer,
	} {
		if got, err := hearsay.ParseOrderMode(s); err != nil || got != want {
			t.Errorf("ParseOrderMode(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "chaos", "fifo2"} {
		_, err := hearsay.ParseOrderMode(s)
		if err == nil || !strings.Contains(err.Error(), "fifo, causal, total or sequencer") {
			t.Errorf("ParseOrderMode(%q): got %v, want an error listing the modes", s, err)
		}
	}
}

func TestOrderModeNames(t *testing.T) {
	modes := hearsay.OrderModes()
	if len(modes) != 4 || modes[0] != hearsay.OrderCausal {
		t.Fatalf("OrderModes() = %v: want the four modes, the default first", modes)
	}
	for _, m := range modes {
		if !m.Valid() {
			t.Errorf("%v not valid", m)
		}
		back, err := hearsay.ParseOrderMode(m.String())
		if err != nil || back != m {
			t.Errorf("ParseOrderMode(%q) = %v, %v", m.String(), back, err)
		}
	}
	if s := hearsay.OrderMode(0).String(); s != "" {
		t.Errorf("zero mode String() = %q, want empty", s)
	}
	if hearsay.OrderMode(0).Valid() || hearsay.OrderMode(9).Valid() {
		t.Error("zero or unknown mode valid")
	}
}

func TestRoomInfoJSON(t *testing.T) {
	ri := hearsay.RoomInfo{Name: "ops", Mode: hearsay.OrderSequencer, Joined: true, Members: []string{"a"}}
	b, err := json.Marshal(ri)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"mode":"sequencer"`) {
		t.Errorf("RoomInfo JSON %s: want the mode's name", b)
	}
	var back hearsay.RoomInfo
	if err := json.Unmarshal(b, &back); err != nil || back.Mode != hearsay.OrderSequencer {
		t.Errorf("unmarshal %s: %+v, %v", b, back, err)
	}
	if _, err := json.Marshal(hearsay.RoomInfo{Mode: 9}); err == nil {
		t.Error("marshal an unknown mode: want an error")
	}
	if err := json.Unmarshal([]byte(`{"mode":"chaos"}`), &back); err == nil {
		t.Error("unmarshal an unknown mode: want an error")
	}
}

func TestMsgID(t *testing.T) {
	id := hearsay.MsgID{Origin: "0123456789abcdef", Seq: 42}
	if s := id.String(); s != "0123456789abcdef/42" {
		t.Fatalf("String() = %q", s)
	}
	if back, err := hearsay.ParseMsgID(id.String()); err != nil || back != id {
		t.Fatalf("ParseMsgID(%q) = %v, %v", id.String(), back, err)
	}
	for _, s := range []string{"", "0123456789abcdef", "0123456789abcdef/0", "0123456789abcdef/x", "0123456789ABCDEF/1", "short/1"} {
		if _, err := hearsay.ParseMsgID(s); err == nil {
			t.Errorf("ParseMsgID(%q): want an error", s)
		}
	}
}
