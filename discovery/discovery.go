// Package discovery is a peer's agent for finding and keeping its group:
// the peer's use of the bootstrap data service, and the one owner of
// rejoining. It is kept apart from the chat library, as serf keeps
// discovery in its agent and out of serf/. It
//   - picks the service: the configured URLs, else the local default
//     address, else an in-process service on that address (the embedded
//     default, so two terminals on one machine need no other step), and
//     takes that service over, within about a second and with the same
//     database, when the peer serving it quits (service.go);
//   - fetches first contacts, caching them in the data directory and
//     falling back to the cache when no service answers (contacts.go);
//   - registers the peer's own contact and renews the lease while it runs
//     (lease.go), signed with Config.Signer so that only the peer can
//     change or remove its entry;
//   - joins again, every RejoinInterval, peers that are not live members:
//     members it saw fail and contacts from the service or the cache
//     (rejoin.go). memberlist stops gossiping with members it declared
//     dead, so without this the two sides of a long partition never merge;
//   - leaves the service on Close (signed too).
//
// An embedded service serves reset and configuration behind the admin
// token in Config.AdminTokenFile, which the agent's own client carries.
//
// The agent does not import the chat library: it needs only the small Node
// interface below, which *chat.Node implements; cmd/hearsay wires the two.
package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-chat/hearsay"
	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

// Node is what the agent needs of the chat node. Implementations must be
// safe for concurrent use: the agent calls them from its own goroutines.
type Node interface {
	// ID is the peer ID; Nick the display name the contact advertises.
	ID() string
	Nick() string
	// AdvertiseAddr is the memberlist address other peers join through.
	AdvertiseAddr() string
	// Members is the node's view of the group, dead members included (with
	// State and Since), so the agent can rejoin the ones that failed.
	Members() []hearsay.Member
	// Join contacts members at memberlist addresses and returns how many
	// answered; it blocks until the join completes or ctx ends.
	Join(ctx context.Context, addrs []string) (int, error)
}

// Stats are the agent's counters since Open.
type Stats struct {
	// Renewals counts lease renewals the service accepted.
	Renewals uint64
	// Rejoins counts addresses the agent tried to join again because
	// they were not live members.
	Rejoins uint64
}

// Agent is one peer's discovery agent. Its methods are safe for
// concurrent use. Register starts its goroutines (lease renewal, rejoin,
// and the watch of the embedded default); Close stops them and waits.
type Agent struct {
	cfg    Config
	client *bootstrapapi.Client
	desc   string
	token  string // admin token of the embedded default; "" with URLs

	// base is cancelled by Close; background requests derive from it.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	takeMu   sync.Mutex // serialises takeOver (renewal and watch goroutines)
	mu       sync.Mutex
	embedded *bootstrapserver.Server // nil unless served in-process
	node     Node                    // set by Register
	closed   bool
	lastErr  map[string]string // last failure reported per background task
	cached   []cachedContact   // what contacts.json holds, as last written

	renewals, rejoins atomic.Uint64
}

// Open chooses the service and, for the embedded default, starts it (ctx
// bounds the probe). It does not contact the group yet.
func Open(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, lastErr: map[string]string{}}
	if err := a.chooseService(ctx); err != nil {
		return nil, err
	}
	a.base, a.cancel = context.WithCancel(context.Background())
	return a, nil
}

// Describe is the one line that says which bootstrap service the peer
// uses.
func (a *Agent) Describe() string { return a.desc }

// Client returns the service client (for the REPL's /bootstrap commands).
func (a *Agent) Client() *bootstrapapi.Client { return a.client }

// Stats returns the agent's counters. Safe on a nil *Agent (all zero),
// for a peer that runs without one.
func (a *Agent) Stats() Stats {
	if a == nil {
		return Stats{}
	}
	return Stats{Renewals: a.renewals.Load(), Rejoins: a.rejoins.Load()}
}

// Register stores the node's contact with the service and starts the
// lease renewal and the rejoin loop, even when the service does not
// answer (the lease is then tried again at every renewal, and rejoining
// works from failed members and cached contacts). It returns the
// service's answer to the first registration. A second call only
// registers again.
func (a *Agent) Register(ctx context.Context, node Node) (bootstrapapi.JoinResponse, error) {
	r, err := a.client.Join(ctx, joinRequest(node))
	if err != nil {
		err = fmt.Errorf("register with the bootstrap service: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.node != nil {
		return r, err
	}
	a.node = node
	ttl := bootstrapapi.DefaultLeaseTTL
	if err == nil {
		ttl = r.Config.LeaseTTL()
	}
	a.every(max(ttl/3, 500*time.Millisecond), a.renew) // renew the lease until Close
	if a.cfg.RejoinInterval > 0 {
		a.every(a.cfg.RejoinInterval, a.rejoin)
	}
	if len(a.cfg.URLs) == 0 {
		a.every(a.cfg.WatchInterval, a.watch) // take the embedded default over when its peer quits
	}
	return r, err
}

// every runs task every d in a goroutine of its own until Close, which
// waits for it. Caller holds a.mu.
func (a *Agent) every(d time.Duration, task func()) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		tick := time.NewTicker(d)
		defer tick.Stop()
		for {
			select {
			case <-a.base.Done():
				return
			case <-tick.C:
				task()
			}
		}
	}()
}

// report logs a background failure of task once per distinct message, so
// a service that stays down does not fill the log; err nil clears it.
func (a *Agent) report(task string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		delete(a.lastErr, task)
		return
	}
	if msg := err.Error(); msg != a.lastErr[task] {
		a.lastErr[task] = msg
		a.cfg.Logf("%s: %v", task, err)
	}
}

// Close stops the goroutines, removes the node's contact from the service
// (bounded by ctx) and stops an embedded service. It is idempotent.
func (a *Agent) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	node := a.node
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
	var errs []error
	if node != nil {
		if _, err := a.client.Leave(ctx, node.ID()); err != nil {
			errs = append(errs, fmt.Errorf("leave bootstrap service: %w", err))
		}
	}
	a.mu.Lock()
	embedded := a.embedded
	a.mu.Unlock()
	if embedded != nil {
		if err := embedded.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("stop embedded bootstrap service: %w", err))
		}
	}
	return errors.Join(errs...)
}

// joinURLs shows one URL as it is and several as a JSON list.
func joinURLs(urls []string) string {
	if len(urls) == 1 {
		return urls[0]
	}
	b, _ := json.Marshal(urls)
	return string(b)
}
