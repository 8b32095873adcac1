package msglog

// Durability: how Bolt's writes reach the disk.
//
// Every bbolt commit keeps bbolt's barrier: Commit writes the dirty pages,
// fdatasyncs, writes the meta page and fdatasyncs again, so the meta page
// never reaches the disk before the pages it points to, and an OS crash or
// power loss at any moment leaves the file at its last commit. (An earlier
// design committed the group committer's and the applier's transactions
// with bbolt's NoSync and fsynced later, shared: an OS crash between the
// two could leave a meta page pointing at pages never written, or at pages
// a later commit had reused.) What keeps this affordable is that commits
// are rare: received messages are written to the WAL and reach bbolt in
// one commit per SyncInterval or ApplyAt records (bolt_mem.go), concurrent
// synced appends share one commit (bolt_group.go), and a caller that needs
// its deferred appends durable sooner calls Sync, one fdatasync of the WAL
// (bolt_walsync.go), not a bbolt commit.

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
	// committed to bbolt durably already): fsync the WAL files. That is
	// one fdatasync of a small append-only file, and it leaves the
	// memtable to be applied in large batches; applying it here instead
	// (one bbolt commit per Sync) cost a peer that sends often most of the
	// memtable's gain.
	if err := l.syncWAL(ctx); err != nil {
		return fmt.Errorf("sync message log: %w", err)
	}
	return nil
}

// syncLoop is the applier: it applies the memtable to bbolt (bolt_mem.go)
// when an append finds it holding Config.ApplyAt records, and every
// SyncInterval, then removes the WAL the durable commit made redundant.
// An apply's error is kept for the next flush and the appenders waiting
// for room.
func (l *Bolt) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopSync:
			return
		case <-l.applyNow:
			if l.flush() == nil {
				l.trimWAL()
			}
		case <-t.C:
			if l.flush() == nil {
				l.trimWAL()
			}
		}
	}
}
