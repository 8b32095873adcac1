package chat

// Sequence numbers are never reused by an origin: a receiver drops an
// envelope whose (origin, seq) it has seen, so a peer that restarted and
// counted from 1 again would be silenced. Writing the counter on every
// message would cost a sync per message, so the allocator reserves blocks:
// the file "seq" in the data directory holds the highest number that may
// have been handed out; a restart continues after it. A crash loses at most
// the rest of a block (a gap, which is harmless).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

const (
	seqFile  = "seq"
	seqBlock = 1024
)

// seqAllocator hands out sequence numbers from 1. Safe for concurrent use.
type seqAllocator struct {
	mu       sync.Mutex
	path     string // empty: in memory only (ephemeral identity)
	next     uint64 // next number to hand out
	reserved uint64 // highest number covered by the file
}

func newSeqAllocator(dir string) (*seqAllocator, error) {
	a := &seqAllocator{next: 1}
	if dir == "" {
		a.reserved = ^uint64(0)
		return a, nil
	}
	a.path = filepath.Join(dir, seqFile)
	data, err := os.ReadFile(a.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read sequence reservation: %w", err)
	default:
		n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sequence reservation %s is corrupt (%q): refusing to reuse sequence numbers", seqFile, data)
		}
		a.next = n + 1
		a.reserved = n
	}
	return a, nil
}

// Next returns the next sequence number, extending the reservation on disk
// when needed (then it blocks for one file write and sync).
func (a *seqAllocator) Next() (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next > a.reserved {
		if err := a.reserveLocked(a.next + seqBlock - 1); err != nil {
			return 0, err
		}
	}
	n := a.next
	a.next++
	return n, nil
}

// Peek returns the next number Next would return, without taking it.
func (a *seqAllocator) Peek() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.next
}

// reserveLocked writes upto to the file atomically (write, sync, rename).
// Caller holds a.mu.
func (a *seqAllocator) reserveLocked(upto uint64) error {
	tmp := a.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("reserve sequence numbers: %w", err)
	}
	_, werr := f.WriteString(strconv.FormatUint(upto, 10) + "\n")
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("reserve sequence numbers: %w", err)
	}
	if err := os.Rename(tmp, a.path); err != nil {
		return fmt.Errorf("reserve sequence numbers: %w", err)
	}
	a.reserved = upto
	return nil
}
