package bench

import (
	"fmt"
	"sync"
	"time"
)

// fileWatch samples the process's open descriptors once a second, from
// Start to stop, and keeps the peak. Descriptors are what a large
// in-process group runs out of first (see files_unix.go), and a group
// short of them degrades instead of failing: dials and accepts fail, peers
// turn suspect, the group does not settle or loses messages. The peak, and
// a note when it came near the limit, tell that run apart from a slow one.
type fileWatch struct {
	limit uint64
	stop  chan struct{}
	wg    sync.WaitGroup

	mu   sync.Mutex
	peak int
}

// watchFiles starts a fileWatch. Call stop when the run is over.
func watchFiles(every time.Duration) *fileWatch {
	w := &fileWatch{limit: fileLimit(), stop: make(chan struct{}), peak: openFiles()}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *fileWatch) sample() {
	n := openFiles()
	w.mu.Lock()
	w.peak = max(w.peak, n)
	w.mu.Unlock()
}

// Stop takes a last sample and stops the sampler; it returns the peak
// (-1 when the process cannot count its descriptors). Idempotent.
func (w *fileWatch) Stop() int {
	select {
	case <-w.stop:
	default:
		w.sample()
		close(w.stop)
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// Peak returns the highest count sampled so far.
func (w *fileWatch) Peak() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// nearLimit says, when the peak came within 2 % of the limit, that the run
// was probably short of descriptors ("" otherwise).
func (w *fileWatch) nearLimit() string {
	return limitNote(w.Peak(), w.limit)
}

func limitNote(peak int, limit uint64) string {
	if limit == 0 || peak < 0 || uint64(peak) < limit-limit/50 {
		return ""
	}
	return fmt.Sprintf("open files reached %d of the limit of %d (RLIMIT_NOFILE): connections probably failed for want of descriptors; raise the hard limit (ulimit -Hn) or run fewer peers", peak, limit)
}
