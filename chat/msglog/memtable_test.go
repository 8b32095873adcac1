package msglog_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// heldConfig keeps deferred records in the memtable: the applier never
// wakes on its own during a test (only reads, other writes, Sync, Close or
// a full memtable apply it).
func heldConfig() msglog.Config {
	cfg := msglog.DefaultConfig()
	cfg.SyncInterval = time.Hour
	cfg.ApplyAt = 1 << 20
	return cfg
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func rec(room, origin string, seq uint64) msglog.Record {
	return msglog.Record{Room: room, Origin: origin, Seq: seq,
		Meta: msglog.Meta{Lamport: seq, SendTime: t0.Add(-time.Second), RecvTime: t0},
		Data: fmt.Appendf(nil, "%s/%s:%d", room, origin, seq)}
}

// appendHeld appends recs deferred and checks they are all new and still
// in the memtable.
func appendHeld(t *testing.T, l *msglog.Bolt, recs ...msglog.Record) {
	t.Helper()
	isNew, err := l.AppendBatchDeferred(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range isNew {
		if !n {
			t.Fatalf("record %d (%s:%d) not new", i, recs[i].Origin, recs[i].Seq)
		}
	}
	if l.Pending() == 0 {
		t.Fatal("deferred records applied already: the test reads bbolt only")
	}
}

// TestDeferredReadYourWrites: every read and write sees deferred records
// still in the memtable, as if they were in bbolt.
func TestDeferredReadYourWrites(t *testing.T) {
	ctx := context.Background()
	batch := []msglog.Record{rec("#r", "a", 1), rec("#r", "a", 2), rec("#r", "b", 1), rec("#r", "a", 4)}
	tests := []struct {
		name  string
		check func(t *testing.T, l *msglog.Bolt) error
	}{
		{"Get", func(t *testing.T, l *msglog.Bolt) error {
			r, err := l.Get(ctx, "#r", "a", 2)
			if err != nil || string(r.Data) != "#r/a:2" || r.Lamport != 2 || !r.RecvTime.Equal(t0) || !r.SendTime.Equal(t0.Add(-time.Second)) {
				return fmt.Errorf("got %+v, %v", r, err)
			}
			r.Data[0] = 'X'
			if again, _ := l.Get(ctx, "#r", "a", 2); again.Data[0] != '#' {
				return errors.New("returned data aliases the memtable")
			}
			if l.Pending() != len(batch) {
				return errors.New("Get applied the memtable")
			}
			if _, err := l.Get(ctx, "#r", "a", 3); !errors.Is(err, msglog.ErrNotFound) {
				return fmt.Errorf("missing seq: %v, want ErrNotFound", err)
			}
			return nil
		}},
		{"Range", func(t *testing.T, l *msglog.Bolt) error {
			rs, err := l.Range(ctx, "#r", "a", 2, 10)
			if err != nil || len(rs) != 2 || rs[0].Seq != 2 || rs[1].Seq != 4 || string(rs[1].Data) != "#r/a:4" {
				return fmt.Errorf("got %+v, %v; want a:2, a:4", rs, err)
			}
			return nil
		}},
		{"VersionVector", func(t *testing.T, l *msglog.Bolt) error {
			vv, err := l.VersionVector(ctx, "#r")
			if want := (msglog.VersionVector{"a": 2, "b": 1}); err != nil || fmt.Sprint(vv) != fmt.Sprint(want) {
				return fmt.Errorf("got %v, %v; want %v", vv, err, want)
			}
			return nil
		}},
		{"Floors", func(t *testing.T, l *msglog.Bolt) error {
			fl, err := l.Floors(ctx, "#r")
			if err != nil || len(fl) != 0 {
				return fmt.Errorf("got %v, %v; want none", fl, err)
			}
			return nil
		}},
		{"History", func(t *testing.T, l *msglog.Bolt) error {
			h, err := l.History(ctx, "#r", 10)
			var got []string
			for _, r := range h {
				got = append(got, fmt.Sprintf("%s:%d", r.Origin, r.Seq))
			}
			if want := []string{"a:1", "b:1", "a:2", "a:4"}; err != nil || !slices.Equal(got, want) {
				return fmt.Errorf("got %v, %v; want %v", got, err, want)
			}
			return nil
		}},
		{"Count", func(t *testing.T, l *msglog.Bolt) error {
			if n, err := l.Count(ctx, "#r"); err != nil || n != 4 {
				return fmt.Errorf("got %d, %v; want 4", n, err)
			}
			return nil
		}},
		{"LastSeq", func(t *testing.T, l *msglog.Bolt) error {
			if n, err := l.LastSeq(ctx, "#r", "a"); err != nil || n != 4 {
				return fmt.Errorf("got %d, %v; want 4", n, err)
			}
			return nil
		}},
		{"MaxLamport", func(t *testing.T, l *msglog.Bolt) error {
			if n, err := l.MaxLamport(ctx, "#r"); err != nil || n != 4 {
				return fmt.Errorf("got %d, %v; want 4", n, err)
			}
			return nil
		}},
		{"NextSeq", func(t *testing.T, l *msglog.Bolt) error {
			if n, err := l.NextSeq(ctx, "#r", "a"); err != nil || n != 5 {
				return fmt.Errorf("got %d, %v; want 5", n, err)
			}
			return nil
		}},
		{"Append", func(t *testing.T, l *msglog.Bolt) error {
			isNew, err := l.AppendBatch(ctx, []msglog.Record{rec("#r", "a", 2), rec("#r", "a", 3)})
			if err != nil || !slices.Equal(isNew, []bool{false, true}) {
				return fmt.Errorf("got %v, %v; want [false true]", isNew, err)
			}
			if vv, _ := l.VersionVector(ctx, "#r"); vv["a"] != 4 {
				return fmt.Errorf("version vector %v after a:3, want a:4", vv)
			}
			return nil
		}},
		{"SetFloor", func(t *testing.T, l *msglog.Bolt) error {
			if err := l.SetFloor(ctx, "#r", "a", 2); err != nil {
				return err
			}
			// A floor deletes nothing: a:2 stays below it.
			if _, err := l.Get(ctx, "#r", "a", 2); err != nil {
				return fmt.Errorf("a:2 below the floor: %v, want kept", err)
			}
			if n, _ := l.Count(ctx, "#r"); n != 4 {
				return fmt.Errorf("count %d after the floor, want 4", n)
			}
			return nil
		}},
		{"DeleteRoom", func(t *testing.T, l *msglog.Bolt) error {
			if err := l.DeleteRoom(ctx, "#r"); err != nil {
				return err
			}
			if _, err := l.Get(ctx, "#r", "b", 1); !errors.Is(err, msglog.ErrNotFound) {
				return fmt.Errorf("deleted room's record: %v, want ErrNotFound", err)
			}
			if last, _ := l.LastSeq(ctx, "#r", "a"); last != 4 {
				return fmt.Errorf("LastSeq %d after DeleteRoom, want 4 (kept)", last)
			}
			return nil
		}},
		{"Prune", func(t *testing.T, l *msglog.Bolt) error {
			if n, err := l.Prune(ctx, t0.Add(time.Hour)); err != nil || n != 4 {
				return fmt.Errorf("pruned %d, %v; want 4", n, err)
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := heldConfig()
			cfg.Retention = msglog.Retention{MaxAge: time.Minute}
			l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), cfg)
			appendHeld(t, l, batch...)
			if err := tt.check(t, l); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDeferredIsNew: a deferred record is new once, whether the copy seen
// before is in the memtable, in bbolt, earlier in the same call, or below
// the floor.
func TestDeferredIsNew(t *testing.T) {
	ctx := context.Background()
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), heldConfig())
	if _, err := l.Append(ctx, "#r", "stored", 1, msglog.Meta{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.SetFloor(ctx, "#r", "floored", 5); err != nil {
		t.Fatal(err)
	}
	appendHeld(t, l, rec("#r", "held", 1))
	recs := []msglog.Record{
		rec("#r", "held", 1),    // in the memtable
		rec("#r", "stored", 1),  // in bbolt
		rec("#r", "floored", 5), // below the floor
		rec("#r", "floored", 6),
		rec("#r", "new", 1),
		rec("#r", "new", 1),  // twice in the call
		rec("#q", "held", 1), // another room
		rec("#r", "held", 2),
	}
	want := []bool{false, false, false, true, true, false, true, true}
	got, err := l.AppendBatchDeferred(ctx, recs)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("new %v, %v; want %v", got, err, want)
	}
	// The same again, all in the memtable or bbolt now.
	if got, err := l.AppendBatchDeferred(ctx, recs); err != nil || slices.Contains(got, true) {
		t.Fatalf("repeated: new %v, %v; want none", got, err)
	}
	// A long batch (the map path) with repeats, half of it seen.
	var long []msglog.Record
	for s := uint64(1); s <= 40; s++ {
		long = append(long, rec("#r", "long", s%20+1))
	}
	got, err = l.AppendBatchDeferred(ctx, long)
	if err != nil {
		t.Fatal(err)
	}
	for i := range long {
		if got[i] != (i < 20) {
			t.Fatalf("long batch: new %v, want the first 20 only", got)
		}
	}
	if n, err := l.Count(ctx, "#r"); err != nil || n != 1+1+2+1+20 {
		t.Fatalf("count %d, %v; want 25", n, err)
	}
}

// TestDeferredSurvivesKill: deferred records are in the WAL when the
// append returns; a process killed before applying them (or after
// applying some) loses none: Open replays the WAL.
func TestDeferredSurvivesKill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l := openBolt(t, path, heldConfig())
	appendHeld(t, l, rec("#r", "a", 1), rec("#r", "a", 2))
	// A read applies them and rotates the WAL to .old.
	if vv, err := l.VersionVector(ctx, "#r"); err != nil || vv["a"] != 2 {
		t.Fatalf("version vector %v, %v", vv, err)
	}
	if _, err := os.Stat(l.WALPath() + ".old"); err != nil {
		t.Fatalf("applied WAL: %v, want it kept until the applier's next tick trims it", err)
	}
	for s := uint64(3); s <= 10; s++ {
		appendHeld(t, l, rec("#r", "a", s), rec("#q", "b", s))
	}
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}

	l = openBolt(t, path, heldConfig())
	if n, invalid, torn := l.WALReplay(); n != 2+16 || invalid != 0 || torn != 0 {
		t.Fatalf("replayed %d records, %d invalid, %d torn bytes; want 18, 0, 0", n, invalid, torn)
	}
	for _, k := range []struct {
		room, origin string
		seq          uint64
	}{{"#r", "a", 1}, {"#r", "a", 10}, {"#q", "b", 3}, {"#q", "b", 10}} {
		r, err := l.Get(ctx, k.room, k.origin, k.seq)
		if err != nil || string(r.Data) != fmt.Sprintf("%s/%s:%d", k.room, k.origin, k.seq) || !r.RecvTime.Equal(t0) {
			t.Errorf("after the kill %s/%s:%d = %+v, %v", k.room, k.origin, k.seq, r, err)
		}
	}
	if vv, err := l.VersionVector(ctx, "#r"); err != nil || vv["a"] != 10 {
		t.Fatalf("version vector %v, %v; want a:10", vv, err)
	}
	// Replayed, fsynced, and the WAL emptied: a second kill replays nothing.
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}
	l = openBolt(t, path, heldConfig())
	if n, _, _ := l.WALReplay(); n != 0 {
		t.Fatalf("second open replayed %d records, want 0", n)
	}
	if n, _ := l.Count(ctx, "#q"); n != 8 {
		t.Fatalf("count %d, want 8", n)
	}
}

// TestWALDamaged: Open keeps the records before a torn or corrupt one,
// drops the rest, never fails on a WAL's content, and starts a fresh WAL.
func TestWALDamaged(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		damage func(b []byte) []byte // the WAL of records a:1, a:2, a:3, one per append
		keep   int                   // records kept
	}{
		{"torn tail", func(b []byte) []byte { return b[:len(b)-5] }, 2},
		{"torn header", func(b []byte) []byte { return b[:len(b)/3*2+3] }, 2},
		{"bad crc in the middle", func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b }, 1},
		{"garbage", func(b []byte) []byte { return []byte("not a WAL at all, just text") }, 0},
		{"huge length", func(b []byte) []byte { return append([]byte{0xff, 0xff, 0xff, 0xff}, b...) }, 0},
		{"empty", func(b []byte) []byte { return nil }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.db")
			l := openBolt(t, path, heldConfig())
			for s := uint64(1); s <= 3; s++ {
				appendHeld(t, l, rec("#r", "a", s))
			}
			if err := l.Crash(); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(l.WALPath())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(l.WALPath(), tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			l = openBolt(t, path, heldConfig())
			n, _, torn := l.WALReplay()
			if n != tt.keep {
				t.Fatalf("replayed %d records, want %d", n, tt.keep)
			}
			if tt.keep < 3 && tt.name != "empty" && torn == 0 {
				t.Fatal("no torn bytes reported")
			}
			for s := uint64(1); s <= 3; s++ {
				_, err := l.Get(ctx, "#r", "a", s)
				if s <= uint64(tt.keep) && err != nil {
					t.Errorf("a:%d: %v, want kept", s, err)
				}
				if s > uint64(tt.keep) && !errors.Is(err, msglog.ErrNotFound) {
					t.Errorf("a:%d: %v, want ErrNotFound", s, err)
				}
			}
			if fi, err := os.Stat(l.WALPath()); err != nil || fi.Size() != 0 {
				t.Fatalf("WAL after open: %v, %v; want an empty file", fi, err)
			}
			// The log works on.
			appendHeld(t, l, rec("#r", "a", 7))
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(l.WALPath()); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("WAL after Close: %v, want removed", err)
			}
		})
	}
}

