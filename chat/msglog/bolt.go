package msglog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Bucket layout:
//
//	rooms/<room>                    -> RoomInfo (JSON)
//	msgs/<room>/o/<origin>/<seq>    -> record (codec.go)
//	msgs/<room>/s/<origin>          -> originState
//	msgs/<room>/i/<index key>       -> empty (History and count retention order)
//	msgs/<room>/n                   -> number of stored messages (8 bytes)
var (
	bucketRooms  = []byte("rooms")
	bucketMsgs   = []byte("msgs")
	bucketOrigin = []byte("o")
	bucketState  = []byte("s")
	bucketIndex  = []byte("i")
	keyCount     = []byte("n")
)

// Bolt is a Log on a bbolt file and a WAL next to it. It is safe for
// concurrent use (bbolt runs one writer at a time and readers in
// parallel).
//
// Deferred appends go to a memtable and the WAL, not to bbolt
// (bolt_mem.go, bolt_wal.go); a goroutine owned by the log commits the
// memtable in one transaction every SyncInterval or ApplyAt records, and
// every other operation commits it first, then runs as one transaction.
// Synced appends are group-committed (bolt_group.go): one goroutine owned
// by the log commits every append waiting in its queue in one transaction,
// so concurrent synced appends share one commit and its fsyncs. Every
// commit, the committer's and the applier's included, keeps bbolt's
// barrier (its two fdatasyncs: pages, then the meta page): an OS crash or
// power loss at any moment leaves the file at its last commit, never
// inconsistent. The WAL is what makes that affordable: received messages
// reach bbolt a few hundred at a time, so commits are rare.
type Bolt struct {
	db  *bolt.DB
	cfg Config

	mu      sync.RWMutex // guards closed and sending on appends
	closed  bool
	appends chan appendReq // bounded: a full queue blocks appenders (backpressure)
	wg      sync.WaitGroup

	// Commits and fsyncs (bolt_sync.go).
	commitGen atomic.Uint64                  // bumped after each commit of the committer or the applier
	syncErr   atomic.Pointer[error]          // a failed WAL fsync: sticky (bolt_walsync.go)
	hook      func(fsync func() error) error // the test hook of the WAL's fsync; nil: none
	fsyncs    atomic.Uint64                  // WAL fsyncs run by Sync, for tests and benchmarks
	barriers  atomic.Uint64                  // durable bbolt commits of the committer and the applier (tests, benchmarks)
	waiting   atomic.Int64                   // appends handed to the committer, not answered yet (tests)
	committed atomic.Uint64                  // records the committer committed, bumped after commitGen (tests)
	stopSync  chan struct{}                  // stops syncLoop

	// Memtable and WAL of deferred appends (bolt_mem.go, bolt_wal.go).
	gate      sync.RWMutex  // exclusive: a deferred append; shared: other writes of messages
	applyMu   sync.Mutex    // serialises applying the memtable
	memMu     sync.RWMutex  // guards the fields below
	mem       *memtable     // deferred records not applied yet
	imm       *memtable     // records being applied (or left by a failed apply); nil when none
	spare     *memtable     // the last applied, emptied for reuse; nil when none
	applyErr  error         // the last apply's error, nil once one succeeds
	applied   chan struct{} // closed (and replaced) after each apply: wakes appenders waiting for room
	applyNow  chan struct{} // one slot: wakes the applier when the memtable is large
	dropped   uint64        // records an apply dropped because bbolt refused them
	shut      bool          // Close has applied the memtable and closed the WAL
	dbPath    string        // the database file; the WAL files are named after it
	wal       *os.File      // the active WAL, opened for appending; nil once closed
	walBytes  int64         // its size
	walErr    error         // a failed write that could not be cut off: sticky
	walOld    bool          // <db>.wal.old exists
	walOldF   *os.File      // the .old file, open until removed, so Sync can fsync it (nil: none)
	walOldOK  bool          // walOldF fsynced after its last write
	walGen    atomic.Uint64 // WAL writes so far (bumped under memMu after each)
	walSynced atomic.Uint64 // every WAL write up to it is fsynced; stored under walSem
	walSem    chan struct{} // one slot: serialises WAL fsyncs
	walDir    bool          // under memMu: a WAL file was created since the directory was fsynced
	walOldGen uint64        // the commit that applied every record of .old; 0: not yet
	walStuck  bool          // a failed rotation left .old as the active file: never remove it
	replay    walReplay     // what Open replayed

	closeOnce sync.Once
	closeErr  error
}

