package repl

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestHistoryPersistsAsItGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "history")
	h, err := openHistory(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"one", "two", "two", "  ", "three\x1b[2J", "four"} {
		if err := h.add(l); err != nil {
			t.Fatal(err)
		}
	}
	// Written before close: a killed process keeps its history.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "one\ntwo\nthree\nfour\n"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	if got, want := h.Lines(), []string{"two", "three", "four"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if err := h.close(); err != nil {
		t.Fatal(err)
	}
	h2, err := openHistory(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.close()
	if got, want := h2.Lines(), []string{"two", "three", "four"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("reloaded Lines = %q, want %q", got, want)
	}
}

func TestHistoryCompactsLargeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	var b strings.Builder
	for i := 0; i < 25; i++ {
		b.WriteString(strings.Repeat("x", i+1) + "\n")
	}
	b.WriteString(strings.Repeat("y", 2<<20) + "\n") // overlong: skipped
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := openHistory(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if n := len(h.Lines()); n != 10 {
		t.Fatalf("loaded %d lines, want 10", n)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 10 {
		t.Fatalf("compacted file has %d lines, want 10", n)
	}
	if !strings.HasPrefix(string(data), strings.Repeat("x", 16)+"\n") {
		t.Fatalf("compacted file does not keep the newest lines: %.40q", data)
	}
}

func TestHistoryUnreadable(t *testing.T) {
	dir := t.TempDir()
	if _, err := openHistory(dir, 10); err == nil {
		t.Fatal("no error for a directory as history file")
	}
}
