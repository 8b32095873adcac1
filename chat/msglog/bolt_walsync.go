package msglog

// WAL fsyncs: how Sync makes deferred appends durable. They are shared: every WAL write bumps walGen, a
// caller needs walSynced to reach the walGen it saw, and one fsync at a
// time (walSem) covers everything written before it started. A deferred
// record lives in the active WAL, or in .old once the applier rotated
// (committed to bbolt or about to be), so both files are fsynced; .old
// only once after its last write. A file created since the directory was
// last fsynced (Open, a rotation) needs the directory fsynced too, or an
// OS crash could lose its name (replay also reads .wal.next, in case the
// renames of a rotation are undone). A failed WAL fsync is sticky: it and
// every later Sync fail with the same error. Retrying is not safe: on
// Linux a failed fsync drops the dirty pages' error once reported, so a
// second fsync can succeed although the data never reached the disk.
// Reopening the log is the way out.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// syncWAL returns once every WAL write made before the call is durable.
func (l *Bolt) syncWAL(ctx context.Context) error {
	target := l.walGen.Load()
	if l.walSynced.Load() >= target {
		return nil
	}
	select {
	case l.walSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-l.walSem }()
	if l.walSynced.Load() >= target {
		return nil // covered by the fsync we queued behind
	}
	if err := l.stickyErr(); err != nil {
		return err
	}
	// Under memMu: which files to fsync, and what they cover. The fsyncs
	// run on duplicated descriptors outside the lock, so appends go on
	// and a rotation may close the originals meanwhile.
	l.memMu.Lock()
	if l.wal == nil {
		l.memMu.Unlock()
		return ErrClosed
	}
	gen := l.walGen.Load()
	var fds []int
	dup := func(f *os.File) error {
		fd, err := syscall.Dup(int(f.Fd()))
		if err == nil {
			fds = append(fds, fd)
		}
		return err
	}
	err := dup(l.wal)
	oldF := l.walOldF
	if err == nil && oldF != nil && !l.walOldOK {
		err = dup(oldF)
	}
	dir := l.walDir
	l.walDir = false
	l.memMu.Unlock()
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	if err != nil {
		l.setWALDir(dir)
		return fmt.Errorf("WAL: %w", err)
	}
	l.fsyncs.Add(1)
	err = l.walFsync(func() error {
		for _, fd := range fds {
			if err := syscall.Fdatasync(fd); err != nil {
				return err
			}
		}
		if dir {
			return syncDir(filepath.Dir(l.dbPath))
		}
		return nil
	})
	if err != nil {
		l.setWALDir(dir)
		return l.setSticky(fmt.Errorf("fsync WAL (durability of deferred appends since the last good one is unknown; reopen the log): %w", err))
	}
	if oldF != nil {
		l.memMu.Lock()
		if l.walOldF == oldF {
			l.walOldOK = true // nothing is written to .old after its rotation
		}
		l.memMu.Unlock()
	}
	l.walSynced.Store(gen)
	return nil
}

// stickyErr returns the first failed WAL fsync, or nil: after one, no
// WAL fsync is trusted again.
func (l *Bolt) stickyErr() error {
	if p := l.syncErr.Load(); p != nil {
		return *p
	}
	return nil
}

// setSticky records err as the failed fsync unless one is recorded
// already, and returns the recorded one.
func (l *Bolt) setSticky(err error) error {
	l.syncErr.CompareAndSwap(nil, &err)
	return *l.syncErr.Load()
}

// setWALDir marks the directory as needing an fsync again (a failed one).
func (l *Bolt) setWALDir(dirty bool) {
	if dirty {
		l.memMu.Lock()
		l.walDir = true
		l.memMu.Unlock()
	}
}

// walFsync runs fsync through the test hook, if any.
func (l *Bolt) walFsync(fsync func() error) error {
	if l.hook != nil {
		return l.hook(fsync)
	}
	return fsync()
}

// syncDir fsyncs a directory, making the names of files created in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
