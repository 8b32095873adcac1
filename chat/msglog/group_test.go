package msglog

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommitIsolatesFailures: a group with one append that cannot
// commit (its origin's state is corrupt) still stores the others.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	l, err := OpenBolt(filepath.Join(t.TempDir(), "log.db"), Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Append(ctx, "#r", "bad", 1, Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMsgs).Bucket([]byte("#r")).Bucket(bucketState).Put([]byte("bad"), []byte("x"))
	})
	if err != nil {
		t.Fatal(err)
	}
	group := []appendReq{
		{rec: Record{Room: "#r", Origin: "good", Seq: 1}, done: make(chan appendResult, 1)},
		{rec: Record{Room: "#r", Origin: "bad", Seq: 2}, done: make(chan appendResult, 1)},
		{rec: Record{Room: "#r", Origin: "good", Seq: 2}, done: make(chan appendResult, 1)},
	}
	l.commitGroup(group)
	for i, want := range []bool{true, false, true} {
		res := <-group[i].done
		if want && (res.err != nil || !res.isNew) {
			t.Errorf("append %d: %+v, want stored", i, res)
		}
		if !want && !errors.Is(res.err, ErrCorrupt) {
			t.Errorf("append %d: %+v, want ErrCorrupt", i, res)
		}
	}
	if rs, err := l.Range(ctx, "#r", "good", 1, 10); err != nil || len(rs) != 2 {
		t.Fatalf("good appends: %v %v", rs, err)
	}
}

// TestCloseWhileAppending: Close waits for queued appends, and appends
// after Close fail with ErrClosed; nothing hangs or races.
func TestCloseWhileAppending(t *testing.T) {
	l, err := OpenBolt(filepath.Join(t.TempDir(), "log.db"), Config{NoSync: true, MaxGroup: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := uint64(1); s <= 50; s++ {
				_, err := l.Append(ctx, "#r", string(rune('a'+w)), s, Meta{}, nil)
				if err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
					return
				}
			}
		}()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := l.Append(ctx, "#r", "z", 1, Meta{}, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
