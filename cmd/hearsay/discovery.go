package main

// Discovery is the peer's use of the bootstrap data service, kept in the
// agent (cmd), not in the chat library, as serf keeps discovery out of
// serf/. It
//   - picks the service: the configured URLs, else the local default
//     address, else an in-process service on that address (the embedded
//     default, so two terminals on one machine need no other step);
//   - fetches first contacts, caching them in the data directory and
//     falling back to the cache when no service answers;
//   - registers the peer's own contact and renews the lease while it runs;
//   - periodically re-joins contacts that are not live members, so that the
//     two sides of a healed partition find each other again even after
//     memberlist has declared them dead (serf's reconnect);
//   - leaves the service on exit.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

// protocolName is what a peer registers as its protocol.
const protocolName = "hearsay/1"

// discoveryNode is what discovery needs of the chat node.
type discoveryNode interface {
	ID() string
	Nick() string
	AdvertiseAddr() string
	Join(ctx context.Context, addrs []string) (int, error)
}

type discoveryConfig struct {
	// URLs of the service; empty means the embedded default.
	URLs []string
	// DataDir holds contacts.json and, for the embedded service,
	// bootstrap.db.
	DataDir string
	// LocalURL and LocalListen are the embedded default's address; tests
	// change them so they do not collide with a developer's service.
	LocalURL    string
	LocalListen string
	// ProbeTimeout bounds the check whether the local default answers.
	ProbeTimeout time.Duration
	// RequestTimeout bounds each request to the service.
	RequestTimeout time.Duration
	// RejoinInterval is how often contacts that are not live members are
	// joined again; 0 disables the loop.
	RejoinInterval time.Duration
	// Logf reports background failures (renewal, rejoin); nil discards.
	Logf func(format string, args ...any)
	// Signer signs the peer's join, refill and leave with its identity
	// key, so nobody else can change its entry; nil sends them unsigned.
	Signer bootstrapapi.Signer
	// AdminTokenFile holds the admin token of the embedded service
	// (generated on first use, mode 0600); empty means
	// DataDir/bootstrap-admin-token.
	AdminTokenFile string
}

func defaultDiscoveryConfig() discoveryConfig {
	return discoveryConfig{
		LocalURL:       bootstrapapi.DefaultLocalURL,
		LocalListen:    bootstrapapi.DefaultListen,
		ProbeTimeout:   500 * time.Millisecond,
		RequestTimeout: 5 * time.Second,
		RejoinInterval: 10 * time.Second,
	}
}

// discovery is one peer's link to the bootstrap service. Its goroutine
// (renewal and rejoin) is owned: Close stops it and waits.
type discovery struct {
	cfg      discoveryConfig
	client   *bootstrapapi.Client
	embedded *bootstrapserver.Server // nil unless served in-process
	desc     string
	token    string // admin token of the embedded default; "" with URLs

	// base is cancelled by Close; background requests derive from it.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	node     discoveryNode
	alive    func(id string) bool
	closed   bool
	lastErr  string
	renewals int
}

// openDiscovery chooses the service and, for the embedded default, starts
// it. It does not contact the group yet.
func openDiscovery(ctx context.Context, cfg discoveryConfig) (*discovery, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	hc := &http.Client{Timeout: cfg.RequestTimeout}
	d := &discovery{cfg: cfg}
	d.base, d.cancel = context.WithCancel(context.Background())
	opts := []bootstrapapi.ClientOption{bootstrapapi.WithHTTPClient(hc)}
	if cfg.Signer != nil {
		opts = append(opts, bootstrapapi.WithSigner(cfg.Signer))
	}
	if len(cfg.URLs) > 0 {
		c, err := bootstrapapi.NewClient(cfg.URLs, opts...)
		if err != nil {
			return nil, err
		}
		d.client, d.desc = c, fmt.Sprintf("bootstrap: %s", joinURLs(cfg.URLs))
		return d, nil
	}
	// The embedded default is never open to whoever reaches its port:
	// it serves with the token in the data directory, and this peer's
	// own client (its /bootstrap reset and config) carries it.
	if d.cfg.AdminTokenFile == "" {
		d.cfg.AdminTokenFile = filepath.Join(cfg.DataDir, bootstrapserver.AdminTokenFile)
	}
	token, err := bootstrapserver.LoadOrCreateAdminToken(d.cfg.AdminTokenFile)
	if err != nil {
		return nil, fmt.Errorf("bootstrap admin token: %w", err)
	}
	d.token = token
	local, err := bootstrapapi.NewClient([]string{cfg.LocalURL}, append(opts, bootstrapapi.WithAdminToken(token))...)
	if err != nil {
		return nil, err
	}
	d.client = local
	// Two peers starting at once may both find nothing and race for the
	// port: the loser finds the winner's service on its second probe.
	for attempt := 0; attempt < 2; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, cfg.ProbeTimeout)
		_, perr := local.Ping(pctx)
		cancel()
		if perr == nil {
			d.desc = fmt.Sprintf("bootstrap: %s (local default)", cfg.LocalURL)
			return d, nil
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		srv, serr := bootstrapserver.Start(bootstrapserver.Config{
			Listen: cfg.LocalListen, DBPath: filepath.Join(cfg.DataDir, "bootstrap.db"), Logf: cfg.Logf, AdminToken: token})
		if serr == nil {
			d.embedded = srv
			d.desc = fmt.Sprintf("bootstrap: %s (embedded: nothing answered there, so this peer serves it)", cfg.LocalURL)
			return d, nil
		}
		err = fmt.Errorf("no bootstrap service at %s (%v) and cannot serve one: %w", cfg.LocalURL, perr, serr)
	}
	return nil, err
}

