package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestFileWatchPeak(t *testing.T) {
	base := openFiles()
	if base < 0 {
		t.Skip("this platform cannot count open descriptors")
	}
	w := watchFiles(10 * time.Millisecond)
	defer w.Stop()
	const extra = 100
	var files []*os.File
	for range extra {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	// Wait for a sample that saw them (polled, with a deadline).
	deadline := time.Now().Add(10 * time.Second)
	for w.Peak() < base+extra {
		if time.Now().After(deadline) {
			t.Fatalf("peak %d after opening %d files on top of %d", w.Peak(), extra, base)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, f := range files {
		f.Close()
	}
	if got := w.Stop(); got < base+extra {
		t.Errorf("Stop() = %d after the files closed, want the peak of at least %d", got, base+extra)
	}
	if got := w.Stop(); got < base+extra {
		t.Errorf("second Stop() = %d, want the same peak", got)
	}
}

func TestLimitNote(t *testing.T) {
	tests := []struct {
		peak  int
		limit uint64
		want  bool
	}{
		{100, 20000, false},
		{19599, 20000, false},
		{19600, 20000, true},
		{20000, 20000, true},
		{-1, 20000, false},
		{5000, 0, false},
	}
	for _, tt := range tests {
		got := limitNote(tt.peak, tt.limit)
		if (got != "") != tt.want || (tt.want && !strings.Contains(got, "RLIMIT_NOFILE")) {
			t.Errorf("limitNote(%d, %d) = %q, want a note: %v", tt.peak, tt.limit, got, tt.want)
		}
	}
}
