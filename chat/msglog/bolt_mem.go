package msglog

// The memtable: deferred appends (AppendDeferred, AppendBatchDeferred) do
// not commit to bbolt. A bbolt transaction costs tens of microseconds and
// tens of kilobytes of garbage however few records it holds, and a peer
// receives its messages a few at a time. Instead a deferred append
//
//  1. decides which records are new: not in the memtable, and not stored
//     or below the floor in bbolt (one read transaction);
//  2. writes the new ones to the WAL (bolt_wal.go) with one write(), no
//     fsync: a killed process keeps them, Open replays them;
//  3. inserts them in the memtable, where Get finds them, and returns.
//
// The applier (syncLoop) moves the memtable into bbolt in one durable
// transaction (bbolt's barrier) when it holds Config.ApplyAt records or
// every SyncInterval, and deletes the WAL it has applied. Sync fsyncs the
// WAL files (bolt_walsync.go), so a deferred append that returned before
// Sync is durable when Sync returns, without a bbolt commit.
//
// Reads other than Get, and writes other than deferred appends, first
// apply the memtable (flush) and then run on bbolt alone: they are rare
// (anti-entropy, catch-up, history, our own messages) and this keeps them
// unchanged. Get, the duplicate check of every received message, looks in
// the memtable first (a map lookup), then in bbolt.
//
// Consistency. A record is always in the memtable or committed in bbolt:
// the applier moves the memtable aside (imm, still searched) and drops it
// only after its commit, so looking in the memtable before bbolt never
// misses one. Two locks keep isNew exact: deferred appends hold gate
// exclusively from step 1 to 3 (one at a time: the steps are a few
// microseconds), and the other writes of messages (synced appends,
// SetFloor, DeleteRoom, Prune) hold it shared from their flush to their
// commit, so no deferred append decides against a bbolt that is about to
// change under it. applyMu serialises applying the memtable. Lock order:
// mu, gate, applyMu, memMu, then bbolt's; no bbolt transaction is open
// while waiting for memMu.
//
// Memory is bounded: above Config.MaxMemtable records or maxMemBytes, a
// deferred append wakes the applier and waits for it (backpressure).

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxMemBytes bounds the memtable's record data (with MaxMemtable).
const maxMemBytes = 64 << 20

type memKey struct {
	room, origin string
	seq          uint64
}

func keyOf(r Record) memKey { return memKey{r.Room, r.Origin, r.Seq} }

// memtable holds deferred records not applied to bbolt yet, in arrival
// order. Data of its records aliases the WAL buffer of their append.
type memtable struct {
	recs  []Record
	index map[memKey]int // into recs
	bytes int
}

// newMemtable returns an empty memtable. It preallocates nothing: a
// memtable sized for Config.ApplyAt records (512 by default: ~110 KB of
// slice and map, and a log keeps two, the current one and the spare) cost
// every peer that much whatever its load, 12 MB of the 200 MB live heap
// of 50 in-process peers, and an idle open log 140 KB instead of 30 KB
// (TestOpenBoltIdleHeap). It grows to what the load needs once and keeps
// that storage across reset, so a busy log allocates no more than before
// after its first applies.
func newMemtable() *memtable {
	return &memtable{index: make(map[memKey]int)}
}

// reset empties m for reuse, keeping its storage (the map and slice
// growth were a fifth of the receive path's garbage) and dropping its
// references to the records' data.
func (m *memtable) reset() {
	clear(m.recs)
	m.recs = m.recs[:0]
	clear(m.index)
	m.bytes = 0
}

func (m *memtable) add(r Record) {
	m.index[keyOf(r)] = len(m.recs)
	m.recs = append(m.recs, r)
	m.bytes += len(r.Data)
}

// absorb appends o's records to m.
func (m *memtable) absorb(o *memtable) {
	for _, r := range o.recs {
		m.add(r)
	}
}

// lookupLocked finds a record in the memtable. The caller holds memMu.
func (l *Bolt) lookupLocked(k memKey) (Record, bool) {
	if i, ok := l.mem.index[k]; ok {
		return l.mem.recs[i], true
	}
	if l.imm != nil {
		if i, ok := l.imm.index[k]; ok {
			return l.imm.recs[i], true
		}
	}
	return Record{}, false
}

// pendingLocked reports the records and bytes waiting to be applied. The
// caller holds memMu.
func (l *Bolt) pendingLocked() (n, bytes int) {
	n, bytes = len(l.mem.recs), l.mem.bytes
	if l.imm != nil {
		n += len(l.imm.recs)
		bytes += l.imm.bytes
	}
	return n, bytes
}

