package overlaysim

import (
	"context"
	"math/bits"
	"testing"
	"time"
)

// An origin's first broadcast floods a new tree: every link is eager and
// none lazy, so before such a push was also announced (overlay's
// forward), a push lost near the origin was announced by nobody, and
// under loss the flood could die out a few hops from it. In chat, at 200
// peers and 20 % loss, about one origin's first message in 200 reached
// only 10 to 56 peers; the rest waited for anti-entropy. Here every
// broadcast leaves a random peer, so most are an origin's first, and the
// simulator has no anti-entropy: a flood that dies stays dead.
//
// A first broadcast is a dead flood when it reached fewer than half of
// the peers linked to its origin as it left (the component of the links
// both ends hold: at this loss the views have faults of their own, a
// clique cut off or an origin whose one link is one-sided, which this
// test is not about). An origin's later broadcasts are left out: its
// tree is pruned by then, and a lost push with a lost announcement on
// its one path loses a message of a sparse tree, which is anti-entropy's
// part in chat.
//
// What is left with the announcements is a push and its announcement
// both lost on an origin's only link, or on the one link into a part of
// the overlay (0.2 × 0.2; this test counts such a part as linked): 1 of
// 996 first broadcasts over the four seeds below (3 of 1,018 before an
// origin alone and a known holder were handled), against 28 of 1,004
// without them. The bound is 1 %.
func TestFirstBroadcastsUnderLoss(t *testing.T) {
	const peers = 400
	firsts, dead := 0, 0
	for seed := uint64(1); seed <= 4; seed++ {
		cfg := DefaultConfig(peers, seed)
		cfg.LatencyMin, cfg.LatencyMax = time.Millisecond, 30*time.Millisecond
		cfg.Loss = 0.2
		cfg.ChurnPerMinute = 0
		cfg.Speakers = 0
		cfg.Rate = 20
		cfg.Warmup, cfg.Messages = 0, peers
		cfg.Overlay = chatLikeOverlay
		linked := make(map[int]int) // broadcast → peers linked to its origin as it left
		first := make(map[int32]bool)
		s, err := runSim(context.Background(), cfg, func(s *sim, k int) {
			if o := s.msgs[k].origin; !first[o] {
				first[o] = true
				linked[k] = len(s.component(o)) - 1
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		for k, want := range linked {
			m := &s.msgs[k]
			got := 0
			for _, w := range m.got {
				got += bits.OnesCount64(w)
			}
			if got < want/2 {
				dead++
				t.Logf("seed %d: broadcast %d, peer %d's first, reached %d of the %d peers linked to it", seed, k, m.origin, got, want)
			}
		}
		firsts += len(linked)
		r := s.result()
		t.Logf("seed %d: %d first broadcasts; delivered %.5f, copies %.3f, tree overhead %.2f msgs/peer/s", seed, len(linked), r.Delivered, r.Copies, r.TreeOverhead)
	}
	if dead*100 > firsts {
		t.Errorf("%d of %d first broadcasts died out (reached fewer than half of the peers linked to their origin), want at most 1 %%", dead, firsts)
	}
}

// component returns the live peers linked to peer i by links both ends
// hold (a frame over a one-sided link is refused), i included.
func (s *sim) component(i int32) map[int32]bool {
	comp := map[int32]bool{i: true}
	for stack := []int32{i}; len(stack) > 0; {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, p := range s.peers[x].node.Active() {
			y, ok := s.index[p]
			if !ok || comp[y] || !s.peers[y].alive || !s.peers[y].node.IsActive(s.peers[x].id) {
				continue
			}
			comp[y] = true
			stack = append(stack, y)
		}
	}
	return comp
}
