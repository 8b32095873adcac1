package repl

import (
	"testing"

	"github.com/hearsay-chat/hearsay"
)

func TestStatLines(t *testing.T) {
	s := hearsay.Stats{Sent: 1, Received: 2, StatusSent: 3, StatusReceived: 4, RepairSent: 5, Repaired: 6, HeldBack: 7, Streams: 8, KVDrops: 9, HeldDiskDrops: 12, MLRefused: 13, BadFloors: 14, Strangers: 15}
	lines := statLines(s, 10, 11)
	want := map[string]string{
		"sent": "1", "received (envelopes from peers)": "2", "anti-entropy digests sent/received": "3/4",
		"repairs sent / new from repairs": "5/6", "held back now (all rooms)": "7", "chat streams": "8",
		"kv refused": "9", "too far ahead (not stored, repaired)": "12", "members": "10", "health score": "11", "duplicates": "0",
		"refused memberlist streams": "13", "floors not honoured": "14", "from non-members (dropped)": "15",
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if seen[l.name] {
			t.Errorf("label %q twice", l.name)
		}
		seen[l.name] = true
		if v, ok := want[l.name]; ok && v != l.value {
			t.Errorf("%s = %q, want %q", l.name, l.value, v)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("no line %q", name)
		}
	}
	if len(lines) != 32 || lines[0].name != "sent" || lines[len(lines)-1].name != "health score" {
		t.Errorf("%d lines from %q to %q; want 32 from sent to health score", len(lines), lines[0].name, lines[len(lines)-1].name)
	}
}

// The direct-message lines appear once the peer has used or seen direct
// messages, and not before.
func TestStatLinesDirect(t *testing.T) {
	if n := len(statLines(hearsay.Stats{}, 1, 0)); n != 32 {
		t.Fatalf("%d lines without direct messages, want 32", n)
	}
	s := hearsay.Stats{DirectSent: 3, DirectReceived: 4, DirectHeld: 5, DirectForged: 6, DirectInvalid: 7,
		DirectMisaddressed: 8, DirectReplays: 9, DirectHoldRefused: 10, DirectDeferred: 11}
	got := map[string]string{}
	for _, l := range statLines(s, 1, 0) {
		got[l.name] = l.value
	}
	for name, v := range map[string]string{
		"direct sent/received": "3/4", "direct held for offline peers": "5", "direct refused to hold (quota)": "10",
		"direct deferred (receipts unacked)": "11", "direct forged/invalid (dropped)": "6/7", "direct misaddressed/replayed (dropped)": "8/9",
	} {
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
		}
	}
}

// The overlay lines appear once the peer has an overlay neighbour or
// traffic.
func TestStatLinesOverlay(t *testing.T) {
	s := hearsay.Stats{OverlayNeighbors: 4, OverlayBroadcasts: 1, OverlayPayloads: 12, OverlayDelivered: 10,
		OverlayDuplicates: 2, OverlayRelayed: 3, OverlayIHave: 5, OverlayGrafts: 6, OverlayPrunes: 7, OverlayInvalid: 8, OverlayDrops: 9}
	got := map[string]string{}
	for _, l := range statLines(s, 1, 0) {
		got[l.name] = l.value
	}
	for name, v := range map[string]string{
		"overlay neighbours": "4", "overlay broadcasts (own, over the tree)": "1",
		"overlay payloads received/delivered/duplicates": "12/10/2", "overlay relayed (rooms not joined)": "3",
		"overlay ihave/graft/prune sent": "5/6/7", "overlay invalid/queue full (dropped)": "8/9",
	} {
		if got[name] != v {
			t.Errorf("%s = %q, want %q", name, got[name], v)
		}
	}
}
