package bootstrapcf

// The HTTP function. init registers FunctionName with the functions
// framework, which serves it on Cloud Functions (gen2) and in the local
// runner (cmd/local). The function is the shared bootstrapapi handler over
// a Firestore Store; the Firestore client is created on the first request
// and reused by every later one (gen2 instances serve requests
// concurrently; the client is safe for that). Nothing else is kept in
// the process: the state lives in Firestore.

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"

	"cloud.google.com/go/firestore"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// FunctionName is the entry point the function is registered under (the
// --entry-point of a deployment, the FUNCTION_TARGET of the local runner).
const FunctionName = "Bootstrap"

// Environment variables the deployed function reads. The function is an
// entry point, like cmd/, so it reads its configuration here.
const (
	EnvProject       = "GOOGLE_CLOUD_PROJECT"
	EnvProjectLegacy = "GCP_PROJECT"
	EnvDatabase      = "FIRESTORE_DATABASE"
	EnvCollection    = "HEARSAY_FIRESTORE_COLLECTION"
	EnvAdminToken    = "HEARSAY_ADMIN_TOKEN"
	EnvProxyHops     = "HEARSAY_PROXY_HOPS"
)

func init() {
	fn := NewFunction(FunctionConfigFromEnv(os.Getenv))
	functions.HTTP(FunctionName, fn.ServeHTTP)
}

// FunctionConfig configures a Function.
type FunctionConfig struct {
	// ProjectID is the Google Cloud project whose Firestore holds the
	// state. Empty makes every request fail with a clear 503.
	ProjectID string
	// DatabaseID is the Firestore database; empty means "(default)".
	DatabaseID string
	// AdminToken, when set, is required for reset and config changes.
	AdminToken string
	// Store configures the Firestore store.
	Store Config
	// ProxyHops is how many proxies in front of the function append to
	// X-Forwarded-For; the rate limit counts requests against the
	// address that many entries from the right. 0 means 1 (Google's front
	// end appends the client's address).
	ProxyHops int
	// Logf reports internal errors; nil means the standard logger (its
	// output reaches Cloud Logging).
	Logf func(format string, args ...any)
}

// FunctionConfigFromEnv reads a FunctionConfig from the environment:
// GOOGLE_CLOUD_PROJECT (or GCP_PROJECT), FIRESTORE_DATABASE,
// HEARSAY_FIRESTORE_COLLECTION, HEARSAY_ADMIN_TOKEN and HEARSAY_PROXY_HOPS
// (a number that does not parse is 1).
func FunctionConfigFromEnv(getenv func(string) string) FunctionConfig {
	cfg := FunctionConfig{
		ProjectID:  getenv(EnvProject),
		DatabaseID: getenv(EnvDatabase),
		AdminToken: getenv(EnvAdminToken),
		Store:      DefaultConfig(),
	}
	if n, err := strconv.Atoi(getenv(EnvProxyHops)); err == nil && n > 0 && n <= 16 {
		cfg.ProxyHops = n
	}
	if cfg.ProjectID == "" {
		cfg.ProjectID = getenv(EnvProjectLegacy)
	}
	if c := getenv(EnvCollection); c != "" {
		cfg.Store.Collection = c
	}
	return cfg
}

// Function is the bootstrap service as an HTTP function. It is safe for
// concurrent use; the first request creates the Firestore client.
type Function struct {
	cfg FunctionConfig

	mu      sync.Mutex
	client  *firestore.Client // guarded by mu; nil until the first request
	handler http.Handler      // guarded by mu
	closed  bool              // guarded by mu
}

// NewFunction returns a Function; it does not touch the network.
func NewFunction(cfg FunctionConfig) *Function {
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	return &Function{cfg: cfg}
}

// ServeHTTP serves one request of API v1 or the legacy format, on any
// path prefix (/v1/join, /join, /Bootstrap/join all reach join).
func (f *Function) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, err := f.getHandler(r.Context())
	if err != nil {
		f.cfg.Logf("bootstrap function: %v", err)
		// The shared handler over a store that always fails answers with
		// the API's JSON error, like any other store outage.
		h = bootstrapapi.NewHandler(failingStore{err}, f.handlerConfig())
	}
	h.ServeHTTP(w, r)
}

// handlerConfig is the shared handler's configuration. Every instance
// limits requests per client on its own (instances share nothing), so the
// service-wide limit is the per-instance one times the instance count
// (at most 10 by default, see deploy).
func (f *Function) handlerConfig() bootstrapapi.HandlerConfig {
	return bootstrapapi.HandlerConfig{AdminToken: f.cfg.AdminToken, AnyPrefix: true, Logf: f.cfg.Logf,
		ClientIP: bootstrapapi.ClientIPFromForwardedFor(f.cfg.ProxyHops)}
}

// errNotConfigured is what every request gets when the project is unknown.
var errNotConfigured = bootstrapapi.Errorf(bootstrapapi.ECodeUnavailable,
	"the bootstrap function is not configured: set %s (or %s) to the Google Cloud project that holds its Firestore database",
	EnvProject, EnvProjectLegacy)

// getHandler returns the handler, creating the client on first use. A
// failed creation is not cached, so a transient failure heals.
func (f *Function) getHandler(ctx context.Context) (http.Handler, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.handler != nil {
		return f.handler, nil
	}
	if f.closed {
		return nil, bootstrapapi.Errorf(bootstrapapi.ECodeUnavailable, "the bootstrap function is shutting down")
	}
	if f.cfg.ProjectID == "" {
		return nil, errNotConfigured
	}
	db := f.cfg.DatabaseID
	if db == "" {
		db = firestore.DefaultDatabaseID
	}
	// The client outlives this request, so it must not use its context.
	client, err := firestore.NewClientWithDatabase(context.WithoutCancel(ctx), f.cfg.ProjectID, db)
	if err != nil {
		return nil, fmt.Errorf("create firestore client for project %q: %w: %w", f.cfg.ProjectID, bootstrapapi.ErrUnavailable, err)
	}
	store, err := NewStore(client, f.cfg.Store)
	if err != nil {
		client.Close()
		return nil, err
	}
	f.client = client
	f.handler = bootstrapapi.NewHandler(store, f.handlerConfig())
	return f.handler, nil
}

// Close closes the Firestore client, if one was created. Later requests
// fail with 503. It is idempotent.
func (f *Function) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	f.handler = nil
	if f.client == nil {
		return nil
	}
	err := f.client.Close()
	f.client = nil
	return err
}

// failingStore answers every call with err.
type failingStore struct{ err error }

func (s failingStore) View(context.Context, func(*bootstrapapi.State) error) error   { return s.err }
func (s failingStore) Update(context.Context, func(*bootstrapapi.State) error) error { return s.err }
