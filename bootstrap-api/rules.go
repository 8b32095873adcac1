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
// returns how many it removed.
func Expire(s *State, now time.Time) int {
	n := 0
	for id, p := range s.Peers {
		if !p.Live(now) {
			delete(s.Peers, id)
			n++
		}
	}
	return n
}

// Join stores rec if its ID is stored already (renewing the lease and
// refreshing its fields, keeping the original timestamp when keepTS) or if
// fewer than MaxPeers entries are live. It reports whether rec is stored
// and whether it was a renewal.
func Join(s *State, rec Record, now time.Time, keepTS bool) (stored, renewed bool) {
	Expire(s, now)
	rec.ExpiresUnixMilli = now.Add(s.Config.LeaseTTL()).UnixMilli()
	if old, ok := s.Peers[rec.ID]; ok {
		if keepTS {
			rec.Timestamp = old.Timestamp
		}
		s.Peers[rec.ID] = rec
		return true, true
	}
	if len(s.Peers) >= s.Config.MaxPeers {
		return false, false
	}
	s.Peers[rec.ID] = rec
	return true, false
}

// Refill is cli-chat's refill: a stored ID is renewed; an unknown ID is
// added while fewer than MaxPeers are live; otherwise the live entry with
// the newest timestamp is replaced by the candidate when that entry is
// newer than the candidate, so the service keeps the oldest, most stable
// contacts. Ties keep the stored entry. It returns the ID it replaced.
func Refill(s *State, rec Record, now time.Time, keepTS bool) (stored, renewed bool, replaced string) {
	stored, renewed = Join(s, rec, now, keepTS)
	if stored {
		return stored, renewed, ""
	}
	newest := ""
	for id, p := range s.Peers {
		if newest == "" || p.Timestamp > s.Peers[newest].Timestamp ||
			(p.Timestamp == s.Peers[newest].Timestamp && id > newest) {
			newest = id
		}
	}
	if newest == "" || s.Peers[newest].Timestamp <= rec.Timestamp {
		return false, false, ""
	}
	delete(s.Peers, newest)
	rec.ExpiresUnixMilli = now.Add(s.Config.LeaseTTL()).UnixMilli()
	s.Peers[rec.ID] = rec
	return true, false, newest
}

// Leave removes id and reports whether it was stored (and live).
func Leave(s *State, id string, now time.Time) bool {
	Expire(s, now)
	_, ok := s.Peers[id]
	delete(s.Peers, id)
	return ok
}

// Reset removes every entry and keeps the configuration. It returns how
// many live entries it removed.
func Reset(s *State, now time.Time) int {
	Expire(s, now)
	n := len(s.Peers)
	s.Peers = map[string]Record{}
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

// RecordFromJoin validates a v1 join request and turns it into a record.
func RecordFromJoin(r JoinRequest, now time.Time) (Record, error) {
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
	return Record{ID: r.ID, Name: r.Nick, IP: host, Port: port, Protocol: r.Protocol,
		Status: "online", Timestamp: now.Unix()}, nil
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