var _ Log = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the log at path. It fails after
// cfg.OpenTimeout if another process holds the file.
func OpenBolt(path string, cfg Config) (*Bolt, error) {
	return openBolt(path, cfg, nil)
}

// openBolt is OpenBolt; a non-nil hook is called instead of the WAL's
// fsync, with the real one (tests inject pauses and failures with it).
func openBolt(path string, cfg Config, hook func(fsync func() error) error) (*Bolt, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cfg.OpenTimeout, NoSync: cfg.NoSync})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open message log %q: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("open message log %q: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRooms, bucketMsgs} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init message log %q: %w", path, err)
	}
	l := &Bolt{
		db:       db,
		cfg:      cfg,
		appends:  make(chan appendReq, cfg.MaxGroup),
		hook:     hook,
		walSem:   make(chan struct{}, 1),
		stopSync: make(chan struct{}),
		mem:      newMemtable(),
		applied:  make(chan struct{}),
		applyNow: make(chan struct{}, 1),
		dbPath:   path,
	}
	if err := l.replayWAL(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open message log %q: %w", path, err)
	}
	l.wg.Add(2)
	go l.commitLoop()
	go l.syncLoop()
	return l, nil
}

// Close commits the appends already queued, stops the committer and the
// applier, applies the memtable (a durable commit), removes the WAL (kept
// for the next Open if the apply failed) and closes the database; later
// calls return the first result. It reports a WAL fsync that failed
// earlier, as Sync did.
func (l *Bolt) Close() error {
	l.closeOnce.Do(func() {
		l.stop()
		l.applyMu.Lock()
		defer l.applyMu.Unlock()
		applyErr := l.applyLocked()
		walErr := l.closeWAL(applyErr == nil)
		l.closeErr = errors.Join(applyErr, l.stickyErr(), walErr, l.db.Close())
	})
	return l.closeErr
}

// stop refuses new appends and stops the committer (after the appends
// already queued) and the applier.
func (l *Bolt) stop() {
	l.mu.Lock()
	l.closed = true
	close(l.appends)
	close(l.stopSync)
	l.mu.Unlock()
	l.wg.Wait()
}

// Path returns the database file.
func (l *Bolt) Path() string { return l.db.Path() }

