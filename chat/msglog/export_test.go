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
