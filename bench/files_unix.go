//go:build unix

package bench

// Open-file limits. Every chat connection of an in-process group costs two
// descriptors in this process (its dialing and its accepting end), so a
// full mesh of N peers needs about N(N−1) of them on top of each peer's
// listeners and log files: ~9,900 connections at N=100, ~39,800 at 200
// (two connections per pair). The Go runtime raises the soft
// RLIMIT_NOFILE to the hard limit when package os starts; the worker does
// it again itself so that the limit it runs with does not depend on that,
// and reports the limit, because a group that runs out of descriptors
// does not fail loudly: dials and accepts fail, retries follow, and the
// group never settles.

import (
	"fmt"
	"os"
	"syscall"
)

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the resulting soft limit (0 when it cannot be read).
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("get RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return uint64(lim.Cur), fmt.Errorf("raise RLIMIT_NOFILE from %d to %d: %w", lim.Cur, lim.Max, err)
		}
		lim = raised
	}
	return uint64(lim.Cur), nil
}

// fileLimit returns the soft RLIMIT_NOFILE, or 0 when it cannot be read.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return uint64(lim.Cur)
}

// openFiles returns the number of descriptors this process has open, or
// -1 when it cannot tell.
func openFiles() int {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		f, err = os.Open("/dev/fd")
		if err != nil {
			return -1
		}
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // the directory's own descriptor
}
