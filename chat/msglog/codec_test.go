package msglog

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestCodecRoundTrip(t *testing.T) {
	m := Meta{Lamport: 42, SendTime: time.Unix(100, 5).UTC(), RecvTime: time.Unix(200, 7).UTC()}
	got, data, err := decodeRecord(encodeRecord(m, []byte("body")))
	if err != nil || got != m || string(data) != "body" {
		t.Fatalf("record round trip: %+v %q %v", got, data, err)
	}
	zero, _, err := decodeRecord(encodeRecord(Meta{}, nil))
	if err != nil || !zero.SendTime.IsZero() || !zero.RecvTime.IsZero() {
		t.Fatalf("zero times: %+v %v", zero, err)
	}
	st := originState{floor: 2, contig: 5, high: 9, reserved: 11, lamport: 77}
	if got, err := decodeState(encodeState(st)); err != nil || got != st {
		t.Fatalf("state round trip: %+v %v", got, err)
	}
	o, s, err := decodeIndexKey(indexKey(3, "peer", 8))
	if err != nil || o != "peer" || s != 8 {
		t.Fatalf("index key round trip: %q %d %v", o, s, err)
	}
	if bytes.Compare(indexKey(1, "b", 9), indexKey(2, "a", 1)) >= 0 ||
		bytes.Compare(indexKey(2, "a", 9), indexKey(2, "ab", 1)) >= 0 ||
		bytes.Compare(indexKey(2, "a", 1), indexKey(2, "a", 2)) >= 0 {
		t.Fatal("index keys do not sort by (lamport, origin, seq)")
	}
	if _, err := decodeState(encodeState(originState{floor: 5, contig: 2})); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("contig below floor: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to every decoder of stored data: each
// returns a value or ErrCorrupt, never panics, and what it accepts
// re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(encodeRecord(Meta{Lamport: 1, RecvTime: time.Unix(5, 0)}, []byte("x")))
	f.Add(encodeState(originState{floor: 1, contig: 2, high: 3}))
	f.Add(indexKey(7, "origin", 3))
	f.Add([]byte(`{"name":"#r","mode":"causal","created":"2026-01-01T00:00:00Z","retention":{"MaxAge":5,"MaxCount":-1}}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, data, err := decodeRecord(b); err == nil {
			if !bytes.Equal(encodeRecord(m, data), b) {
				t.Fatalf("record %x does not re-encode", b)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("record: %v", err)
		}
		if st, err := decodeState(b); err == nil {
			if !bytes.Equal(encodeState(st), b) {
				t.Fatalf("state %x does not re-encode", b)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("state: %v", err)
		}
		if o, s, err := decodeIndexKey(b); err == nil {
			if !bytes.Equal(indexKey(binaryLamport(b), o, s), b) {
				t.Fatalf("index key %x does not re-encode", b)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("index key: %v", err)
		}
		if _, err := decodeSeq(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("seq: %v", err)
		}
		if _, err := decodeRoom("#r", b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("room: %v", err)
		}
	})
}

func binaryLamport(k []byte) uint64 { return decodeU64(k[:8]) }
