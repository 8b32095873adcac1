package bench

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func TestScratchHeap(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SCRATCH_N"))
	if n == 0 {
		t.Skip()
	}
	ctx := context.Background()
	h := &Hearsay{}
	rec := newRecorder(n)
	spec := DefaultSpec()
	spec.Peers = n
	if err := h.Start(ctx, SystemConfig{Peers: n, Size: 100, Progress: t.Logf}, rec); err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	var next atomic.Uint64
	t.Log(warmUp(ctx, h, rec, spec, &next))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(100 * time.Millisecond)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("N=%d heapinuse %.1f MB stackinuse %.1f MB sys %.1f MB goroutines %d rss %.1f", n, float64(ms.HeapInuse)/1e6, float64(ms.StackInuse)/1e6, float64(ms.Sys)/1e6, runtime.NumGoroutine(), rssMB())
	f, _ := os.Create(os.Getenv("SCRATCH_OUT"))
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
}
