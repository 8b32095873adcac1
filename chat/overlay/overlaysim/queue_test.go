package overlaysim

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestEventQueueOrder(t *testing.T) {
	var q eventQueue
	rng := rand.New(rand.NewPCG(1, 2))
	var pushed int
	popped := map[int32]int{}
	last := time.Duration(-1)
	var lastSeq uint64
	for round := range 50 {
		for range rng.IntN(40) {
			q.push(event{at: time.Duration(rng.IntN(20)) + time.Duration(round)*10, to: int32(pushed)})
			pushed++
		}
		for range rng.IntN(30) {
			if q.len() == 0 {
				break
			}
			e := q.pop()
			popped[e.to]++
			if e.at < last || (e.at == last && e.seq < lastSeq) {
				t.Fatalf("popped (%v, %d) after (%v, %d)", e.at, e.seq, last, lastSeq)
			}
			last, lastSeq = e.at, e.seq
		}
		last = -1 // later pushes may be earlier than what was popped
	}
	for q.len() > 0 {
		popped[q.pop().to]++
	}
	for i := range int32(pushed) {
		if popped[i] != 1 {
			t.Fatalf("event %d popped %d times", i, popped[i])
		}
	}
	if len(q.slab)-len(q.free) != 0 {
		t.Fatalf("slab holds %d live events after draining", len(q.slab)-len(q.free))
	}
}
