package chat

// The direct-message store: DataDir/direct.db, a bbolt file of its own (or
// maps in memory when there is no data directory). Direct messages are not
// room messages: they are found by their random ID (receipts, acks,
// duplicates), deleted one at a time by holders (on the recipient's ack or
// at the end of retention), and never sent in anti-entropy, so they stay
// out of the room log (msglog), which is keyed by (room, origin, seq) and
// pruned per room.
//
// Buckets: keys (peer ID → EncKey), dm (ID → DirectRecord: the readable
// copies of both ends), conv (peer ID, store time, ID → ID: a
// conversation in order), held (ID → HeldRecord: what this peer holds for
// others), rcpt (ID and state → Receipt: receipts to send). Every write is
// one transaction, committed (and fsynced by bbolt) before it returns.

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DirectStoreFile is the direct-message store's file name in the data
// directory.
const DirectStoreFile = "direct.db"

const (
	bucketKeys = "keys"
	bucketDM   = "dm"
	bucketConv = "conv"
	bucketHeld = "held"
	bucketRcpt = "rcpt"
)

var directBuckets = []string{bucketKeys, bucketDM, bucketConv, bucketHeld, bucketRcpt}

// directStore is a small bucketed key/value store. Its methods are safe
// for concurrent use; each call is one transaction.
type directStore interface {
	// apply writes the pairs of ops (a nil value deletes) in one
	// transaction.
	apply(ops ...storeOp) error
	get(bucket string, key []byte) ([]byte, error)
	// each calls fn for the pairs of bucket whose key starts with prefix,
	// in key order; fn must not keep k or v.
	each(bucket string, prefix []byte, fn func(k, v []byte) error) error
	close() error
}

// storeOp is one write: a nil val deletes key.
type storeOp struct {
	bucket string
	key    []byte
	val    []byte
}

func openDirectStore(dir string) (directStore, error) {
	if dir == "" {
		return newMemDirectStore(), nil
	}
	db, err := bolt.Open(filepath.Join(dir, DirectStoreFile), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", DirectStoreFile, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range directBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init %s: %w", DirectStoreFile, err)
	}
	return &boltDirectStore{db: db}, nil
}

type boltDirectStore struct{ db *bolt.DB }

func (s *boltDirectStore) apply(ops ...storeOp) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("direct store: %w", err)
	}
	defer tx.Rollback()
	for _, op := range ops {
		b := tx.Bucket([]byte(op.bucket))
		if op.val == nil {
			err = b.Delete(op.key)
		} else {
			err = b.Put(op.key, op.val)
		}
		if err != nil {
			return fmt.Errorf("direct store %s: %w", op.bucket, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("direct store commit: %w", err)
	}
	return nil
}

func (s *boltDirectStore) get(bucket string, key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(bucket)).Get(key); v != nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out, err
}

func (s *boltDirectStore) each(bucket string, prefix []byte, fn func(k, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucket)).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltDirectStore) close() error { return s.db.Close() }

// memDirectStore keeps the buckets in memory (no data directory).
type memDirectStore struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

func newMemDirectStore() *memDirectStore {
	s := &memDirectStore{m: make(map[string]map[string][]byte)}
	for _, b := range directBuckets {
		s.m[b] = make(map[string][]byte)
	}
	return s
}

func (s *memDirectStore) apply(ops ...storeOp) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		if op.val == nil {
			delete(s.m[op.bucket], string(op.key))
		} else {
			s.m[op.bucket][string(op.key)] = bytes.Clone(op.val)
		}
	}
	return nil
}

func (s *memDirectStore) get(bucket string, key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.m[bucket][string(key)]), nil
}

func (s *memDirectStore) each(bucket string, prefix []byte, fn func(k, v []byte) error) error {
	s.mu.Lock()
	var keys []string
	for k := range s.m[bucket] {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = slices.Clone(s.m[bucket][k])
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memDirectStore) close() error { return nil }
