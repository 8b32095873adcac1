// Package bootstrapcf is the Google Cloud backend of the bootstrap data
// service: a bootstrapapi.Store on Cloud Firestore and the HTTP function
// that serves the shared handler through functions-framework-go.
//
// The whole service state is one JSON value (the same encoding as the bbolt
// backend), stored in a head document and, when it grows past PartBytes, in
// numbered part documents beside it. Every Update is one Firestore
// read-write transaction that reads the head (and its parts) and writes them
// back, so concurrent requests serialize on the head document and no update
// is lost. A transaction that Firestore still aborts after MaxAttempts tries
// becomes an error wrapping bootstrapapi.ErrUnavailable (HTTP 503 with
// Retry-After).
//
// Updates of one Store also queue behind each other in the process before
// they start their transaction. Correctness does not depend on it (the
// transactions serialize instances that share nothing), but concurrent
// transactions on one document only conflict: each reads the document
// under a shared lock and then needs it exclusively to commit. Real
// Firestore resolves that by aborting one and the client backs off (a
// second or more); the emulator deadlocks until its lock timeout (about
// 2 s). Queueing in the process turns that into one transaction at a time
// per instance, a few milliseconds each.
//
// Why parts: a Firestore document holds at most 1 MiB, and the state is
// bounded to bootstrapapi.MaxMaxPeers records whose fields may each be a few
// hundred bytes, so the worst case does not fit in one document.
//
// Importing this package registers the function "Bootstrap" with the
// functions framework (see function.go).
package bootstrapcf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// Defaults of Config.
const (
	DefaultCollection  = "hearsay-bootstrap"
	DefaultDocument    = "state"
	DefaultMaxAttempts = 60
	// DefaultPartBytes keeps each document well below Firestore's 1 MiB
	// limit (which counts field names and the document name too).
	DefaultPartBytes = 768 << 10
	// MaxParts bounds the part count read from the head document, so a
	// corrupt head cannot make a transaction read thousands of documents.
	// 16 parts of the default size hold 12 MiB, more than the largest
	// state the rules allow.
	MaxParts = 16
)

// storageFormat is written in the head document; a reader refuses other
// values instead of misreading them.
const storageFormat = 1

// Config configures a Store.
type Config struct {
	// Collection holds the state documents.
	Collection string
	// Document is the id of the head document; parts are
	// "<Document>-part-<i>".
	Document string
	// MaxAttempts is how many times one Update transaction is tried when
	// Firestore aborts it because of contention (the client backs off
	// between tries).
	MaxAttempts int
	// PartBytes is the largest encoded state slice stored in one document.
	PartBytes int
}

// DefaultConfig returns the configuration the function uses.
func DefaultConfig() Config {
	return Config{
		Collection:  DefaultCollection,
		Document:    DefaultDocument,
		MaxAttempts: DefaultMaxAttempts,
		PartBytes:   DefaultPartBytes,
	}
}

func (c Config) validate() error {
	if err := validateDocID("collection", c.Collection); err != nil {
		return err
	}
	if err := validateDocID("document", c.Document); err != nil {
		return err
	}
	if c.MaxAttempts < 1 {
		return fmt.Errorf("firestore store config: MaxAttempts %d, want at least 1", c.MaxAttempts)
	}
	if c.PartBytes < 1 || c.PartBytes > 1000<<10 {
		return fmt.Errorf("firestore store config: PartBytes %d, want 1..%d", c.PartBytes, 1000<<10)
	}
	return nil
}

// validateDocID enforces Firestore's rules for collection and document ids.
func validateDocID(what, id string) error {
	if id == "" || len(id) > 1500 || id == "." || id == ".." || strings.Contains(id, "/") ||
		(strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__")) {
		return fmt.Errorf("firestore store config: invalid %s id %q", what, id)
	}
	return nil
}

// Store is a bootstrapapi.Store on Cloud Firestore. It is safe for
// concurrent use (as is the *firestore.Client it wraps); every call blocks
// on Firestore round trips.
type Store struct {
	client *firestore.Client
	cfg    Config
	head   *firestore.DocumentRef
	// turn is held (a one-slot semaphore, so waiting honours ctx) by the
	// Update whose transaction is running.
	turn chan struct{}
}