func joinURLs(urls []string) string {
	b, _ := json.Marshal(urls)
	if len(urls) == 1 {
		return urls[0]
	}
	return string(b)
}

// Describe is the one line that says which bootstrap the peer uses.
func (d *discovery) Describe() string { return d.desc }

// Client returns the service client (for /bootstrap commands).
func (d *discovery) Client() *bootstrapapi.Client { return d.client }

func (d *discovery) cachePath() string { return filepath.Join(d.cfg.DataDir, "contacts.json") }

// cachedContact is one entry of contacts.json.
type cachedContact struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// Contacts returns memberlist addresses to join (other than self), from
// the service or, when it does not answer, from the cache. source says
// which.
func (d *discovery) Contacts(ctx context.Context, selfID string) (addrs []string, source string, err error) {
	l, err := d.client.List(ctx, 0)
	if err == nil {
		var cache []cachedContact
		for _, p := range l.Peers {
			if p.ID == selfID || p.Addr == "" {
				continue
			}
			addrs = append(addrs, p.Addr)
			cache = append(cache, cachedContact{ID: p.ID, Addr: p.Addr})
		}
		if len(cache) > 0 {
			if werr := d.writeCache(cache); werr != nil {
				d.cfg.Logf("cache contacts: %v", werr)
			}
		}
		return addrs, "bootstrap service", nil
	}
	cached, cerr := d.readCache()
	if cerr != nil || len(cached) == 0 {
		return nil, "", fmt.Errorf("no contacts: %w (and no cached contacts: %v)", err, cerr)
	}
	for _, c := range cached {
		if c.ID != selfID {
			addrs = append(addrs, c.Addr)
		}
	}
	return addrs, "cached contacts (bootstrap unreachable: " + err.Error() + ")", nil
}

func (d *discovery) writeCache(cs []cachedContact) error {
	b, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.cfg.DataDir, 0o700); err != nil {
		return err
	}
	tmp := d.cachePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, d.cachePath())
}

// maxCacheBytes bounds what is read back from contacts.json.
const maxCacheBytes = 1 << 20

func (d *discovery) readCache() ([]cachedContact, error) {
	f, err := os.Open(d.cachePath())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCacheBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxCacheBytes {
		return nil, fmt.Errorf("%s is over %d bytes", d.cachePath(), maxCacheBytes)
	}
	var cs []cachedContact
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("read %s: %w", d.cachePath(), err)
	}
	valid := cs[:0]
	for _, c := range cs {
		if _, _, err := bootstrapapi.SplitAddr(c.Addr); err == nil {
			valid = append(valid, c)
		}
	}
	return valid, nil
}

// JoinGroup fetches contacts and joins the group through them. With no
// contacts (the first peer) it does nothing and says so.
func (d *discovery) JoinGroup(ctx context.Context, node discoveryNode) (string, error) {
	addrs, source, err := d.Contacts(ctx, node.ID())
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "no other peer registered: this peer starts the group", nil
	}
	n, err := node.Join(ctx, addrs)
	if err != nil && n == 0 {
		return "", fmt.Errorf("join the group through %d contacts from the %s: %w", len(addrs), source, err)
	}
	return fmt.Sprintf("joined the group through %d of %d contacts from the %s", n, len(addrs), source), nil
}

