package api

// Client is how local tools (hearsay send, hearsay tail, tests) talk to a
// running peer: it finds the peer's address and token in its data
// directory (Dial), and maps non-2xx answers back to *Error.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/hearsay-chat/hearsay"
)

// ErrNoPeer is returned (wrapped) by Dial when no peer of that data
// directory runs: no address file, or its address does not answer.
var ErrNoPeer = errors.New("no running hearsay peer")

// Client calls one peer's API. It is safe for concurrent use.
type Client struct {
	// BaseURL is http://host:port.
	BaseURL string
	// Token is the bearer token.
	Token string
	// HTTP is the client used (http.DefaultClient when nil). Event
	// streams need one without a Timeout.
	HTTP *http.Client
}

// maxFileBytes bounds the address and token files read by Dial.
const maxFileBytes = 1024

// Dial reads the address and token files of the peer whose data directory
// is dataDir and checks that it answers. The error wraps ErrNoPeer when
// none is running.
func Dial(ctx context.Context, dataDir string) (*Client, error) {
	addr, err := readSmall(filepath.Join(dataDir, AddrFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w with data directory %s (it has no %s: start one, or the running one has --api off)", ErrNoPeer, dataDir, AddrFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read api address: %w", err)
	}
	token, err := readSmall(filepath.Join(dataDir, TokenFile))
	if err != nil {
		return nil, fmt.Errorf("read api token: %w", err)
	}
	c := &Client{BaseURL: "http://" + addr, Token: token}
	if _, err := c.Self(ctx); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, err
		}
		return nil, fmt.Errorf("%w with data directory %s (its API at %s does not answer: %v; a peer that crashed leaves %s behind)", ErrNoPeer, dataDir, addr, err, AddrFile)
	}
	return c, nil
}

func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("api request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("api %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		return decodeError(res)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(out); err != nil {
		return fmt.Errorf("api %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func decodeError(res *http.Response) error {
	var e Error
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.Code == "" {
		return &Error{Code: codeForStatus(res.StatusCode), Message: res.Status}
	}
	return &e
}

// Self returns the peer's ID, nick and contact address.
func (c *Client) Self(ctx context.Context) (Self, error) {
	var s Self
	return s, c.do(ctx, http.MethodGet, "/v1/self", nil, &s)
}

// Send sends a message to a room or a person.
func (c *Client) Send(ctx context.Context, req SendRequest) (SendResponse, error) {
	var r SendResponse
	return r, c.do(ctx, http.MethodPost, "/v1/messages", req, &r)
}

// Do calls any endpoint: a JSON body when body is not nil, the JSON answer
// into out when out is not nil.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.do(ctx, method, path, body, out)
}

// Streamed is one event read from /v1/events.
type Streamed struct {
	// ID is the SSE event ID (empty for a gap notice).
	ID string
	// JSON is the event's data as the peer sent it (--json's line).
	JSON []byte
	// Event is JSON decoded.
	Event hearsay.Event
}

// StreamEvents reads /v1/events (only room's events when room is not
// empty) after the event lastID ("" from now) and calls fn for each until
// ctx ends, the stream ends (io.EOF) or fn returns an error. A gap notice
// reaches fn as an event of type EventGap.
func (c *Client) StreamEvents(ctx context.Context, room, lastID string, fn func(Streamed) error) error {
	path := "/v1/events"
	if room != "" {
		path += "?room=" + url.QueryEscape(room)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return fmt.Errorf("api events: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("api events: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return decodeError(res)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var ev hearsay.Event
				if err := json.Unmarshal([]byte(data), &ev); err != nil {
					return fmt.Errorf("api events: %w", err)
				}
				if err := fn(Streamed{ID: id, JSON: []byte(data), Event: ev}); err != nil {
					return err
				}
			}
			id, data = "", ""
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data += line[len("data: "):]
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("api events: %w", err)
	}
	return io.EOF
}
