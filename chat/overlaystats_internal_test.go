package chat

import "testing"

// The overlay's counters reach hearsay.Stats: the grafts it refused
// (OverlayGraftRefused) as the grafts it sent do.
func TestOverlayStatsCarryGraftRefused(t *testing.T) {
	n, err := New(Config{Nick: "refused"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	n.ovl.mu.Lock()
	n.ovl.stats.GraftsSent, n.ovl.stats.GraftRefused = 2, 3 // as the driver's last pass took them (d.m.Stats)
	n.ovl.mu.Unlock()
	if st := n.Stats(); st.OverlayGrafts != 2 || st.OverlayGraftRefused != 3 {
		t.Fatalf("grafts sent %d, refused %d; want 2, 3", st.OverlayGrafts, st.OverlayGraftRefused)
	}
}
