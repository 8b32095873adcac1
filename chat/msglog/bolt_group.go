package msglog

// Group commit. Every append (Append, AppendDeferred, AppendBatch,
// AppendBatchDeferred) becomes one appendReq carrying its records (a single
// append is a slice of one) and waits on its done channel. One goroutine
// owned by the log, commitLoop, blocks for a request, takes every other one
// already queued up to Config.MaxGroup records, and commits them all in one
// durable bbolt transaction (bbolt's barrier: its two fdatasyncs):
// concurrent appenders share a commit and its fsyncs, while a lone
// appender pays one transaction and no waiting; appends arriving during a
// commit make the next group. A request is
// never split, so a batch is atomic and a group can exceed MaxGroup by one
// request. If a group's transaction fails, each request is retried alone so
// that only the faulty one fails.

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

type appendReq struct {
	recs []Record          // validated; read by the committer while the caller waits
	done chan appendResult // buffered (1): the committer never blocks on it
}

type appendResult struct {
	isNew []bool // one per record of the request
	gen   uint64 // commit generation that stored them
	err   error
}

// Append implements Log. The message is committed, durably, through the
// group committer, in one commit shared with the concurrent callers. Once
// queued it waits for the commit even if ctx ends, so that its result says
// whether the message is stored.
func (l *Bolt) Append(ctx context.Context, room, origin string, seq uint64, meta Meta, data []byte) (bool, error) {
	isNew, err := l.AppendBatch(ctx, []Record{{Room: room, Origin: origin, Seq: seq, Meta: meta, Data: data}})
	if err != nil {
		return false, err
	}
	return isNew[0], nil
}

// AppendDeferred implements Log. It adds the message to the memtable and
// the WAL (bolt_mem.go); the applier commits it to bbolt, durably, within
// SyncInterval, and the next Sync makes it durable sooner (a WAL fsync).
func (l *Bolt) AppendDeferred(ctx context.Context, room, origin string, seq uint64, meta Meta, data []byte) (bool, error) {
	isNew, err := l.AppendBatchDeferred(ctx, []Record{{Room: room, Origin: origin, Seq: seq, Meta: meta, Data: data}})
	if err != nil {
		return false, err
	}
	return isNew[0], nil
}

// AppendBatch implements Log: one durable commit, shared like Append's.
func (l *Bolt) AppendBatch(ctx context.Context, recs []Record) ([]bool, error) {
	res, err := l.commit(ctx, recs)
	if err != nil {
		return nil, err
	}
	return res.isNew, nil
}

// AppendBatchDeferred implements Log. The batch goes to the memtable and
// the WAL with one write() (bolt_mem.go), not to bbolt: it blocks only
// while the memtable is full. It does not keep recs.
func (l *Bolt) AppendBatchDeferred(ctx context.Context, recs []Record) ([]bool, error) {
	return l.appendDeferred(ctx, recs)
}

// commit validates recs, applies the memtable (so that the deferred
// appends that returned before come first), queues recs as one request
// and waits for the committer. Once queued it waits even if ctx ends, so
// the caller knows whether they are stored.
func (l *Bolt) commit(ctx context.Context, recs []Record) (appendResult, error) {
	for _, r := range recs {
		if err := l.cfg.validateRecord(r); err != nil {
			return appendResult{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return appendResult{}, err
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return appendResult{}, ErrClosed
	}
	if len(recs) == 0 {
		l.mu.RUnlock()
		return appendResult{isNew: []bool{}}, nil
	}
	// Held until the commit is in: no deferred append decides isNew
	// against bbolt meanwhile (bolt_mem.go).
	unlock, err := l.lockWrite()
	if err != nil {
		l.mu.RUnlock()
		return appendResult{}, fmt.Errorf("append %s: %w", describe(recs), err)
	}
	defer unlock()
	req := appendReq{recs: recs, done: make(chan appendResult, 1)}
	select {
	case l.appends <- req:
	case <-ctx.Done():
		l.mu.RUnlock()
		return appendResult{}, ctx.Err()
	}
	l.waiting.Add(1)
	l.mu.RUnlock()
	res := <-req.done
	l.waiting.Add(-1)
	if res.err != nil {
		// A record's error names it already (commitGroup).
		if len(recs) == 1 {
			return res, fmt.Errorf("append: %w", res.err)
		}
		return res, fmt.Errorf("append batch of %d: %w", len(recs), res.err)
	}
	return res, nil
}

// describe names recs in errors: the record, or how many.
func describe(recs []Record) string {
	if len(recs) == 1 {
		r := recs[0]
		return fmt.Sprintf("%s/%s:%d", r.Room, r.Origin, r.Seq)
	}
	return fmt.Sprintf("batch of %d", len(recs))
}

// commitLoop is the group committer: it blocks for one request, takes the
// others already queued while the group stays within MaxGroup records, and
// commits them together. A request that would overflow the group starts
// the next one.
func (l *Bolt) commitLoop() {
	defer l.wg.Done()
	group := make([]appendReq, 0, l.cfg.MaxGroup)
	var carry appendReq
	carried := false
	for {
		first := carry
		if carried {
			carried = false
		} else {
			var ok bool
			if first, ok = <-l.appends; !ok {
				return
			}
		}
		group = append(group[:0], first)
		n := len(first.recs)
	drain:
		for n < l.cfg.MaxGroup {
			select {
			case r, ok := <-l.appends:
				if !ok {
					break drain
				}
				if n+len(r.recs) > l.cfg.MaxGroup {
					carry, carried = r, true
					break drain
				}
				group = append(group, r)
				n += len(r.recs)
			default:
				break drain
			}
		}
		l.commitGroup(group)
		clear(group) // do not keep the callers' records alive
	}
}

// commitGroup commits the group's records in one durable transaction and
// answers every request. If the transaction fails, each request is
// retried alone.
func (l *Bolt) commitGroup(group []appendReq) {
	n := 0
	for _, req := range group {
		n += len(req.recs)
	}
	isNew := make([]bool, n) // one allocation per group, sliced per request
	err := l.update(context.Background(), func(tx *bolt.Tx) error {
		i := 0
		for _, req := range group {
			for _, r := range req.recs {
				stored, err := l.appendTx(tx, r)
				if err != nil {
					return fmt.Errorf("%s/%s:%d: %w", r.Room, r.Origin, r.Seq, err)
				}
				isNew[i] = stored
				i++
			}
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		for i := range group {
			l.commitGroup(group[i : i+1])
		}
		return
	}
	var gen uint64
	if err == nil {
		gen = l.commitGen.Add(1)
		if !l.cfg.NoSync {
			l.barriers.Add(1)
		}
		l.committed.Add(uint64(n))
	}
	i := 0
	for _, req := range group {
		res := appendResult{gen: gen, err: err}
		if err == nil {
			res.isNew = isNew[i : i+len(req.recs) : i+len(req.recs)]
		}
		i += len(req.recs)
		req.done <- res
	}
}