// TestWALInvalidRecord: a well-formed WAL record that this log refuses
// (too large for its MaxData) is skipped, not fatal, and the records after
// it are kept.
func TestWALInvalidRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	l := openBolt(t, path, heldConfig())
	big := rec("#r", "a", 1)
	big.Data = make([]byte, 100)
	appendHeld(t, l, big, rec("#r", "a", 2))
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}
	cfg := heldConfig()
	cfg.MaxData = 50
	l = openBolt(t, path, cfg)
	if n, invalid, torn := l.WALReplay(); n != 1 || invalid != 1 || torn != 0 {
		t.Fatalf("replayed %d, %d invalid, %d torn bytes; want 1, 1, 0", n, invalid, torn)
	}
	if _, err := l.Get(context.Background(), "#r", "a", 2); err != nil {
		t.Fatalf("a:2 after the invalid a:1: %v", err)
	}
}

// TestSyncCoversDeferred: deferred appends run no fsync; Sync fsyncs the
// WAL holding them (one fsync, nothing applied to bbolt), a second Sync
// with nothing new runs none, and a crash after it loses nothing (the
// records come back from the WAL).
func TestSyncCoversDeferred(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l := openBolt(t, path, heldConfig())
	for s := uint64(1); s <= 5; s++ {
		appendHeld(t, l, rec("#r", "a", s), rec("#r", "b", s))
	}
	if got := l.Fsyncs(); got != 0 {
		t.Fatalf("deferred appends ran %d fsyncs, want 0", got)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, pending := l.Fsyncs(), l.Pending(); got != 1 || pending != 10 {
		t.Fatalf("after Sync: %d fsyncs, %d records pending; want 1, 10 (the WAL fsynced, the memtable left to the applier)", got, pending)
	}
	if err := l.Sync(ctx); err != nil || l.Fsyncs() != 1 {
		t.Fatalf("Sync with nothing new: %v, %d fsyncs; want 1", err, l.Fsyncs())
	}
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}
	l = openBolt(t, path, heldConfig())
	if n, _, _ := l.WALReplay(); n != 10 {
		t.Fatalf("replayed %d records after Sync and a crash, want 10", n)
	}
	if n, _ := l.Count(ctx, "#r"); n != 10 {
		t.Fatalf("count %d, want 10", n)
	}
}

