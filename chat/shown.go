package chat

// What this peer has shown. Every ordering mode delivers an origin's data
// messages in seq order, so what a room has shown of an origin is one
// number: the highest seq delivered (shown, late, or handled without a
// line, such as a direct message to another peer). The marks decide, on
// every delivery, whether a message is new to the user:
//
//   - a restart replays the log, and what the machine delivers there is
//     history only up to the marks: a message stored and never shown (it
//     reached a total or sequencer room before its restore, or the process
//     died between storing and showing it) is shown by the replay;
//   - a message delivered again later (a total-order member restored with
//     other members than the run that showed it waits for their acks, and
//     delivers it live) is not shown twice.
//
// The marks are kept in shownFile in the data directory, an append-only
// file of records written with one write() per delivery and no fsync: a
// killed process keeps them (the page cache has them); an OS crash can
// lose the last ones, and the messages they covered are shown again after
// the restart. Open reads the file, stops at the first torn or damaged
// record, and rewrites it compacted (one record per room and origin) when
// it has grown. Without a data directory the marks live in memory.
//
// Record format, big-endian: length u16 of the payload, CRC-32C u32 of the
// payload, payload = room length u8, room, origin length u8, origin, seq
// u64.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// shownFile is the marks file in the data directory.
const shownFile = "shown.marks"

const (
	shownHeader = 2 + 4
	// maxShownEntries bounds the (room, origin) marks kept: past it new
	// origins are not recorded (their messages may be shown again after a
	// restart; an error is logged once).
	maxShownEntries = 1 << 20
	// maxShownFile bounds what Open reads of the file.
	maxShownFile = 256 << 20
)

var shownCRC = crc32.MakeTable(crc32.Castagnoli)

type shownKey struct{ room, origin string }

// shownMarks is the set of marks. Safe for concurrent use.
type shownMarks struct {
	mu      sync.Mutex
	marks   map[shownKey]uint64
	f       *os.File // nil without a data directory
	path    string
	records int // records in the file
	// fresh: the file did not exist when the node opened. A data directory
	// of an older version has a log and no marks; its replay is history,
	// as it was before marks existed (see room.deliverLocked).
	fresh bool
	full  bool   // maxShownEntries reached (logged once)
	buf   []byte // one record being encoded
}

// openShownMarks loads the marks of dir ("" keeps them in memory).
func openShownMarks(dir string) (*shownMarks, error) {
	s := &shownMarks{marks: map[shownKey]uint64{}}
	if dir == "" {
		return s, nil
	}
	s.path = filepath.Join(dir, shownFile)
	f, err := os.OpenFile(s.path, os.O_RDWR, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		s.fresh = true
		f, err = os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("open shown marks: %w", err)
	}
	good, err := s.load(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("read shown marks %s: %w", s.path, err)
	}
	if s.records > 2*len(s.marks)+1024 {
		_ = f.Close()
		if f, err = s.compact(); err != nil {
			return nil, fmt.Errorf("compact shown marks %s: %w", s.path, err)
		}
	} else if err := f.Truncate(good); err != nil { // a torn tail must not hide what follows
		_ = f.Close()
		return nil, fmt.Errorf("repair shown marks %s: %w", s.path, err)
	} else if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("repair shown marks %s: %w", s.path, err)
	}
	s.f = f
	return s, nil
}

// load reads the records of f up to the first bad one and returns the
// offset after the last good one.
func (s *shownMarks) load(f *os.File) (int64, error) {
	data, err := io.ReadAll(io.LimitReader(f, maxShownFile))
	if err != nil {
		return 0, err
	}
	off := 0
	for len(data)-off >= shownHeader {
		n := int(binary.BigEndian.Uint16(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+2:])
		if off+shownHeader+n > len(data) {
			break // torn
		}
		p := data[off+shownHeader : off+shownHeader+n]
		if crc32.Checksum(p, shownCRC) != sum {
			break
		}
		k, seq, ok := decodeShown(p)
		if !ok {
			break
		}
		off += shownHeader + n
		s.records++
		if seq > s.marks[k] && (len(s.marks) < maxShownEntries || s.marks[k] > 0) {
			s.marks[k] = seq
		}
	}
	return int64(off), nil
}

func decodeShown(p []byte) (shownKey, uint64, bool) {
	if len(p) < 1 {
		return shownKey{}, 0, false
	}
	rl := int(p[0])
	if rl == 0 || len(p) < 1+rl+1 {
		return shownKey{}, 0, false
	}
	room := string(p[1 : 1+rl])
	p = p[1+rl:]
	ol := int(p[0])
	if ol == 0 || len(p) != 1+ol+8 {
		return shownKey{}, 0, false
	}
	return shownKey{room, string(p[1 : 1+ol])}, binary.BigEndian.Uint64(p[1+ol:]), true
}

// appendRecord appends the record of (k, seq) to b; false if a name does
// not fit its length byte.
func appendShown(b []byte, k shownKey, seq uint64) ([]byte, bool) {
	if len(k.room) == 0 || len(k.room) > 255 || len(k.origin) == 0 || len(k.origin) > 255 {
		return b, false
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, byte(len(k.room)))
	b = append(b, k.room...)
	b = append(b, byte(len(k.origin)))
	b = append(b, k.origin...)
	b = binary.BigEndian.AppendUint64(b, seq)
	p := b[start+shownHeader:]
	binary.BigEndian.PutUint16(b[start:], uint16(len(p)))
	binary.BigEndian.PutUint32(b[start+2:], crc32.Checksum(p, shownCRC))
	return b, true
}

// compact writes the marks to a new file and renames it into place; it
// returns the new file open for appending.
func (s *shownMarks) compact() (*os.File, error) {
	tmp := s.path + ".tmp"
	var b []byte
	for k, seq := range s.marks {
		b, _ = appendShown(b, k, seq)
	}
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return nil, err
	}
	s.records = len(s.marks)
	return os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o600)
}

// get returns the mark of origin in room (0: nothing shown).
func (s *shownMarks) get(room, origin string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.marks[shownKey{room, origin}]
}

// set raises the mark of origin in room to seq. An error means the mark
// is kept in memory only.
func (s *shownMarks) set(room, origin string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := shownKey{room, origin}
	cur, ok := s.marks[k]
	if seq <= cur {
		return nil
	}
	if !ok && len(s.marks) >= maxShownEntries {
		if s.full {
			return nil
		}
		s.full = true
		return fmt.Errorf("over %d rooms and origins: later ones may be shown again after a restart", maxShownEntries)
	}
	s.marks[k] = seq
	if s.f == nil {
		return nil
	}
	var ok2 bool
	s.buf, ok2 = appendShown(s.buf[:0], k, seq)
	if !ok2 {
		return nil // names are validated long before; kept in memory
	}
	if _, err := s.f.Write(s.buf); err != nil {
		return fmt.Errorf("record shown %s/%d of #%s: %w", origin, seq, room, err)
	}
	s.records++
	return nil
}

func (s *shownMarks) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
