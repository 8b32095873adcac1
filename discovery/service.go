package discovery

// Choosing the bootstrap service. With URLs configured the agent uses
// them. Without, it uses the local default address: whoever answers there,
// or, when nothing does, a service it starts in-process on that address
// (the embedded default). When the peer serving it quits, another peer
// serves it instead (takeOver), so a group on one machine keeps a service
// without anyone restarting one. Every peer that uses the embedded default
// without serving it watches the port (watch: a TCP connect every
// WatchInterval, 1 s) and takes over as soon as nothing listens there, so
// the service is down for about a WatchInterval, not a lease renewal
// interval (20 s); a renewal that finds the service gone (a server that
// still holds the port but does not answer) takes over too. The new server
// opens the same database (Config.EmbeddedDB, shared by the local peers),
// so the configuration (max peers, lease TTL), the contacts with their
// leases and the keys of signed entries survive: carrying only the
// configuration (in the peers' contact cache or the group's key/values)
// would lose the leases and let anyone register another peer's ID before
// its owner renewed.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

// chooseService sets a.client and a.desc, and a.token and a.embedded
// when it starts the embedded default. ctx bounds the probes.
func (a *Agent) chooseService(ctx context.Context) error {
	cfg := a.cfg
	opts := []bootstrapapi.ClientOption{bootstrapapi.WithHTTPClient(cfg.HTTPClient)}
	if cfg.Signer != nil {
		opts = append(opts, bootstrapapi.WithSigner(cfg.Signer))
	}
	if len(cfg.URLs) > 0 {
		c, err := bootstrapapi.NewClient(cfg.URLs, opts...)
		if err != nil {
			return fmt.Errorf("bootstrap client: %w", err)
		}
		a.client, a.desc = c, fmt.Sprintf("bootstrap: %s", joinURLs(cfg.URLs))
		return nil
	}
	// The embedded default is never open to whoever reaches its port: it
	// serves with the token in AdminTokenFile, which every local peer
	// and `hearsay bootstrap` share, and this agent's client carries it
	// (for the peer's /bootstrap reset and config). Loaded before the
	// probe, since a takeover later needs the same token.
	token, err := bootstrapserver.LoadOrCreateAdminToken(cfg.AdminTokenFile)
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	a.token = token
	local, err := bootstrapapi.NewClient([]string{cfg.LocalURL}, append(opts, bootstrapapi.WithAdminToken(token))...)
	if err != nil {
		return fmt.Errorf("bootstrap client: %w", err)
	}
	a.client = local
	// Two peers starting at once may both find nothing and race for the
	// port: the loser finds the winner's service on its second probe.
	for attempt := 0; attempt < 2; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, cfg.ProbeTimeout)
		_, perr := local.Ping(pctx)
		cancel()
		if perr == nil {
			a.desc = fmt.Sprintf("bootstrap: %s (local default)", cfg.LocalURL)
			return nil
		}
		if errors.Is(perr, bootstrapapi.ErrNotBootstrap) {
			// Another server holds the port: serving there is
			// impossible, and its answer (a web page) says nothing
			// useful. Say what to do instead.
			return fmt.Errorf("%w at %s: give your service's address with --bootstrap URL, or serve one on another "+
				"port (hearsay bootstrap serve --listen 127.0.0.1:8081) and pass --bootstrap http://127.0.0.1:8081",
				bootstrapapi.ErrNotBootstrap, cfg.LocalURL)
		}
		srv, serr := a.startEmbedded()
		if serr == nil {
			a.embedded = srv
			a.desc = fmt.Sprintf("bootstrap: %s (embedded: nothing answered there, so this peer serves it)", cfg.LocalURL)
			return nil
		}
		err = fmt.Errorf("no bootstrap service at %s (%v) and cannot serve one: %w", cfg.LocalURL, perr, serr)
	}
	return err
}

// startEmbedded serves the bootstrap service in-process on LocalListen,
// its database in the data directory, reset and configuration behind the
// admin token.
func (a *Agent) startEmbedded() (*bootstrapserver.Server, error) {
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	start := func(db string) (*bootstrapserver.Server, error) {
		if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
			return nil, fmt.Errorf("create bootstrap db dir: %w", err)
		}
		return bootstrapserver.Start(bootstrapserver.Config{
			Listen: a.cfg.LocalListen, DBPath: db, Logf: a.cfg.Logf, AdminToken: a.token})
	}
	srv, err := start(a.cfg.EmbeddedDB)
	own := filepath.Join(a.cfg.DataDir, "bootstrap.db")
	if err != nil && a.cfg.EmbeddedDB != own && !isListenErr(err) {
		// The shared file is held by something that does not serve on
		// this port (a `hearsay bootstrap serve` elsewhere): serve from
		// this peer's own file rather than not at all.
		a.cfg.Logf("bootstrap database %s: %v; serving from %s instead (the shared configuration is not kept)", a.cfg.EmbeddedDB, err, own)
		srv, err = start(own)
	}
	return srv, err
}

// isListenErr reports whether bootstrapserver.Start failed to bind its
// port (another server holds it), not to open its database.
func isListenErr(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "listen"
}

// takeOver serves the embedded default in-process when this peer uses it
// and nothing answers there any more (the peer that served it quit). It
// reports whether it started one. The renewal and the watch goroutines
// call it; takeMu makes them take turns.
func (a *Agent) takeOver(ctx context.Context) bool {
	a.takeMu.Lock()
	defer a.takeMu.Unlock()
	if len(a.cfg.URLs) > 0 || a.serving() {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.ProbeTimeout)
	defer cancel()
	if _, err := a.client.Ping(pctx); err == nil {
		return false
	}
	srv, err := a.startEmbedded()
	if err != nil {
		a.report("take over the bootstrap service", err)
		return false // another peer was faster; its service answers next time
	}
	a.report("take over the bootstrap service", nil)
	// Close reads embedded only after the renewal and watch goroutines
	// (the callers) ended, so it stops this server too.
	a.mu.Lock()
	a.embedded = srv
	a.mu.Unlock()
	msg := fmt.Sprintf("the bootstrap service at %s stopped answering: this peer serves it now (same database: its configuration and contacts are kept)", a.cfg.LocalURL)
	a.cfg.Logf("%s", msg)
	a.cfg.Notify(msg)
	return true
}

// serving reports whether this agent serves the embedded default.
func (a *Agent) serving() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.embedded != nil
}

// watch runs every WatchInterval while the agent uses the embedded default
// without serving it: when nothing listens on LocalListen (a refused TCP
// connect: the serving peer quit or was killed), it takes the service over
// and registers the node there at once. A connect is enough to tell, and
// unlike a request it does not count against the service's per-address
// rate limit, which every local peer shares.
func (a *Agent) watch() {
	if a.serving() {
		return
	}
	d := net.Dialer{Timeout: a.cfg.ProbeTimeout}
	ctx, cancel := context.WithTimeout(a.base, a.cfg.ProbeTimeout)
	conn, err := d.DialContext(ctx, "tcp", a.cfg.LocalListen)
	cancel()
	if err == nil {
		conn.Close()
		return
	}
	if a.base.Err() != nil {
		return // closing
	}
	ctx, cancel = context.WithTimeout(a.base, a.cfg.RequestTimeout)
	defer cancel()
	if a.takeOver(ctx) {
		a.renew()
	}
}
