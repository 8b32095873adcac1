package msglog_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// TestOpenBoltIdleHeap bounds what an open, idle log keeps on the heap: an
// in-process group of N peers holds N logs, and a log that preallocates
// for a load it may never see costs every peer that much. The memtable
// sized for ApplyAt (512) records made it ~140 KB; without it, ~30 KB.
func TestOpenBoltIdleHeap(t *testing.T) {
	const logs = 20
	const maxPerLog = 64 << 10
	dir := t.TempDir()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	var open []*msglog.Bolt
	for i := range logs {
		l, err := msglog.OpenBolt(filepath.Join(dir, fmt.Sprintf("log%d.db", i)), msglog.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, l)
	}
	after := heap()
	for _, l := range open {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}
	per := (int64(after) - int64(before)) / logs
	t.Logf("an idle open log holds %d KB of heap", per>>10)
	if per > maxPerLog {
		t.Errorf("an idle open log holds %d KB of heap, want at most %d KB", per>>10, maxPerLog>>10)
	}
}
