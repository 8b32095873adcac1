// Package msglog is hearsay's persistent message log: every message a peer
// has seen, per room and origin, keyed by seq, with the metadata retention
// and history need. It also keeps what must survive a restart besides the
// messages: each origin's highest seq (so a restarted peer never reuses
// one, even after retention deleted its messages), the "pruned up to"
// floor, and the rooms with their ordering mode.
//
// # Version vectors and the floor
//
// VersionVector reports, per origin, the highest seq h such that every seq
// from 1 to h is either stored or below the origin's floor (pruned by
// retention, or skipped with SetFloor because no peer has it any more).
// This is the Peerster status. Without the floor a peer whose retention
// pruned seqs 1..k would report 0 forever and anti-entropy would ask for
// pruned messages in every round. Missing(local, remote) is what local has
// and remote lacks, as seq ranges per origin; the sender reads them with
// Range, which starts above its own floor, and when the first record it can
// send is above the range's start it tells the receiver, which calls
// SetFloor so that both agree those messages are gone.
//
// # Appending and durability
//
// Append and AppendBatch return once the messages are durable (fsynced).
// AppendDeferred and AppendBatchDeferred are for messages other peers
// still have; they return once the messages are written, not fsynced: a
// killed process keeps them, an OS crash or power loss within
// Config.SyncInterval can lose them. Every read sees them at once. Sync
// makes everything appended before it durable, so a caller can append
// under its own lock and fsync after releasing it, and concurrent callers
// share one fsync.
//
// Bolt's layout:
//
//	<db>           the bbolt file: every message, state and room
//	<db>.wal       deferred messages not yet committed to <db> (bolt_wal.go)
//	<db>.wal.old   the previous WAL, until the commit to <db> that applies it
//
// A deferred append writes its new messages to the WAL with one write()
// and keeps them in an in-memory table (bolt_mem.go); a background
// goroutine commits that table to bbolt in one transaction every
// SyncInterval or every few hundred messages and deletes the WAL. Every
// bbolt commit keeps bbolt's barrier (fdatasync of the pages, then of the
// meta page), so an OS crash or power loss leaves the file at its last
// commit (bolt_sync.go). Get looks in the table first; every other call
// commits the table first. Open replays a WAL left by a killed process
// (up to a torn last record). Synced appends of every kind are merged
// into one transaction (group commit, bolt_group.go) and concurrent Syncs
// into one fsync of the WAL (bolt_walsync.go).
//
// Two implementations share the Log interface and one conformance suite
// (msglogtest): Bolt (go.etcd.io/bbolt and its WAL) and Mem (for tests).
package msglog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors.
var (
	ErrNotFound = errors.New("not found")
	ErrCorrupt  = errors.New("corrupt log entry")
	ErrInvalid  = errors.New("invalid argument")
	ErrClosed   = errors.New("log closed")
	// ErrLocked: another process (or another open in this one) holds
	// the log file.
	ErrLocked = errors.New("locked by another process")
)

// Limits on names (room and origin) and messages.
const (
	MaxNameLen = 255
	// MaxRange caps the records one Range or History call returns.
	MaxRange = 10000
)

// Meta is stored with each message.
type Meta struct {
	Lamport  uint64
	SendTime time.Time // the sender's clock (envelope field)
	RecvTime time.Time // when this peer stored it; retention by age uses it
}

// Record is one stored message. Data is the opaque signed envelope.
type Record struct {
	Room   string
	Origin string
	Seq    uint64
	Meta
	Data []byte
}

// VersionVector maps origin -> highest contiguous seq (see the package
// comment).
type VersionVector map[string]uint64

// SeqRange is the inclusive seq range [From, To] of one origin.
type SeqRange struct {
	Origin   string
	From, To uint64
}

// Missing returns, sorted by origin, the ranges local has and remote lacks:
// for each origin with local[o] > remote[o], [remote[o]+1, local[o]]. It is
// what a peer holding local should send to a peer that reported remote.
func Missing(local, remote VersionVector) []SeqRange {
	var out []SeqRange
	for o, l := range local {
		if r := remote[o]; l > r {
			out = append(out, SeqRange{Origin: o, From: r + 1, To: l})
		}
	}
	slices.SortFunc(out, func(a, b SeqRange) int { return strings.Compare(a.Origin, b.Origin) })
	return out
}

// Retention says how long a room keeps messages. Zero fields mean no limit.
type Retention struct {
	MaxAge   time.Duration // by receive time
	MaxCount int           // messages per room
}

// RoomInfo is a room this peer has joined, persisted so that its ordering
// mode and retention survive a restart.
type RoomInfo struct {
	Name      string
	Mode      string     // ordering mode name (hearsay.ParseOrderMode)
	Created   time.Time  // when this peer first joined it
	Retention *Retention // nil: the log's default
	// Joined is when this peer joined the room the last time; zero when it
	// has parted (the room's messages and seq counters are kept, so a peer
	// that rejoins never reuses a seq and keeps its history).
	Joined time.Time
}

