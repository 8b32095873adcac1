package bootstrapapi

// The client speaks API v1 to one or more service URLs. It tries the URL
// that answered last first, and fails over to the next on a network error
// or a 5xx answer; a 4xx answer is the service's verdict and is returned at
// once. When every URL fails the error names each URL and why it failed.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxResponseBytes bounds what the client reads of an answer.
const maxResponseBytes = 4 << 20

// Client is a Go client of API v1. It is safe for concurrent use.
type Client struct {
	urls   []string
	http   *http.Client
	token  string
	signer Signer
	signID string           // PeerIDFromKey of the signer's key
	now    func() time.Time // the clock that stamps signed requests

	mu        sync.Mutex
	preferred int   // index of the URL that answered last
	lastTS    int64 // last timestamp signed, so each one is later
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the *http.Client used for every call (timeouts,
// transports, test servers). The default is http.DefaultClient; callers
// should pass one with a timeout or use contexts with deadlines.
func WithHTTPClient(hc *http.Client) ClientOption { return func(c *Client) { c.http = hc } }

// WithAdminToken sets the bearer token sent with reset and config changes.
func WithAdminToken(token string) ClientOption { return func(c *Client) { c.token = token } }

// WithSigner makes Join, Refill and Leave sign their requests with s, so
// that the service lets only this key change the entry of its peer ID.
// Such a client refuses to send a request for another ID.
func WithSigner(s Signer) ClientOption { return func(c *Client) { c.signer = s } }

// WithClock sets the clock that stamps signed requests; the default is
// time.Now. Tests use it to match a service running on a fake clock.
func WithClock(now func() time.Time) ClientOption { return func(c *Client) { c.now = now } }

// ParseURLs splits a comma-separated list (the BOOTSTRAP_DATA_SERVER
// format) into validated base URLs.
func ParseURLs(list string) ([]string, error) {
	var out []string
	for _, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bootstrap URL %q: want http(s)://host[:port][/path]", raw)
		}
		out = append(out, strings.TrimRight(u.String(), "/"))
	}
	if len(out) == 0 {
		return nil, errors.New("no bootstrap URL given")
	}
	return out, nil
}

// NewClient returns a client for the given base URLs (each one a service
// root, such as http://127.0.0.1:8080 or a Cloud Function URL).
func NewClient(urls []string, opts ...ClientOption) (*Client, error) {
	if len(urls) == 0 {
		return nil, errors.New("no bootstrap URL given")
	}
	c := &Client{urls: append([]string(nil), urls...), http: http.DefaultClient, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	if c.signer != nil {
		c.signID = PeerIDFromKey(c.signer.PublicKey())
	}
	return c, nil
}

// nextTS returns a timestamp for a signed request: the clock in Unix
// milliseconds, but always later than the previous one, because the
// service refuses a timestamp that is not later than the last it accepted
// for the ID.
func (c *Client) nextTS() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastTS = max(c.now().UnixMilli(), c.lastTS+1)
	return c.lastTS
}

// signJoin signs a join or refill when the client has a signer.
func (c *Client) signJoin(op string, req *JoinRequest) error {
	if c.signer == nil {
		return nil
	}
	if req.ID != c.signID {
		return fmt.Errorf("sign %s for id %q: this client signs for peer %s only", op, req.ID, c.signID)
	}
	SignJoin(c.signer, op, req, c.nextTS())
	return nil
}

// URLs returns the client's base URLs.
func (c *Client) URLs() []string { return append([]string(nil), c.urls...) }

// Ping checks that a service answers.
func (c *Client) Ping(ctx context.Context) (PingResponse, error) {
	var r PingResponse
	err := c.do(ctx, http.MethodGet, "ping", nil, false, &r)
	return r, err
}

// Join registers or renews a contact.
// With a signer (WithSigner) the request is signed.
func (c *Client) Join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	var r JoinResponse
	if err := c.signJoin("join", &req); err != nil {
		return r, err
	}
	err := c.do(ctx, http.MethodPost, "join", req, false, &r)
	return r, err
}

// Refill registers a contact with cli-chat's refill rule.
// With a signer the request is signed.
func (c *Client) Refill(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	var r JoinResponse
	if err := c.signJoin("refill", &req); err != nil {
		return r, err
	}
	err := c.do(ctx, http.MethodPost, "refill", req, false, &r)
	return r, err
}

