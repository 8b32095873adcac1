package bootstrapapi

// The service rules, once, as pure functions over a *State and the current
// time. They run inside Store.Update, which may re-run them on contention,
// so they touch nothing but the state they are given.
//
// Leases: every entry carries an expiry. Each rule first drops expired
// entries (Expire), so an expired entry neither counts towards MaxPeers nor
// is ever handed out. A join or refill of a stored ID renews its lease.

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Field limits, checked by Validate before any rule runs.
const (
	MaxIDLen       = 128
	MaxNickLen     = 64
	MaxProtocolLen = 32
	MaxStatusLen   = 32
	MaxHostLen     = 253
)

// Expire removes the entries whose lease ended at or before now and
// returns how many it removed. An expired signed entry leaves a tombstone
// while its last timestamp is fresh, and stale tombstones are dropped.
func Expire(s *State, now time.Time) int {
	n := 0
	for id, p := range s.Peers {
		if !p.Live(now) {
			retire(s, id, p, now)
			n++
		}
	}
	horizon := now.UnixMilli() - MaxClockSkew.Milliseconds()
	for id, ts := range s.Tombstones {
		// A request with a timestamp this old is refused as stale, so
		// the tombstone no longer protects anything.
		if ts < horizon {
			delete(s.Tombstones, id)
		}
	}
	return n
}

// retire removes p and, when it was signed, remembers its last
// timestamp so the request that registered it cannot be replayed.
func retire(s *State, id string, p Record, now time.Time) {
	delete(s.Peers, id)
	if p.Signed() {
		tombstone(s, id, p.SignedMilli, now)
	}
}

// tombstone records ts as the last accepted signed timestamp of id. When
// MaxTombstones are held, the oldest one is dropped: that reopens, for
// one ID, the window in which a captured join could re-register a peer
// that left, at the peer's own address, for one lease.
func tombstone(s *State, id string, ts int64, now time.Time) {
	if ts < now.UnixMilli()-MaxClockSkew.Milliseconds() {
		return
	}
	if s.Tombstones == nil {
		s.Tombstones = map[string]int64{}
	}
	if _, ok := s.Tombstones[id]; !ok && len(s.Tombstones) >= MaxTombstones {
		oldest := ""
		for k, v := range s.Tombstones {
			if oldest == "" || v < s.Tombstones[oldest] || (v == s.Tombstones[oldest] && k < oldest) {
				oldest = k
			}
		}
		delete(s.Tombstones, oldest)
	}
	s.Tombstones[id] = max(s.Tombstones[id], ts)
}

// lastSigned returns the timestamp of the last signed request accepted
// for id: the live signed entry's, else its tombstone's, else 0.
func lastSigned(s *State, id string) int64 {
	last := s.Tombstones[id]
	if p, ok := s.Peers[id]; ok && p.Signed() {
		last = max(last, p.SignedMilli)
	}
	return last
}

// checkOwner enforces who may change the entry of rec.ID: an unsigned
// request never changes a signed entry, and a signed request must be
// later than the last one accepted for the ID (not a replay). The key was
// verified against the ID before the rules run.
func checkOwner(s *State, id string, signed bool, ts int64) error {
	if !signed {
		if p, ok := s.Peers[id]; ok && p.Signed() {
			return Errorf(ECodeForbidden, "id %q is registered by a signed request; only a request signed with its key can change it", clip(id))
		}
		return nil
	}
	if last := lastSigned(s, id); ts <= last {
		return Errorf(ECodeReplayed, "auth timestamp %d is not later than %d, the last one accepted for id %q (a replay, or the clock went back)",
			ts, last, clip(id))
	}
	return nil
}

// put stores rec; a signed entry takes over its ID's tombstone.
func put(s *State, rec Record) {
	s.Peers[rec.ID] = rec
	if rec.Signed() {
		delete(s.Tombstones, rec.ID)
	}
}

// Outcome is what a join or refill did.
type Outcome struct {
	// Stored is true when rec is stored after the call.
	Stored bool
	// Renewed is true when rec's ID was stored before.
	Renewed bool
	// Replaced names an entry that was removed to make room for rec.
	Replaced string
}