// Log is the message log. Implementations are safe for concurrent use.
// Every call except Close takes a context checked before the work starts;
// the work itself (local disk I/O) is short and not interrupted. Returned
// slices and records belong to the caller.
type Log interface {
	// Append stores a message unless (room, origin, seq) is stored already
	// or below the origin's floor; new reports whether it was stored. Data
	// is copied. When it returns the message is durable (fsynced, unless
	// Config.NoSync); concurrent callers share one commit and its fsyncs.
	Append(ctx context.Context, room, origin string, seq uint64, meta Meta, data []byte) (new bool, err error)
	// AppendDeferred is Append for a message that can be fetched again
	// from other peers (one received from the network): when it returns the
	// message is stored and written to a file (Bolt: its WAL), so every
	// read sees it and a killed process keeps it, but the fsync is deferred
	// (Config.SyncInterval, or the next Sync). Only an OS crash or power
	// loss in that window can lose it (see Config.SyncInterval).
	AppendDeferred(ctx context.Context, room, origin string, seq uint64, meta Meta, data []byte) (new bool, err error)
	// AppendBatch stores several messages atomically and durably, like
	// Append for each: new[i] is recs[i]'s flag, and a record repeated
	// within recs is new only the first time. Every record is validated
	// first: an invalid one fails the call with ErrInvalid and nothing is
	// stored. The call blocks until the batch is committed and fsynced and
	// does not keep recs.
	AppendBatch(ctx context.Context, recs []Record) (new []bool, err error)
	// AppendBatchDeferred is AppendBatch without fsync, like
	// AppendDeferred: for a batch of received messages. Bolt writes it to
	// its WAL with one write() and commits it to bbolt later, with other
	// deferred appends; Sync makes it durable.
	AppendBatchDeferred(ctx context.Context, recs []Record) (new []bool, err error)
	// Sync makes durable every append that returned before Sync was
	// called. Concurrent callers share fsyncs: one fsync covers every
	// caller waiting for it, and a caller whose appends are already covered
	// returns at once. It blocks while the fsync runs and gives up waiting
	// for its turn when ctx ends. So a caller can commit with
	// AppendDeferred or AppendBatchDeferred under its own lock and Sync
	// after releasing it. After a failed fsync, Sync keeps failing
	// (durability is unknown until the log is reopened).
	// Without fsync to do (Mem, Config.NoSync) it only checks ctx and
	// Close.
	Sync(ctx context.Context) error
	// Get returns one message or ErrNotFound. It is the duplicate check
	// of every received message: Bolt serves it without a write.
	Get(ctx context.Context, room, origin string, seq uint64) (Record, error)
	// Range returns up to limit (<= MaxRange) messages of origin with
	// seq >= from, in seq order.
	Range(ctx context.Context, room, origin string, from uint64, limit int) ([]Record, error)
	// VersionVector returns the room's version vector.
	VersionVector(ctx context.Context, room string) (VersionVector, error)
	// Contiguous returns origin's entry of the room's version vector (0
	// when it has none). Unlike VersionVector it does not apply Bolt's
	// memtable first: it is cheap enough for the receive path, to bound
	// how far ahead of it a received message may be stored. While the
	// memtable is being applied it may return less than the true value,
	// never more.
	Contiguous(ctx context.Context, room, origin string) (uint64, error)
	// Floors returns, per origin, the seq up to which messages are pruned.
	Floors(ctx context.Context, room string) (VersionVector, error)
	// SetFloor declares the seqs up to seq of origin that are not stored
	// gone for good: they are never stored afterwards and the version
	// vector passes them. It deletes nothing (what is stored stays until
	// retention prunes it) and does not change LastSeq: a peer's word
	// that a message is gone must never remove one this log holds.
	SetFloor(ctx context.Context, room, origin string, seq uint64) error
	// History returns the room's last n (<= MaxRange) messages in
	// (lamport, origin, seq) order, oldest first.
	History(ctx context.Context, room string, n int) ([]Record, error)
	// NextSeq reserves and returns origin's next seq, durably: after a
	// restart it is never returned again. A reserved seq never appended is a
	// permanent gap in the origin's stream, so prefer appending our own
	// messages (before sending them) and LastSeq on restart.
	NextSeq(ctx context.Context, room, origin string) (uint64, error)
	// LastSeq returns the highest seq of origin ever appended or reserved
	// in the room, pruned or not.
	LastSeq(ctx context.Context, room, origin string) (uint64, error)
	// MaxLamport returns the highest Lamport time ever appended in the
	// room (pruned or not), to restore a clock on restart.
	MaxLamport(ctx context.Context, room string) (uint64, error)
	// Count returns the number of messages stored for the room.
	Count(ctx context.Context, room string) (int, error)
	// PutRoom creates or replaces a room's info.
	PutRoom(ctx context.Context, info RoomInfo) error
	// Room returns a room's info or ErrNotFound.
	Room(ctx context.Context, name string) (RoomInfo, error)
	// Rooms lists the rooms sorted by name.
	Rooms(ctx context.Context) ([]RoomInfo, error)
	// DeleteRoom forgets a room: its info and its messages.
	DeleteRoom(ctx context.Context, name string) error
	// Prune applies retention at time now to every room, deleting each
	// origin's oldest messages (a prefix in seq order, raising its floor);
	// it returns how many messages it deleted.
	Prune(ctx context.Context, now time.Time) (int, error)
	// Close releases the log. It is idempotent.
	Close() error
}

