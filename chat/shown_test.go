package chat

import (
	"os"
	"path/filepath"
	"testing"
)

// The marks survive a reopen, a torn last record (a process killed in the
// middle of a write) loses only that record and does not hide the records
// appended after it, and a file grown by many updates is compacted.
func TestShownMarksPersist(t *testing.T) {
	dir := t.TempDir()
	s, err := openShownMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !s.fresh {
		t.Fatal("a new marks file is not fresh")
	}
	for seq := uint64(1); seq <= 3000; seq++ {
		if err := s.set("lobby", "alice", seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.set("lobby", "alice", 7); err != nil || s.get("lobby", "alice") != 3000 {
		t.Fatalf("a mark went down: %d, %v", s.get("lobby", "alice"), err)
	}
	if err := s.set("ops", "bob", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, shownFile)
	// A torn record at the end.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn, _ := appendShown(nil, shownKey{"ops", "bob"}, 9)
	if _, err := f.Write(torn[:len(torn)-3]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	s, err = openShownMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.fresh {
		t.Fatal("an existing marks file is fresh")
	}
	if a, b := s.get("lobby", "alice"), s.get("ops", "bob"); a != 3000 || b != 2 {
		t.Fatalf("after reopen: alice %d, bob %d; want 3000 and 2", a, b)
	}
	if st, err := os.Stat(path); err != nil || st.Size() > 1024 {
		t.Fatalf("3,001 records were not compacted: %v bytes, %v", st.Size(), err)
	}
	if err := s.set("ops", "bob", 5); err != nil {
		t.Fatal(err)
	}
	_ = s.close()
	s, err = openShownMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if b := s.get("ops", "bob"); b != 5 {
		t.Fatalf("a record appended after a torn one was lost: bob %d, want 5", b)
	}
}

// A damaged file (a flipped byte) keeps what precedes the damage.
func TestShownMarksDamaged(t *testing.T) {
	dir := t.TempDir()
	s, err := openShownMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.set("lobby", "alice", 4)
	_ = s.set("lobby", "bob", 6)
	_ = s.close()
	path := filepath.Join(dir, shownFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff // bob's seq
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = openShownMarks(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if a, b := s.get("lobby", "alice"), s.get("lobby", "bob"); a != 4 || b != 0 {
		t.Fatalf("alice %d, bob %d; want 4 and 0 (the damaged record dropped)", a, b)
	}
}

// FuzzShownMarks: any file content opens without panicking, and what it
// loads survives a rewrite.
func FuzzShownMarks(f *testing.F) {
	rec, _ := appendShown(nil, shownKey{"lobby", "alice"}, 3)
	f.Add(rec)
	f.Add(append(rec, rec[:5]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, shownFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := openShownMarks(dir)
		if err != nil {
			t.Fatal(err)
		}
		want := map[shownKey]uint64{}
		for k, v := range s.marks {
			want[k] = v
		}
		_ = s.set("x", "y", 1)
		want[shownKey{"x", "y"}] = max(want[shownKey{"x", "y"}], 1)
		_ = s.close()
		s, err = openShownMarks(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		for k, v := range want {
			if s.marks[k] != v {
				t.Fatalf("%v: %d after reopen, want %d", k, s.marks[k], v)
			}
		}
	})
}

// BenchmarkShownMark is the cost the marks add to every delivery: a
// lookup, a raise and one write() of its record.
func BenchmarkShownMark(b *testing.B) {
	s, err := openShownMarks(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	b.ReportAllocs()
	for i := range b.N {
		seq := uint64(i) + 1
		if seq <= s.get("lobby", "0123456789abcdef") {
			b.Fatal("mark ahead")
		}
		if err := s.set("lobby", "0123456789abcdef", seq); err != nil {
			b.Fatal(err)
		}
	}
}
