// Package msglogtest is the conformance suite every msglog.Log
// implementation runs (like testing/fstest): the same behaviour from the
// bbolt log and the in-memory one.
package msglogtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// Opener returns a fresh, empty log configured with cfg; the suite closes
// it.
type Opener func(t *testing.T, cfg msglog.Config) msglog.Log

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func meta(lamport uint64, recv time.Time) msglog.Meta {
	return msglog.Meta{Lamport: lamport, SendTime: recv.Add(-time.Second), RecvTime: recv}
}

// Run runs the suite against the logs open returns.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()
	mk := func(t *testing.T) msglog.Log {
		t.Helper()
		cfg := msglog.DefaultConfig()
		cfg.NoSync = true
		l := open(t, cfg)
		t.Cleanup(func() { l.Close() })
		return l
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	add := func(t *testing.T, l msglog.Log, room, origin string, seq, lamport uint64, recv time.Time) bool {
		t.Helper()
		n, err := l.Append(ctx, room, origin, seq, meta(lamport, recv), fmt.Appendf(nil, "%s/%s:%d", room, origin, seq))
		must(t, err)
		return n
	}
	vvEqual := func(t *testing.T, l msglog.Log, room string, want msglog.VersionVector) {
		t.Helper()
		got, err := l.VersionVector(ctx, room)
		must(t, err)
		if len(got) != len(want) {
			t.Fatalf("version vector %v, want %v", got, want)
		}
		for o, s := range want {
			if got[o] != s {
				t.Fatalf("version vector %v, want %v", got, want)
			}
		}
	}

	t.Run("AppendGetIdempotent", func(t *testing.T) {
		l := mk(t)
		if !add(t, l, "#r", "a", 1, 1, t0) {
			t.Fatal("first append: got not new")
		}
		if add(t, l, "#r", "a", 1, 1, t0) {
			t.Fatal("duplicate append: got new")
		}
		r, err := l.Get(ctx, "#r", "a", 1)
		must(t, err)
		if string(r.Data) != "#r/a:1" || r.Lamport != 1 || !r.RecvTime.Equal(t0) || !r.SendTime.Equal(t0.Add(-time.Second)) {
			t.Fatalf("got %+v", r)
		}
		if _, err := l.Get(ctx, "#r", "a", 2); !errors.Is(err, msglog.ErrNotFound) {
			t.Fatalf("missing seq: got %v, want ErrNotFound", err)
		}
		if _, err := l.Get(ctx, "#none", "a", 1); !errors.Is(err, msglog.ErrNotFound) {
			t.Fatalf("missing room: got %v, want ErrNotFound", err)
		}
		r.Data[0] = 'X'
		again, _ := l.Get(ctx, "#r", "a", 1)
		if again.Data[0] != '#' {
			t.Fatal("returned data aliases the log")
		}
		n, err := l.Count(ctx, "#r")
		must(t, err)
		if n != 1 {
			t.Fatalf("count %d, want 1", n)
		}
	})

	t.Run("AppendBatch", func(t *testing.T) {
		l := mk(t)
		add(t, l, "#r", "a", 2, 2, t0)
		recs := []msglog.Record{
			{Room: "#r", Origin: "a", Seq: 1, Meta: meta(1, t0), Data: []byte("1")},
			{Room: "#r", Origin: "a", Seq: 2, Meta: meta(2, t0), Data: []byte("2")},
			{Room: "#q", Origin: "b", Seq: 1, Meta: meta(1, t0), Data: []byte("3")},
			{Room: "#r", Origin: "a", Seq: 1, Meta: meta(1, t0), Data: []byte("1")},
		}
		got, err := l.AppendBatch(ctx, recs)
		must(t, err)
		if want := []bool{true, false, true, false}; !slices.Equal(got, want) {
			t.Fatalf("new %v, want %v", got, want)
		}
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 2})
		bad := append(recs, msglog.Record{Room: "#r", Origin: "", Seq: 1})
		if _, err := l.AppendBatch(ctx, bad); !errors.Is(err, msglog.ErrInvalid) {
			t.Fatalf("invalid batch: got %v", err)
		}
	})

	t.Run("AppendBatchDeferred", func(t *testing.T) {
		l := mk(t)
		add(t, l, "#r", "a", 2, 2, t0)
		must(t, l.SetFloor(ctx, "#r", "b", 3)) // b:1..3 gone
		rec := func(room, origin string, seq uint64) msglog.Record {
			return msglog.Record{Room: room, Origin: origin, Seq: seq, Meta: meta(seq, t0), Data: fmt.Appendf(nil, "%s/%s:%d", room, origin, seq)}
		}
		recs := []msglog.Record{
			rec("#r", "a", 1),
			rec("#r", "a", 2), // stored already
			rec("#r", "a", 1), // twice in the batch
			rec("#r", "b", 2), // below the floor
			rec("#r", "b", 4),
			rec("#q", "a", 1), // same origin and seq, another room
			rec("#r", "a", 3),
		}
		got, err := l.AppendBatchDeferred(ctx, recs)
		must(t, err)
		if want := []bool{true, false, false, false, true, true, true}; !slices.Equal(got, want) {
			t.Fatalf("new %v, want %v", got, want)
		}
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 3, "b": 4})
		vvEqual(t, l, "#q", msglog.VersionVector{"a": 1})
		r, err := l.Get(ctx, "#r", "b", 4)
		must(t, err)
		if string(r.Data) != "#r/b:4" || r.Lamport != 4 || !r.RecvTime.Equal(t0) {
			t.Fatalf("got %+v", r)
		}
		if _, err := l.Get(ctx, "#r", "b", 2); !errors.Is(err, msglog.ErrNotFound) {
			t.Fatalf("record below the floor: got %v, want ErrNotFound", err)
		}
		rs, err := l.Range(ctx, "#r", "a", 1, 10)
		must(t, err)
		if len(rs) != 3 || rs[0].Seq != 1 || rs[2].Seq != 3 || string(rs[0].Data) != "#r/a:1" {
			t.Fatalf("range %+v, want a:1..3", rs)
		}
		if n, _ := l.Count(ctx, "#r"); n != 4 {
			t.Fatalf("count %d, want 4", n)
		}
		// One invalid record: the call fails and stores none of the batch.
		bad := []msglog.Record{rec("#r", "c", 1), rec("#r", "c", 2), {Room: "#r", Origin: "c", Seq: 0}}
		if _, err := l.AppendBatchDeferred(ctx, bad); !errors.Is(err, msglog.ErrInvalid) {
			t.Fatalf("invalid batch: got %v, want ErrInvalid", err)
		}
		if _, err := l.Get(ctx, "#r", "c", 1); !errors.Is(err, msglog.ErrNotFound) {
			t.Fatalf("valid record of an invalid batch: got %v, want ErrNotFound", err)
		}
		if n, _ := l.Count(ctx, "#r"); n != 4 {
			t.Fatalf("count after the invalid batch %d, want 4", n)
		}
		if got, err := l.AppendBatchDeferred(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("empty batch: %v, %v", got, err)
		}
		must(t, l.Sync(ctx))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := l.AppendBatchDeferred(cctx, []msglog.Record{rec("#r", "d", 1)}); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: got %v", err)
		}
		must(t, l.Close())
		if _, err := l.AppendBatchDeferred(ctx, []msglog.Record{rec("#r", "d", 1)}); !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("closed: got %v, want ErrClosed", err)
		}
		if _, err := l.AppendBatch(ctx, []msglog.Record{rec("#r", "d", 1)}); !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("AppendBatch closed: got %v, want ErrClosed", err)
		}
	})

	t.Run("Sync", func(t *testing.T) {
		// With fsync (the suite's other logs skip it).
		l := open(t, msglog.DefaultConfig())
		t.Cleanup(func() { l.Close() })
		must(t, l.Sync(ctx)) // nothing to sync
		if _, err := l.AppendDeferred(ctx, "#r", "a", 1, meta(1, t0), []byte("x")); err != nil {
			t.Fatal(err)
		}
		must(t, l.Sync(ctx))
		must(t, l.Sync(ctx)) // covered already
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := l.Sync(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: got %v, want context.Canceled", err)
		}
		must(t, l.Close())
		if err := l.Sync(ctx); !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("closed: got %v, want ErrClosed", err)
		}
		if r, err := l.Get(ctx, "#r", "a", 1); !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("Get after Close: %+v %v", r, err)
		}
	})

	t.Run("Range", func(t *testing.T) {
		l := mk(t)
		for _, s := range []uint64{5, 1, 3, 2, 9} {
			add(t, l, "#r", "a", s, s, t0)
		}
		add(t, l, "#r", "b", 4, 4, t0)
		tests := []struct {
			from  uint64
			limit int
			want  []uint64
		}{
			{1, 10, []uint64{1, 2, 3, 5, 9}},
			{3, 2, []uint64{3, 5}},
			{6, 10, []uint64{9}},
			{10, 10, nil},
		}
		for _, tt := range tests {
			rs, err := l.Range(ctx, "#r", "a", tt.from, tt.limit)
			must(t, err)
			var got []uint64
			for _, r := range rs {
				if r.Origin != "a" || r.Room != "#r" {
					t.Fatalf("record %+v from another stream", r)
				}
				got = append(got, r.Seq)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Range(from %d, limit %d) = %v, want %v", tt.from, tt.limit, got, tt.want)
			}
		}
		if _, err := l.Range(ctx, "#r", "a", 1, 0); !errors.Is(err, msglog.ErrInvalid) {
			t.Fatalf("limit 0: got %v, want ErrInvalid", err)
		}
		if rs, err := l.Range(ctx, "#none", "a", 1, 5); err != nil || len(rs) != 0 {
			t.Fatalf("unknown room: %v %v", rs, err)
		}
	})

	t.Run("VersionVector", func(t *testing.T) {
		l := mk(t)
		vvEqual(t, l, "#r", msglog.VersionVector{})
		steps := []struct {
			origin string
			seq    uint64
			want   msglog.VersionVector
		}{
			{"a", 2, msglog.VersionVector{}},
			{"a", 1, msglog.VersionVector{"a": 2}},
			{"a", 4, msglog.VersionVector{"a": 2}},
			{"b", 1, msglog.VersionVector{"a": 2, "b": 1}},
			{"a", 3, msglog.VersionVector{"a": 4, "b": 1}},
		}
		contigEqual := func(room string, want msglog.VersionVector) {
			t.Helper()
			for _, o := range []string{"a", "b", "d", "none"} {
				if got, err := l.Contiguous(ctx, room, o); err != nil || got != want[o] {
					t.Errorf("Contiguous(%s, %s) = %d, %v; want %d", room, o, got, err, want[o])
				}
			}
		}
		for _, s := range steps {
			add(t, l, "#r", s.origin, s.seq, s.seq, t0)
			vvEqual(t, l, "#r", s.want)
			contigEqual("#r", s.want)
		}
		vvEqual(t, l, "#other", msglog.VersionVector{})
		contigEqual("#other", msglog.VersionVector{})
		// Deferred appends count at once (Bolt: from its memtable).
		var recs []msglog.Record
		for _, seq := range []uint64{1, 2, 3, 5} {
			recs = append(recs, msglog.Record{Room: "#r", Origin: "d", Seq: seq, Meta: msglog.Meta{Lamport: seq, RecvTime: t0}})
		}
		if _, err := l.AppendBatchDeferred(ctx, recs); err != nil {
			t.Fatal(err)
		}
		contigEqual("#r", msglog.VersionVector{"a": 4, "b": 1, "d": 3})
	})

	t.Run("History", func(t *testing.T) {
		l := mk(t)
		add(t, l, "#r", "b", 1, 2, t0)
		add(t, l, "#r", "a", 1, 2, t0)
		add(t, l, "#r", "a", 2, 5, t0)
		add(t, l, "#r", "c", 1, 1, t0)
		add(t, l, "#q", "z", 1, 3, t0)
		hist := func(n int) []string {
			rs, err := l.History(ctx, "#r", n)
			must(t, err)
			var out []string
			for _, r := range rs {
				out = append(out, fmt.Sprintf("%s:%d", r.Origin, r.Seq))
			}
			return out
		}
		if got, want := hist(10), []string{"c:1", "a:1", "b:1", "a:2"}; !slices.Equal(got, want) {
			t.Fatalf("history %v, want %v", got, want)
		}
		if got, want := hist(2), []string{"b:1", "a:2"}; !slices.Equal(got, want) {
			t.Fatalf("history(2) %v, want %v", got, want)
		}
	})

	t.Run("Seqs", func(t *testing.T) {
		l := mk(t)
		n, err := l.NextSeq(ctx, "#r", "me")
		must(t, err)
		if n != 1 {
			t.Fatalf("first NextSeq %d, want 1", n)
		}
		add(t, l, "#r", "me", 2, 2, t0)
		add(t, l, "#r", "me", 5, 9, t0)
		if n, _ = l.NextSeq(ctx, "#r", "me"); n != 6 {
			t.Fatalf("NextSeq after appending 5: %d, want 6", n)
		}
		if last, _ := l.LastSeq(ctx, "#r", "me"); last != 6 {
			t.Fatalf("LastSeq %d, want 6", last)
		}
		if last, _ := l.LastSeq(ctx, "#r", "other"); last != 0 {
			t.Fatalf("LastSeq of unknown origin %d, want 0", last)
		}
		if lm, _ := l.MaxLamport(ctx, "#r"); lm != 9 {
			t.Fatalf("MaxLamport %d, want 9", lm)
		}
	})

	t.Run("Rooms", func(t *testing.T) {
		l := mk(t)
		ret := &msglog.Retention{MaxCount: 3}
		must(t, l.PutRoom(ctx, msglog.RoomInfo{Name: "#b", Mode: "total", Created: t0, Retention: ret}))
		must(t, l.PutRoom(ctx, msglog.RoomInfo{Name: "#a", Mode: "causal", Created: t0}))
		must(t, l.PutRoom(ctx, msglog.RoomInfo{Name: "#a", Mode: "sequencer", Created: t0}))
		rs, err := l.Rooms(ctx)
		must(t, err)
		if len(rs) != 2 || rs[0].Name != "#a" || rs[0].Mode != "sequencer" || rs[1].Name != "#b" ||
			rs[1].Retention == nil || rs[1].Retention.MaxCount != 3 || !rs[1].Created.Equal(t0) {
			t.Fatalf("rooms %+v", rs)
		}
		if _, err := l.Room(ctx, "#c"); !errors.Is(err, msglog.ErrNotFound) {
			t.Fatalf("unknown room: %v", err)
		}
		// Leaving a room forgets it but keeps our seq counter.
		add(t, l, "#a", "me", 1, 1, t0)
		add(t, l, "#a", "me", 2, 2, t0)
		must(t, l.DeleteRoom(ctx, "#a"))
		if _, err := l.Room(ctx, "#a"); !errors.Is(err, msglog.ErrNotFound) {
			t.Fatalf("deleted room: %v", err)
		}
		if n, _ := l.Count(ctx, "#a"); n != 0 {
			t.Fatalf("deleted room keeps %d messages", n)
		}
		if n, _ := l.NextSeq(ctx, "#a", "me"); n != 3 {
			t.Fatalf("NextSeq after rejoining %d, want 3", n)
		}
		if err := l.PutRoom(ctx, msglog.RoomInfo{Name: ""}); !errors.Is(err, msglog.ErrInvalid) {
			t.Fatalf("empty room name: %v", err)
		}
	})

	t.Run("PruneByAge", func(t *testing.T) {
		l := mk(t)
		old, young := t0, t0.Add(40*24*time.Hour)
		for s := uint64(1); s <= 3; s++ {
			add(t, l, "#r", "a", s, s, old)
		}
		add(t, l, "#r", "a", 4, 4, young)
		add(t, l, "#r", "a", 5, 5, old) // old again: not a prefix, kept
		add(t, l, "#r", "b", 2, 1, old) // b:1 never arrived
		add(t, l, "#r", "c", 1, 1, young)
		n, err := l.Prune(ctx, young.Add(time.Hour))
		must(t, err)
		if n != 4 {
			t.Fatalf("pruned %d, want 4", n)
		}
		// The floor keeps the version vector at the high-water mark.
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 5, "b": 2, "c": 1})
		fl, err := l.Floors(ctx, "#r")
		must(t, err)
		if fl["a"] != 3 || fl["b"] != 2 || fl["c"] != 0 {
			t.Fatalf("floors %v, want a:3 b:2", fl)
		}
		if add(t, l, "#r", "a", 2, 2, old) {
			t.Fatal("re-append of a pruned message stored it")
		}
		if rs, _ := l.Range(ctx, "#r", "a", 1, 10); len(rs) != 2 || rs[0].Seq != 4 {
			t.Fatalf("range after prune %+v", rs)
		}
		if c, _ := l.Count(ctx, "#r"); c != 3 {
			t.Fatalf("count %d, want 3", c)
		}
		// Anti-entropy with a peer that had nothing asks only from the floor on.
		vv, _ := l.VersionVector(ctx, "#r")
		if got := msglog.Missing(msglog.VersionVector{}, vv); len(got) != 0 {
			t.Fatalf("missing from an empty peer: %v", got)
		}
	})

	t.Run("PruneByCount", func(t *testing.T) {
		l := mk(t)
		must(t, l.PutRoom(ctx, msglog.RoomInfo{Name: "#r", Mode: "causal", Retention: &msglog.Retention{MaxCount: 3}}))
		add(t, l, "#r", "a", 1, 1, t0)
		add(t, l, "#r", "b", 1, 2, t0)
		add(t, l, "#r", "a", 2, 3, t0)
		add(t, l, "#r", "b", 2, 4, t0)
		add(t, l, "#r", "a", 3, 5, t0)
		add(t, l, "#q", "a", 1, 1, t0) // default retention: kept
		n, err := l.Prune(ctx, t0)
		must(t, err)
		if n != 2 {
			t.Fatalf("pruned %d, want 2", n)
		}
		rs, _ := l.History(ctx, "#r", 10)
		var got []string
		for _, r := range rs {
			got = append(got, fmt.Sprintf("%s:%d", r.Origin, r.Seq))
		}
		if want := []string{"a:2", "b:2", "a:3"}; !slices.Equal(got, want) {
			t.Fatalf("kept %v, want %v", got, want)
		}
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 3, "b": 2})
		if c, _ := l.Count(ctx, "#q"); c != 1 {
			t.Fatalf("other room count %d, want 1", c)
		}
	})

	t.Run("SetFloor", func(t *testing.T) {
		l := mk(t)
		add(t, l, "#r", "a", 7, 7, t0)
		add(t, l, "#r", "a", 8, 8, t0)
		vvEqual(t, l, "#r", msglog.VersionVector{})
		// No peer has a:1..6 any more: skip them.
		must(t, l.SetFloor(ctx, "#r", "a", 6))
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 8})
		must(t, l.SetFloor(ctx, "#r", "a", 2)) // lower: no-op
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 8})
		if c, _ := l.Count(ctx, "#r"); c != 2 {
			t.Fatalf("count %d, want 2", c)
		}
		// A floor never deletes what is stored nor moves LastSeq (a peer's
		// unsigned word must not remove signed messages): b:1..3 stay
		// below a floor of 10, the gap b:4..9 is skipped, LastSeq is 11.
		for s := uint64(1); s <= 3; s++ {
			add(t, l, "#r", "b", s, s, t0)
		}
		add(t, l, "#r", "b", 11, 11, t0)
		must(t, l.SetFloor(ctx, "#r", "b", 10))
		vvEqual(t, l, "#r", msglog.VersionVector{"a": 8, "b": 11})
		if c, _ := l.Count(ctx, "#r"); c != 6 {
			t.Fatalf("count %d after a floor over stored messages, want 6", c)
		}
		if _, err := l.Get(ctx, "#r", "b", 2); err != nil {
			t.Fatalf("b:2 below the floor: %v, want kept", err)
		}
		if last, _ := l.LastSeq(ctx, "#r", "b"); last != 11 {
			t.Fatalf("LastSeq %d after the floor, want 11", last)
		}
		must(t, l.SetFloor(ctx, "#r", "c", 1_000_000))
		if last, _ := l.LastSeq(ctx, "#r", "c"); last != 0 {
			t.Fatalf("LastSeq %d after a floor alone, want 0", last)
		}
		// Retention still deletes what lies below a floor.
		n, err := l.Prune(ctx, t0.Add(100*365*24*time.Hour))
		must(t, err)
		if n != 6 {
			t.Fatalf("pruned %d, want 6", n)
		}
		if c, _ := l.Count(ctx, "#r"); c != 0 {
			t.Fatalf("count %d after pruning everything, want 0", c)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		cfg := msglog.DefaultConfig()
		cfg.MaxData = 4
		l := open(t, cfg)
		defer l.Close()
		cases := []struct {
			room, origin string
			seq          uint64
			data         string
		}{
			{"", "a", 1, ""},
			{"#r", "", 1, ""},
			{"#r", "a\x00b", 1, ""},
			{"#r", "a", 0, ""},
			{"#r", "a", 1, "12345"},
			{string(make([]byte, msglog.MaxNameLen+1)), "a", 1, ""},
		}
		for i, c := range cases {
			if _, err := l.Append(ctx, c.room, c.origin, c.seq, msglog.Meta{}, []byte(c.data)); !errors.Is(err, msglog.ErrInvalid) {
				t.Errorf("case %d: got %v, want ErrInvalid", i, err)
			}
		}
		if _, err := l.History(ctx, "#r", msglog.MaxRange+1); !errors.Is(err, msglog.ErrInvalid) {
			t.Errorf("history over MaxRange: %v", err)
		}
	})

	t.Run("ClosedAndCanceled", func(t *testing.T) {
		l := mk(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := l.Append(cctx, "#r", "a", 1, msglog.Meta{}, nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: got %v", err)
		}
		must(t, l.Close())
		must(t, l.Close())
		if _, err := l.Append(ctx, "#r", "a", 1, msglog.Meta{}, nil); !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("closed: got %v, want ErrClosed", err)
		}
		if _, err := l.VersionVector(ctx, "#r"); !errors.Is(err, msglog.ErrClosed) {
			t.Fatalf("closed: got %v, want ErrClosed", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		l := mk(t)
		const writers, per = 6, 40
		var wg sync.WaitGroup
		errs := make(chan error, writers*per*2)
		for w := range writers {
			wg.Add(2)
			go func() {
				defer wg.Done()
				origin := fmt.Sprintf("o%d", w)
				for s := uint64(per); s >= 1; s-- { // backwards: contig moves at the end
					if _, err := l.Append(ctx, "#r", origin, s, meta(s, t0), []byte("x")); err != nil {
						errs <- err
					}
					if _, err := l.Append(ctx, "#r", origin, s, meta(s, t0), []byte("x")); err != nil {
						errs <- err
					}
				}
			}()
			go func() {
				defer wg.Done()
				for range per {
					if _, err := l.VersionVector(ctx, "#r"); err != nil {
						errs <- err
					}
					if _, err := l.History(ctx, "#r", 5); err != nil {
						errs <- err
					}
					if _, err := l.NextSeq(ctx, "#r", fmt.Sprintf("n%d", w)); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := msglog.VersionVector{}
		for w := range writers {
			want[fmt.Sprintf("o%d", w)] = per
		}
		vvEqual(t, l, "#r", want)
		if c, _ := l.Count(ctx, "#r"); c != writers*per {
			t.Fatalf("count %d, want %d", c, writers*per)
		}
		for w := range writers {
			if last, _ := l.LastSeq(ctx, "#r", fmt.Sprintf("n%d", w)); last != per {
				t.Fatalf("n%d reserved up to %d, want %d", w, last, per)
			}
		}
	})
}
