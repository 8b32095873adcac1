package api

// The server: an HTTP listener on 127.0.0.1 serving the JSON API under
// /v1/, the event stream, /metrics and the web UI. It writes two files to
// the peer's data directory so that local tools of the same user find it:
// api.addr (the address, host:port) and api.token (the bearer token, a
// fresh random one per start, mode 0600). Both are removed on Close.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File names in the data directory.
const (
	AddrFile  = "api.addr"
	TokenFile = "api.token"
)

// DefaultAddr is where the API listens by default: loopback, a free port.
const DefaultAddr = "127.0.0.1:0"

// Limits of requests.
const (
	// DefaultMaxBodyBytes bounds request bodies. A message is at most
	// MaxMessageBytes of text; JSON escaping may grow it.
	DefaultMaxBodyBytes = 256 << 10
	// DefaultMaxMessageBytes is the chat protocol's limit on a message
	// body (chat.MaxBodyBytes).
	DefaultMaxMessageBytes = 64 << 10
	// MaxHistory bounds the limit of a history request.
	MaxHistory = 1000
	// maxStreams bounds concurrent event streams: each holds a goroutine
	// and a connection.
	maxStreams = 64
)

// Config configures New.
type Config struct {
	// Addr is the address to listen on (DefaultAddr when empty).
	Addr string
	// DataDir is the peer's data directory, where the address and token
	// files are written. Empty writes no files (tests that pass Token).
	DataDir string
	// Token is the bearer token; empty generates a random one.
	Token string
	// Ring is the peer's event ring that /v1/events streams; nil makes a
	// ring that stays empty.
	Ring *Ring
	// Metrics, when not nil, is served on /metrics.
	Metrics *Metrics
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes when 0).
	MaxBodyBytes int64
	// MaxMessageBytes bounds a message's text (DefaultMaxMessageBytes when 0).
	MaxMessageBytes int
	// KeepAlive is the interval of comment lines on idle event streams
	// (15 s when 0), so proxies and clients see a live connection.
	KeepAlive time.Duration
	// ErrorCode classifies an error the peer returned: one of the ECode*
	// constants, or "" for the endpoint's default (invalid input where the
	// request named something, unavailable otherwise). The API does not
	// import the chat package; cmd/hearsay maps its errors here (an
	// unknown member → not_found, another ordering mode → conflict, not
	// started → unavailable…). Nil uses the defaults.
	ErrorCode func(error) string

	// Logf reports server errors (never request URLs or headers: the
	// token must not reach a log). Nil discards.
	Logf func(format string, args ...any)
}

// Server is a running API server. Close stops it.
type Server struct {
	cfg   Config
	peer  Peer
	ln    net.Listener
	srv   *http.Server
	token string

	done      chan struct{} // closed by Close: ends event streams
	closeOnce sync.Once
	serveErr  chan error
	streams   chan struct{} // semaphore of open event streams
}

// Start listens on cfg.Addr, writes the address and token files and
// serves until Close. The server runs on its own goroutine, which Close
// stops and waits for.
func Start(peer Peer, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Ring == nil {
		cfg.Ring = NewRing(1)
	}
	s := &Server{cfg: cfg, peer: peer, token: cfg.Token, done: make(chan struct{}),
		serveErr: make(chan error, 1), streams: make(chan struct{}, maxStreams)}
	if s.token == "" {
		var b [32]byte
		rand.Read(b[:]) // never fails (crypto/rand)
		s.token = hex.EncodeToString(b[:])
	}
	if cfg.Metrics != nil {
		cfg.Metrics.coll.streams = func() int { return len(s.streams) }
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api listen on %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	if cfg.DataDir != "" {
		if err := s.writeFiles(); err != nil {
			ln.Close()
			return nil, err
		}
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(logfWriter(cfg.Logf), "api: ", 0),
	}
	go func() { s.serveErr <- s.srv.Serve(ln) }()
	return s, nil
}

// writeFiles writes the token, then the address: a tool that finds the
// address finds the token beside it. Each file is written to a temporary
// name and renamed, so a reader never sees half of one.
func (s *Server) writeFiles() error {
	if err := writeFile0600(filepath.Join(s.cfg.DataDir, TokenFile), s.token+"\n"); err != nil {
		return fmt.Errorf("api token file: %w", err)
	}
	if err := writeFile0600(filepath.Join(s.cfg.DataDir, AddrFile), s.Addr()+"\n"); err != nil {
		return fmt.Errorf("api address file: %w", err)
	}
	return nil
}

func writeFile0600(path, content string) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, content); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// Addr returns the address the server listens on (host:port).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL returns the base URL, http://host:port.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Token returns the bearer token.
func (s *Server) Token() string { return s.token }

// WebURL returns the web UI's URL with the token in the fragment: a
// browser never sends the fragment to the server, so the token is in no
// request line and no log.
func (s *Server) WebURL() string { return s.URL() + "/#token=" + s.token }

// Close removes the address and token files, ends the event streams and
// stops the server, waiting up to ctx for requests in flight. It is
// idempotent.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		if s.cfg.DataDir != "" {
			os.Remove(filepath.Join(s.cfg.DataDir, AddrFile))
			os.Remove(filepath.Join(s.cfg.DataDir, TokenFile))
		}
		close(s.done)
		err = s.srv.Shutdown(ctx)
		if err != nil {
			s.srv.Close()
		}
		if serr := <-s.serveErr; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	})
	if err != nil {
		return fmt.Errorf("api close: %w", err)
	}
	return nil
}

// logfWriter adapts Logf to the http.Server's error log.
type logfWriter func(string, ...any)

func (f logfWriter) Write(b []byte) (int, error) {
	f("%s", string(b))
	return len(b), nil
}
