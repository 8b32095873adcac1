package heapwatch

import "testing"

// An allocation alive when stop is called shows in the peak.
func TestPeakSeesAnAllocation(t *testing.T) {
	stop := Peak(1e6) // 1 ms
	const size = 64 << 20
	b := make([]byte, size)
	for i := range b { // touch it, so it is in use
		b[i] = 1
	}
	// stop samples once more while b is alive (it is read below).
	grew := stop()
	if b[size-1] != 1 {
		t.Fatal("lost the allocation")
	}
	if grew < size/2 {
		t.Errorf("peak growth %d bytes after holding %d", grew, size)
	}
}