var _ bootstrapapi.Store = (*Store)(nil)

// NewStore returns a Store on client. The caller owns the client and
// closes it after the last call.
func NewStore(client *firestore.Client, cfg Config) (*Store, error) {
	if client == nil {
		return nil, errors.New("firestore store: nil client")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{
		client: client,
		cfg:    cfg,
		head:   client.Collection(cfg.Collection).Doc(cfg.Document),
		turn:   make(chan struct{}, 1),
	}, nil
}

func (s *Store) partRef(i int) *firestore.DocumentRef {
	return s.client.Collection(s.cfg.Collection).Doc(s.cfg.Document + "-part-" + strconv.Itoa(i))
}

// View implements bootstrapapi.Store with a read-only transaction, so the
// head and its parts come from one snapshot.
func (s *Store) View(ctx context.Context, fn func(*bootstrapapi.State) error) error {
	var fnErr error
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		st, _, err := s.load(tx)
		if err != nil {
			return err
		}
		fnErr = fn(st)
		return fnErr
	}, firestore.ReadOnly, firestore.MaxAttempts(s.cfg.MaxAttempts))
	return s.mapErr(ctx, "read state", err, fnErr)
}

// Update implements bootstrapapi.Store: one read-write transaction that
// reads the whole state, calls fn and writes the state back. Firestore
// may abort it on contention; it is then re-run from a fresh read (fn is
// called again), up to MaxAttempts times. Updates through the same Store
// run one at a time (see the package comment); waiting for the turn ends
// with ctx.
func (s *Store) Update(ctx context.Context, fn func(*bootstrapapi.State) error) error {
	select {
	case s.turn <- struct{}{}:
		defer func() { <-s.turn }()
	case <-ctx.Done():
		return fmt.Errorf("firestore update state: waiting for the running update: %w", ctx.Err())
	}
	var fnErr error
	err := s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		fnErr = nil
		st, oldParts, err := s.load(tx)
		if err != nil {
			return err
		}
		if fnErr = fn(st); fnErr != nil {
			return fnErr
		}
		return s.store(tx, st, oldParts)
	}, firestore.MaxAttempts(s.cfg.MaxAttempts))
	return s.mapErr(ctx, "update state", err, fnErr)
}

// mapErr keeps fn's own error unchanged and turns contention and outages
// into ErrUnavailable, so the handler answers 503 with Retry-After.
func (s *Store) mapErr(ctx context.Context, op string, err, fnErr error) error {
	if err == nil {
		return nil
	}
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		// The caller gave up; the handler reports that as unavailable.
		return fmt.Errorf("firestore %s: %w", op, ctxErr)
	}
	switch status.Code(err) {
	case codes.Aborted:
		return fmt.Errorf("firestore %s: transaction still contended after %d attempts: %w (%v)",
			op, s.cfg.MaxAttempts, bootstrapapi.ErrUnavailable, err)
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded, codes.Canceled:
		return fmt.Errorf("firestore %s: %w (%v)", op, bootstrapapi.ErrUnavailable, err)
	}
	return fmt.Errorf("firestore %s: %w", op, err)
}

// head document fields.
const (
	fieldFormat  = "format"
	fieldParts   = "parts"
	fieldData    = "data"
	fieldUpdated = "updated"
)

