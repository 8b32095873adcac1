package allocs

import "testing"

var sink []byte

// A function that allocates is measured as allocating in every trial; one
// that does not is measured at 0.
func TestMinPerRun(t *testing.T) {
	if got := MinPerRun(3, 10, func() { sink = make([]byte, 64) }); got != 1 {
		t.Errorf("one allocation a run measured as %v", got)
	}
	if got := MinPerRun(3, 10, func() {}); got != 0 {
		t.Errorf("no allocation measured as %v", got)
	}
}
