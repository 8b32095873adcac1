// Package bootstrapserver is the local backend of the bootstrap data
// service: a bootstrapapi.Store on go.etcd.io/bbolt and the lifecycle of an
// HTTP server around the shared handler.
//
// The whole service state is one JSON value under one key. bbolt runs one
// writer at a time, so every Update is serializable, and it fsyncs on
// commit, so an acknowledged write survives a killed process.
package bootstrapserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

var (
	bucketName = []byte("bootstrap")
	stateKey   = []byte("state")
)

// BoltStore is a bootstrapapi.Store on a bbolt file. It is safe for
// concurrent use; Close it when done.
type BoltStore struct {
	db *bolt.DB
}

var _ bootstrapapi.Store = (*BoltStore)(nil)

// OpenBolt opens (creating if needed) the database at path. It fails fast
// if another process holds the file open.
func OpenBolt(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open bootstrap db %q: locked by another process", path)
		}
		return nil, fmt.Errorf("open bootstrap db %q: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init bootstrap db %q: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the database.
func (s *BoltStore) Close() error { return s.db.Close() }

// Path returns the database file.
func (s *BoltStore) Path() string { return s.db.Path() }

func load(tx *bolt.Tx) (*bootstrapapi.State, error) {
	b := tx.Bucket(bucketName)
	if b == nil {
		return nil, errors.New("bootstrap bucket missing")
	}
	raw := b.Get(stateKey)
	if raw == nil {
		return bootstrapapi.NewState(), nil
	}
	var st bootstrapapi.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode stored state: %w", err)
	}
	return bootstrapapi.Normalize(&st), nil
}

// View implements bootstrapapi.Store.
func (s *BoltStore) View(ctx context.Context, fn func(*bootstrapapi.State) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		st, err := load(tx)
		if err != nil {
			return err
		}
		return fn(st)
	})
}

// Update implements bootstrapapi.Store. bbolt serializes writers, so fn
// runs exactly once per call.
func (s *BoltStore) Update(ctx context.Context, fn func(*bootstrapapi.State) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		st, err := load(tx)
		if err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
		raw, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		return tx.Bucket(bucketName).Put(stateKey, raw)
	})
}