// appendDeferred is AppendBatchDeferred: see the file comment.
func (l *Bolt) appendDeferred(ctx context.Context, recs []Record) ([]bool, error) {
	for _, r := range recs {
		if err := l.cfg.validateRecord(r); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.RLock() // Close waits for us
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	if len(recs) == 0 {
		return []bool{}, nil
	}
	if err := l.waitForRoom(ctx); err != nil {
		return nil, err
	}
	l.gate.Lock()
	defer l.gate.Unlock()
	isNew, err := l.decideNew(recs)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", describe(recs), err)
	}
	size := 0
	for i, r := range recs {
		if isNew[i] {
			size += walSize(r)
		}
	}
	if size == 0 {
		return isNew, nil
	}
	buf := make([]byte, 0, size)
	for i, r := range recs {
		if isNew[i] {
			buf = appendWAL(buf, r)
		}
	}
	if err := l.insert(recs, isNew, buf); err != nil {
		return nil, fmt.Errorf("append %s: %w", describe(recs), err)
	}
	return isNew, nil
}

// decideNew reports which records are new: not in the memtable, not
// stored or below the floor in bbolt, and the first of their key in recs.
// The caller holds gate exclusively, so nothing else adds records.
func (l *Bolt) decideNew(recs []Record) ([]bool, error) {
	isNew := make([]bool, len(recs))
	l.memMu.RLock()
	for i, r := range recs {
		_, found := l.lookupLocked(keyOf(r))
		isNew[i] = !found
	}
	l.memMu.RUnlock()
	markRepeats(recs, isNew)
	// Then bbolt: after the memtable, so that a record the applier moves
	// meanwhile is seen in one or the other.
	err := l.view(context.Background(), func(tx *bolt.Tx) error {
		var (
			rt               *roomTx
			room, origin     string
			st               originState
			ob               *bolt.Bucket
			haveRoom, haveSt bool
		)
		for i, r := range recs {
			if !isNew[i] {
				continue
			}
			if !haveRoom || r.Room != room {
				var err error
				if rt, err = openRoom(tx, r.Room, false); err != nil {
					return err
				}
				room, haveRoom, haveSt = r.Room, true, false
			}
			if rt == nil {
				continue // a room with nothing stored
			}
			if !haveSt || r.Origin != origin {
				var err error
				if st, err = rt.state(r.Origin); err != nil {
					return err
				}
				ob = rt.o.Bucket([]byte(r.Origin))
				origin, haveSt = r.Origin, true
			}
			if r.Seq <= st.floor || (ob != nil && ob.Get(encodeSeq(r.Seq)) != nil) {
				isNew[i] = false
			}
		}
		return nil
	})
	return isNew, err
}

// markRepeats clears isNew for a record whose key appears earlier in recs
// as new.
func markRepeats(recs []Record, isNew []bool) {
	if len(recs) <= 16 { // the usual batch: no map
		for i := range recs {
			for j := 0; j < i && isNew[i]; j++ {
				if isNew[j] && keyOf(recs[j]) == keyOf(recs[i]) {
					isNew[i] = false
				}
			}
		}
		return
	}
	seen := make(map[memKey]bool, len(recs))
	for i, r := range recs {
		if isNew[i] {
			k := keyOf(r)
			isNew[i] = !seen[k]
			seen[k] = true
		}
	}
}

// insert writes buf (the WAL records of recs' new ones) to the WAL and
// adds those records to the memtable, their data aliasing buf.
func (l *Bolt) insert(recs []Record, isNew []bool, buf []byte) error {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	if l.walErr != nil {
		return l.walErr
	}
	if l.wal == nil {
		return ErrClosed
	}
	if _, err := l.wal.Write(buf); err != nil {
		// A partial write would hide every later record from replay:
		// cut it off, or stop writing to this WAL.
		if terr := l.wal.Truncate(l.walBytes); terr != nil {
			l.walErr = fmt.Errorf("message log WAL unusable after a failed write (reopen the log): %w", err)
		}
		return fmt.Errorf("write message log WAL: %w", err)
	}
	l.walBytes += int64(len(buf))
	l.walGen.Add(1)
	off := 0
	for i, r := range recs {
		if !isNew[i] {
			continue
		}
		off += walSize(r)
		r.Data = buf[off-len(r.Data) : off : off]
		// As bbolt stores them: what Get returns does not depend on
		// whether the record was applied yet.
		r.SendTime = fromUnixNano(unixNano(r.SendTime))
		r.RecvTime = fromUnixNano(unixNano(r.RecvTime))
		l.mem.add(r)
	}
	if len(l.mem.recs) >= l.cfg.ApplyAt {
		l.kickApplier()
	}
	return nil
}

