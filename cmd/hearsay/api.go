package main

// The peer's local API (package api): --api and --web, the event tee that
// gives the API every event the REPL prints, and the server's start and
// stop inside runPeer.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/repl"
)

// The chat node (with the agent's rejoin count) is the API's peer as it
// is, and it reports its queues.
var (
	_ api.Peer      = agentPeer{}
	_ api.QueuePeer = agentPeer{}
)

// apiOpts are the flags of the local API.
type apiOpts struct {
	addr string // "off" disables the API
	web  bool
}

func addAPIFlags(f *pflag.FlagSet, o *apiOpts) {
	f.StringVar(&o.addr, "api", api.DefaultAddr, "local API and web UI address HOST:PORT (port 0 picks a free one), or off")
	f.BoolVar(&o.web, "web", false, "print the web UI's URL (with its token) and open it in a browser when one is available")
}

func (o *apiOpts) complete() error {
	if o.addr == "off" {
		if o.web {
			return errors.New("--web needs the local API: drop --api off")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("--api %q: want HOST:PORT or off: %w", o.addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		// The token is the only protection and the API speaks plain
		// HTTP: it is for local tools only.
		return fmt.Errorf("--api %q: the local API listens on a loopback address only (127.0.0.1, ::1 or localhost)", o.addr)
	}
	return nil
}

// localAPI is the API of one peer run. A nil *localAPI (--api off) does
// nothing.
type localAPI struct {
	o       apiOpts
	dataDir string
	metrics *api.Metrics
	ring    *api.Ring
	srv     *api.Server

	stop    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
	// teeDone is closed when wrap's goroutine has forwarded every event of
	// the node (nil before wrap).
	teeDone chan struct{}
}

func newLocalAPI(o *peerOpts) *localAPI {
	if o.api.addr == "off" {
		return nil
	}
	return &localAPI{o: o.api, dataDir: o.dataDir, metrics: api.NewMetrics(), ring: api.NewRing(api.DefaultRingSize), stop: make(chan struct{})}
}

// configure hands the node the latency observer.
func (a *localAPI) configure(cfg *chat.Config) {
	if a != nil {
		cfg.Observer = a.metrics
	}
}

// teePeer is the REPL's peer with its Events replaced by the tee's copy.
type teePeer struct {
	repl.Peer
	events <-chan hearsay.Event
}

func (p teePeer) Events() <-chan hearsay.Event { return p.events }

// wrap returns the peer the REPL gets: every event of the node goes to the
// API's ring (never blocking) and then to the REPL. The tee goroutine ends
// when the node closes its events (Shutdown) or close stops it.
func (a *localAPI) wrap(p repl.Peer) repl.Peer {
	if a == nil {
		return p
	}
	in := p.Events()
	out := make(chan hearsay.Event, 64)
	a.teeDone = make(chan struct{})
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(a.teeDone)
		defer close(out)
		for {
			select {
			case ev, ok := <-in:
				if !ok {
					return
				}
				a.ring.Publish(ev)
				select {
				case out <- ev:
				case <-a.stop:
					return
				}
			case <-a.stop:
				return
			}
		}
	}()
	return teePeer{Peer: p, events: out}
}

// start serves the API for p and tells the user where.
func (a *localAPI) start(p api.Peer, r *repl.REPL, streams *ioStreams, logOut io.Writer) error {
	if a == nil {
		return nil
	}
	a.metrics.Attach(p, a.ring)
	srv, err := api.Start(p, api.Config{
		Addr: a.o.addr, DataDir: a.dataDir, Ring: a.ring, Metrics: a.metrics,
		ErrorCode: apiErrorCode,
		Logf:      func(f string, args ...any) { fmt.Fprintf(logOut, f+"\n", args...) },
	})
	if err != nil {
		return fmt.Errorf("local API: %w (choose another with --api ADDR, or --api off)", err)
	}
	a.srv = srv
	r.Printf("local API on %s (hearsay send, hearsay tail; token in %s)", srv.URL(), api.TokenFile)
	if a.o.web {
		r.Printf("web UI: %s", srv.WebURL())
		openBrowser(streams.Getenv, srv.WebURL())
	}
	return nil
}

// close stops the server (removing its files) and the tee. Idempotent.
func (a *localAPI) close() {
	if a == nil {
		return
	}
	a.closing.Do(func() {
		if a.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			a.srv.Close(ctx)
			cancel()
		}
		if a.teeDone != nil {
			// Called after the node's Shutdown: let the tee pass the
			// node's last events on to the REPL (which prints them
			// before it closes) rather than drop them.
			t := time.NewTimer(2 * time.Second)
			select {
			case <-a.teeDone:
			case <-t.C:
			}
			t.Stop()
		}
		close(a.stop)
		a.wg.Wait()
	})
}

// openBrowser runs xdg-open on url when there is a graphical session (it
// hands the URL to the browser and exits); the URL is printed anyway.
func openBrowser(getenv func(string) string, url string) {
	if getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	exec.CommandContext(ctx, path, url).Run()
}

// apiErrorCode classifies the chat node's errors for the API's answers.
func apiErrorCode(err error) string {
	switch {
	case errors.Is(err, chat.ErrNotJoined), errors.Is(err, chat.ErrUnknownPeer):
		return api.ECodeNotFound
	case errors.Is(err, chat.ErrModeConflict):
		return api.ECodeConflict
	case errors.Is(err, chat.ErrTooLarge):
		return api.ECodeTooLarge
	case errors.Is(err, chat.ErrAmbiguousPeer):
		return api.ECodeInvalid
	case errors.Is(err, chat.ErrNotStarted), errors.Is(err, chat.ErrLeft), errors.Is(err, chat.ErrShutdown),
		errors.Is(err, chat.ErrRestoring), errors.Is(err, chat.ErrNoEncKey), errors.Is(err, chat.ErrTooManyPending):
		// The recipient's key has not arrived yet, or too many direct
		// messages wait: both pass with time.
		return api.ECodeUnavailable
	}
	return ""
}
