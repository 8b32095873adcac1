package msglog

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func request(recs ...Record) appendReq {
	return appendReq{recs: recs, done: make(chan appendResult, 1)}
}

// TestGroupCommitIsolatesFailures: a group with one request that cannot
// commit (its origin's state is corrupt) still stores the others, and a
// batch holding the bad record fails whole.
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
		request(Record{Room: "#r", Origin: "good", Seq: 1}),
		request(Record{Room: "#r", Origin: "bad", Seq: 2}),
		request(Record{Room: "#r", Origin: "good", Seq: 2}, Record{Room: "#r", Origin: "good", Seq: 2}),
		request(Record{Room: "#r", Origin: "good", Seq: 3}, Record{Room: "#r", Origin: "bad", Seq: 3}),
	}
	l.commitGroup(group)
	wants := [][]bool{{true}, nil, {true, false}, nil}
	for i, want := range wants {
		res := <-group[i].done
		if want != nil && (res.err != nil || !slices.Equal(res.isNew, want)) {
			t.Errorf("request %d: %+v, want stored %v", i, res, want)
		}
		if want == nil && !errors.Is(res.err, ErrCorrupt) {
			t.Errorf("request %d: %+v, want ErrCorrupt", i, res)
		}
	}
	rs, err := l.Range(ctx, "#r", "good", 1, 10)
	if err != nil || len(rs) != 2 || rs[1].Seq != 2 {
		t.Fatalf("good appends: %v %v; want seqs 1 and 2 (3 was in the failed batch)", rs, err)
	}
}

// TestGroupBound: the committer bounds a group by MaxGroup records, never
// splits a request, and keeps the request that overflows a group for the
// next one. The requests are queued before the committer runs, so the
// grouping is deterministic.
func TestGroupBound(t *testing.T) {
	l, err := OpenBolt(filepath.Join(t.TempDir(), "log.db"), Config{NoSync: true, MaxGroup: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// A second committer on the same file, with its own queue (the log's
	// own committer stays idle).
	c := &Bolt{db: l.db, cfg: l.cfg, appends: make(chan appendReq, 8)}
	seq := uint64(0)
	var reqs []appendReq
	for _, size := range []int{3, 2, 1, 5, 1, 1} {
		var recs []Record
		for range size {
			seq++
			recs = append(recs, Record{Room: "#r", Origin: "a", Seq: seq})
		}
		reqs = append(reqs, request(recs...))
		c.appends <- reqs[len(reqs)-1]
	}
	close(c.appends)
	c.wg.Add(1)
	c.commitLoop()
	// Groups: [3] (3+2 > 4), [2 1] (+5 > 4), [5] (alone, over the bound), [1 1].
	wantGen := []uint64{1, 2, 2, 3, 4, 4}
	for i, req := range reqs {
		res := <-req.done
		if res.err != nil || res.gen != wantGen[i] || len(res.isNew) != len(req.recs) {
			t.Errorf("request %d (%d records): gen %d, %d flags, %v; want gen %d", i, len(req.recs), res.gen, len(res.isNew), res.err, wantGen[i])
		}
	}
	if n, err := l.Count(context.Background(), "#r"); err != nil || n != int(seq) {
		t.Fatalf("count %d, %v; want %d", n, err, seq)
	}
}

// TestCloseWhileAppending: Close waits for queued appends, and appends
// after Close fail with ErrClosed; nothing hangs or races.
func TestCloseWhileAppending(t *testing.T) {
	l, err := OpenBolt(filepath.Join(t.TempDir(), "log.db"), Config{MaxGroup: 4})
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
				var err error
				switch w % 4 {
				case 0:
					_, err = l.Append(ctx, "#r", string(rune('a'+w)), s, Meta{}, nil)
				case 1:
					_, err = l.AppendBatchDeferred(ctx, []Record{{Room: "#r", Origin: string(rune('a' + w)), Seq: s}})
				case 2:
					err = l.Sync(ctx)
				default:
					_, err = l.AppendBatch(ctx, []Record{{Room: "#r", Origin: string(rune('a' + w)), Seq: s}})
				}
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
	if err := l.Sync(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
}