// kickApplier wakes the applier without waiting.
func (l *Bolt) kickApplier() {
	select {
	case l.applyNow <- struct{}{}:
	default:
	}
}

// waitForRoom blocks while the memtable is full (backpressure). If the
// applier fails to make room it returns the failure rather than wait.
func (l *Bolt) waitForRoom(ctx context.Context) error {
	for {
		l.memMu.RLock()
		n, bytes := l.pendingLocked()
		applied := l.applied
		l.memMu.RUnlock()
		if n < l.cfg.MaxMemtable && bytes < maxMemBytes {
			return nil
		}
		l.kickApplier()
		select {
		case <-applied:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.memMu.RLock()
		n, bytes = l.pendingLocked()
		err := l.applyErr
		l.memMu.RUnlock()
		if err != nil && (n >= l.cfg.MaxMemtable || bytes >= maxMemBytes) {
			return fmt.Errorf("message log memtable full: %w", err)
		}
	}
}

// getMem returns a record of the memtable (a copy), and whether there is
// one. After Close it returns ErrClosed.
func (l *Bolt) getMem(room, origin string, seq uint64) (Record, bool, error) {
	l.memMu.RLock()
	defer l.memMu.RUnlock()
	if l.shut {
		return Record{}, false, ErrClosed
	}
	r, ok := l.lookupLocked(memKey{room, origin, seq})
	if ok {
		r.Data = append([]byte{}, r.Data...)
	}
	return r, ok, nil
}

// flush applies the memtable to bbolt: when it returns, every deferred
// append that returned before it is committed in bbolt, durably.
func (l *Bolt) flush() error {
	l.memMu.RLock()
	empty := l.imm == nil && len(l.mem.recs) == 0
	l.memMu.RUnlock()
	if empty { // nothing moved aside, nothing waiting: nothing to wait for
		return nil
	}
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	return l.applyLocked()
}

// applyLocked moves the memtable into bbolt in one durable transaction,
// rotating the WAL (bolt_wal.go). On failure the records stay in
// the memtable (still found by reads) and the next apply retries them.
// The caller holds applyMu.
func (l *Bolt) applyLocked() error {
	l.memMu.Lock()
	if l.shut {
		l.memMu.Unlock()
		return ErrClosed
	}
	if l.imm == nil && len(l.mem.recs) == 0 {
		l.memMu.Unlock()
		return nil
	}
	if l.imm == nil {
		l.imm = l.mem
	} else { // a failed apply left it: retry it with the newer records
		l.imm.absorb(l.mem)
	}
	if l.mem = l.spare; l.mem == nil {
		l.mem = newMemtable()
	}
	l.spare = nil
	l.rotateWALLocked()
	recs := l.imm.recs
	l.memMu.Unlock()

	dropped, err := l.applyRecords(recs)
	var gen uint64
	if err == nil {
		gen = l.commitGen.Add(1)
		if !l.cfg.NoSync {
			l.barriers.Add(1)
		}
	}

	l.memMu.Lock()
	defer l.memMu.Unlock()
	if err == nil {
		if len(l.imm.recs) <= 4*l.cfg.ApplyAt { // do not keep a burst's storage
			l.imm.reset()
			l.spare = l.imm
		}
		l.imm = nil
		l.dropped += uint64(dropped)
		if l.walOld && l.walOldGen == 0 {
			l.walOldGen = gen // every record in .old is applied by now
		}
	}
	l.applyErr = err
	close(l.applied) // wake the appenders waiting for room
	l.applied = make(chan struct{})
	if err != nil {
		return fmt.Errorf("apply deferred appends: %w", err)
	}
	return nil
}

// lockWrite is for the writes of messages other than deferred appends:
// it holds gate shared and applies the memtable (see the file comment).
// The caller calls the returned unlock when its commit is done.
func (l *Bolt) lockWrite() (unlock func(), err error) {
	l.gate.RLock()
	if err := l.flush(); err != nil {
		l.gate.RUnlock()
		return nil, err
	}
	return l.gate.RUnlock, nil
}
