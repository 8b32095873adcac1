package bootstrapapi

import (
	"context"
	"sync"
)

// Store persists the service State. Backends implement it; the handler and
// the rules use nothing else.
type Store interface {
	// View calls fn with a consistent snapshot of the state. fn must not
	// keep or modify the state.
	View(ctx context.Context, fn func(*State) error) error
	// Update runs fn as one serializable transaction: fn reads and mutates
	// the state, and the mutation is committed durably before Update
	// returns nil. If fn returns an error nothing is committed and Update
	// returns that error. A backend may call fn more than once (for
	// example after contention), each time with a fresh copy of the
	// committed state, so fn must not have side effects beyond the state
	// it is given. When a transaction cannot commit after its retries the
	// backend returns an error wrapping ErrUnavailable.
	Update(ctx context.Context, fn func(*State) error) error
}

// MemStore is an in-memory Store for tests and tools. It is safe for
// concurrent use.
type MemStore struct {
	mu    sync.Mutex
	state *State
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore with the default configuration.
func NewMemStore() *MemStore { return &MemStore{state: NewState()} }

// View implements Store.
func (m *MemStore) View(ctx context.Context, fn func(*State) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	s := m.state.Clone()
	m.mu.Unlock()
	return fn(s)
}

// Update implements Store.
func (m *MemStore) Update(ctx context.Context, fn func(*State) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.state.Clone()
	if err := fn(s); err != nil {
		return err
	}
	m.state = s
	return nil
}

// Normalize makes a decoded state usable: a nil map becomes empty and a
// zero configuration (a store never written) becomes the default.
// Backends call it after decoding.
func Normalize(s *State) *State {
	if s == nil {
		return NewState()
	}
	if s.Peers == nil {
		s.Peers = map[string]Record{}
	}
	if s.Config == (Config{}) {
		s.Config = DefaultConfig()
	}
	if s.Config.LeaseTTLSeconds == 0 {
		s.Config.LeaseTTLSeconds = int64(DefaultLeaseTTL.Seconds())
	}
	return s
}
