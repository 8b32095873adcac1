package order

import (
	"testing"
)

func dumpNode(t *testing.T, n *simNode) {
	s := &n.m.s
	t.Logf("%s: up %v stats %+v", n.id, n.up, n.m.Stats())
	t.Logf("  next %v epoch %d seqr %v cut %v synced %v syncs %v", n.m.next, s.epoch, s.seqr, s.cut, s.synced, s.syncs)
	t.Logf("  pending stamps %d order %v through %v nextGlobal %d max %d", len(s.stamps), s.order, s.through, s.nextGlobal, s.maxGlobal)
	for _, p := range s.stamps {
		t.Logf("  stamp %s e%d g%d %v prev %s cut %d", p.ID(), p.Epoch, p.Global, p.Stamped, p.Prev, p.Cut)
	}
}

func TestDebugSeed(t *testing.T) {
	debugDump = func(t *testing.T, s *sim, failed string) {
		t.Logf("failed %s", failed)
		for _, id := range s.ids {
			dumpNode(t, s.node(id))
		}
	}
	defer func() { debugDump = nil }()
	randomRoom(t, Sequencer, 143)
}
