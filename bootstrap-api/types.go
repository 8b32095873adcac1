// Package bootstrapapi is the contract of hearsay's bootstrap data service:
// the wire types of API v1 and of the legacy cli-chat format, the error
// codes and their HTTP statuses, the service rules (max peers, refill,
// leases), the HTTP handler over a Store, and a Go client with failover.
//
// Every backend (bbolt in bootstrap-server, Firestore in
// bootstrap-cloudfunctions) is only a Store plus an entry point, so the
// rules cannot drift between them. The conformance suite in apitest runs
// against each.
package bootstrapapi

import (
	"strconv"
	"time"
)

// Defaults of a fresh service. MaxPeers and MinRefillCandidates are
// cli-chat's defaults; the lease TTL is hearsay's addition.
const (
	DefaultMaxPeers            = 3
	DefaultMinRefillCandidates = 10
	DefaultLeaseTTL            = 60 * time.Second

	// Upper bounds on configuration, so that a hostile or mistyped config
	// request cannot make the whole state too large to store (a Firestore
	// document holds at most 1 MiB; the state is one document).
	MaxMaxPeers            = 4096
	MaxMinRefillCandidates = 1 << 20
	MinLeaseTTL            = time.Second
	MaxLeaseTTL            = 7 * 24 * time.Hour

	// MaxListCount bounds the n of a list request.
	MaxListCount = MaxMaxPeers
)

// Config is the service configuration, stored with the peers.
type Config struct {
	MaxPeers            int `json:"max_peers"`
	MinRefillCandidates int `json:"min_refill_candidates"`
	// LeaseTTLSeconds is how long an entry lives without being renewed.
	LeaseTTLSeconds int64 `json:"lease_ttl_seconds"`
}

// DefaultConfig returns the configuration of a fresh service.
func DefaultConfig() Config {
	return Config{
		MaxPeers:            DefaultMaxPeers,
		MinRefillCandidates: DefaultMinRefillCandidates,
		LeaseTTLSeconds:     int64(DefaultLeaseTTL / time.Second),
	}
}

// LeaseTTL returns the lease duration as a time.Duration.
func (c Config) LeaseTTL() time.Duration { return time.Duration(c.LeaseTTLSeconds) * time.Second }

