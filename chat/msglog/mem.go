package msglog

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Mem is a Log in memory, for tests. It is safe for concurrent use and
// behaves like Bolt except that nothing survives the process.
type Mem struct {
	cfg    Config
	mu     sync.RWMutex
	closed bool
	rooms  map[string]RoomInfo
	msgs   map[string]*memRoom
}

type memRoom struct {
	origins map[string]*memOrigin
	count   int
}

type memOrigin struct {
	st   originState
	recs map[uint64]Record
}

var _ Log = (*Mem)(nil)

// NewMem returns an empty in-memory log. It fails only on a negative
// limit in cfg.
func NewMem(cfg Config) (*Mem, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	return &Mem{cfg: cfg, rooms: map[string]RoomInfo{}, msgs: map[string]*memRoom{}}, nil
}

// Close implements Log.
func (l *Mem) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func (l *Mem) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.closed {
		return ErrClosed
	}
	return nil
}

func (l *Mem) origin(room, origin string, create bool) *memOrigin {
	r := l.msgs[room]
	if r == nil {
		if !create {
			return nil
		}
		r = &memRoom{origins: map[string]*memOrigin{}}
		l.msgs[room] = r
	}
	o := r.origins[origin]
	if o == nil && create {
		o = &memOrigin{recs: map[uint64]Record{}}
		r.origins[origin] = o
	}
	return o
}

func cloneRecord(r Record) Record {
	r.Data = append([]byte{}, r.Data...)
	return r
}

func (l *Mem) appendLocked(r Record) bool {
	o := l.origin(r.Room, r.Origin, true)
	if r.Seq <= o.st.floor {
		return false
	}
	if _, ok := o.recs[r.Seq]; ok {
		return false
	}
	r.RecvTime, r.SendTime = normTime(r.RecvTime), normTime(r.SendTime)
	o.recs[r.Seq] = cloneRecord(r)
	l.msgs[r.Room].count++
	o.st.high = max(o.st.high, r.Seq)
	o.st.lamport = max(o.st.lamport, r.Lamport)
	o.advance()
	return true
}

// normTime mirrors the bolt encoding: nanoseconds, UTC.
func normTime(t time.Time) time.Time { return fromUnixNano(unixNano(t)) }

func (o *memOrigin) advance() {
	for {
		if _, ok := o.recs[o.st.contig+1]; !ok {
			return
		}
		o.st.contig++
	}
}

// Append implements Log.
func (l *Mem) Append(ctx context.Context, room, origin string, seq uint64, meta Meta, data []byte) (bool, error) {
	r := Record{Room: room, Origin: origin, Seq: seq, Meta: meta, Data: data}
	if err := l.cfg.validateRecord(r); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return false, err
	}
	return l.appendLocked(r), nil
}

// AppendDeferred implements Log: the same as Append (nothing to sync).
func (l *Mem) AppendDeferred(ctx context.Context, room, origin string, seq uint64, meta Meta, data []byte) (bool, error) {
	return l.Append(ctx, room, origin, seq, meta, data)
}

// AppendBatch implements Log.
func (l *Mem) AppendBatch(ctx context.Context, recs []Record) ([]bool, error) {
	for _, r := range recs {
		if err := l.cfg.validateRecord(r); err != nil {
			return nil, err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	out := make([]bool, len(recs))
	for i, r := range recs {
		out[i] = l.appendLocked(r)
	}
	return out, nil
}

// AppendBatchDeferred implements Log: the same as AppendBatch.
func (l *Mem) AppendBatchDeferred(ctx context.Context, recs []Record) ([]bool, error) {
	return l.AppendBatch(ctx, recs)
}

// Sync implements Log: there is nothing to fsync; it checks ctx and Close.
func (l *Mem) Sync(ctx context.Context) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.check(ctx)
}

// Get implements Log.
func (l *Mem) Get(ctx context.Context, room, origin string, seq uint64) (Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return Record{}, err
	}
	if o := l.origin(room, origin, false); o != nil {
		if r, ok := o.recs[seq]; ok {
			return cloneRecord(r), nil
		}
	}
	return Record{}, ErrNotFound
}

