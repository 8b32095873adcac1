//go:build !linux

package bench

// Outside Linux the bench measures no process cost and no TCP bytes; the
// figures that need them are left out of the results.

func cpuSeconds() float64 { return 0 }

func resetPeakRSS() bool { return false }

func peakRSSMB() float64 { return 0 }

func rssMB() float64 { return 0 }

func tcpReceived() (map[string]uint64, bool) { return nil, false }

func memAvailable() uint64 { return 0 }
