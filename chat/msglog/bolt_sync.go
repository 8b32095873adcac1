package msglog

// Sync generations: how Bolt shares one fsync among many callers.
//
// Every transaction of the group committer, and every one applying the
// memtable (bolt_mem.go), is committed without fsync
// (bbolt writes the pages and the meta page, the page cache holds them),
// then bumps commitGen; a commit that returned generation g is made
// durable by any fsync that starts after it. syncedGen is the highest
// generation known durable. A caller that needs its commit durable (Append,
// AppendBatch, Sync) asks for its generation: if syncedGen covers it, it
// returns at once; otherwise it queues on syncSem, a one-slot semaphore
// that serialises the real fsyncs, and checks again when its turn comes,
// since the fsync it waited behind may have covered it. The one that
// finally fsyncs reads commitGen just before, so its single fsync covers
// every caller queued behind it. The background syncer takes the same path.
//
// A failed fsync is sticky: it and every later one that would have to
// cover a commit newer than syncedGen fail with the same error, and
// syncedGen never moves again. Retrying is not safe: on Linux a failed
// fsync drops the dirty pages' error once reported, so a second fsync can
// succeed although the data never reached the disk. Reopening the log is
// the way out.

import (
	"context"
	"fmt"
	"time"
)

// Sync implements Log. It blocks while an fsync runs (its own or one it
// shares) and gives up waiting for its turn when ctx ends.
func (l *Bolt) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if l.cfg.NoSync {
		return nil
	}
	// Synced appends are durable when they return; the deferred appends
	// that returned before us are in the WAL files (and the memtable, or
	// committed to bbolt without fsync): fsync the WAL files. That is one
	// fdatasync of a small append-only file, and it leaves the memtable to
	// be applied in large batches; applying it here instead (one bbolt
	// commit per Sync) cost a peer that sends often most of the memtable's
	// gain.
	if err := l.syncWAL(ctx); err != nil {
		return fmt.Errorf("sync message log: %w", err)
	}
	return nil
}

// syncTo returns once every commit up to generation gen is fsynced (at
// once if it already is, or under Config.NoSync).
func (l *Bolt) syncTo(ctx context.Context, gen uint64) error {
	if l.cfg.NoSync || l.syncedGen.Load() >= gen {
		return nil
	}
	select {
	case l.syncSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.syncSem }()
	return l.syncLocked(gen)
}

// syncLocked is syncTo; the caller holds syncSem.
func (l *Bolt) syncLocked(gen uint64) error {
	if l.syncedGen.Load() >= gen {
		return nil // covered by the fsync we queued behind
	}
	if err := l.stickyErr(); err != nil {
		return err
	}
	if l.dbClosed {
		return ErrClosed
	}
	// Every generation up to target finished writing before it was
	// bumped, so this fsync covers them all, not only gen.
	target := l.commitGen.Load()
	l.fsyncs.Add(1)
	if err := l.fsync(); err != nil {
		return l.setSticky(fmt.Errorf("fsync (durability of commits since the last good one is unknown; reopen the log): %w", err))
	}
	l.syncedGen.Store(target)
	return nil
}

// syncLoop is the applier and the syncer: it applies the memtable to
// bbolt (bolt_mem.go) when an append finds it holding Config.ApplyAt
// records, and every SyncInterval it applies it, fsyncs the file if
// commits are waiting for one (through syncTo: an Append waiting meanwhile
// is covered by it) and removes the WAL that fsync made redundant. Errors
// are kept: an apply's for the next flush and the appenders waiting for
// room, an fsync's (sticky, see the file comment) for the next Sync,
// synced append or Close.
func (l *Bolt) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopSync:
			return
		case <-l.applyNow:
			_ = l.flush()
		case <-t.C:
			if l.flush() != nil {
				continue
			}
			if gen := l.commitGen.Load(); l.syncedGen.Load() < gen {
				if l.syncTo(context.Background(), gen) != nil {
					continue
				}
			}
			l.trimWAL()
		}
	}
}