// update runs fn in one read-write transaction: Begin, defer Rollback,
// Commit (with bbolt's fsyncs unless Config.NoSync: the DB's NoSync is
// set once, at Open, and never per transaction).
func (l *Bolt) update(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := l.db.Begin(true)
	if err != nil {
		return l.txErr(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit message log: %w", err)
	}
	return nil
}

func (l *Bolt) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := l.db.Begin(false)
	if err != nil {
		return l.txErr(err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// readView is view after applying the memtable (bolt_mem.go), for every
// read but Get.
func (l *Bolt) readView(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := l.flush(); err != nil {
		return err
	}
	return l.view(ctx, fn)
}

func (l *Bolt) txErr(err error) error {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return fmt.Errorf("begin message log transaction: %w", err)
}

// roomTx holds a room's buckets inside one transaction; nil buckets mean
// the room has nothing stored (read-only access).
type roomTx struct {
	b, o, s, i *bolt.Bucket
}

func openRoom(tx *bolt.Tx, room string, create bool) (*roomTx, error) {
	msgs := tx.Bucket(bucketMsgs)
	if msgs == nil {
		return nil, fmt.Errorf("%w: msgs bucket missing", ErrCorrupt)
	}
	b := msgs.Bucket([]byte(room))
	if b == nil {
		if !create {
			return nil, nil
		}
		var err error
		if b, err = msgs.CreateBucket([]byte(room)); err != nil {
			return nil, fmt.Errorf("create room %q: %w", room, err)
		}
	}
	rt := &roomTx{b: b}
	for _, p := range []struct {
		name []byte
		dst  **bolt.Bucket
	}{{bucketOrigin, &rt.o}, {bucketState, &rt.s}, {bucketIndex, &rt.i}} {
		sub := b.Bucket(p.name)
		if sub == nil && create {
			var err error
			if sub, err = b.CreateBucket(p.name); err != nil {
				return nil, fmt.Errorf("create room %q: %w", room, err)
			}
		}
		if sub == nil {
			return nil, fmt.Errorf("%w: room %q lacks bucket %q", ErrCorrupt, room, p.name)
		}
		*p.dst = sub
	}
	return rt, nil
}

func (rt *roomTx) state(origin string) (originState, error) {
	v := rt.s.Get([]byte(origin))
	if v == nil {
		return originState{}, nil
	}
	st, err := decodeState(v)
	if err != nil {
		return st, fmt.Errorf("origin %q: %w", origin, err)
	}
	return st, nil
}

func (rt *roomTx) putState(origin string, st originState) error {
	return rt.s.Put([]byte(origin), encodeState(st))
}

func (rt *roomTx) count() (int, error) {
	v := rt.b.Get(keyCount)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: count of %d bytes", ErrCorrupt, len(v))
	}
	return int(decodeU64(v)), nil
}

func (rt *roomTx) addCount(d int) error {
	n, err := rt.count()
	if err != nil {
		return err
	}
	n += d
	if n < 0 {
		return fmt.Errorf("%w: count below zero", ErrCorrupt)
	}
	return rt.b.Put(keyCount, encodeSeq(uint64(n)))
}

func decodeU64(v []byte) uint64 {
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

// advance moves st.contig over the stored seqs that follow it.
func advance(ob *bolt.Bucket, st *originState) error {
	if ob == nil {
		return nil
	}
	c := ob.Cursor()
	for k, _ := c.Seek(encodeSeq(st.contig + 1)); k != nil; k, _ = c.Next() {
		s, err := decodeSeq(k)
		if err != nil {
			return err
		}
		if s != st.contig+1 {
			break
		}
		st.contig = s
	}
	return nil
}

// appendFill is the fill percent of the buckets appends write.
const appendFill = 0.9

func (l *Bolt) appendTx(tx *bolt.Tx, r Record) (bool, error) {
	rt, err := openRoom(tx, r.Room, true)
	if err != nil {
		return false, err
	}
	st, err := rt.state(r.Origin)
	if err != nil {
		return false, err
	}
	if r.Seq <= st.floor {
		return false, nil
	}
	ob, err := rt.o.CreateBucketIfNotExists([]byte(r.Origin))
	if err != nil {
		return false, fmt.Errorf("create origin %q: %w", r.Origin, err)
	}
	// Keys arrive mostly in increasing order (seq per origin, Lamport in
	// the index): bbolt's default split (0.5) would leave every page half
	// empty. Fuller pages mean fewer pages and nodes for a commit to
	// rewrite. FillPercent is per transaction, not stored.
	ob.FillPercent, rt.i.FillPercent = appendFill, appendFill
	key := encodeSeq(r.Seq)
	if ob.Get(key) != nil {
		return false, nil
	}
	if err := ob.Put(key, encodeRecord(r.Meta, r.Data)); err != nil {
		return false, err
	}
	if err := rt.i.Put(indexKey(r.Lamport, r.Origin, r.Seq), nil); err != nil {
		return false, err
	}
	if err := rt.addCount(1); err != nil {
		return false, err
	}
	st.high = max(st.high, r.Seq)
	st.lamport = max(st.lamport, r.Lamport)
	if r.Seq == st.contig+1 {
		if err := advance(ob, &st); err != nil {
			return false, err
		}
	}
	return true, rt.putState(r.Origin, st)
}

func getRecord(rt *roomTx, room, origin string, seq uint64) (Record, error) {
	ob := rt.o.Bucket([]byte(origin))
	if ob == nil {
		return Record{}, ErrNotFound
	}
	v := ob.Get(encodeSeq(seq))
	if v == nil {
		return Record{}, ErrNotFound
	}
	m, data, err := decodeRecord(v)
	if err != nil {
		return Record{}, fmt.Errorf("%s/%s:%d: %w", room, origin, seq, err)
	}
	return Record{Room: room, Origin: origin, Seq: seq, Meta: m, Data: data}, nil
}

// Get implements Log. It looks in the memtable first (bolt_mem.go),
// without applying it.
func (l *Bolt) Get(ctx context.Context, room, origin string, seq uint64) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if r, ok, err := l.getMem(room, origin, seq); ok || err != nil {
		return r, err
	}
	var r Record
	err := l.view(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil {
			return err
		}
		if rt == nil {
			return ErrNotFound
		}
		r, err = getRecord(rt, room, origin, seq)
		return err
	})
	return r, err
}

// Range implements Log.
func (l *Bolt) Range(ctx context.Context, room, origin string, from uint64, limit int) ([]Record, error) {
	if err := validLimit(limit); err != nil {
		return nil, err
	}
	var out []Record
	err := l.readView(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		ob := rt.o.Bucket([]byte(origin))
		if ob == nil {
			return nil
		}
		c := ob.Cursor()
		for k, v := c.Seek(encodeSeq(from)); k != nil && len(out) < limit; k, v = c.Next() {
			seq, err := decodeSeq(k)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", room, origin, err)
			}
			m, data, err := decodeRecord(v)
			if err != nil {
				return fmt.Errorf("%s/%s:%d: %w", room, origin, seq, err)
			}
			out = append(out, Record{Room: room, Origin: origin, Seq: seq, Meta: m, Data: data})
		}
		return nil
	})
	return out, err
}

