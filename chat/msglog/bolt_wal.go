package msglog

// The write-ahead log of deferred appends (bolt_mem.go). Each deferred
// append writes its new records to <db>.wal with one write() and no fsync:
// the page cache keeps them if the process is killed, and Open replays them
// into bbolt. Once the memtable has been applied to bbolt and bbolt has
// been fsynced, the WAL holding those records is deleted.
//
// Files. The applier rotates the WAL when it takes the memtable: <db>.wal
// becomes <db>.wal.old (the records being applied, and older ones already
// applied) and a fresh <db>.wal receives the appends that follow. The new
// file is created first as <db>.wal.next and renamed into place, so that a
// failure at any step leaves either no rotation or a complete one. <db>.wal.old
// is removed once an fsync of bbolt covers the commit that applied it; while
// it exists (that fsync has not run yet, or failed) the applier does not
// rotate again, so there are at most two files.
//
// Record format, big-endian:
//
//	length  u32  bytes of payload
//	crc     u32  CRC-32C of payload
//	payload:
//	  version u8 (1)
//	  room    u8 length, bytes
//	  origin  u8 length, bytes
//	  seq, lamport u64; send, recv i64 (Unix ns, 0 for the zero time)
//	  data    the rest
//
// Replay reads records until the first one that is torn (runs past the end
// of the file), fails its checksum or does not decode: a process killed in
// the middle of a write() leaves at most its last record torn, and
// everything before it is intact. Records are applied like appends
// (idempotent: a record already stored or below its origin's floor is
// skipped), so replaying a WAL whose records are already in bbolt is
// harmless, which is what makes deleting it after the fsync, rather than
// atomically with it, safe.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"
)

const (
	walVersion = 1
	walHeader  = 4 + 4               // length, crc
	walFixed   = 1 + 1 + 1 + 4*8     // version, two name lengths, seq, lamport, send, recv
	walMaxName = 255                 // a name's length is one byte (MaxNameLen)
	walApplyTx = 4096                // records per transaction when replaying
	walSuffix  = ".wal"              // the active WAL, next to the database
	walOld     = walSuffix + ".old"  // the WAL being applied, until bbolt is fsynced
	walNext    = walSuffix + ".next" // a new WAL before it is renamed into place
	walPerm    = fs.FileMode(0o600)  // like the database
	walFlags   = os.O_WRONLY | os.O_CREATE | os.O_TRUNC | os.O_APPEND
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walSize is the encoded size of r.
func walSize(r Record) int {
	return walHeader + walFixed + len(r.Room) + len(r.Origin) + len(r.Data)
}

// appendWAL appends r's WAL record to b. r is valid (names of 1-255
// bytes).
func appendWAL(b []byte, r Record) []byte {
	start := len(b)
	b = append(b, make([]byte, walHeader)...)
	b = append(b, walVersion, byte(len(r.Room)))
	b = append(b, r.Room...)
	b = append(b, byte(len(r.Origin)))
	b = append(b, r.Origin...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, r.Lamport)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.SendTime)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.RecvTime)))
	b = append(b, r.Data...)
	payload := b[start+walHeader:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// decodeWAL calls fn for each record at the start of b, in order, and
// returns how many bytes they take: it stops at the first record that is
// torn, fails its checksum or does not decode (see the file comment). The
// records' Data alias b. It never panics, whatever b holds; it does not
// validate names or seqs (replay does, with the log's config).
func decodeWAL(b []byte, fn func(Record)) int {
	n := 0
	for {
		rest := b[n:]
		if len(rest) < walHeader {
			return n
		}
		size := binary.BigEndian.Uint32(rest)
		if uint64(size) > uint64(len(rest)-walHeader) {
			return n
		}
		payload := rest[walHeader : walHeader+int(size)]
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(rest[4:]) {
			return n
		}
		r, ok := decodeWALPayload(payload)
		if !ok {
			return n
		}
		fn(r)
		n += walHeader + int(size)
	}
}

func decodeWALPayload(p []byte) (Record, bool) {
	if len(p) < walFixed || p[0] != walVersion {
		return Record{}, false
	}
	p = p[1:]
	name := func() (string, bool) {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return "", false
		}
		s := string(p[1 : 1+int(p[0])])
		p = p[1+int(p[0]):]
		return s, true
	}
	room, ok := name()
	if !ok {
		return Record{}, false
	}
	origin, ok := name()
	if !ok || len(p) < 4*8 {
		return Record{}, false
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(p[8*i:]) }
	r := Record{
		Room:   room,
		Origin: origin,
		Seq:    u(0),
		Meta: Meta{
			Lamport:  u(1),
			SendTime: fromUnixNano(int64(u(2))),
			RecvTime: fromUnixNano(int64(u(3))),
		},
		Data: p[4*8:],
	}
	return r, true
}

// walReplay is what Open found in the WAL files (WALReplay in
// export_test.go).
type walReplay struct {
	records   int   // decoded and valid, applied (or already stored)
	invalid   int   // decoded but invalid for this log, or refused by bbolt: skipped
	tornBytes int64 // bytes after the last good record, dropped
}