// Join stores rec if its ID is stored already (renewing the lease and
// refreshing its fields, keeping the original timestamp when keepTS) or if
// fewer than MaxPeers entries are live. When the service is full, a
// signed rec displaces the unsigned entry with the newest timestamp, so
// unsigned entries cannot crowd out signed ones; an unsigned rec never
// displaces anything. An unsigned rec for an ID held by a signed entry is
// refused (forbidden), as is a signed rec that is not later than the last
// accepted one for its ID (replayed); the state is then unchanged.
func Join(s *State, rec Record, now time.Time, keepTS bool) (Outcome, error) {
	Expire(s, now)
	if err := checkOwner(s, rec.ID, rec.Signed(), rec.SignedMilli); err != nil {
		return Outcome{}, err
	}
	rec.ExpiresUnixMilli = now.Add(s.Config.LeaseTTL()).UnixMilli()
	if old, ok := s.Peers[rec.ID]; ok {
		// A signed request taking over an unsigned entry under its ID
		// keeps its own timestamp: the old one was chosen by whoever
		// made the unsigned entry.
		if keepTS && (old.Signed() || !rec.Signed()) {
			rec.Timestamp = old.Timestamp
		}
		put(s, rec)
		return Outcome{Stored: true, Renewed: true}, nil
	}
	if len(s.Peers) < s.Config.MaxPeers {
		put(s, rec)
		return Outcome{Stored: true}, nil
	}
	if !rec.Signed() {
		return Outcome{}, nil
	}
	victim := newest(s, func(p Record) bool { return !p.Signed() })
	if victim == "" {
		return Outcome{}, nil
	}
	delete(s.Peers, victim)
	put(s, rec)
	return Outcome{Stored: true, Replaced: victim}, nil
}

// newest returns the ID of the entry with the newest timestamp among those
// eligible (ties: the greatest ID), or "".
func newest(s *State, eligible func(Record) bool) string {
	best := ""
	for id, p := range s.Peers {
		if !eligible(p) {
			continue
		}
		if best == "" || p.Timestamp > s.Peers[best].Timestamp ||
			(p.Timestamp == s.Peers[best].Timestamp && id > best) {
			best = id
		}
	}
	return best
}

// newestStamp is newest under the legacy order: Stamp compared as strings.
func newestStamp(s *State, eligible func(Record) bool) string {
	best := ""
	for id, p := range s.Peers {
		if !eligible(p) {
			continue
		}
		if best == "" || p.Stamp() > s.Peers[best].Stamp() ||
			(p.Stamp() == s.Peers[best].Stamp() && id > best) {
			best = id
		}
	}
	return best
}

// Refill is cli-chat's refill: Join's rules first (a stored ID is
// renewed; an unknown ID is added while fewer than MaxPeers are live; a
// signed one displaces an unsigned entry); otherwise the entry with the
// newest timestamp is replaced by the candidate when that entry is newer
// than the candidate, so the service keeps the oldest, most stable
// contacts. Ties keep the stored entry. A legacy candidate compares
// timestamps as strings (Stamp), as the original server did. An unsigned
// candidate only competes with unsigned entries. It returns the ID it replaced.
func Refill(s *State, rec Record, now time.Time, keepTS bool) (Outcome, error) {
	o, err := Join(s, rec, now, keepTS)
	if err != nil || o.Stored {
		return o, err
	}
	signed := rec.Signed()
	eligible := func(p Record) bool { return signed || !p.Signed() }
	var victim string
	if rec.Legacy {
		// The original server compared timestamps as strings, so its
		// clients rely on that order (an empty timestamp is the oldest).
		victim = newestStamp(s, eligible)
		if victim == "" || s.Peers[victim].Stamp() <= rec.Stamp() {
			return Outcome{}, nil
		}
	} else {
		victim = newest(s, eligible)
		if victim == "" || s.Peers[victim].Timestamp <= rec.Timestamp {
			return Outcome{}, nil
		}
	}
	delete(s.Peers, victim)
	rec.ExpiresUnixMilli = now.Add(s.Config.LeaseTTL()).UnixMilli()
	put(s, rec)
	return Outcome{Stored: true, Replaced: victim}, nil
}

