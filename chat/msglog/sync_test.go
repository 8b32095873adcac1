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

// syncedConfig fsyncs, with an applier too slow to run during a test:
// the commits and fsyncs counted are the callers'.
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

// TestAppendSharesCommit: 16 concurrent Appends share durable commits.
// The committer is held (a write transaction stays open) until all 16 are
// queued, so the first group it took and the rest make two commits at
// most, instead of one commit and its two fdatasyncs per Append.
func TestAppendSharesCommit(t *testing.T) {
	const n = 16
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), syncedConfig())
	release, err := l.HoldWriter()
	if err != nil {
		t.Fatal(err)
	}
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
	waitUntil(t, "all appends are queued", func() bool { return l.Waiting() == n })
	release()
	wg.Wait()
	if got := l.Barriers(); got < 1 || got > 2 {
		t.Fatalf("%d concurrent Appends ran %d durable commits, want 1 or 2", n, got)
	}
	if stored.Load() != n {
		t.Fatalf("%d appends new, want %d", stored.Load(), n)
	}
	t.Logf("%d Appends, %d commits", n, l.Barriers())
}

// TestSyncFailure: a failed WAL fsync is reported to the caller that ran
// it and to every caller that needs it (queued behind it or later), and
// it is sticky: the log runs no further fsync that could falsely succeed
// (see bolt_walsync.go). Appends still commit, durably, through bbolt.
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
	if _, err := l.AppendDeferred(ctx, "#r", "a", 1, msglog.Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatalf("Sync with a good fsync: %v", err)
	}
	if _, err := l.AppendDeferred(ctx, "#r", "a", 2, msglog.Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { first <- l.Sync(ctx) }()
	<-entered
	// This Sync needs the write that the held fsync covers: whether it
	// queues behind that fsync or arrives after it failed, it must fail.
	second := make(chan error, 1)
	go func() { second <- l.Sync(ctx) }()
	close(release)
	for i, ch := range []chan error{first, second} {
		if err := <-ch; !errors.Is(err, errDisk) {
			t.Errorf("Sync %d: got %v, want the fsync error", i+1, err)
		}
	}
	if _, err := l.AppendDeferred(ctx, "#r", "a", 3, msglog.Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); !errors.Is(err, errDisk) {
		t.Errorf("Sync after a failed fsync: got %v, want the fsync error", err)
	}
	// A synced append does not depend on the WAL: bbolt's commit (which
	// first applies the deferred ones) makes it durable.
	if _, err := l.Append(ctx, "#r", "a", 4, msglog.Meta{}, nil); err != nil {
		t.Errorf("Append after a failed WAL fsync: %v", err)
	}
	if vv, err := l.VersionVector(ctx, "#r"); err != nil || vv["a"] != 4 {
		t.Errorf("version vector %v, %v; want a:4", vv, err)
	}
	if got := l.Fsyncs(); got != 2 {
		t.Errorf("%d fsyncs, want 2 (no retry after the failure)", got)
	}
	if err := l.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close: got %v, want the fsync error", err)
	}
}

// TestAppendDurable: when Append or AppendBatch returns, a commit with
// bbolt's barrier has stored the records (one each here, counted by the
// log), and they are in the file for the next open.
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
	if got := l.Barriers(); got != 1 {
		t.Fatalf("Append ran %d durable commits, want 1", got)
	}
	batch := []msglog.Record{{Room: "#r", Origin: "b", Seq: 1, Data: []byte("two")}, {Room: "#r", Origin: "b", Seq: 2, Data: []byte("three")}}
	if _, err := l.AppendBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if got := l.Barriers(); got != 2 {
		t.Fatalf("Append and AppendBatch ran %d durable commits, want 2", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Barriers(); got != 2 {
		t.Fatalf("Close with nothing to apply committed (%d commits in all)", got)
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

// TestCommitsKeepBarrier: every way a write reaches bbolt (a synced
// append's group commit, the applier's commit of deferred appends, the
// other writes) commits with bbolt's fsyncs on: an OS crash right after
// any of them leaves the file consistent (issue 13, bug 3: the applier
// and the committer used to commit with NoSync and fsync later).
func TestCommitsKeepBarrier(t *testing.T) {
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), syncedConfig())
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
	}{
		{"Append", func() error {
			_, err := l.Append(ctx, "#r", "a", 1, msglog.Meta{}, []byte("x"))
			return err
		}},
		{"AppendBatch", func() error {
			_, err := l.AppendBatch(ctx, []msglog.Record{{Room: "#r", Origin: "a", Seq: 2}})
			return err
		}},
		{"AppendDeferred, then a read applies it", func() error {
			if _, err := l.AppendDeferred(ctx, "#r", "a", 3, msglog.Meta{}, []byte("x")); err != nil {
				return err
			}
			_, err := l.Count(ctx, "#r") // applies the memtable first
			return err
		}},
		{"SetFloor", func() error { return l.SetFloor(ctx, "#r", "b", 5) }},
	}
	var before uint64
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if l.BarrierOff() {
			t.Errorf("%s: bbolt left with NoSync on: the next commit skips its fsyncs", st.name)
		}
		if st.name != "SetFloor" && l.Barriers() == before {
			t.Errorf("%s: no durable commit counted", st.name)
		}
		before = l.Barriers()
	}
}

// TestAcknowledgedSurvivesCrash: what the log acknowledged (a synced
// append, a deferred append once Sync returned, a deferred one applied) is
// in the files a killed process leaves, and the next Open has it.
func TestAcknowledgedSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := msglog.OpenBolt(path, syncedConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := l.Append(ctx, "#r", "a", 1, msglog.Meta{}, []byte("synced")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendDeferred(ctx, "#r", "a", 2, msglog.Meta{}, []byte("applied")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Count(ctx, "#r"); err != nil { // applies it
		t.Fatal(err)
	}
	if _, err := l.AppendDeferred(ctx, "#r", "a", 3, msglog.Meta{}, []byte("in the WAL")); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}
	l = openBolt(t, path, syncedConfig())
	for seq, want := range map[uint64]string{1: "synced", 2: "applied", 3: "in the WAL"} {
		if r, err := l.Get(ctx, "#r", "a", seq); err != nil || string(r.Data) != want {
			t.Errorf("after crash a:%d = %q, %v; want %q", seq, r.Data, err, want)
		}
	}
}

// TestNoSyncNeverFsyncs: under Config.NoSync nothing fsyncs.
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
	if got := l.Fsyncs() + l.Barriers(); got != 0 || !l.BarrierOff() {
		t.Fatalf("%d fsyncs and durable commits under NoSync (barrier off %v), want 0", got, l.BarrierOff())
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
