package bootstrapapi

// Per-client rate limiting. Every request, valid or not, first takes a
// token from its client's bucket (golang.org/x/time/rate); an empty
// bucket is a 429 rate_limited with Retry-After saying when the next
// token arrives. A client is a remote IPv4 address or an IPv6 /64 (one
// host usually holds a whole /64, so per-address buckets would be free to
// multiply). The table of buckets is bounded: when it is full, buckets
// that have refilled (equivalent to fresh ones) are dropped, and clients
// that still do not fit share one overflow bucket, so a flood of source
// addresses costs bounded memory and cannot starve clients already known.

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit configures the per-client limit of a handler.
type RateLimit struct {
	// Disabled turns limiting off (tests that drive many requests from
	// one address, a service behind a proxy that limits already).
	Disabled bool
	// PerSecond is the sustained rate of one client; 0 means
	// DefaultRatePerSecond.
	PerSecond float64
	// Burst is how many requests a client may make at once; 0 means
	// DefaultRateBurst.
	Burst int
	// MaxClients bounds the table of buckets; 0 means
	// DefaultRateMaxClients.
	MaxClients int
}

// Defaults of RateLimit. A peer makes a list and a join when it starts,
// then a renewal every third of the lease TTL and a list every rejoin
// interval (about 0.15 requests per second); the defaults leave room for
// dozens of peers behind one address (one machine, one NAT).
const (
	DefaultRatePerSecond  = 10
	DefaultRateBurst      = 50
	DefaultRateMaxClients = 10000
)

// ClientIPFromRemoteAddr is the default HandlerConfig.ClientIP: the host
// of the connection's remote address.
func ClientIPFromRemoteAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ClientIPFromForwardedFor returns a HandlerConfig.ClientIP for a
// service behind hops proxies that each append the address they received
// the request from to X-Forwarded-For (Google's front end does): the
// hops-th address from the right. Entries further left were written by
// the client and are never trusted. When the header has fewer entries, or
// that entry is not an IP address, the connection's address is used.
func ClientIPFromForwardedFor(hops int) func(*http.Request) string {
	hops = max(hops, 1)
	return func(r *http.Request) string {
		var entries []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			entries = append(entries, strings.Split(v, ",")...)
		}
		if len(entries) >= hops {
			if a, err := netip.ParseAddr(strings.TrimSpace(entries[len(entries)-hops])); err == nil {
				return a.String()
			}
		}
		return ClientIPFromRemoteAddr(r)
	}
}

// limiter is the table of per-client buckets. It is safe for concurrent
// use.
type limiter struct {
	limit rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	clients   map[string]*rate.Limiter // guarded by mu
	overflow  *rate.Limiter            // guarded by mu; shared by clients that do not fit
	lastSweep time.Time                // guarded by mu
}

func newLimiter(c RateLimit) *limiter {
	if c.Disabled {
		return nil
	}
	if c.PerSecond <= 0 {
		c.PerSecond = DefaultRatePerSecond
	}
	if c.Burst <= 0 {
		c.Burst = DefaultRateBurst
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultRateMaxClients
	}
	return &limiter{
		limit:    rate.Limit(c.PerSecond),
		burst:    c.Burst,
		max:      c.MaxClients,
		clients:  map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(c.PerSecond), c.Burst),
	}
}

// clientKey maps an address to its bucket: an IPv4 address, or the /64 of
// an IPv6 one. Text that is not an address is its own key.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, err := a.WithZone("").Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return a.String()
}

// allow takes one token from ip's bucket at now. It returns 0 when the
// request may proceed, else how long until a token is available.
func (l *limiter) allow(ip string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := clientKey(ip)
	lim, ok := l.clients[key]
	if !ok {
		if len(l.clients) >= l.max {
			l.sweepLocked(now)
		}
		if len(l.clients) < l.max {
			lim = rate.NewLimiter(l.limit, l.burst)
			l.clients[key] = lim
		} else {
			lim = l.overflow
		}
	}
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d
	}
	return 0
}

// sweepLocked drops buckets that are full again: a full bucket behaves
// like a new one, so nothing is forgotten. It runs at most once a second,
// so a table full of busy clients does not cost a scan per request. The
// caller holds mu.
func (l *limiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < time.Second && !l.lastSweep.IsZero() {
		return
	}
	l.lastSweep = now
	for k, lim := range l.clients {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.clients, k)
		}
	}
}

// retryAfterSeconds renders a delay for the Retry-After header: whole
// seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := math.Ceil(d.Seconds())
	if s < 1 || math.IsNaN(s) {
		s = 1
	}
	if s > 3600 {
		s = 3600
	}
	return strconv.Itoa(int(s))
}