// TestMemtableBackpressure: a full memtable makes the next deferred append
// wake the applier and wait for it, so the memtable never grows past its
// bound by more than one call.
func TestMemtableBackpressure(t *testing.T) {
	ctx := context.Background()
	cfg := heldConfig()
	cfg.MaxMemtable = 8
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), cfg)
	for s := uint64(1); s <= 100; s++ {
		if _, err := l.AppendBatchDeferred(ctx, []msglog.Record{rec("#r", "a", 2*s-1), rec("#r", "a", 2*s)}); err != nil {
			t.Fatal(err)
		}
		if n := l.Pending(); n > cfg.MaxMemtable+1 {
			t.Fatalf("%d records pending, bound %d", n, cfg.MaxMemtable)
		}
	}
	if vv, err := l.VersionVector(ctx, "#r"); err != nil || vv["a"] != 200 {
		t.Fatalf("version vector %v, %v; want a:200", vv, err)
	}
}

// TestDeferredConcurrent: goroutines append the same records deferred and
// synced, in batches, while others read with Get and VersionVector and
// the applier runs often. Every record is stored once, exactly one caller
// is told it is new, and a record Get found is never lost afterwards.
func TestDeferredConcurrent(t *testing.T) {
	ctx := context.Background()
	cfg := msglog.DefaultConfig()
	cfg.ApplyAt = 16
	cfg.MaxMemtable = 64
	cfg.SyncInterval = time.Millisecond
	l := openBolt(t, filepath.Join(t.TempDir(), "log.db"), cfg)
	const workers, origins, per = 6, 4, 100
	var all []msglog.Record
	for s := uint64(1); s <= per; s++ {
		for o := range origins {
			all = append(all, rec("#r", fmt.Sprint("o", o), s))
		}
	}
	var newCount [origins][per + 1]atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			size := []int{1, 9, 64}[w%3]
			order := append(append([]msglog.Record{}, all[w*len(all)/workers:]...), all[:w*len(all)/workers]...)
			for i := 0; i < len(order); i += size {
				recs := order[i:min(i+size, len(order))]
				var isNew []bool
				var err error
				if w == workers-1 {
					isNew, err = l.AppendBatch(ctx, recs)
				} else {
					isNew, err = l.AppendBatchDeferred(ctx, recs)
				}
				if err != nil {
					t.Error(err)
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
		})
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			r := all[i%len(all)]
			got, err := l.Get(ctx, r.Room, r.Origin, r.Seq)
			if errors.Is(err, msglog.ErrNotFound) {
				continue
			}
			if err != nil || string(got.Data) != string(r.Data) {
				t.Errorf("Get %s:%d = %q, %v", r.Origin, r.Seq, got.Data, err)
				return
			}
			// Found once, found for ever (wherever it lives now).
			if _, err := l.Get(ctx, r.Room, r.Origin, r.Seq); err != nil {
				t.Errorf("Get %s:%d again: %v", r.Origin, r.Seq, err)
				return
			}
		}
	})
	readers.Go(func() {
		prev := msglog.VersionVector{}
		for {
			select {
			case <-done:
				return
			default:
			}
			vv, err := l.VersionVector(ctx, "#r")
			if err != nil {
				t.Error(err)
				return
			}
			for o, s := range prev {
				if vv[o] < s {
					t.Errorf("version vector went back: %v after %v", vv, prev)
					return
				}
			}
			prev = vv
		}
	})
	wg.Wait()
	close(done)
	readers.Wait()
	for o := range origins {
		for s := 1; s <= per; s++ {
			if got := newCount[o][s].Load(); got != 1 {
				t.Errorf("o%d:%d reported new %d times, want once", o, s, got)
			}
		}
	}
	vv, err := l.VersionVector(ctx, "#r")
	if err != nil || len(vv) != origins {
		t.Fatalf("version vector %v, %v", vv, err)
	}
	for o, s := range vv {
		if s != per {
			t.Fatalf("version vector %v; want %d for %s", vv, per, o)
		}
	}
	if n, err := l.Count(ctx, "#r"); err != nil || n != origins*per {
		t.Fatalf("count %d, %v; want %d", n, err, origins*per)
	}
}

// TestReplayReadsNextWAL: an OS crash can undo a rotation's renames and
// leave the newest records under <db>.wal.next; Open replays that file
// too.
func TestReplayReadsNextWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l := openBolt(t, path, heldConfig())
	appendHeld(t, l, rec("#r", "a", 1), rec("#r", "a", 2))
	wal := l.WALPath()
	if err := l.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(wal, wal+".next"); err != nil {
		t.Fatal(err)
	}
	l = openBolt(t, path, heldConfig())
	if n, _, _ := l.WALReplay(); n != 2 {
		t.Fatalf("replayed %d records from .wal.next, want 2", n)
	}
	if vv, err := l.VersionVector(ctx, "#r"); err != nil || vv["a"] != 2 {
		t.Fatalf("version vector %v, %v; want a:2", vv, err)
	}
	if _, err := os.Stat(wal + ".next"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf(".wal.next after replay: %v, want removed", err)
	}
}
