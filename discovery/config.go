package discovery

import (
	"errors"
	"net/http"
	"path/filepath"
	"time"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

// Protocol is what a peer registers as its protocol with the bootstrap
// service.
const Protocol = "hearsay/1"

// Config configures an Agent. Start from DefaultConfig; a zero duration or
// count means the default, except RejoinInterval (see there).
type Config struct {
	// URLs of the bootstrap service; empty means the embedded default
	// (LocalURL, served in-process when nothing answers there).
	URLs []string
	// DataDir holds contacts.json (the contact cache) and, for the
	// embedded service, bootstrap.db. Required.
	DataDir string
	// LocalURL and LocalListen are the embedded default's address; tests
	// change them so they do not collide with a developer's service.
	LocalURL    string
	LocalListen string
	// HTTPClient makes every request to the service; nil means a client
	// whose timeout is RequestTimeout.
	HTTPClient *http.Client
	// ProbeTimeout bounds the check whether the local default answers.
	ProbeTimeout time.Duration
	// RequestTimeout bounds each background request to the service (lease
	// renewal, the contact list of a rejoin round) and each rejoin.
	RequestTimeout time.Duration
	// RejoinInterval is how often the agent joins again peers that are not
	// live members (see rejoin.go). Zero disables rejoining: then the two
	// sides of a partition longer than memberlist's dead declaration never
	// merge again.
	RejoinInterval time.Duration
	// RejoinWindow is how long after a member failed (not left) the agent
	// keeps trying to join it again.
	RejoinWindow time.Duration
	// RejoinMax bounds the addresses joined per round (chosen at random
	// when there are more), since a join to an unreachable address costs
	// memberlist's TCP timeout.
	RejoinMax int
	// Logf reports background failures (renewal, rejoin, cache); nil
	// discards.
	Logf func(format string, args ...any)
	// Signer signs the peer's join, renewals and leave with its identity
	// key, so that only this peer can change or remove its entry; nil
	// sends them unsigned (legacy entries, which anyone can overwrite and
	// which never displace a signed one). It must sign for the ID of the
	// Node given to Register: the client refuses any other.
	Signer bootstrapapi.Signer
	// EmbeddedDB is the database of the embedded default; empty means
	// DataDir/bootstrap.db. Every local peer should name the same file
	// (cmd/hearsay: the data root's bootstrap.db, which `hearsay
	// bootstrap serve` uses too): the peer that takes the service over
	// opens the file the previous one closed, so the service's
	// configuration, its contacts with their leases and the keys their
	// entries are signed with survive the takeover.
	EmbeddedDB string
	// WatchInterval is how often an agent that uses the embedded default
	// without serving it checks that something still listens on
	// LocalListen (a TCP connect, not a request: it costs the service's
	// rate limit nothing); when nothing does, it takes the service over at
	// once instead of at its next lease renewal. Zero means the default.
	WatchInterval time.Duration
	// Notify tells the user what they should see on their terminal (this
	// peer took the embedded service over); nil: only Logf.
	Notify func(text string)
	// AdminTokenFile holds the admin token of the embedded default
	// (generated on first use, mode 0600), so that its reset and
	// configuration are not open to whoever reaches the port; the
	// agent's own client (a peer's /bootstrap commands) sends it to
	// LocalURL. Empty means DataDir/bootstrap-admin-token. Unused with
	// URLs.
	AdminTokenFile string
}

// DefaultConfig returns the defaults: the local default service
// (bootstrapapi.DefaultLocalURL) watched every second, probe 500 ms,
// requests 5 s, a rejoin
// round every 10 s of at most 3 addresses, failed members retried for
// 24 h (serf's reconnect timeout). DataDir must still be set.
func DefaultConfig() Config {
	return Config{
		LocalURL:       bootstrapapi.DefaultLocalURL,
		LocalListen:    bootstrapapi.DefaultListen,
		ProbeTimeout:   500 * time.Millisecond,
		WatchInterval:  time.Second,
		RequestTimeout: 5 * time.Second,
		RejoinInterval: 10 * time.Second,
		RejoinWindow:   24 * time.Hour,
		RejoinMax:      3,
	}
}

// validate fills zero fields with the defaults and checks the rest.
func (c *Config) validate() error {
	def := DefaultConfig()
	if c.DataDir == "" {
		return errors.New("discovery config: DataDir is required")
	}
	if c.ProbeTimeout < 0 || c.WatchInterval < 0 || c.RequestTimeout < 0 || c.RejoinInterval < 0 || c.RejoinWindow < 0 || c.RejoinMax < 0 {
		return errors.New("discovery config: durations and counts must not be negative")
	}
	if c.LocalURL == "" {
		c.LocalURL = def.LocalURL
	}
	if c.LocalListen == "" {
		c.LocalListen = def.LocalListen
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = def.ProbeTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = def.RequestTimeout
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = def.WatchInterval
	}
	if c.EmbeddedDB == "" {
		c.EmbeddedDB = filepath.Join(c.DataDir, "bootstrap.db")
	}
	if c.RejoinWindow == 0 {
		c.RejoinWindow = def.RejoinWindow
	}
	if c.RejoinMax == 0 {
		c.RejoinMax = def.RejoinMax
	}
	if c.AdminTokenFile == "" {
		c.AdminTokenFile = filepath.Join(c.DataDir, bootstrapserver.AdminTokenFile)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: c.RequestTimeout}
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Notify == nil {
		c.Notify = func(string) {}
	}
	return nil
}
