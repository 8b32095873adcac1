package msglog

// Test-only access to Bolt's sync machinery, for the tests and benchmarks
// of package msglog_test.

// Fsyncs returns how many fsyncs the log's sync path (Sync, the synced
// appends, the syncer, Close) has run, failed ones included. bbolt's own
// fdatasyncs (NextSeq, SetFloor, rooms, Prune, opening) are not counted.
func (l *Bolt) Fsyncs() uint64 { return l.fsyncs.Load() }

// Committed returns how many records the group committer has committed
// (new or not); it is bumped after the commit generation, so once it
// counts a record, that record's generation is visible to Sync.
func (l *Bolt) Committed() uint64 { return l.committed.Load() }

// OpenBoltWithFsync is OpenBolt with the file's fsync replaced by hook,
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
	l.syncSem <- struct{}{}
	l.dbClosed = true
	err := l.db.Close()
	<-l.syncSem
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
// bbolt's fsync covers it, is WALPath() + ".old".
func (l *Bolt) WALPath() string { return l.dbPath + walSuffix }
