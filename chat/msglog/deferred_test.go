package msglog

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestAppendDeferred: deferred appends are stored and deduplicated like
// Append, the applier commits them within SyncInterval, concurrent synced
// and deferred appends mix, and Close keeps them all for the next open.
func TestAppendDeferred(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := OpenBolt(path, Config{SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	isNew, err := l.AppendDeferred(ctx, "r", "o", 1, Meta{Lamport: 1}, []byte("a"))
	if err != nil || !isNew {
		t.Fatalf("first deferred append: new %v, %v", isNew, err)
	}
	if isNew, err := l.AppendDeferred(ctx, "r", "o", 1, Meta{Lamport: 1}, []byte("a")); err != nil || isNew {
		t.Fatalf("repeated deferred append: new %v, %v; want not new", isNew, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.commitGen.Load() == 0 || l.Pending() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("deferred append never applied")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := uint64(1); s <= 50; s++ {
				var err error
				if w%2 == 0 {
					_, err = l.AppendDeferred(ctx, "r", fmt.Sprint("w", w), s, Meta{Lamport: s}, []byte("x"))
				} else {
					_, err = l.Append(ctx, "r", fmt.Sprint("w", w), s, Meta{Lamport: s}, []byte("x"))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenBolt(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	vv, err := l.VersionVector(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	want := VersionVector{"o": 1, "w0": 50, "w1": 50, "w2": 50, "w3": 50}
	if fmt.Sprint(vv) != fmt.Sprint(want) {
		t.Fatalf("after reopen: version vector %v, want %v", vv, want)
	}
}
