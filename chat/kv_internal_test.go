package chat

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// The store's counts stay exact and within their bounds through random
// sets, deletes and takeovers by members and strangers.
func TestKVStoreBoundsRandom(t *testing.T) {
	n, err := New(Config{Nick: "kv"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	rng := rand.New(rand.NewPCG(1, 2))
	origin := func(i int) string { return fmt.Sprintf("%016x", i+1) }
	for i := range 20 { // origins 0-19 are members
		n.members[origin(i)] = &memberInfo{ID: origin(i), Nick: "m", State: hearsay.StateAlive, Valid: true}
	}
	s := n.kv
	version := uint64(time.Now().UnixMilli()) - 100000
	refused := 0
	for step := range 6000 {
		o := origin(rng.IntN(400))
		if rng.IntN(4) == 0 {
			o = origin(rng.IntN(20)) // members are busier
		}
		if step%500 == 0 { // membership changes: origins 10-29 come and go
			for i := 10; i < 30; i++ {
				if rng.IntN(2) == 0 {
					n.members[origin(i)] = &memberInfo{ID: origin(i), Nick: "m", State: hearsay.StateAlive, Valid: true}
				} else {
					delete(n.members, origin(i))
				}
			}
		}
		version++
		e := &chatpb.KVEntry{Key: fmt.Sprintf("k%d", rng.IntN(3000)), Version: version, Origin: o, Deleted: rng.IntN(3) == 0}
		s.mu.Lock()
		if _, err := s.applyLocked(e, n.isMember(o)); err != nil {
			refused++
		}
		if step%31 == 0 {
			if err := s.checkBoundsLocked(); err != nil {
				s.mu.Unlock()
				t.Fatalf("step %d: %v", step, err)
			}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkBoundsLocked(); err != nil {
		t.Fatal(err)
	}
	if refused == 0 || len(s.m) < MaxKVEntries/2 {
		t.Errorf("%d refused, %d stored: the bounds were not exercised", refused, len(s.m))
	}
}

func TestKVVersionAhead(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		v  uint64
		ok bool
	}{
		{1, true}, {kvMillis(now), true}, {kvMillis(now.Add(MaxKVAhead - time.Second)), true},
		{kvMillis(now.Add(MaxKVAhead + time.Second)), false}, {1 << 63, false}, {1<<64 - 1, false},
	} {
		if err := checkKVVersion(&chatpb.KVEntry{Version: tc.v}, now); (err == nil) != tc.ok {
			t.Errorf("version %d: err %v, want ok %v", tc.v, err, tc.ok)
		}
	}
}
