package msglog_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/msglog/msglogtest"
)

func openBolt(t testing.TB, path string, cfg msglog.Config) *msglog.Bolt {
	t.Helper()
	l, err := msglog.OpenBolt(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestBoltConformance(t *testing.T) {
	msglogtest.Run(t, func(t *testing.T, cfg msglog.Config) msglog.Log {
		return openBolt(t, filepath.Join(t.TempDir(), "log.db"), cfg)
	})
}

func TestMemConformance(t *testing.T) {
	msglogtest.Run(t, func(t *testing.T, cfg msglog.Config) msglog.Log {
		l, err := msglog.NewMem(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

func TestMissing(t *testing.T) {
	tests := []struct {
		name          string
		local, remote msglog.VersionVector
		want          []msglog.SeqRange
	}{
		{"in sync", msglog.VersionVector{"a": 3}, msglog.VersionVector{"a": 3}, nil},
		{"remote ahead", msglog.VersionVector{"a": 3}, msglog.VersionVector{"a": 5}, nil},
		{"remote lacks an origin", msglog.VersionVector{"a": 3, "b": 2}, msglog.VersionVector{"a": 3},
			[]msglog.SeqRange{{Origin: "b", From: 1, To: 2}}},
		{"several, sorted", msglog.VersionVector{"c": 9, "a": 4, "b": 1}, msglog.VersionVector{"a": 1, "b": 1, "c": 8, "d": 7},
			[]msglog.SeqRange{{Origin: "a", From: 2, To: 4}, {Origin: "c", From: 9, To: 9}}},
		{"empty local", nil, msglog.VersionVector{"a": 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := msglog.Missing(tt.local, tt.remote); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBoltRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	cfg := msglog.DefaultConfig()
	cfg.Retention = msglog.Retention{MaxAge: time.Hour}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

	l, err := msglog.OpenBolt(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= 5; s++ {
		recv := now.Add(-2 * time.Hour) // will expire
		if s > 3 {
			recv = now
		}
		if _, err := l.Append(ctx, "#r", "me", s, msglog.Meta{Lamport: 10 * s, RecvTime: recv}, []byte{byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.NextSeq(ctx, "#r", "me"); err != nil { // reserves 6
		t.Fatal(err)
	}
	if err := l.PutRoom(ctx, msglog.RoomInfo{Name: "#r", Mode: "total", Created: now}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Prune(ctx, now); err != nil || n != 3 {
		t.Fatalf("prune: %d, %v; want 3", n, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openBolt(t, path, cfg)
	if last, _ := l.LastSeq(ctx, "#r", "me"); last != 6 {
		t.Fatalf("LastSeq after restart %d, want 6", last)
	}
	if n, _ := l.NextSeq(ctx, "#r", "me"); n != 7 {
		t.Fatalf("NextSeq after restart %d, want 7", n)
	}
	if lm, _ := l.MaxLamport(ctx, "#r"); lm != 50 {
		t.Fatalf("MaxLamport after restart %d, want 50", lm)
	}
	vv, _ := l.VersionVector(ctx, "#r")
	if vv["me"] != 5 {
		t.Fatalf("version vector after restart %v, want me:5", vv)
	}
	h, err := l.History(ctx, "#r", 10)
	if err != nil || len(h) != 2 || h[0].Seq != 4 || h[1].Seq != 5 || h[1].Data[0] != 5 {
		t.Fatalf("history after restart %+v %v", h, err)
	}
	info, err := l.Room(ctx, "#r")
	if err != nil || info.Mode != "total" || !info.Created.Equal(now) {
		t.Fatalf("room after restart %+v %v", info, err)
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := msglog.DefaultConfig()
	cfg.Retention.MaxCount = -1
	if _, err := msglog.NewMem(cfg); !errors.Is(err, msglog.ErrInvalid) {
		t.Fatalf("NewMem: got %v, want ErrInvalid", err)
	}
	if _, err := msglog.OpenBolt(filepath.Join(t.TempDir(), "x.db"), cfg); !errors.Is(err, msglog.ErrInvalid) {
		t.Fatalf("OpenBolt: got %v, want ErrInvalid", err)
	}
	l, err := msglog.NewMem(msglog.Config{}) // zero limits take the defaults
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), "#r", "a", 1, msglog.Meta{}, make([]byte, 1000)); err != nil {
		t.Fatalf("append with a zero config: %v", err)
	}
}

func TestBoltLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	openBolt(t, path, msglog.DefaultConfig())
	cfg := msglog.DefaultConfig()
	cfg.OpenTimeout = 50 * time.Millisecond
	if _, err := msglog.OpenBolt(path, cfg); err == nil {
		t.Fatal("second open of a locked file: want error")
	}
}

// TestBoltCorrupt damages stored entries behind the log's back: reads
// return ErrCorrupt, never panic.
func TestBoltCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "log.db")
	l, err := msglog.OpenBolt(path, msglog.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for s := uint64(1); s <= 3; s++ {
		l.Append(ctx, "#r", "a", s, msglog.Meta{Lamport: s}, []byte("ok"))
	}
	l.PutRoom(ctx, msglog.RoomInfo{Name: "#r", Mode: "fifo"})
	l.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		room := tx.Bucket([]byte("msgs")).Bucket([]byte("#r"))
		if err := room.Bucket([]byte("o")).Bucket([]byte("a")).Put([]byte{0, 0, 0, 0, 0, 0, 0, 2}, []byte{9, 1}); err != nil {
			return err
		}
		if err := room.Bucket([]byte("s")).Put([]byte("b"), []byte("short")); err != nil {
			return err
		}
		return tx.Bucket([]byte("rooms")).Put([]byte("#r"), []byte("{not json"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	l = openBolt(t, path, msglog.DefaultConfig())
	checks := map[string]error{}
	_, checks["Get"] = l.Get(ctx, "#r", "a", 2)
	_, checks["Range"] = l.Range(ctx, "#r", "a", 1, 10)
	_, checks["History"] = l.History(ctx, "#r", 10)
	_, checks["VersionVector"] = l.VersionVector(ctx, "#r")
	_, checks["Room"] = l.Room(ctx, "#r")
	_, checks["Rooms"] = l.Rooms(ctx)
	_, checks["Prune"] = l.Prune(ctx, time.Now())
	for name, err := range checks {
		if !errors.Is(err, msglog.ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
	if r, err := l.Get(ctx, "#r", "a", 1); err != nil || string(r.Data) != "ok" {
		t.Errorf("intact entry: %+v %v", r, err)
	}
}
