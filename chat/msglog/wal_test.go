package msglog

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func walRecords() []Record {
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	return []Record{
		{Room: "#r", Origin: "a", Seq: 1, Meta: Meta{Lamport: 7, SendTime: t0, RecvTime: t0.Add(time.Second)}, Data: []byte("hello")},
		{Room: "#room", Origin: string(bytes.Repeat([]byte("o"), MaxNameLen)), Seq: 1<<64 - 1, Data: nil},
		{Room: "r", Origin: "b", Seq: 2, Meta: Meta{Lamport: 1}, Data: make([]byte, 1000)},
	}
}

// TestWALRoundTrip: records decode as encoded, and the decoder stops at
// the first byte that is not a whole good record.
func TestWALRoundTrip(t *testing.T) {
	recs := walRecords()
	var b []byte
	var ends []int
	for _, r := range recs {
		b = appendWAL(b, r)
		if len(b)-sum(ends) != walSize(r) {
			t.Fatalf("record of %d bytes, walSize says %d", len(b)-sum(ends), walSize(r))
		}
		ends = append(ends, len(b)-sum(ends))
	}
	var got []Record
	if n := decodeWAL(b, func(r Record) { got = append(got, r) }); n != len(b) {
		t.Fatalf("decoded %d of %d bytes", n, len(b))
	}
	if len(got) != len(recs) {
		t.Fatalf("decoded %d records, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		g := got[i]
		if g.Room != r.Room || g.Origin != r.Origin || g.Seq != r.Seq || g.Lamport != r.Lamport ||
			!g.SendTime.Equal(r.SendTime) || !g.RecvTime.Equal(r.RecvTime) || !bytes.Equal(g.Data, r.Data) {
			t.Errorf("record %d: got %+v, want %+v", i, g, r)
		}
	}
	// Every cut inside the last record keeps exactly the others.
	last := len(b) - ends[len(ends)-1]
	for cut := last; cut < len(b); cut++ {
		n := 0
		if got := decodeWAL(b[:cut], func(Record) { n++ }); got != last || n != len(recs)-1 {
			t.Fatalf("cut at %d: %d bytes, %d records; want %d, %d", cut, got, n, last, len(recs)-1)
		}
	}
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// FuzzWALDecode: whatever the file holds, decoding never panics, consumes
// a prefix, and that prefix is exactly the encoding of what it decoded
// (so a damaged record is never half-accepted).
func FuzzWALDecode(f *testing.F) {
	var b []byte
	for _, r := range walRecords() {
		b = appendWAL(b, r)
	}
	f.Add(b)
	f.Add(b[:len(b)-3])
	f.Add(appendWAL(nil, walRecords()[0])[:walHeader])
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		var re []byte
		n := decodeWAL(b, func(r Record) { re = appendWAL(re, r) })
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if !slices.Equal(re, b[:n]) {
			t.Fatalf("re-encoded %x, decoded prefix %x", re, b[:n])
		}
	})
}
