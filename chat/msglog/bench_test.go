package msglog_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

var benchBody = make([]byte, 256) // a short signed chat envelope

func benchLog(b *testing.B, noSync bool) *msglog.Bolt {
	b.Helper()
	cfg := msglog.DefaultConfig()
	cfg.NoSync = noSync
	return openBolt(b, filepath.Join(b.TempDir(), "log.db"), cfg)
}

// fill stores origins × per messages (seq 1..per each), in batches.
func fill(b *testing.B, l msglog.Log, origins, per int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	batch := make([]msglog.Record, 0, 1000)
	flush := func() {
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for s := 1; s <= per; s++ {
		for o := range origins {
			batch = append(batch, msglog.Record{Room: "#bench", Origin: fmt.Sprintf("origin-%02d", o), Seq: uint64(s),
				Meta: msglog.Meta{Lamport: uint64(s), RecvTime: now}, Data: benchBody})
			if len(batch) == cap(batch) {
				flush()
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}
}

func benchAppend(b *testing.B, noSync bool) { benchAppendWith(b, noSync, false) }

func benchAppendWith(b *testing.B, noSync, deferred bool) {
	l := benchLog(b, noSync)
	appendFn := l.Append
	if deferred {
		appendFn = l.AppendDeferred
	}
	ctx := context.Background()
	meta := msglog.Meta{RecvTime: time.Now()}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.ResetTimer()
	for i := range b.N {
		meta.Lamport = uint64(i + 1)
		if _, err := appendFn(ctx, "#bench", "origin", uint64(i+1), meta, benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend: one message per transaction, fsynced (what a peer
// acknowledges).
func BenchmarkAppend(b *testing.B) { benchAppend(b, false) }

// BenchmarkAppendNoSync: the same without fsync (the cost of bbolt itself).
func BenchmarkAppendNoSync(b *testing.B) { benchAppend(b, true) }

// BenchmarkAppendDeferred: one received message per transaction, its
// fsync left to the applier (what a peer does before delivering).
func BenchmarkAppendDeferred(b *testing.B) { benchAppendWith(b, false, true) }

// BenchmarkAppendBatch100: 100 messages per fsynced transaction; ns/op is
// per message.
func BenchmarkAppendBatch100(b *testing.B) {
	l := benchLog(b, false)
	ctx := context.Background()
	recs := make([]msglog.Record, 100)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.ResetTimer()
	for i := 0; i < b.N; i += len(recs) {
		for j := range recs {
			seq := uint64(i + j + 1)
			recs[j] = msglog.Record{Room: "#bench", Origin: "origin", Seq: seq, Meta: msglog.Meta{Lamport: seq}, Data: benchBody}
		}
		if _, err := l.AppendBatch(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVersionVector: a room of 10 origins × 10,000 messages.
func BenchmarkVersionVector(b *testing.B) {
	l := benchLog(b, true)
	fill(b, l, 10, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		vv, err := l.VersionVector(ctx, "#bench")
		if err != nil || len(vv) != 10 {
			b.Fatal(vv, err)
		}
	}
}

// BenchmarkMissing: the pure diff of two 10-origin version vectors.
func BenchmarkMissing(b *testing.B) {
	local, remote := msglog.VersionVector{}, msglog.VersionVector{}
	for o := range 10 {
		local[fmt.Sprintf("origin-%02d", o)] = 10_000
		remote[fmt.Sprintf("origin-%02d", o)] = uint64(9_900 + o)
	}
	b.ReportAllocs()
	for range b.N {
		if len(msglog.Missing(local, remote)) != 10 {
			b.Fatal("wrong diff")
		}
	}
}

// BenchmarkAntiEntropyRound: one repair round on a room of 10 origins ×
// 10,000 messages against a peer that lacks the last 100 of each origin:
// version vector, diff, and reading the 1,000 messages to send.
func BenchmarkAntiEntropyRound(b *testing.B) {
	l := benchLog(b, true)
	fill(b, l, 10, 10_000)
	remote := msglog.VersionVector{}
	for o := range 10 {
		remote[fmt.Sprintf("origin-%02d", o)] = 9_900
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		vv, err := l.VersionVector(ctx, "#bench")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, r := range msglog.Missing(vv, remote) {
			recs, err := l.Range(ctx, "#bench", r.Origin, r.From, int(r.To-r.From+1))
			if err != nil {
				b.Fatal(err)
			}
			n += len(recs)
		}
		if n != 1000 {
			b.Fatalf("sent %d, want 1000", n)
		}
	}
}

// BenchmarkHistory100: the last 100 messages of a 100,000-message room.
func BenchmarkHistory100(b *testing.B) {
	l := benchLog(b, true)
	fill(b, l, 10, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if h, err := l.History(ctx, "#bench", 100); err != nil || len(h) != 100 {
			b.Fatal(len(h), err)
		}
	}
}

// BenchmarkAppendParallel: many goroutines appending (a peer receiving
// from several connections), fsynced; group commit shares the fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	l := benchLog(b, false)
	ctx := context.Background()
	var next atomic.Uint64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq := next.Add(1)
			if _, err := l.Append(ctx, "#bench", "origin", seq, msglog.Meta{Lamport: seq}, benchBody); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAppendBatchDeferred: one caller appending received messages in
// batches of 1, 9 and 64 without fsync (the receive path). ns/op and B/op
// are per batch; µs/record and B/record per message.
func BenchmarkAppendBatchDeferred(b *testing.B) {
	for _, size := range []int{1, 9, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			l := benchLog(b, false)
			ctx := context.Background()
			recs := make([]msglog.Record, size)
			meta := msglog.Meta{RecvTime: time.Now()}
			seq := uint64(0)
			var before, after runtime.MemStats
			b.ReportAllocs()
			runtime.ReadMemStats(&before)
			for b.Loop() {
				for j := range recs {
					seq++
					meta.Lamport = seq
					recs[j] = msglog.Record{Room: "#bench", Origin: "origin", Seq: seq, Meta: meta, Data: benchBody}
				}
				if _, err := l.AppendBatchDeferred(ctx, recs); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(seq), "µs/record")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(seq), "B/record")
		})
	}
}

// BenchmarkAppendConcurrentSynced: 8 goroutines appending with fsync (a
// peer's senders in several rooms); concurrent Appends share durable
// commits (two fdatasyncs each). ns/op is per append; commits/append is
// how many durable commits each one cost.
func BenchmarkAppendConcurrentSynced(b *testing.B) {
	const writers = 8
	l := benchLog(b, false)
	ctx := context.Background()
	var next atomic.Uint64
	commits := l.Barriers()
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				seq := next.Add(1)
				if seq > uint64(b.N) {
					return
				}
				if _, err := l.Append(ctx, "#bench", "origin", seq, msglog.Meta{Lamport: seq}, benchBody); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(l.Barriers()-commits)/float64(b.N), "commits/append")
}

// BenchmarkApplyDeferred: the receive path with its bbolt commit: 512
// deferred appends (in batches of 8, as frames arrive), then a read that
// applies them to bbolt in one commit, as the applier does every
// SyncInterval or ApplyAt records. ns/op is per 512 records; µs/record
// per message, commit included.
func BenchmarkApplyDeferred(b *testing.B) {
	const perApply, batch = 512, 8
	l := benchLog(b, false)
	ctx := context.Background()
	recs := make([]msglog.Record, batch)
	meta := msglog.Meta{RecvTime: time.Now()}
	seq := uint64(0)
	for b.Loop() {
		for range perApply / batch {
			for j := range recs {
				seq++
				meta.Lamport = seq
				recs[j] = msglog.Record{Room: "#bench", Origin: "origin", Seq: seq, Meta: meta, Data: benchBody}
			}
			if _, err := l.AppendBatchDeferred(ctx, recs); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := l.Count(ctx, "#bench"); err != nil { // applies the memtable
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(seq), "µs/record")
}