// Record is one stored contact. The field set is the union of what the
// legacy format carries (name, ip, port, protocol, status, timestamp) and
// the lease that hearsay adds.
type Record struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	IP       string `json:"ip,omitempty"`
	Port     string `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Status   string `json:"status,omitempty"`
	// Timestamp is the Unix time in seconds the contact claims as its
	// start (legacy) or the time of its first v1 join. Refill keeps the
	// entries with the oldest timestamps: the most stable contacts.
	Timestamp int64 `json:"timestamp"`
	// ExpiresUnixMilli is when the lease ends unless renewed.
	ExpiresUnixMilli int64 `json:"expires_unix_ms"`
	// Key is the base64 Ed25519 public key that signed the entry (its
	// PeerIDFromKey is ID); empty for an unsigned entry (legacy format, or
	// v1 without auth). Only a request signed by this key changes a
	// signed entry.
	Key string `json:"key,omitempty"`
	// SignedMilli is the timestamp (Unix ms) of the last signed request
	// accepted for this entry; a signed request must carry a later one.
	SignedMilli int64 `json:"signed_ms,omitempty"`
	// Legacy is true for an entry stored by the legacy format; LegacyTS is
	// then its timestamp field verbatim (possibly empty or not a number),
	// which the legacy list shows and legacy refill compares as a string.
	Legacy   bool   `json:"legacy,omitempty"`
	LegacyTS string `json:"legacy_ts,omitempty"`
}

// Stamp is the timestamp as the legacy format shows and compares it: the
// legacy field verbatim, or the decimal Unix seconds.
func (r Record) Stamp() string {
	if r.Legacy {
		return r.LegacyTS
	}
	return strconv.FormatInt(r.Timestamp, 10)
}

// Signed reports whether the entry was registered by a signed request.
func (r Record) Signed() bool { return r.Key != "" }

// Expires returns the end of the record's lease.
func (r Record) Expires() time.Time { return time.UnixMilli(r.ExpiresUnixMilli) }

// Live reports whether the lease is still valid at now.
func (r Record) Live(now time.Time) bool { return now.UnixMilli() < r.ExpiresUnixMilli }

// Contact returns the v1 view of the record.
func (r Record) Contact() Contact {
	addr := ""
	if r.IP != "" && r.Port != "" { // a legacy entry may lack either
		addr = joinHostPort(r.IP, r.Port)
	}
	return Contact{
		ID:       r.ID,
		Nick:     r.Name,
		Addr:     addr,
		Protocol: r.Protocol,
		Status:   r.Status,
		Signed:   r.Signed(),
		Since:    time.Unix(r.Timestamp, 0).UTC(),
		Expires:  r.Expires().UTC(),
	}
}

// State is the whole service state: what a Store persists and what a
// transaction function reads and mutates.
type State struct {
	Config Config            `json:"config"`
	Peers  map[string]Record `json:"peers"`
	// Tombstones holds, for IDs with no live entry whose last signed
	// request is still within MaxClockSkew, that request's timestamp
	// (Unix ms), so a captured signed join cannot bring back an entry
	// that left or expired. At most MaxTombstones; nil when empty.
	Tombstones map[string]int64 `json:"tombstones,omitempty"`
}

// NewState returns an empty state with the default configuration.
func NewState() *State {
	return &State{Config: DefaultConfig(), Peers: map[string]Record{}}
}

// Clone returns a deep copy, so a transaction that is re-run starts from
// an unmodified state.
func (s *State) Clone() *State {
	c := &State{Config: s.Config, Peers: make(map[string]Record, len(s.Peers))}
	for k, v := range s.Peers {
		c.Peers[k] = v
	}
	if len(s.Tombstones) > 0 {
		c.Tombstones = make(map[string]int64, len(s.Tombstones))
		for k, v := range s.Tombstones {
			c.Tombstones[k] = v
		}
	}
	return c
}

// Contact is a peer's contact as API v1 shows it.
type Contact struct {
	ID       string `json:"id"`
	Nick     string `json:"nick,omitempty"`
	Addr     string `json:"addr,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Status   string `json:"status,omitempty"`
	// Signed is true when the entry was registered by a request signed
	// with the key behind ID.
	Signed  bool      `json:"signed,omitempty"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
}

// JoinRequest registers or renews a contact (POST /v1/join, /v1/refill).
type JoinRequest struct {
	ID       string `json:"id"`
	Nick     string `json:"nick,omitempty"`
	Addr     string `json:"addr"`
	Protocol string `json:"protocol,omitempty"`
	// Auth signs the request with the key behind ID. Without it the
	// request is unsigned: it may store or renew an unsigned entry only,
	// and an unsigned entry gives way to any signed one.
	Auth *Auth `json:"auth,omitempty"`
}

// JoinResponse says whether the contact is stored and until when.
type JoinResponse struct {
	// Stored is false when the service is full (join) or the candidate is
	// not older than any stored entry (refill). That is not an error: the
	// caller is simply not a first contact right now.
	Stored bool `json:"stored"`
	// Renewed is true when the contact was already stored.
	Renewed bool `json:"renewed,omitempty"`
	// Replaced names the entry a refill replaced, if any.
	Replaced string   `json:"replaced,omitempty"`
	Contact  *Contact `json:"contact,omitempty"`
	NumPeers int      `json:"num_peers"`
	Config   Config   `json:"config"`
}

// LeaveRequest removes a contact (POST /v1/leave).
type LeaveRequest struct {
	ID string `json:"id"`
	// Auth signs the request (op "leave"); without it only an unsigned
	// entry can be removed.
	Auth *Auth `json:"auth,omitempty"`
}

// LeaveResponse says whether the contact was stored.
type LeaveResponse struct {
	Removed  bool `json:"removed"`
	NumPeers int  `json:"num_peers"`
}

// ListResponse holds live contacts (GET or POST /v1/list).
type ListResponse struct {
	Peers    []Contact `json:"peers"`
	NumPeers int       `json:"num_peers"`
	Config   Config    `json:"config"`
}

// ListRequest asks for at most N live contacts, chosen at random when
// more are stored; N = 0 means all.
type ListRequest struct {
	N int `json:"n,omitempty"`
}

// ConfigUpdate changes the configuration; nil fields keep their value.
type ConfigUpdate struct {
	MaxPeers            *int   `json:"max_peers,omitempty"`
	MinRefillCandidates *int   `json:"min_refill_candidates,omitempty"`
	LeaseTTLSeconds     *int64 `json:"lease_ttl_seconds,omitempty"`
}

// PingResponse answers GET or POST /v1/ping.
type PingResponse struct {
	OK   bool      `json:"ok"`
	Time time.Time `json:"time"`
}

// ResetResponse answers POST /v1/reset.
type ResetResponse struct {
	Removed int    `json:"removed"`
	Config  Config `json:"config"`
}

// LegacyConfig is the "Config" object of the legacy response.
type LegacyConfig struct {
	MaxPeers            int `json:"maxpeers"`
	MinRefillCandidates int `json:"minrefillcandidates"`
	NumPeers            int `json:"numpeers"`
}

// LegacyPeer is one entry of the legacy response.
type LegacyPeer struct {
	ID        string `json:"id,omitempty"`
	Name      string `json:"name,omitempty"`
	IP        string `json:"ip,omitempty"`
	Port      string `json:"port,omitempty"`
	Protocol  string `json:"protocol,omitempty"`
	Status    string `json:"status,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
}

// LegacyResponse is what every legacy endpoint answers: the whole state.
type LegacyResponse struct {
	Config LegacyConfig          `json:"Config"`
	Peers  map[string]LegacyPeer `json:"Peers"`
}

// legacyView renders the live part of s in the legacy format.
func legacyView(s *State) LegacyResponse {
	r := LegacyResponse{
		Config: LegacyConfig{MaxPeers: s.Config.MaxPeers, MinRefillCandidates: s.Config.MinRefillCandidates},
		Peers:  make(map[string]LegacyPeer, len(s.Peers)),
	}
	for id, p := range s.Peers {
		r.Peers[id] = LegacyPeer{ID: p.ID, Name: p.Name, IP: p.IP, Port: p.Port, Protocol: p.Protocol,
			Status: p.Status, Timestamp: p.Stamp()}
	}
	r.Config.NumPeers = len(r.Peers)
	return r
}

// DefaultListen is where the local service listens by default, and
// DefaultLocalURL is where a peer looks for it when no URL is configured.
const (
	DefaultListen   = "127.0.0.1:8080"
	DefaultLocalURL = "http://" + DefaultListen
)
