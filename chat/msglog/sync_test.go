package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// syncedConfig fsyncs, with a syncer too slow to run during a test: the
// fsyncs counted are the callers'.
func syncedConfig() msglog.Config {
	cfg := msglog.DefaultConfig()
	cfg.SyncInterval = time.Hour
	return cfg
}

func openWithFsync(t *testing.T, cfg msglog.Config, hook func(fsync func() error) error) *msglog.Bolt {
	t.Helper()
	l, err := msglog.OpenBoltWithFsync(filepath.Join(t.TempDir(), "log.db"), cfg, hook)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// waitUntil polls cond, yielding the processor, until it holds or a
// deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		runtime.Gosched()
	}
}

// TestSyncCoalesces: 16 concurrent Syncs after 16 deferred commits run one
// fsync: whoever fsyncs first covers every commit, and the others find
// their generation covered, whether they queued behind it or came later.
func TestSyncCoalesces(t *testing.T) {
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), syncedConfig())
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := l.AppendDeferred(ctx, "#r", "a", uint64(i+1), msglog.Meta{}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := l.Fsyncs(); got != 0 {
		t.Fatalf("deferred appends ran %d fsyncs, want 0", got)
	}
	for range n {
		wg.Go(func() {
			if err := l.Sync(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := l.Fsyncs(); got != 1 {
		t.Fatalf("%d concurrent Syncs ran %d fsyncs, want 1", n, got)
	}
	if err := l.Sync(ctx); err != nil || l.Fsyncs() != 1 {
		t.Fatalf("Sync with nothing new: %v, %d fsyncs; want nil, still 1", err, l.Fsyncs())
	}
}

// TestAppendSharesFsync: 16 concurrent Appends share fsyncs. The first
// fsync is held until all 16 are committed, so the appends queue behind it
// and the next single fsync covers them all: 2 fsyncs at most, instead of
// one per Append.
func TestAppendSharesFsync(t *testing.T) {
	const n = 16
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	l := openWithFsync(t, syncedConfig(), func(fsync func() error) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
		return fsync()
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	var stored atomic.Int32
	for i := range n {
		wg.Go(func() {
			isNew, err := l.Append(ctx, "#r", "a", uint64(i+1), msglog.Meta{Lamport: uint64(i + 1)}, []byte("x"))
			if err != nil {
				t.Error(err)
			}
			if isNew {
				stored.Add(1)
			}
		})
	}
	<-entered
	waitUntil(t, "all appends are committed", func() bool { return l.Committed() == n })
	close(release)
	wg.Wait()
	if got := l.Fsyncs(); got > 2 {
		t.Fatalf("%d concurrent Appends ran %d fsyncs, want at most 2", n, got)
	}
	if stored.Load() != n {
		t.Fatalf("%d appends new, want %d", stored.Load(), n)
	}
	t.Logf("%d Appends, %d fsyncs", n, l.Fsyncs())
}

// TestSyncFailure: a failed fsync is reported to the caller that ran it
// and to every caller that needs it (queued behind it or later), and it is
// sticky: the log runs no further fsync that could falsely succeed (see
// bolt_sync.go) and marks nothing synced.
func TestSyncFailure(t *testing.T) {
	errDisk := errors.New("disk on fire")
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	l := openWithFsync(t, syncedConfig(), func(fsync func() error) error {
		switch calls.Add(1) {
		case 1:
			return fsync()
		case 2:
			close(entered)
			<-release
		}
		return errDisk
	})
	ctx := context.Background()
	if _, err := l.Append(ctx, "#r", "a", 1, msglog.Meta{}, nil); err != nil {
		t.Fatalf("append with a good fsync: %v", err)
	}
	if _, err := l.AppendDeferred(ctx, "#r", "a", 2, msglog.Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- l.Sync(ctx) }()
	<-entered
	// This Sync needs the commit that the held fsync covers: whether it
	// queues behind that fsync or arrives after it failed, it must fail.
	second := make(chan error, 1)
	go func() { second <- l.Sync(ctx) }()
	close(release)
	for i, ch := range []chan error{first, second} {
		if err := <-ch; !errors.Is(err, errDisk) {
			t.Errorf("Sync %d: got %v, want the fsync error", i+1, err)
		}
	}
	if _, err := l.Append(ctx, "#r", "a", 3, msglog.Meta{}, nil); !errors.Is(err, errDisk) {
		t.Errorf("Append after a failed fsync: got %v, want the fsync error", err)
	}
	// The commits themselves went through: a killed process keeps them.
	if vv, err := l.VersionVector(ctx, "#r"); err != nil || vv["a"] != 3 {
		t.Errorf("version vector %v, %v; want a:3", vv, err)
	}
	if _, err := l.AppendBatchDeferred(ctx, []msglog.Record{{Room: "#r", Origin: "a", Seq: 4}}); err != nil {
		t.Errorf("deferred append after a failed fsync: %v", err)
	}
	if got := l.Fsyncs(); got != 2 {
		t.Errorf("%d fsyncs, want 2 (no retry after the failure)", got)
	}
	if err := l.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close: got %v, want the fsync error", err)
	}
}

// TestAppendDurable: when Append or AppendBatch returns, an fsync covering
// the commit has run, and the records are in the file for the next open.
// A test cannot crash the OS, so this checks what the process controls:
// the fsync ran after the commit (counted by the log), and the commit
// reached the file (reopening reads it back).
func TestAppendDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := msglog.OpenBolt(path, syncedConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Append(ctx, "#r", "a", 1, msglog.Meta{Lamport: 1}, []byte("one")); err != nil {
		t.Fatal(err)
	}
	if got := l.Fsyncs(); got != 1 {
		t.Fatalf("Append ran %d fsyncs, want 1", got)
	}
	batch := []msglog.Record{{Room: "#r", Origin: "b", Seq: 1, Data: []byte("two")}, {Room: "#r", Origin: "b", Seq: 2, Data: []byte("three")}}
	if _, err := l.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got := l.Fsyncs(); got != 2 {
		t.Fatalf("Append and AppendBatch ran %d fsyncs, want 2", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Fsyncs(); got != 2 {
		t.Fatalf("Close with nothing unsynced ran an fsync (%d in all)", got)
	}
	l = openBolt(t, path, syncedConfig())
	for _, k := range []struct {
		origin string
		seq    uint64
		data   string
	}{{"a", 1, "one"}, {"b", 1, "two"}, {"b", 2, "three"}} {
		r, err := l.Get(ctx, "#r", k.origin, k.seq)
		if err != nil || string(r.Data) != k.data {
			t.Errorf("after reopen %s:%d = %q, %v; want %q", k.origin, k.seq, r.Data, err, k.data)
		}
	}
}

// TestNoSyncNeverFsyncs: under Config.NoSync the synced calls run no
// fsync.
func TestNoSyncNeverFsyncs(t *testing.T) {
	cfg := syncedConfig()
	cfg.NoSync = true
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), cfg)
	ctx := context.Background()
	if _, err := l.Append(ctx, "#r", "a", 1, msglog.Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.Fsyncs(); got != 0 {
		t.Fatalf("%d fsyncs under NoSync, want 0", got)
	}
}

// TestConcurrentBatches: goroutines append the same records, in batches of
// several sizes (deferred and synced) and one by one, each in its own
// order. Every record is stored once, exactly one caller is told it is
// new, and the version vector and count agree.
func TestConcurrentBatches(t *testing.T) {
	cfg := msglog.DefaultConfig()
	cfg.MaxGroup = 16 // small groups: more overflow and carry-over
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), cfg)
	ctx := context.Background()
	const workers, origins, per = 8, 4, 60
	var all []msglog.Record
	for s := uint64(1); s <= per; s++ {
		for o := range origins {
			all = append(all, msglog.Record{Room: "#r", Origin: fmt.Sprint("o", o), Seq: s, Meta: msglog.Meta{Lamport: s}, Data: []byte("x")})
		}
	}
	var newCount [origins][per + 1]atomic.Int32
	note := func(recs []msglog.Record, isNew []bool) {
		if len(isNew) != len(recs) {
			t.Errorf("%d flags for %d records", len(isNew), len(recs))
			return
		}
		for i, r := range recs {
			if isNew[i] {
				var o int
				fmt.Sscanf(r.Origin, "o%d", &o)
				newCount[o][r.Seq].Add(1)
			}
		}
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Worker w starts at a different offset and walks the records
			// in steps of its own batch size.
			size := []int{1, 9, 64, 3}[w%4]
			order := append(append([]msglog.Record{}, all[w*len(all)/workers:]...), all[:w*len(all)/workers]...)
			for i := 0; i < len(order); i += size {
				recs := order[i:min(i+size, len(order))]
				var isNew []bool
				var err error
				switch {
				case size == 1 && w%2 == 0:
					var n bool
					n, err = l.Append(ctx, recs[0].Room, recs[0].Origin, recs[0].Seq, recs[0].Meta, recs[0].Data)
					isNew = []bool{n}
				case w >= workers/2:
					isNew, err = l.AppendBatch(ctx, recs)
				default:
					isNew, err = l.AppendBatchDeferred(ctx, recs)
				}
				if err != nil {
					t.Error(err)
					return
				}
				note(recs, isNew)
			}
		})
	}
	wg.Wait()
	for o := range origins {
		for s := 1; s <= per; s++ {
			if got := newCount[o][s].Load(); got != 1 {
				t.Errorf("o%d:%d reported new %d times, want once", o, s, got)
			}
		}
	}
	want := msglog.VersionVector{}
	for o := range origins {
		want[fmt.Sprint("o", o)] = per
	}
	vv, err := l.VersionVector(ctx, "#r")
	if err != nil || fmt.Sprint(vv) != fmt.Sprint(want) {
		t.Fatalf("version vector %v, %v; want %v", vv, err, want)
	}
	if n, err := l.Count(ctx, "#r"); err != nil || n != origins*per {
		t.Fatalf("count %d, %v; want %d", n, err, origins*per)
	}
}