// load reads the state inside tx. It returns the number of documents the
// state occupies (0 when never written), so store can delete parts that
// a smaller state no longer needs.
func (s *Store) load(tx *firestore.Transaction) (*bootstrapapi.State, int, error) {
	snap, err := tx.Get(s.head)
	if status.Code(err) == codes.NotFound {
		return bootstrapapi.NewState(), 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", s.head.Path, err)
	}
	format, err := intField(snap, fieldFormat)
	if err != nil {
		return nil, 0, err
	}
	if format != storageFormat {
		return nil, 0, fmt.Errorf("stored state %s has format %d; this build reads format %d", s.head.Path, format, storageFormat)
	}
	parts, err := intField(snap, fieldParts)
	if err != nil {
		return nil, 0, err
	}
	if parts < 1 || parts > MaxParts {
		return nil, 0, fmt.Errorf("stored state %s: part count %d outside 1..%d", s.head.Path, parts, MaxParts)
	}
	first, err := bytesField(snap, fieldData)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	buf.Write(first)
	if parts > 1 {
		refs := make([]*firestore.DocumentRef, 0, parts-1)
		for i := 1; i < int(parts); i++ {
			refs = append(refs, s.partRef(i))
		}
		snaps, err := tx.GetAll(refs)
		if err != nil {
			return nil, 0, fmt.Errorf("get state parts of %s: %w", s.head.Path, err)
		}
		for i, ps := range snaps {
			if !ps.Exists() {
				return nil, 0, fmt.Errorf("stored state %s: part %d of %d is missing", s.head.Path, i+1, parts)
			}
			b, err := bytesField(ps, fieldData)
			if err != nil {
				return nil, 0, err
			}
			buf.Write(b)
		}
	}
	st, err := decodeState(buf.Bytes())
	if err != nil {
		return nil, 0, fmt.Errorf("stored state %s: %w", s.head.Path, err)
	}
	return st, int(parts), nil
}

// decodeState decodes the stored JSON state. The bytes come from the
// database, so they are checked like any input: a state the rules could
// not have written (too many peers, a record under another id) is an
// error, not something to serve.
func decodeState(raw []byte) (*bootstrapapi.State, error) {
	var st bootstrapapi.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(st.Peers) > bootstrapapi.MaxMaxPeers {
		return nil, fmt.Errorf("decode: %d peers, over the limit %d", len(st.Peers), bootstrapapi.MaxMaxPeers)
	}
	if len(st.Tombstones) > bootstrapapi.MaxTombstones {
		return nil, fmt.Errorf("decode: %d tombstones, over the limit %d", len(st.Tombstones), bootstrapapi.MaxTombstones)
	}
	for id, r := range st.Peers {
		if r.ID != id {
			return nil, fmt.Errorf("decode: record %q stored under id %q", clip(r.ID), clip(id))
		}
	}
	return bootstrapapi.Normalize(&st), nil
}

// clip shortens stored text before it goes into an error message.
func clip(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}

// store writes st inside tx, replacing a state that used oldParts
// documents.
func (s *Store) store(tx *firestore.Transaction, st *bootstrapapi.State, oldParts int) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	chunks := split(raw, s.cfg.PartBytes)
	if len(chunks) > MaxParts {
		// Unreachable within the rules' bounds; refuse rather than write
		// a head that load would reject.
		return fmt.Errorf("encoded state is %d bytes, over %d parts of %d", len(raw), MaxParts, s.cfg.PartBytes)
	}
	err = tx.Set(s.head, map[string]any{
		fieldFormat:  storageFormat,
		fieldParts:   len(chunks),
		fieldData:    chunks[0],
		fieldUpdated: firestore.ServerTimestamp,
	})
	if err != nil {
		return fmt.Errorf("set %s: %w", s.head.Path, err)
	}
	for i := 1; i < len(chunks); i++ {
		if err := tx.Set(s.partRef(i), map[string]any{fieldData: chunks[i]}); err != nil {
			return fmt.Errorf("set state part %d: %w", i, err)
		}
	}
	for i := len(chunks); i < oldParts; i++ {
		if err := tx.Delete(s.partRef(i)); err != nil {
			return fmt.Errorf("delete state part %d: %w", i, err)
		}
	}
	return nil
}

// split cuts b into slices of at most n bytes; an empty b is one empty
// slice, so the head document always holds part 0.
func split(b []byte, n int) [][]byte {
	out := [][]byte{}
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

func intField(snap *firestore.DocumentSnapshot, name string) (int64, error) {
	v, err := snap.DataAt(name)
	if err != nil {
		return 0, fmt.Errorf("stored state %s: field %q: %w", snap.Ref.Path, name, err)
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("stored state %s: field %q is %T, want an integer", snap.Ref.Path, name, v)
	}
	return n, nil
}

func bytesField(snap *firestore.DocumentSnapshot, name string) ([]byte, error) {
	v, err := snap.DataAt(name)
	if err != nil {
		return nil, fmt.Errorf("stored state %s: field %q: %w", snap.Ref.Path, name, err)
	}
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("stored state %s: field %q is %T, want bytes", snap.Ref.Path, name, v)
	}
	return b, nil
}
