package discovery

// Choosing the bootstrap service. With URLs configured the agent uses
// them. Without, it uses the local default address: whoever answers there,
// or, when nothing does, a service it starts in-process on that address
// (the embedded default). When the peer serving it quits, the next lease
// renewal of another peer finds nothing there and that peer serves it
// instead (takeOver), so a group on one machine keeps a service without
// anyone restarting one.

import (
	"context"
	"errors"
	"fmt"
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
	return bootstrapserver.Start(bootstrapserver.Config{
		Listen: a.cfg.LocalListen, DBPath: filepath.Join(a.cfg.DataDir, "bootstrap.db"), Logf: a.cfg.Logf,
		AdminToken: a.token})
}

// takeOver serves the embedded default in-process when this peer uses it
// and nothing answers there any more (the peer that served it quit). It
// reports whether it started one. Only the renewal goroutine calls it.
func (a *Agent) takeOver(ctx context.Context) bool {
	a.mu.Lock()
	serving := a.embedded != nil
	a.mu.Unlock()
	if len(a.cfg.URLs) > 0 || serving {
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.ProbeTimeout)
	defer cancel()
	if _, err := a.client.Ping(pctx); err == nil {
		return false
	}
	srv, err := a.startEmbedded()
	if err != nil {
		return false // another peer was faster; its service answers next time
	}
	// Close reads embedded only after the renewal goroutine (the caller)
	// ended, so it stops this server too.
	a.mu.Lock()
	a.embedded = srv
	a.mu.Unlock()
	a.cfg.Logf("the bootstrap service at %s stopped answering: this peer serves it now", a.cfg.LocalURL)
	return true
}