// Range implements Log.
func (l *Mem) Range(ctx context.Context, room, origin string, from uint64, limit int) ([]Record, error) {
	if err := validLimit(limit); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	o := l.origin(room, origin, false)
	if o == nil {
		return nil, nil
	}
	seqs := make([]uint64, 0, len(o.recs))
	for s := range o.recs {
		if s >= from {
			seqs = append(seqs, s)
		}
	}
	slices.Sort(seqs)
	var out []Record
	for _, s := range seqs[:min(len(seqs), limit)] {
		out = append(out, cloneRecord(o.recs[s]))
	}
	return out, nil
}

func (l *Mem) states(ctx context.Context, room string, fn func(string, originState)) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return err
	}
	if r := l.msgs[room]; r != nil {
		for name, o := range r.origins {
			fn(name, o.st)
		}
	}
	return nil
}

// VersionVector implements Log.
func (l *Mem) VersionVector(ctx context.Context, room string) (VersionVector, error) {
	vv := VersionVector{}
	err := l.states(ctx, room, func(o string, st originState) {
		if st.contig > 0 {
			vv[o] = st.contig
		}
	})
	return vv, err
}

// Contiguous implements Log.
func (l *Mem) Contiguous(ctx context.Context, room, origin string) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	if o := l.origin(room, origin, false); o != nil {
		return o.st.contig, nil
	}
	return 0, nil
}

// Floors implements Log.
func (l *Mem) Floors(ctx context.Context, room string) (VersionVector, error) {
	vv := VersionVector{}
	err := l.states(ctx, room, func(o string, st originState) {
		if st.floor > 0 {
			vv[o] = st.floor
		}
	})
	return vv, err
}

// MaxLamport implements Log.
func (l *Mem) MaxLamport(ctx context.Context, room string) (uint64, error) {
	var m uint64
	err := l.states(ctx, room, func(_ string, st originState) { m = max(m, st.lamport) })
	return m, err
}

// LastSeq implements Log.
func (l *Mem) LastSeq(ctx context.Context, room, origin string) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	if o := l.origin(room, origin, false); o != nil {
		return o.st.last(), nil
	}
	return 0, nil
}

// NextSeq implements Log.
func (l *Mem) NextSeq(ctx context.Context, room, origin string) (uint64, error) {
	if err := validName("room", room); err != nil {
		return 0, err
	}
	if err := validName("origin", origin); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	o := l.origin(room, origin, true)
	o.st.reserved = o.st.last() + 1
	return o.st.reserved, nil
}

// Count implements Log.
func (l *Mem) Count(ctx context.Context, room string) (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	if r := l.msgs[room]; r != nil {
		return r.count, nil
	}
	return 0, nil
}

func (l *Mem) deleteUpToLocked(room, origin string, upTo uint64) int {
	o := l.origin(room, origin, true)
	n := 0
	for s := range o.recs { // stored below the floor too (skipUpToLocked)
		if s <= upTo {
			delete(o.recs, s)
			n++
		}
	}
	l.msgs[room].count -= n
	if upTo > o.st.floor {
		o.st.floor = upTo
		o.st.contig = max(o.st.contig, upTo)
		o.st.high = max(o.st.high, upTo)
		o.advance()
	}
	return n
}

// skipUpToLocked is Bolt's skipUpTo: the floor rises, nothing is deleted,
// LastSeq stays.
func (l *Mem) skipUpToLocked(room, origin string, upTo uint64) {
	o := l.origin(room, origin, true)
	if upTo <= o.st.floor {
		return
	}
	o.st.floor = upTo
	o.st.contig = max(o.st.contig, upTo)
	o.advance()
}

