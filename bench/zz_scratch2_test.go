package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"

	"github.com/hearsay-chat/hearsay/chat"
)

func TestScratchAlone(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SCRATCH_ALONE"))
	if n == 0 {
		t.Skip()
	}
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	dir := t.TempDir()
	var nodes []*chat.Node
	for i := 0; i < n; i++ {
		c := chat.DefaultConfig()
		c.Nick = fmt.Sprintf("b%d", i)
		c.DataDir = fmt.Sprintf("%s/p%d", dir, i)
		nd, err := chat.New(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
		go func() {
			for range nd.Events() {
			}
		}()
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	t.Logf("%d lone nodes: heap inuse +%.0f KB/node, stack +%.0f KB/node, goroutines +%d/node, rss %.1f MB", n,
		float64(m1.HeapInuse-m0.HeapInuse)/1024/float64(n), float64(m1.StackInuse-m0.StackInuse)/1024/float64(n), (runtime.NumGoroutine()-g0)/n, rssMB())
	if out := os.Getenv("SCRATCH_OUT"); out != "" {
		f, _ := os.Create(out)
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	for _, nd := range nodes {
		nd.Shutdown()
	}
}