// Leave removes id and reports whether it was stored (and live).
// signedMilli is the timestamp of the verified signed request, or 0 for
// an unsigned one, which cannot remove a signed entry (forbidden). A
// signed leave that is not later than the last accepted request for the
// ID is refused (replayed); an accepted one leaves a tombstone.
func Leave(s *State, id string, signedMilli int64, now time.Time) (bool, error) {
	Expire(s, now)
	signed := signedMilli != 0
	if err := checkOwner(s, id, signed, signedMilli); err != nil {
		return false, err
	}
	_, ok := s.Peers[id]
	delete(s.Peers, id)
	// Only remember the timestamp when there was something to protect:
	// signed leaves for IDs that hold nothing must not fill the table.
	if _, had := s.Tombstones[id]; signed && (ok || had) {
		tombstone(s, id, signedMilli, now)
	}
	return ok, nil
}

// Reset removes every entry and keeps the configuration. It returns how
// many live entries it removed. Signed entries leave tombstones, so a
// reset cannot be undone by replaying their joins.
func Reset(s *State, now time.Time) int {
	Expire(s, now)
	n := len(s.Peers)
	for id, p := range s.Peers {
		retire(s, id, p, now)
	}
	return n
}

// ApplyConfig validates u and applies it to s. Lowering MaxPeers below
// the number of stored entries removes nothing: the surplus ages out
// through the leases.
func ApplyConfig(s *State, u ConfigUpdate) error {
	c := s.Config
	if u.MaxPeers != nil {
		c.MaxPeers = *u.MaxPeers
	}
	if u.MinRefillCandidates != nil {
		c.MinRefillCandidates = *u.MinRefillCandidates
	}
	if u.LeaseTTLSeconds != nil {
		c.LeaseTTLSeconds = *u.LeaseTTLSeconds
	}
	if err := ValidateConfig(c); err != nil {
		return err
	}
	s.Config = c
	return nil
}

// ValidateConfig checks the bounds of a configuration.
func ValidateConfig(c Config) error {
	switch {
	case c.MaxPeers < 1 || c.MaxPeers > MaxMaxPeers:
		return Errorf(ECodeInvalid, "max peers %d out of range [1, %d]", c.MaxPeers, MaxMaxPeers)
	case c.MinRefillCandidates < 0 || c.MinRefillCandidates > MaxMinRefillCandidates:
		return Errorf(ECodeInvalid, "min refill candidates %d out of range [0, %d]", c.MinRefillCandidates, MaxMinRefillCandidates)
	case c.LeaseTTLSeconds < int64(MinLeaseTTL/time.Second) || c.LeaseTTLSeconds > int64(MaxLeaseTTL/time.Second):
		return Errorf(ECodeInvalid, "lease TTL %ds out of range [%d, %d]", c.LeaseTTLSeconds,
			int64(MinLeaseTTL/time.Second), int64(MaxLeaseTTL/time.Second))
	}
	return nil
}

// List returns up to n live contacts (all when n <= 0 or n >= live), in a
// random order so that load spreads over the stored contacts.
func List(s *State, n int, now time.Time, rng *rand.Rand) []Record {
	out := make([]Record, 0, len(s.Peers))
	for _, p := range s.Peers {
		if p.Live(now) {
			out = append(out, p)
		}
	}
	shuffle := func(i, j int) { out[i], out[j] = out[j], out[i] }
	if rng != nil {
		rng.Shuffle(len(out), shuffle)
	} else {
		rand.Shuffle(len(out), shuffle)
	}
	if n > 0 && n < len(out) {
		out = out[:n]
	}
	return out
}

// LiveCount returns the number of live entries at now.
func LiveCount(s *State, now time.Time) int {
	n := 0
	for _, p := range s.Peers {
		if p.Live(now) {
			n++
		}
	}
	return n
}

