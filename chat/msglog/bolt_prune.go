package msglog

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention: deleting a prefix of an origin's stream and raising its floor.

// deleteUpTo deletes origin's messages with seq <= upTo and raises its
// floor to upTo; it returns how many it deleted. Messages below the floor
// may be stored (SetFloor skips without deleting), so it deletes them even
// when the floor is already past upTo.
func deleteUpTo(rt *roomTx, origin string, upTo uint64) (int, error) {
	st, err := rt.state(origin)
	if err != nil {
		return 0, err
	}
	ob := rt.o.Bucket([]byte(origin))
	type victim struct {
		key     []byte
		lamport uint64
		seq     uint64
	}
	var vs []victim
	if ob != nil {
		c := ob.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq, err := decodeSeq(k)
			if err != nil {
				return 0, err
			}
			if seq > upTo {
				break
			}
			m, _, err := decodeRecord(v)
			if err != nil {
				return 0, fmt.Errorf("%s:%d: %w", origin, seq, err)
			}
			vs = append(vs, victim{slices.Clone(k), m.Lamport, seq})
		}
	}
	if len(vs) == 0 && upTo <= st.floor {
		return 0, nil
	}
	for _, v := range vs {
		if err := ob.Delete(v.key); err != nil {
			return 0, err
		}
		if err := rt.i.Delete(indexKey(v.lamport, origin, v.seq)); err != nil {
			return 0, err
		}
	}
	if err := rt.addCount(-len(vs)); err != nil {
		return 0, err
	}
	if upTo > st.floor {
		st.floor = upTo
		st.contig = max(st.contig, upTo)
		st.high = max(st.high, upTo)
		if err := advance(ob, &st); err != nil {
			return 0, err
		}
	}
	return len(vs), rt.putState(origin, st)
}

// skipUpTo raises origin's floor to upTo without deleting anything: the
// seqs up to it that are not stored will never be (SetFloor). The highest
// seq (LastSeq) is left alone: a skipped seq was never seen.
func skipUpTo(rt *roomTx, origin string, upTo uint64) error {
	st, err := rt.state(origin)
	if err != nil {
		return err
	}
	if upTo <= st.floor {
		return nil
	}
	st.floor = upTo
	st.contig = max(st.contig, upTo)
	if err := advance(rt.o.Bucket([]byte(origin)), &st); err != nil {
		return err
	}
	return rt.putState(origin, st)
}

// Prune implements Log. Each room is pruned in its own transaction, after
// applying the memtable.
func (l *Bolt) Prune(ctx context.Context, now time.Time) (int, error) {
	var rooms []string
	err := l.readView(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMsgs).ForEach(func(k, v []byte) error {
			if v == nil { // sub-buckets only
				rooms = append(rooms, string(k))
			}
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	total := 0
	for _, room := range rooms {
		err := l.pruneRoomTx(ctx, room, now, &total)
		if err != nil {
			return total, fmt.Errorf("prune room %q: %w", room, err)
		}
	}
	return total, nil
}

// pruneRoomTx prunes one room in one transaction, adding to total what it
// deletes. It holds off deferred appends meanwhile (bolt_mem.go).
func (l *Bolt) pruneRoomTx(ctx context.Context, room string, now time.Time, total *int) error {
	unlock, err := l.lockWrite()
	if err != nil {
		return err
	}
	defer unlock()
	return l.update(ctx, func(tx *bolt.Tx) error {
		var info *RoomInfo
		if v := tx.Bucket(bucketRooms).Get([]byte(room)); v != nil {
			ri, err := decodeRoom(room, v)
			if err != nil {
				return err
			}
			info = &ri
		}
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		n, err := pruneRoom(rt, l.cfg.retention(info), now)
		*total += n
		return err
	})
}

func pruneRoom(rt *roomTx, ret Retention, now time.Time) (int, error) {
	total := 0
	if ret.MaxAge > 0 {
		cutoff := now.Add(-ret.MaxAge)
		var origins []string
		err := rt.o.ForEach(func(k, v []byte) error {
			if v == nil {
				origins = append(origins, string(k))
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		for _, o := range origins {
			// The expired prefix: stop at the first message still young.
			var upTo uint64
			c := rt.o.Bucket([]byte(o)).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				seq, err := decodeSeq(k)
				if err != nil {
					return total, err
				}
				m, _, err := decodeRecord(v)
				if err != nil {
					return total, fmt.Errorf("%s:%d: %w", o, seq, err)
				}
				if !m.RecvTime.Before(cutoff) {
					break
				}
				upTo = seq
			}
			if upTo > 0 {
				n, err := deleteUpTo(rt, o, upTo)
				total += n
				if err != nil {
					return total, err
				}
			}
		}
	}
	if ret.MaxCount > 0 {
		for {
			n, err := rt.count()
			if err != nil {
				return total, err
			}
			if n <= ret.MaxCount {
				break
			}
			k, _ := rt.i.Cursor().First()
			if k == nil {
				return total, fmt.Errorf("%w: count %d with an empty index", ErrCorrupt, n)
			}
			origin, seq, err := decodeIndexKey(bytes.Clone(k))
			if err != nil {
				return total, err
			}
			d, err := deleteUpTo(rt, origin, seq)
			total += d
			if err != nil {
				return total, err
			}
			if d == 0 {
				return total, fmt.Errorf("%w: index names %s:%d below its floor", ErrCorrupt, origin, seq)
			}
		}
	}
	return total, nil
}