// Config configures a log.
type Config struct {
	// Retention applies to rooms without their own.
	Retention Retention
	// MaxData bounds one message's bytes (0: the default).
	MaxData int
	// NoSync skips every fsync, Sync's included (tests and benchmarks
	// only: an OS crash can lose acknowledged messages).
	NoSync bool
	// SyncInterval bounds how long a message of AppendDeferred or
	// AppendBatchDeferred stays written but not fsynced (0: the default,
	// 100 ms). Bolt writes such messages to its WAL and keeps them in
	// memory; every SyncInterval it commits them to the database, with
	// bbolt's fsyncs (an earlier Sync fsyncs the WAL instead). A killed
	// process loses nothing (the page cache has the WAL, replayed by the
	// next Open); an OS crash or power loss within the window can lose the
	// deferred messages, never the file's consistency.
	SyncInterval time.Duration
	// OpenTimeout bounds waiting for another process's lock on the file
	// (0: the default).
	OpenTimeout time.Duration
	// MaxGroup bounds the records committed in one transaction (a batch
	// larger than it is still committed whole) and the requests waiting in
	// the Bolt append queue (0: the default).
	MaxGroup int
	// ApplyAt is how many deferred messages waiting in Bolt's memtable make
	// it commit them before SyncInterval ends (0: the default, 512).
	ApplyAt int
	// MaxMemtable bounds the deferred messages waiting in Bolt's memtable
	// (0: the default, 65,536; their data is bounded to 64 MiB as well):
	// above it, deferred appends wait for the commit.
	MaxMemtable int
}

// DefaultConfig keeps 30 days and at most 100,000 messages per room.
func DefaultConfig() Config {
	return Config{
		Retention:   Retention{MaxAge: 30 * 24 * time.Hour, MaxCount: 100_000},
		MaxData:     1 << 20,
		OpenTimeout: 2 * time.Second,
		MaxGroup:    256,
		ApplyAt:     512,
		MaxMemtable: 1 << 16,

		SyncInterval: 100 * time.Millisecond,
	}
}

// normalized fills zero fields from DefaultConfig (a zero Retention stays
// zero: no limit).
func (c Config) normalized() (Config, error) {
	d := DefaultConfig()
	if c.MaxData == 0 {
		c.MaxData = d.MaxData
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = d.OpenTimeout
	}
	if c.MaxGroup == 0 {
		c.MaxGroup = d.MaxGroup
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = d.SyncInterval
	}
	if c.ApplyAt == 0 {
		c.ApplyAt = d.ApplyAt
	}
	if c.MaxMemtable == 0 {
		c.MaxMemtable = d.MaxMemtable
	}
	if c.SyncInterval < 0 || c.MaxData < 0 || c.MaxGroup < 0 || c.ApplyAt < 0 || c.MaxMemtable < 0 ||
		c.Retention.MaxAge < 0 || c.Retention.MaxCount < 0 {
		return c, fmt.Errorf("%w: negative limit in log config", ErrInvalid)
	}
	return c, nil
}

func (c Config) retention(info *RoomInfo) Retention {
	if info != nil && info.Retention != nil {
		return *info.Retention
	}
	return c.Retention
}

func validName(kind, s string) error {
	if s == "" || len(s) > MaxNameLen || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s %q: want 1-%d bytes without NUL", ErrInvalid, kind, s, MaxNameLen)
	}
	return nil
}

func (c Config) validateRecord(r Record) error {
	if err := validName("room", r.Room); err != nil {
		return err
	}
	if err := validName("origin", r.Origin); err != nil {
		return err
	}
	if r.Seq == 0 {
		return fmt.Errorf("%w: seq 0", ErrInvalid)
	}
	if len(r.Data) > c.MaxData {
		return fmt.Errorf("%w: message of %d bytes exceeds %d", ErrInvalid, len(r.Data), c.MaxData)
	}
	return nil
}

func validLimit(n int) error {
	if n <= 0 || n > MaxRange {
		return fmt.Errorf("%w: limit %d: want 1-%d", ErrInvalid, n, MaxRange)
	}
	return nil
}
