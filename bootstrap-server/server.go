package bootstrapserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// Config configures a Server.
type Config struct {
	// Listen is the TCP address, such as 127.0.0.1:8080 (port 0 picks one).
	Listen string
	// DBPath is the bbolt file.
	DBPath string
	// AdminToken protects reset and config changes when set.
	AdminToken string
	// RateLimit limits requests per client address; the zero value is
	// bootstrapapi's default limit.
	RateLimit bootstrapapi.RateLimit
	// Logf reports internal errors; nil discards.
	Logf func(format string, args ...any)
}

// Server is a running local bootstrap service.
type Server struct {
	store *BoltStore
	ln    net.Listener
	http  *http.Server
	done  chan struct{}
	err   error

	closeOnce sync.Once
	closeErr  error
}

// Start binds the listener, opens the store and serves in a goroutine the
// Server owns; Close stops it. The listener comes first: of several peers
// taking a quit service over at once, the ones that lose the port fail at
// once instead of waiting for the database's lock, and the winner waits
// for it (held until the previous server closed it) with connections
// queued, not refused.
func Start(cfg Config) (*Server, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	store, err := OpenBolt(cfg.DBPath)
	if err != nil {
		ln.Close()
		return nil, err
	}
	h := bootstrapapi.NewHandler(store, bootstrapapi.HandlerConfig{AdminToken: cfg.AdminToken, Logf: cfg.Logf,
		RateLimit: cfg.RateLimit})
	s := &Server{
		store: store,
		ln:    ln,
		http: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the base URL of the service.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Done is closed when the server stops serving.
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops accepting, waits up to ctx for requests in flight, and
// closes the database. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.http.Shutdown(ctx)
		<-s.done
		s.closeErr = errors.Join(err, s.err, s.store.Close())
	})
	return s.closeErr
}
