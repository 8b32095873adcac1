package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// TestHearsayStartParallel starts more peers than startParallel, so that
// the starters run concurrently, and checks that every peer got its own
// node and that Start returned only once every node saw every peer alive
// (in memberlist: suspect, a failing chat connection, counts).
func TestHearsayStartParallel(t *testing.T) {
	const peers = 2*startParallel + 1
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &Hearsay{}
	if err := h.Start(ctx, SystemConfig{Peers: peers, Size: 64, Progress: t.Logf}, newRecorder(peers)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	ids := map[string]int{}
	for i, n := range h.nodes {
		if n == nil {
			t.Fatalf("peer %d has no node", i)
		}
		if j, dup := ids[n.ID()]; dup {
			t.Fatalf("peers %d and %d share node %s", j, i, n.ID())
		}
		ids[n.ID()] = i
		seen := 0
		for _, m := range n.Members() {
			if m.State == hearsay.StateAlive || m.State == hearsay.StateSuspect {
				seen++
			}
		}
		if seen < peers {
			t.Errorf("peer %d sees %d members alive after Start, want %d", i, seen, peers)
		}
	}
}

// TestHearsayStartFails: a peer that cannot start fails Start with its
// number, and what was started is stopped and removed.
func TestHearsayStartFails(t *testing.T) {
	h := &Hearsay{Profile: "no-such-profile"}
	err := h.Start(context.Background(), SystemConfig{Peers: 3, Size: 64}, newRecorder(3))
	if err == nil || !strings.Contains(err.Error(), "hearsay peer 0") {
		t.Fatalf("Start = %v, want the failure of peer 0", err)
	}
	if err := h.Stop(); err != nil {
		t.Errorf("Stop after a failed Start: %v", err)
	}
	if h.dataDir == "" {
		t.Fatal("no data directory was made")
	}
	if _, serr := os.Stat(h.dataDir); !os.IsNotExist(serr) {
		t.Errorf("data directory %s left behind (%v)", h.dataDir, serr)
	}
}

// TestReadinessResyncs: a peer that never learned of the others (here: it
// never joined) is brought in by readiness's push/pull after resyncAfter,
// so the group settles instead of waiting for memberlist's own push/pull.
func TestReadinessResyncs(t *testing.T) {
	const peers = 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &Hearsay{room: "lobby"}
	dir := t.TempDir()
	h.dataDir = dir
	h.nodes = make([]*chat.Node, peers)
	h.obs = newRecorder(peers)
	t.Cleanup(func() {
		h.dataDir = "" // t.TempDir removes it
		if err := h.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	var ph startPhases
	cfg := SystemConfig{Peers: peers, Size: 64}
	if err := h.startPeer(ctx, cfg, 0, 0, "", &ph); err != nil {
		t.Fatal(err)
	}
	if err := h.startPeer(ctx, cfg, 0, 1, h.nodes[0].AdvertiseAddr(), &ph); err != nil {
		t.Fatal(err)
	}
	if err := h.startPeer(ctx, cfg, 0, 2, "", &ph); err != nil { // alone
		t.Fatal(err)
	}
	ready, status := h.readiness(ctx, peers)
	start := time.Now()
	if err := settle(ctx, time.Minute, "the group", t.Logf, ready, status); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status(), "membership resyncs") || strings.Contains(status(), "; 0 membership resyncs") {
		t.Errorf("status %q: want a resync counted", status())
	}
	t.Logf("settled in %v: %s", time.Since(start), status())
}

// Memberlist's failure detector keeps the profile's timers up to
// timerPeers and slows in proportion above (the probes per second of the
// whole process stay those of timerPeers peers); push/pulls get 30 s.
func TestSharedMachineTimers(t *testing.T) {
	for _, tc := range []struct {
		peers             int
		interval, timeout time.Duration
		tcp               time.Duration
	}{
		{peers: 10, interval: time.Second, timeout: 500 * time.Millisecond, tcp: 10 * time.Second},
		{peers: timerPeers, interval: time.Second, timeout: 500 * time.Millisecond, tcp: 10 * time.Second},
		{peers: 100, interval: 2 * time.Second, timeout: time.Second, tcp: 30 * time.Second},
		{peers: 200, interval: 4 * time.Second, timeout: 2 * time.Second, tcp: 30 * time.Second},
		{peers: 75, interval: 1500 * time.Millisecond, timeout: 750 * time.Millisecond, tcp: 30 * time.Second},
	} {
		mc := memberlist.DefaultLANConfig()
		sharedMachineTimers(mc, tc.peers)
		if mc.ProbeInterval != tc.interval || mc.ProbeTimeout != tc.timeout || mc.TCPTimeout != tc.tcp {
			t.Errorf("N=%d: probe every %v, ack within %v, TCP %v; want %v, %v, %v",
				tc.peers, mc.ProbeInterval, mc.ProbeTimeout, mc.TCPTimeout, tc.interval, tc.timeout, tc.tcp)
		}
	}
}

// Refusals are counted by the kind the transport gives them.
func TestRefusalsByKind(t *testing.T) {
	var r refusals
	r.add(fmt.Errorf("%w: 64 handshakes in flight", transport.ErrBusy))
	r.add(fmt.Errorf("peer x: %w: %w", transport.ErrNotAdmitted, errors.New("not a live member")))
	r.add(fmt.Errorf("peer y: %w: %w", transport.ErrNotAdmitted, errors.New("stale key")))
	r.add(errors.New("tls handshake: EOF"))
	if got, want := r.String(), "1 over a bound, 2 not admitted, 1 failed handshakes"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// The chat handshake timeout scales as memberlist's timers do.
func TestSharedMachineHandshake(t *testing.T) {
	for peers, want := range map[int]time.Duration{10: 5 * time.Second, timerPeers: 5 * time.Second, 100: 10 * time.Second, 200: 20 * time.Second} {
		if got := sharedMachineHandshake(5*time.Second, peers); got != want {
			t.Errorf("N=%d: %v, want %v", peers, got, want)
		}
	}
}

// overlayComponents counts a link from either end, and reports nothing
// for a group without an overlay (direct push).
func TestOverlayComponents(t *testing.T) {
	for name, c := range map[string]struct {
		views map[string][]string
		want  []int
	}{
		"no overlay":  {map[string][]string{"a": nil, "b": nil}, nil},
		"one":         {map[string][]string{"a": {"b"}, "b": {"c"}, "c": nil}, []int{3}},
		"one-sided":   {map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}, "d": {"c"}}, []int{4}},
		"split":       {map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": nil, "f": nil}, []int{3, 2, 1}},
		"outside ids": {map[string][]string{"a": {"x"}, "b": nil}, []int{2, 1}},
	} {
		if got := overlayComponents(c.views); !slices.Equal(got, c.want) {
			t.Errorf("%s: components %v, want %v", name, got, c.want)
		}
	}
}

// The end-of-run note on held-back messages counts every peer that holds
// some, and describes the first heldBackShown of them in the group's
// order, each with its neighbours and its held lines.
func TestHeldBackLine(t *testing.T) {
	peer := func(i, nbs int, held ...string) heldBackPeer {
		return heldBackPeer{index: i, neighbours: nbs, held: held}
	}
	for name, c := range map[string]struct {
		peers []heldBackPeer
		want  string
	}{
		"none": {nil, ""},
		"one": {
			[]heldBackPeer{peer(4, 3, "o/7 fifo: waits for o/6 (stored through o/5)")},
			"hearsay: 1 peers hold messages back at the end; peer 4 (3 neighbours): o/7 fifo: waits for o/6 (stored through o/5)",
		},
		"two lines joined": {
			[]heldBackPeer{peer(0, 0, "a/2 x", "b/9 y"), peer(2, 5, "c/1 z")},
			"hearsay: 2 peers hold messages back at the end; peer 0 (0 neighbours): a/2 x; b/9 y | peer 2 (5 neighbours): c/1 z",
		},
		"only the first three described": {
			[]heldBackPeer{peer(1, 1, "p1"), peer(3, 2, "p3"), peer(5, 3, "p5"), peer(6, 4, "p6"), peer(9, 5, "p9")},
			"hearsay: 5 peers hold messages back at the end; peer 1 (1 neighbours): p1 | peer 3 (2 neighbours): p3 | peer 5 (3 neighbours): p5",
		},
	} {
		if got := heldBackLine(c.peers); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, c.want)
		}
	}
}

// The end-of-run note that the overlay ended split names its components'
// sizes, largest first, and is not written for a whole overlay or one
// that carried nothing (direct push).
func TestOverlaySplitLine(t *testing.T) {
	for name, c := range map[string]struct {
		views map[string][]string
		want  string
	}{
		"no overlay": {map[string][]string{"a": nil, "b": nil}, ""},
		"whole":      {map[string][]string{"a": {"b"}, "b": nil, "c": {"a"}}, ""},
		"split": {
			map[string][]string{"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": nil, "f": nil},
			"hearsay: the overlay is split: components of [3 2 1] peers (a peer outside the sender's gets none of its tree's messages)",
		},
		"two halves": {
			map[string][]string{"a": {"b"}, "b": nil, "c": {"d"}, "d": nil},
			"hearsay: the overlay is split: components of [2 2] peers (a peer outside the sender's gets none of its tree's messages)",
		},
	} {
		if got := overlaySplitLine(c.views); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, c.want)
		}
	}
}