// RecordFromJoin validates a v1 join or refill (op) request, verifies its
// auth when it carries one, and turns it into a record: signed when the
// auth holds, unsigned when there is none. Replays are the rules' check.
func RecordFromJoin(op string, r JoinRequest, now time.Time) (Record, error) {
	if err := validateID(r.ID); err != nil {
		return Record{}, err
	}
	if err := validateText("nick", r.Nick, MaxNickLen); err != nil {
		return Record{}, err
	}
	if err := validateToken("protocol", r.Protocol, MaxProtocolLen); err != nil {
		return Record{}, err
	}
	host, port, err := SplitAddr(r.Addr)
	if err != nil {
		return Record{}, err
	}
	rec := Record{ID: r.ID, Name: r.Nick, IP: host, Port: port, Protocol: r.Protocol,
		Status: "online", Timestamp: now.Unix()}
	if r.Auth != nil {
		if err := VerifyAuth(r.Auth, op, r.ID, r.Nick, r.Addr, r.Protocol, now); err != nil {
			return Record{}, err
		}
		rec.Key, rec.SignedMilli = encodeKey(r.Auth.Key), r.Auth.TS
	}
	return rec, nil
}

// LeaveFromRequest validates a v1 leave request and verifies its auth
// when it carries one. It returns the timestamp of the signed request, or
// 0 for an unsigned one (what Leave takes).
func LeaveFromRequest(r LeaveRequest, now time.Time) (int64, error) {
	if err := validateID(r.ID); err != nil {
		return 0, err
	}
	if r.Auth == nil {
		return 0, nil
	}
	if err := VerifyAuth(r.Auth, "leave", r.ID, "", "", "", now); err != nil {
		return 0, err
	}
	return r.Auth.TS, nil
}

// SplitAddr validates a host:port contact address. The host is an IP
// address or a DNS name; the port is 1-65535.
func SplitAddr(addr string) (host, port string, err error) {
	if addr == "" {
		return "", "", Errorf(ECodeInvalid, "addr is required (host:port)")
	}
	host, port, err = net.SplitHostPort(addr)
	if err != nil {
		return "", "", Errorf(ECodeInvalid, "addr %q is not host:port: %v", clip(addr), err)
	}
	if err := validateHost(host); err != nil {
		return "", "", err
	}
	if err := validatePort(port); err != nil {
		return "", "", err
	}
	return host, port, nil
}

func validateID(id string) error {
	if id == "" {
		return Errorf(ECodeInvalid, "id is required")
	}
	if len(id) > MaxIDLen {
		return Errorf(ECodeInvalid, "id is %d bytes, at most %d allowed", len(id), MaxIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:#@", c)) {
			return Errorf(ECodeInvalid, "id %q: only letters, digits and -_.:#@ are allowed", clip(id))
		}
	}
	return nil
}

// validateText accepts printable UTF-8 without control characters.
func validateText(field, v string, max int) error {
	if len(v) > max {
		return Errorf(ECodeInvalid, "%s is %d bytes, at most %d allowed", field, len(v), max)
	}
	if !utf8.ValidString(v) {
		return Errorf(ECodeInvalid, "%s is not valid UTF-8", field)
	}
	for _, c := range v {
		if unicode.IsControl(c) {
			return Errorf(ECodeInvalid, "%s contains a control character", field)
		}
	}
	return nil
}

// validateToken accepts a short word without spaces (protocol, status).
func validateToken(field, v string, max int) error {
	if err := validateText(field, v, max); err != nil {
		return err
	}
	if strings.ContainsFunc(v, unicode.IsSpace) {
		return Errorf(ECodeInvalid, "%s must not contain spaces", field)
	}
	return nil
}

func validateHost(host string) error {
	if host == "" {
		return Errorf(ECodeInvalid, "address host is empty")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if len(host) > MaxHostLen {
		return Errorf(ECodeInvalid, "host name is %d bytes, at most %d allowed", len(host), MaxHostLen)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return Errorf(ECodeInvalid, "host %q is neither an IP address nor a valid DNS name", clip(host))
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return Errorf(ECodeInvalid, "host %q is neither an IP address nor a valid DNS name", clip(host))
			}
		}
	}
	return nil
}

func validatePort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return Errorf(ECodeInvalid, "port %q is not a number in [1, 65535]", clip(port))
	}
	return nil
}

func joinHostPort(host, port string) string { return net.JoinHostPort(host, port) }

// clip shortens hostile input before it is echoed in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
