package bootstrapapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// deadURL returns a URL on which nothing listens: a port bound and closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestClientFailover(t *testing.T) {
	good := httptest.NewServer(NewHandler(NewMemStore(), HandlerConfig{}))
	defer good.Close()
	var hits atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	defer broken.Close()
	dead := deadURL(t)

	c, err := NewClient([]string{dead, broken.URL, good.URL}, WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Join(ctx, JoinRequest{ID: "a", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatalf("join with one good URL of three: %v", err)
	}
	if hits.Load() != 1 {
		t.Errorf("broken server hit %d times, want 1", hits.Load())
	}
	// The client now prefers the URL that answered.
	if _, err := c.List(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Errorf("client did not stick to the working URL: broken hit %d times", hits.Load())
	}
}

func TestClientErrorsNameEachURL(t *testing.T) {
	dead1, dead2 := deadURL(t), deadURL(t)
	c, err := NewClient([]string{dead1, dead2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Ping(context.Background())
	if err == nil {
		t.Fatal("ping of two dead URLs succeeded")
	}
	for _, u := range []string{dead1, dead2} {
		if !strings.Contains(err.Error(), "bootstrap "+u) {
			t.Errorf("error %q does not name %s", err, u)
		}
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say why", err)
	}
}

func TestClientAPIErrorStopsFailover(t *testing.T) {
	var second atomic.Int64
	s1 := httptest.NewServer(NewHandler(NewMemStore(), HandlerConfig{AdminToken: "t"}))
	defer s1.Close()
	s2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { second.Add(1) }))
	defer s2.Close()
	c, _ := NewClient([]string{s1.URL, s2.URL})
	_, err := c.Reset(context.Background())
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Code != ECodeUnauthorized {
		t.Fatalf("reset without token = %v, want unauthorized", err)
	}
	if !strings.Contains(err.Error(), s1.URL) {
		t.Errorf("error %q does not name the URL", err)
	}
	if second.Load() != 0 {
		t.Errorf("a 4xx verdict failed over to the next URL")
	}
	_, err = c.Join(context.Background(), JoinRequest{ID: "bad id", Addr: "x:1"})
	if ErrorCode(err) != ECodeInvalid {
		t.Errorf("invalid join = %v, want code invalid", err)
	}
}

func TestClientContext(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, _ := NewClient([]string{srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Ping(ctx); errc <- err }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("ping after cancel = %v, want context.Canceled", err)
	}
}

// TestClientNotABootstrapService: another web server on the address (a
// page, a default 404) is reported as ErrNotBootstrap, in one line, and
// without its body.
func TestClientNotABootstrapService(t *testing.T) {
	page := "<!DOCTYPE html>\n<html><head><title>Welcome</title></head>\n<body>It works!</body></html>\n"
	for _, tc := range []struct {
		name   string
		status int
		ctype  string
		body   string
	}{
		{"page", http.StatusOK, "text/html; charset=utf-8", page},
		{"page without a content type", http.StatusOK, "", page},
		{"html 404", http.StatusNotFound, "text/html", page},
		{"plain 404", http.StatusNotFound, "text/plain; charset=utf-8", "404 page not found\n"},
		{"html 503", http.StatusServiceUnavailable, "text/html", page},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = []string{tc.ctype}
				if tc.ctype == "" {
					w.Header()["Content-Type"] = nil // no sniffing
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, _ := NewClient([]string{srv.URL})
			_, err := c.List(context.Background(), 0)
			if !errors.Is(err, ErrNotBootstrap) {
				t.Fatalf("list = %v, want ErrNotBootstrap", err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "<>\n") || strings.Contains(msg, "works") {
				t.Errorf("error shows the server's body: %q", msg)
			}
		})
	}
	// A hearsay service's own errors are not taken for another server's.
	good := httptest.NewServer(NewHandler(NewMemStore(), HandlerConfig{}))
	defer good.Close()
	c, _ := NewClient([]string{good.URL})
	if _, err := c.Leave(context.Background(), "bad id"); err == nil || errors.Is(err, ErrNotBootstrap) {
		t.Errorf("leave with a bad id = %v, want the service's error", err)
	}
}

func TestParseURLs(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8080"}, false},
		{" http://a:1/ , https://b/fn ", []string{"http://a:1", "https://b/fn"}, false},
		{"", nil, true},
		{",", nil, true},
		{"127.0.0.1:8080", nil, true},
		{"ftp://x", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseURLs(tt.in)
		if (err != nil) != tt.wantErr || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("ParseURLs(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
