package msglog

// Test-only access to Bolt's sync machinery, for the tests and benchmarks
// of package msglog_test.

// Fsyncs returns how many WAL fsyncs Sync has run, failed ones included.
// bbolt's own fdatasyncs (two in every commit) are not counted.
func (l *Bolt) Fsyncs() uint64 { return l.fsyncs.Load() }

// Barriers returns how many durable bbolt commits (with bbolt's
// fdatasyncs) the group committer and the applier have run.
func (l *Bolt) Barriers() uint64 { return l.barriers.Load() }

// BarrierOff reports whether bbolt would commit without its fsyncs now.
func (l *Bolt) BarrierOff() bool { return l.db.NoSync }

// Waiting returns how many appends are handed to the group committer and
// not answered yet.
func (l *Bolt) Waiting() int64 { return l.waiting.Load() }

// HoldWriter begins a bbolt write transaction and keeps it open until
// release is called: the committer and the applier wait for it.
func (l *Bolt) HoldWriter() (release func(), err error) {
	tx, err := l.db.Begin(true)
	if err != nil {
		return nil, err
	}
	return func() { tx.Rollback() }, nil
}

// Committed returns how many records the group committer has committed
// (new or not).
func (l *Bolt) Committed() uint64 { return l.committed.Load() }

// OpenBoltWithFsync is OpenBolt with the WAL's fsync replaced by hook,
// which receives the real one: tests pause fsyncs and make them fail.
func OpenBoltWithFsync(path string, cfg Config, hook func(fsync func() error) error) (*Bolt, error) {
	return openBolt(path, cfg, hook)
}

// Crash drops the log as a killed process would: it stops its goroutines
// without applying the memtable, leaves the WAL files as they are, and
// closes the database (releasing its lock) without fsync. The page cache
// keeps what was written, as it does for a killed process. Close does
// nothing afterwards.
func (l *Bolt) Crash() error {
	l.stop()
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	l.memMu.Lock()
	l.shut = true
	l.closeOldWAL()
	if l.wal != nil {
		l.wal.Close()
		l.wal = nil
	}
	l.memMu.Unlock()
	err := l.db.Close()
	l.closeOnce.Do(func() { l.closeErr = ErrClosed })
	return err
}

// WALReplay reports what Open replayed from the WAL files: valid records
// (applied, or found stored already), records skipped as invalid, and the
// bytes dropped after the last good record.
func (l *Bolt) WALReplay() (records, invalid int, tornBytes int64) {
	return l.replay.records, l.replay.invalid, l.replay.tornBytes
}

// Pending returns how many deferred records wait in the memtable.
func (l *Bolt) Pending() int {
	l.memMu.RLock()
	defer l.memMu.RUnlock()
	n, _ := l.pendingLocked()
	return n
}

// WALPath returns the path of the active WAL; the previous one, until
// the commit that applies it, is WALPath() + ".old".
func (l *Bolt) WALPath() string { return l.dbPath + walSuffix }
