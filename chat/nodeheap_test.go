package chat_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// TestIdleNodeHeap bounds what a started node holds on the heap before it
// has any work: a group of N peers in one process (hearsay bench) holds N
// of them, so what a node preallocates for a load it may never see costs
// every extra peer that much. The overlay driver's queues and the member
// events as buffered channels (6,144 inputs of ~190 B, 4,096 slice
// headers, 1,024 member events) were 1.3 MB of the 1.6 MB measured
// before they became queues that hold what waits (fifo.go): 340 KB after.
// The events channel of Config.EventBuffer (1,024 events, 188 KB) was most
// of what was left: 32 slots and a queue behind them (eventqueue.go),
// 153 KB after; 118 KB once memberlist's UDP packets were no longer read
// into a 64 KB buffer per node (mlnet.go).
func TestIdleNodeHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 10 nodes")
	}
	const nodes = 10
	const maxPerNode = 256 << 10
	mem := func() runtime.MemStats {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms
	}
	cfgs := make([]chat.Config, nodes)
	for i := range cfgs {
		cfgs[i] = chattest.Config(t, fmt.Sprintf("idle%d", i))
	}
	before := mem()
	var started []*chat.Node
	t.Cleanup(func() {
		for _, n := range started {
			_ = n.Shutdown()
		}
	})
	for _, cfg := range cfgs {
		n, err := chat.New(cfg)
		if err != nil {
			t.Fatalf("new node: %v", err)
		}
		started = append(started, n)
		if err := n.Start(context.Background()); err != nil {
			t.Fatalf("start node %s: %v", cfg.Nick, err)
		}
	}
	after := mem()
	heap := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / nodes
	stack := (int64(after.StackInuse) - int64(before.StackInuse)) / nodes
	t.Logf("an idle started node holds %d KB of heap and %d KB of goroutine stacks", heap>>10, stack>>10)
	if heap > maxPerNode {
		t.Errorf("an idle started node holds %d KB of heap, want at most %d KB", heap>>10, maxPerNode>>10)
	}
}