// replayWAL applies the WAL files left by the last run to bbolt (durable
// commits), removes them and opens a fresh WAL. A damaged WAL never fails it
// (its good prefix is kept); I/O errors do.
func (l *Bolt) replayWAL() error {
	// .wal.next too: without a directory fsync, an OS crash can undo the
	// renames of a rotation, leaving the new records under that name.
	for _, suffix := range []string{walOld, walSuffix, walNext} {
		b, err := os.ReadFile(l.dbPath + suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read message log WAL: %w", err)
		}
		var recs []Record
		n := decodeWAL(b, func(r Record) {
			if l.cfg.validateRecord(r) != nil {
				l.replay.invalid++
				return
			}
			recs = append(recs, r)
		})
		l.replay.tornBytes += int64(len(b) - n)
		for len(recs) > 0 {
			chunk := recs[:min(len(recs), walApplyTx)]
			recs = recs[len(chunk):]
			skipped, err := l.applyRecords(chunk)
			if err != nil {
				return fmt.Errorf("replay message log WAL: %w", err)
			}
			l.replay.records += len(chunk) - skipped
			l.replay.invalid += skipped
		}
	}
	for _, suffix := range []string{walOld, walNext} {
		if err := os.Remove(l.dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove message log WAL: %w", err)
		}
	}
	f, err := os.OpenFile(l.dbPath+walSuffix, walFlags, walPerm)
	if err != nil {
		return fmt.Errorf("create message log WAL: %w", err)
	}
	l.wal = f
	l.walDir = true
	return nil
}

// applyRecords commits recs to bbolt in one durable transaction, in order, skipping those already stored or below their floor. A record
// bbolt refuses (appendTx fails: a corrupt origin state) is dropped and
// the transaction retried without it, so one bad record cannot hold the
// others back; it returns how many it dropped. Any other failure (the
// transaction cannot begin or commit) stores nothing and is returned.
func (l *Bolt) applyRecords(recs []Record) (dropped int, err error) {
	var skip map[int]bool
	for {
		bad := -1
		err := l.update(context.Background(), func(tx *bolt.Tx) error {
			for i, r := range recs {
				if skip[i] {
					continue
				}
				if _, err := l.appendTx(tx, r); err != nil {
					bad = i
					return err
				}
			}
			return nil
		})
		if err == nil || bad < 0 {
			return len(skip), err
		}
		if skip == nil {
			skip = map[int]bool{}
		}
		skip[bad] = true
	}
}

// rotateWALLocked starts a new WAL for the appends that follow, keeping
// the current one as <db>.wal.old until bbolt is fsynced (see the file
// comment). It does nothing while an older one is still waiting for that
// fsync, or when the WAL is empty; a failure leaves the current WAL in
// use. The caller holds memMu.
func (l *Bolt) rotateWALLocked() {
	if l.walOld || l.walBytes == 0 || l.wal == nil {
		return
	}
	next, err := os.OpenFile(l.dbPath+walNext, walFlags, walPerm)
	if err != nil {
		return
	}
	if err := os.Rename(l.dbPath+walSuffix, l.dbPath+walOld); err != nil {
		next.Close()
		os.Remove(l.dbPath + walNext)
		return
	}
	if err := os.Rename(l.dbPath+walNext, l.dbPath+walSuffix); err != nil {
		// The old file is named .old now but still the one written to:
		// keep writing to it and never remove it (replay reads it).
		next.Close()
		l.walOld, l.walOldGen = true, 0
		l.walStuck = true
		return
	}
	// Keep the old file open until it is removed: Sync fsyncs it, since
	// its records may not be committed in bbolt yet.
	l.walOldF, l.walOldOK = l.wal, false
	l.wal, l.walBytes = next, 0
	l.walOld, l.walOldGen = true, 0
	l.walDir = true
}

// trimWAL removes <db>.wal.old once the commit that applied it is in:
// every commit is durable when it returns (bolt.go), so .old is redundant
// from then on.
func (l *Bolt) trimWAL() {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	if !l.walOld || l.walStuck || l.walOldGen == 0 {
		return
	}
	if err := os.Remove(l.dbPath + walOld); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return // tried again at the next tick
	}
	l.walOld, l.walOldGen = false, 0
	l.closeOldWAL()
}

// closeOldWAL closes the .old file's handle. The caller holds memMu.
func (l *Bolt) closeOldWAL() {
	if l.walOldF != nil {
		l.walOldF.Close()
		l.walOldF = nil
	}
}

// closeWAL closes the WAL file; when clean (every record applied and
// fsynced) it removes the WAL files, else it keeps them for the next Open.
func (l *Bolt) closeWAL(clean bool) error {
	l.memMu.Lock()
	defer l.memMu.Unlock()
	l.shut = true
	l.closeOldWAL()
	if l.wal == nil {
		return nil
	}
	err := l.wal.Close()
	l.wal = nil
	if !clean || err != nil {
		return err
	}
	for _, suffix := range []string{walOld, walSuffix} {
		if rerr := os.Remove(l.dbPath + suffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, fmt.Errorf("remove message log WAL: %w", rerr))
		}
	}
	return err
}
