// Package heapwatch samples the Go heap for tests that bound the memory an
// attack may cost a peer (flooding the chat or memberlist port before
// authentication). It is internal: only the project's tests use it.
package heapwatch

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Peak collects garbage, notes the heap in use and samples it every
// interval from a goroutine of its own until stop is called. stop takes a
// last sample, ends the sampling, waits for the goroutine and returns the peak growth in bytes
// over the heap at the start (negative if the heap only shrank). Call stop
// exactly once.
func Peak(interval time.Duration) (stop func() int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		sample := func() {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
		for {
			sample()
			select {
			case <-tick.C:
			case <-done:
				sample() // the heap at stop counts too
				return
			}
		}
	}()
	return func() int64 {
		close(done)
		<-sampled
		return int64(peak.Load()) - int64(base)
	}
}