// states calls fn for each origin state of the room.
func (l *Bolt) states(ctx context.Context, room string, fn func(origin string, st originState)) error {
	return l.readView(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		return rt.s.ForEach(func(k, v []byte) error {
			st, err := decodeState(v)
			if err != nil {
				return fmt.Errorf("room %q origin %q: %w", room, k, err)
			}
			fn(string(k), st)
			return nil
		})
	})
}

// VersionVector implements Log.
func (l *Bolt) VersionVector(ctx context.Context, room string) (VersionVector, error) {
	vv := VersionVector{}
	err := l.states(ctx, room, func(o string, st originState) {
		if st.contig > 0 {
			vv[o] = st.contig
		}
	})
	return vv, err
}

// Floors implements Log.
func (l *Bolt) Floors(ctx context.Context, room string) (VersionVector, error) {
	vv := VersionVector{}
	err := l.states(ctx, room, func(o string, st originState) {
		if st.floor > 0 {
			vv[o] = st.floor
		}
	})
	return vv, err
}

// MaxLamport implements Log.
func (l *Bolt) MaxLamport(ctx context.Context, room string) (uint64, error) {
	var m uint64
	err := l.states(ctx, room, func(_ string, st originState) { m = max(m, st.lamport) })
	return m, err
}

// LastSeq implements Log.
func (l *Bolt) LastSeq(ctx context.Context, room, origin string) (uint64, error) {
	var last uint64
	err := l.readView(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		st, err := rt.state(origin)
		last = st.last()
		return err
	})
	return last, err
}

// NextSeq implements Log.
func (l *Bolt) NextSeq(ctx context.Context, room, origin string) (uint64, error) {
	if err := validName("room", room); err != nil {
		return 0, err
	}
	if err := validName("origin", origin); err != nil {
		return 0, err
	}
	if err := l.flush(); err != nil {
		return 0, fmt.Errorf("next seq %s/%s: %w", room, origin, err)
	}
	var seq uint64
	err := l.update(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, true)
		if err != nil {
			return err
		}
		st, err := rt.state(origin)
		if err != nil {
			return err
		}
		st.reserved = st.last() + 1
		seq = st.reserved
		return rt.putState(origin, st)
	})
	if err != nil {
		return 0, fmt.Errorf("next seq %s/%s: %w", room, origin, err)
	}
	return seq, nil
}

// Count implements Log.
func (l *Bolt) Count(ctx context.Context, room string) (int, error) {
	var n int
	err := l.readView(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		n, err = rt.count()
		return err
	})
	return n, err
}

// SetFloor implements Log.
func (l *Bolt) SetFloor(ctx context.Context, room, origin string, seq uint64) error {
	if err := validName("room", room); err != nil {
		return err
	}
	if err := validName("origin", origin); err != nil {
		return err
	}
	unlock, err := l.lockWrite()
	if err != nil {
		return fmt.Errorf("set floor %s/%s:%d: %w", room, origin, seq, err)
	}
	defer unlock()
	err = l.update(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, true)
		if err != nil {
			return err
		}
		return skipUpTo(rt, origin, seq)
	})
	if err != nil {
		return fmt.Errorf("set floor %s/%s:%d: %w", room, origin, seq, err)
	}
	return nil
}

// History implements Log.
func (l *Bolt) History(ctx context.Context, room string, n int) ([]Record, error) {
	if err := validLimit(n); err != nil {
		return nil, err
	}
	var out []Record
	err := l.readView(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		c := rt.i.Cursor()
		for k, _ := c.Last(); k != nil && len(out) < n; k, _ = c.Prev() {
			origin, seq, err := decodeIndexKey(k)
			if err != nil {
				return fmt.Errorf("room %q: %w", room, err)
			}
			r, err := getRecord(rt, room, origin, seq)
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: room %q index names missing %s:%d", ErrCorrupt, room, origin, seq)
			}
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	slices.Reverse(out)
	return out, err
}
