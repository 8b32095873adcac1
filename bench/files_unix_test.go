//go:build unix

package bench

import (
	"syscall"
	"testing"
)

func TestRaiseFileLimit(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restore RLIMIT_NOFILE: %v", err)
		}
	})
	open := openFiles()
	if open <= 0 {
		t.Fatalf("openFiles() = %d, want the descriptors this test process has open", open)
	}
	// Lower the soft limit (keeping room for what is open), as a parent
	// process or a shell may have done, and check that it comes back up to
	// the hard limit.
	low := orig
	low.Cur = min(orig.Max, uint64(open)+64)
	if low.Cur == orig.Max {
		t.Skipf("hard limit %d leaves no room to lower the soft one", orig.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	if got := fileLimit(); got != uint64(low.Cur) {
		t.Fatalf("fileLimit() = %d after lowering it, want %d", got, low.Cur)
	}
	got, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if got != uint64(orig.Max) || fileLimit() != uint64(orig.Max) {
		t.Errorf("raiseFileLimit() = %d, limit now %d; want the hard limit %d", got, fileLimit(), orig.Max)
	}
}