// SetFloor implements Log.
func (l *Mem) SetFloor(ctx context.Context, room, origin string, seq uint64) error {
	if err := validName("room", room); err != nil {
		return err
	}
	if err := validName("origin", origin); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return err
	}
	l.skipUpToLocked(room, origin, seq)
	return nil
}

// historyOrder sorts records by (lamport, origin, seq), as the bolt index.
func historyOrder(a, b Record) int {
	switch {
	case a.Lamport != b.Lamport:
		if a.Lamport < b.Lamport {
			return -1
		}
		return 1
	case a.Origin != b.Origin:
		return strings.Compare(a.Origin, b.Origin)
	case a.Seq < b.Seq:
		return -1
	case a.Seq > b.Seq:
		return 1
	}
	return 0
}

func (l *Mem) sortedLocked(room string) []Record {
	r := l.msgs[room]
	if r == nil {
		return nil
	}
	all := make([]Record, 0, r.count)
	for _, o := range r.origins {
		for _, rec := range o.recs {
			all = append(all, rec)
		}
	}
	slices.SortFunc(all, historyOrder)
	return all
}

// History implements Log.
func (l *Mem) History(ctx context.Context, room string, n int) ([]Record, error) {
	if err := validLimit(n); err != nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	all := l.sortedLocked(room)
	all = all[max(0, len(all)-n):]
	out := make([]Record, len(all))
	for i, r := range all {
		out[i] = cloneRecord(r)
	}
	return out, nil
}

// PutRoom implements Log.
func (l *Mem) PutRoom(ctx context.Context, info RoomInfo) error {
	if err := validateRoomInfo(info); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return err
	}
	info.Created = normTime(info.Created)
	info.Joined = normTime(info.Joined)
	if info.Retention != nil {
		r := *info.Retention
		info.Retention = &r
	}
	l.rooms[info.Name] = info
	return nil
}

// Room implements Log.
func (l *Mem) Room(ctx context.Context, name string) (RoomInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return RoomInfo{}, err
	}
	r, ok := l.rooms[name]
	if !ok {
		return RoomInfo{}, ErrNotFound
	}
	return r, nil
}

// Rooms implements Log.
func (l *Mem) Rooms(ctx context.Context) ([]RoomInfo, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.check(ctx); err != nil {
		return nil, err
	}
	var out []RoomInfo
	for _, r := range l.rooms {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteRoom implements Log; seq counters stay, as in Bolt.
func (l *Mem) DeleteRoom(ctx context.Context, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return err
	}
	delete(l.rooms, name)
	if r := l.msgs[name]; r != nil {
		for o, st := range r.origins {
			l.deleteUpToLocked(name, o, st.st.last())
		}
	}
	return nil
}

// Prune implements Log.
func (l *Mem) Prune(ctx context.Context, now time.Time) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(ctx); err != nil {
		return 0, err
	}
	total := 0
	for room, r := range l.msgs {
		var info *RoomInfo
		if ri, ok := l.rooms[room]; ok {
			info = &ri
		}
		ret := l.cfg.retention(info)
		if ret.MaxAge > 0 {
			cutoff := now.Add(-ret.MaxAge)
			for name, o := range r.origins {
				seqs := make([]uint64, 0, len(o.recs))
				for s := range o.recs {
					seqs = append(seqs, s)
				}
				slices.Sort(seqs)
				var upTo uint64
				for _, s := range seqs {
					if !o.recs[s].RecvTime.Before(cutoff) {
						break
					}
					upTo = s
				}
				if upTo > 0 {
					total += l.deleteUpToLocked(room, name, upTo)
				}
			}
		}
		if ret.MaxCount > 0 && r.count > ret.MaxCount {
			for _, rec := range l.sortedLocked(room) {
				if r.count <= ret.MaxCount {
					break
				}
				total += l.deleteUpToLocked(room, rec.Origin, rec.Seq)
			}
		}
	}
	return total, nil
}