// Register stores the node's contact and starts the renewal and rejoin
// loop. alive reports whether a peer ID is a live member (for rejoin).
func (d *discovery) Register(ctx context.Context, node discoveryNode, alive func(id string) bool) (bootstrapapi.JoinResponse, error) {
	r, err := d.client.Join(ctx, d.joinRequest(node))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.node != nil {
		return r, err
	}
	d.node, d.alive = node, alive
	ttl := bootstrapapi.DefaultLeaseTTL
	if err == nil {
		ttl = r.Config.LeaseTTL()
	}
	d.wg.Add(1)
	go d.loop(ttl)
	return r, err
}

func (d *discovery) joinRequest(node discoveryNode) bootstrapapi.JoinRequest {
	return bootstrapapi.JoinRequest{ID: node.ID(), Nick: node.Nick(), Addr: node.AdvertiseAddr(), Protocol: protocolName}
}

// loop renews the lease at a third of its TTL (so two renewals may fail
// before it lapses) and rejoins missing contacts.
func (d *discovery) loop(ttl time.Duration) {
	defer d.wg.Done()
	renew := time.NewTicker(max(ttl/3, 500*time.Millisecond))
	defer renew.Stop()
	var rejoin <-chan time.Time
	if d.cfg.RejoinInterval > 0 {
		t := time.NewTicker(d.cfg.RejoinInterval)
		defer t.Stop()
		rejoin = t.C
	}
	for {
		select {
		case <-d.base.Done():
			return
		case <-renew.C:
			d.renew()
		case <-rejoin:
			d.rejoin()
		}
	}
}

func (d *discovery) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(d.base, d.cfg.RequestTimeout)
}

func (d *discovery) renew() {
	ctx, cancel := d.ctx()
	defer cancel()
	_, err := d.client.Join(ctx, d.joinRequest(d.node))
	if err != nil && d.takeOver() {
		_, err = d.client.Join(ctx, d.joinRequest(d.node))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if msg := err.Error(); msg != d.lastErr { // report each new failure once
			d.cfg.Logf("renew bootstrap lease: %v", err)
			d.lastErr = msg
		}
		return
	}
	d.lastErr = ""
	d.renewals++
}

// takeOver serves the embedded default in-process when this peer uses it
// and nothing answers there any more (the peer that served it quit), so
// the group keeps a bootstrap service without anyone restarting one. It
// reports whether it started one.
func (d *discovery) takeOver() bool {
	if len(d.cfg.URLs) > 0 || d.embedded != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(d.base, d.cfg.ProbeTimeout)
	defer cancel()
	if _, err := d.client.Ping(ctx); err == nil {
		return false
	}
	srv, err := bootstrapserver.Start(bootstrapserver.Config{
		Listen: d.cfg.LocalListen, DBPath: filepath.Join(d.cfg.DataDir, "bootstrap.db"), Logf: d.cfg.Logf,
		AdminToken: d.token})
	if err != nil {
		return false // another peer was faster; its service answers next time
	}
	d.mu.Lock()
	d.embedded = srv
	d.mu.Unlock()
	d.cfg.Logf("the bootstrap service at %s stopped answering: this peer serves it now", d.cfg.LocalURL)
	return true
}

// rejoin joins every listed contact that is not a live member. memberlist
// stops gossiping with nodes it declared dead, so without this the two
// sides of a long partition would never merge again.
func (d *discovery) rejoin() {
	ctx, cancel := d.ctx()
	defer cancel()
	l, err := d.client.List(ctx, 0)
	if err != nil {
		return // the service is optional; the chat keeps working
	}
	var addrs []string
	for _, p := range l.Peers {
		if p.ID != d.node.ID() && p.Addr != "" && !d.alive(p.ID) {
			addrs = append(addrs, p.Addr)
		}
	}
	if len(addrs) > 0 {
		if _, err := d.node.Join(ctx, addrs); err != nil {
			d.cfg.Logf("rejoin %v: %v", addrs, err)
		}
	}
}

// Renewals returns how many lease renewals succeeded.
func (d *discovery) Renewals() int { d.mu.Lock(); defer d.mu.Unlock(); return d.renewals }

// Close stops the loop, removes the node's contact from the service
// (bounded by ctx) and stops an embedded service. It is idempotent.
func (d *discovery) Close(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	node := d.node
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	var errs []error
	if node != nil {
		if _, err := d.client.Leave(ctx, node.ID()); err != nil {
			errs = append(errs, fmt.Errorf("leave bootstrap service: %w", err))
		}
	}
	d.mu.Lock()
	embedded := d.embedded
	d.mu.Unlock()
	if embedded != nil {
		if err := embedded.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("stop embedded bootstrap service: %w", err))
		}
	}
	return errors.Join(errs...)
}