// Leave removes a contact. With a signer the request is signed.
func (c *Client) Leave(ctx context.Context, id string) (LeaveResponse, error) {
	var r LeaveResponse
	req := LeaveRequest{ID: id}
	if c.signer != nil {
		if id != c.signID {
			return r, fmt.Errorf("sign leave for id %q: this client signs for peer %s only", id, c.signID)
		}
		SignLeave(c.signer, &req, c.nextTS())
	}
	err := c.do(ctx, http.MethodPost, "leave", req, false, &r)
	return r, err
}

// List returns up to n live contacts (all when n is 0).
func (c *Client) List(ctx context.Context, n int) (ListResponse, error) {
	var r ListResponse
	op := "list"
	if n > 0 {
		op += "?n=" + strconv.Itoa(n)
	}
	err := c.do(ctx, http.MethodGet, op, nil, false, &r)
	return r, err
}

// Reset removes every contact (admin).
func (c *Client) Reset(ctx context.Context) (ResetResponse, error) {
	var r ResetResponse
	err := c.do(ctx, http.MethodPost, "reset", nil, true, &r)
	return r, err
}

// Config returns the service configuration.
func (c *Client) Config(ctx context.Context) (Config, error) {
	var r Config
	err := c.do(ctx, http.MethodGet, "config", nil, false, &r)
	return r, err
}

// SetConfig changes the service configuration (admin).
func (c *Client) SetConfig(ctx context.Context, u ConfigUpdate) (Config, error) {
	var r Config
	err := c.do(ctx, http.MethodPost, "config", u, true, &r)
	return r, err
}

// URLError is one URL's failure.
type URLError struct {
	URL string
	Err error
}

func (e *URLError) Error() string { return "bootstrap " + e.URL + ": " + e.Err.Error() }
func (e *URLError) Unwrap() error { return e.Err }

// ErrNotBootstrap: the server answered, but not as a hearsay bootstrap
// service does (which always answers JSON): something else holds the
// address.
var ErrNotBootstrap = errors.New("something other than a hearsay bootstrap service answers")

// foreignAnswer reports whether an answer that is not the API's JSON came
// from another kind of server: a media type other than JSON, or a body
// that does not start like JSON.
func foreignAnswer(ctype string, body []byte) bool {
	if ctype != "" {
		if mt := mediaType(ctype); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return true
		}
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] != '{' && b[0] != '['
}

// mediaType returns the media type of a Content-Type header, lower case,
// without parameters; "no content type" when it is absent.
func mediaType(ctype string) string {
	if ctype == "" {
		return "no content type"
	}
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return "an invalid content type"
	}
	return clip(mt)
}

// do sends one request with failover and decodes the answer into out.
func (c *Client) do(ctx context.Context, method, op string, in any, admin bool, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", op, err)
		}
		body = b
	}
	c.mu.Lock()
	start := c.preferred
	c.mu.Unlock()
	var errs []error
	for i := range c.urls {
		idx := (start + i) % len(c.urls)
		err := c.once(ctx, c.urls[idx], method, op, body, admin, out)
		if err == nil {
			c.mu.Lock()
			c.preferred = idx
			c.mu.Unlock()
			return nil
		}
		uerr := &URLError{URL: c.urls[idx], Err: err}
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Code != ECodeUnavailable && apiErr.Code != ECodeInternal &&
			apiErr.Code != ECodeRateLimited {
			// The service's verdict; another URL would say the same. A
			// rate limit is one service's state, so the next URL may
			// still serve the request.
			return uerr
		}
		errs = append(errs, uerr)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (c *Client) once(ctx context.Context, base, method, op string, body []byte, admin bool, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+"/v1/"+op, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if admin && c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read %s answer: %w", op, err)
	}
	ctype := resp.Header.Get("Content-Type")
	if resp.StatusCode/100 != 2 {
		var e Error
		if json.Unmarshal(data, &e) == nil && e.Code != "" {
			return &e
		}
		if foreignAnswer(ctype, data) {
			// Another kind of server (a web page, a proxy's error page):
			// its body is not worth a user's screen, nor safe on it.
			e := Errorf(codeForStatus(resp.StatusCode), "HTTP %d with %s: %v", resp.StatusCode, mediaType(ctype), ErrNotBootstrap)
			e.foreign = true
			return e
		}
		return Errorf(codeForStatus(resp.StatusCode), "HTTP %d: %s", resp.StatusCode, clip(strings.TrimSpace(string(data))))
	}
	if err := json.Unmarshal(data, out); err != nil {
		if foreignAnswer(ctype, data) {
			return fmt.Errorf("%s answer: HTTP %d with %s: %w", op, resp.StatusCode, mediaType(ctype), ErrNotBootstrap)
		}
		return fmt.Errorf("decode %s answer (is this a hearsay bootstrap service?): %w", op, err)
	}
	return nil
}
