package msglog

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// PutRoom implements Log.
func (l *Bolt) PutRoom(ctx context.Context, info RoomInfo) error {
	if err := validateRoomInfo(info); err != nil {
		return err
	}
	v, err := encodeRoom(info)
	if err != nil {
		return fmt.Errorf("encode room %q: %w", info.Name, err)
	}
	return l.update(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).Put([]byte(info.Name), v)
	})
}

// Room implements Log.
func (l *Bolt) Room(ctx context.Context, name string) (RoomInfo, error) {
	var r RoomInfo
	err := l.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRooms).Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		var err error
		r, err = decodeRoom(name, v)
		return err
	})
	return r, err
}

// Rooms implements Log.
func (l *Bolt) Rooms(ctx context.Context) ([]RoomInfo, error) {
	var out []RoomInfo
	err := l.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRooms).ForEach(func(k, v []byte) error {
			r, err := decodeRoom(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// DeleteRoom implements Log. It keeps every origin's seq counter, so a
// peer that rejoins the room never reuses one of its seqs. It applies the
// memtable first.
func (l *Bolt) DeleteRoom(ctx context.Context, name string) error {
	unlock, err := l.lockWrite()
	if err != nil {
		return fmt.Errorf("delete room %q: %w", name, err)
	}
	defer unlock()
	return l.update(ctx, func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRooms).Delete([]byte(name)); err != nil {
			return err
		}
		rt, err := openRoom(tx, name, false)
		if err != nil || rt == nil {
			return err
		}
		var origins []string
		err = rt.s.ForEach(func(k, _ []byte) error {
			origins = append(origins, string(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, o := range origins {
			st, err := rt.state(o)
			if err != nil {
				return err
			}
			if _, err := deleteUpTo(rt, o, st.last()); err != nil {
				return err
			}
		}
		return nil
	})
}
