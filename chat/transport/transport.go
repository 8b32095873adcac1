// Package transport is the seam between a hearsay peer and the network its
// chat frames travel on. A Transport opens and accepts authenticated
// streams of chatpb.Frame between two peers: ordered, bidirectional, and
// each end knows the verified identity (peer ID and Ed25519 key) of the
// other before the first frame reaches it.
//
// Three implementations sit side by side, as in memberlist's transport.go,
// net_transport.go and mock_transport.go:
//
//   - TLS: the network transport, one TLS 1.3 connection per stream,
//     both ends authenticated by their identity keys, frames written
//     directly on it (tls.go).
//   - MemNetwork: an in-memory network for tests and the simulator
//     (mem.go); frames are encoded and decoded as on the wire.
//   - WithFaults: a decorator over any transport that drops, delays,
//     reorders and partitions frames (faults.go).
//
// The transporttest package holds the conformance suite every
// implementation passes.
package transport

import (
	"context"
	"crypto/ed25519"
	"errors"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// Peer is a remote peer's identity: its peer ID and the public key the ID
// is derived from.
type Peer struct {
	ID  string
	Key ed25519.PublicKey
}

// Local is this peer's identity: its peer ID and private key, which signs
// the handshake.
type Local struct {
	ID  string
	Key ed25519.PrivateKey
}

// Public returns the local identity as a Peer.
func (l Local) Public() Peer {
	return Peer{ID: l.ID, Key: l.Key.Public().(ed25519.PublicKey)}
}

// Conn is one authenticated stream. One goroutine may call Send while
// another calls Recv; Close may be called at any time, from any goroutine,
// more than once.
type Conn interface {
	// Peer returns the authenticated remote peer. Never blocks.
	Peer() Peer
	// Send writes one frame and returns the length of its protobuf
	// encoding (without the transport's framing), so that a caller counts
	// what it sent without encoding the frame a second time. It blocks
	// while the stream's flow control holds it back, and fails once the
	// stream is broken or closed. The caller must not change f afterwards
	// (a decorator may send it later).
	Send(f *chatpb.Frame) (int, error)
	// Recv blocks until the next frame arrives or the stream ends (then
	// it returns an error; io.EOF when the other end closed cleanly).
	Recv() (*chatpb.Frame, error)
	// Close ends the stream. A Send or Recv blocked on a dialed stream
	// returns at once; see the implementation for accepted streams.
	Close() error
}

// Handler is what a Transport calls for inbound streams.
type Handler interface {
	// Admit decides, during the handshake, whether the authenticated
	// dialer may open a stream; a non-nil error refuses it (the dialer's
	// Dial fails). It may block until ctx ends (the handshake deadline).
	Admit(ctx context.Context, dialer Peer) error
	// ServeConn serves one admitted stream on a goroutine the transport
	// owns; the stream ends when it returns.
	ServeConn(c Conn)
}

// Transport opens and accepts authenticated streams.
type Transport interface {
	// Dial opens a stream to the peer listening at addr, which must prove
	// it is want (its ID and key). It blocks for the handshake, bounded
	// by ctx and the transport's handshake timeout.
	Dial(ctx context.Context, addr string, want Peer) (Conn, error)
	// Serve accepts streams and hands them to h until Close; it blocks
	// and returns nil after Close. Call it once.
	Serve(h Handler) error
	// Addr returns the address other peers dial (host:port for TLS).
	Addr() string
	// Close stops accepting and ends every accepted stream, waiting for
	// their ServeConn calls to return. Dialed streams belong to their
	// callers, who close them. Idempotent.
	Close() error
}

// ConnCounts are a transport's open connections: those it dialed (open
// until their caller closes them) and those it accepted and admitted.
type ConnCounts struct {
	Dialed, Accepted int
}

// ConnCounter is implemented by transports that count their open
// connections (TLS, and WithFaults over it). OpenConns never blocks for
// long and is safe for concurrent use.
type ConnCounter interface {
	OpenConns() ConnCounts
}

// ErrClosed is returned by operations on a closed transport or stream.
var ErrClosed = errors.New("transport closed")
