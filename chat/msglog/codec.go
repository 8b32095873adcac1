package msglog

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// On-disk encodings. Every value starts with a version byte so the format
// can grow; everything read back is validated and a bad entry is an error
// wrapping ErrCorrupt, never a panic.

const (
	recordVersion = 1
	recordHeader  = 1 + 8 + 8 + 8 // version, lamport, send ns, recv ns
	stateVersion  = 1
	stateLen      = 1 + 5*8 // version, floor, contig, high, reserved, max lamport
)

func encodeSeq(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

func decodeSeq(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("%w: seq key of %d bytes", ErrCorrupt, len(k))
	}
	s := binary.BigEndian.Uint64(k)
	if s == 0 {
		return 0, fmt.Errorf("%w: seq key 0", ErrCorrupt)
	}
	return s, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func encodeRecord(m Meta, data []byte) []byte {
	b := make([]byte, recordHeader+len(data))
	b[0] = recordVersion
	binary.BigEndian.PutUint64(b[1:], m.Lamport)
	binary.BigEndian.PutUint64(b[9:], uint64(unixNano(m.SendTime)))
	binary.BigEndian.PutUint64(b[17:], uint64(unixNano(m.RecvTime)))
	copy(b[recordHeader:], data)
	return b
}

// decodeRecord decodes a stored record value; data is copied out of v
// (bbolt's memory is only valid inside the transaction).
func decodeRecord(v []byte) (Meta, []byte, error) {
	if len(v) < recordHeader {
		return Meta{}, nil, fmt.Errorf("%w: record of %d bytes", ErrCorrupt, len(v))
	}
	if v[0] != recordVersion {
		return Meta{}, nil, fmt.Errorf("%w: record version %d", ErrCorrupt, v[0])
	}
	m := Meta{
		Lamport:  binary.BigEndian.Uint64(v[1:]),
		SendTime: fromUnixNano(int64(binary.BigEndian.Uint64(v[9:]))),
		RecvTime: fromUnixNano(int64(binary.BigEndian.Uint64(v[17:]))),
	}
	return m, append([]byte{}, v[recordHeader:]...), nil
}

// originState is what the log keeps per (room, origin) besides messages.
type originState struct {
	floor    uint64 // seqs <= floor are gone
	contig   uint64 // every seq in (floor, contig] is stored; contig >= floor
	high     uint64 // highest seq ever appended
	reserved uint64 // highest seq handed out by NextSeq
	lamport  uint64 // highest Lamport time ever appended
}

func (s originState) last() uint64 { return max(s.high, s.reserved) }

func encodeState(s originState) []byte {
	b := make([]byte, stateLen)
	b[0] = stateVersion
	for i, v := range []uint64{s.floor, s.contig, s.high, s.reserved, s.lamport} {
		binary.BigEndian.PutUint64(b[1+8*i:], v)
	}
	return b
}

func decodeState(v []byte) (originState, error) {
	if len(v) != stateLen || v[0] != stateVersion {
		return originState{}, fmt.Errorf("%w: origin state of %d bytes", ErrCorrupt, len(v))
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(v[1+8*i:]) }
	s := originState{floor: u(0), contig: u(1), high: u(2), reserved: u(3), lamport: u(4)}
	if s.contig < s.floor || s.contig > max(s.high, s.floor) {
		return originState{}, fmt.Errorf("%w: origin state floor %d contig %d high %d", ErrCorrupt, s.floor, s.contig, s.high)
	}
	return s, nil
}

// indexKey orders a room's messages for History and count retention:
// lamport (8) | origin | 0 | seq (8). Origins contain no NUL.
func indexKey(lamport uint64, origin string, seq uint64) []byte {
	k := make([]byte, 0, 8+len(origin)+1+8)
	k = binary.BigEndian.AppendUint64(k, lamport)
	k = append(k, origin...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func decodeIndexKey(k []byte) (origin string, seq uint64, err error) {
	if len(k) < 8+1+1+8 || k[len(k)-9] != 0 {
		return "", 0, fmt.Errorf("%w: index key of %d bytes", ErrCorrupt, len(k))
	}
	origin = string(k[8 : len(k)-9])
	if err := validName("origin", origin); err != nil {
		return "", 0, fmt.Errorf("%w: index key: %v", ErrCorrupt, err)
	}
	seq, err = decodeSeq(k[len(k)-8:])
	return origin, seq, err
}

type roomJSON struct {
	Name      string     `json:"name"`
	Mode      string     `json:"mode"`
	Created   time.Time  `json:"created"`
	Retention *Retention `json:"retention,omitempty"`
	Joined    time.Time  `json:"joined"`
}

func encodeRoom(r RoomInfo) ([]byte, error) {
	return json.Marshal(roomJSON(r))
}

func decodeRoom(name string, v []byte) (RoomInfo, error) {
	var r roomJSON
	if err := json.Unmarshal(v, &r); err != nil {
		return RoomInfo{}, fmt.Errorf("%w: room %q: %v", ErrCorrupt, name, err)
	}
	if r.Name != name {
		return RoomInfo{}, fmt.Errorf("%w: room %q stored as %q", ErrCorrupt, name, r.Name)
	}
	if r.Retention != nil && (r.Retention.MaxAge < 0 || r.Retention.MaxCount < 0) {
		return RoomInfo{}, fmt.Errorf("%w: room %q: negative retention", ErrCorrupt, name)
	}
	return RoomInfo(r), nil
}

func validateRoomInfo(r RoomInfo) error {
	if err := validName("room", r.Name); err != nil {
		return err
	}
	if len(r.Mode) > 32 {
		return fmt.Errorf("%w: mode %q too long", ErrInvalid, r.Mode)
	}
	if r.Retention != nil && (r.Retention.MaxAge < 0 || r.Retention.MaxCount < 0) {
		return fmt.Errorf("%w: negative retention", ErrInvalid)
	}
	return nil
}
