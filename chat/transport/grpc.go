package transport

// The gRPC transport: each peer serves the Chat service (chat.proto) on its
// chat address; a Dial opens one bidirectional stream over its own client
// connection. Both ends authenticate on the stream with a nonce handshake
// before any other frame:
//
//	dialer   → Hello{protocol, id, key, nonce_d, target}
//	listener ← Hello{protocol, id, key, nonce_l, target, sig_l}   (after Handler.Admit)
//	dialer   → Auth{sig_d}
//
// sig_l and sig_d sign both nonces, both IDs and the role, so each end
// proves it holds the private key behind the peer ID it claims, and a
// signature cannot be replayed into another stream. The streams are not
// encrypted: that is the next step of this transport (TLS, mutual
// authentication by the same keys).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// GRPCConfig configures a GRPC transport.
type GRPCConfig struct {
	// Local is this peer's identity.
	Local Local
	// Protocol is the chat protocol version this peer speaks; a stream
	// between peers of different versions is refused with an error that
	// names both.
	Protocol uint32
	// PeerID derives a peer ID from a public key; a Hello whose ID is not
	// PeerID(its key) is refused.
	PeerID func(ed25519.PublicKey) string
	// MaxFrameBytes bounds one encoded frame in both directions.
	MaxFrameBytes int
	// HandshakeTimeout bounds the handshake on both sides (Admit
	// included).
	HandshakeTimeout time.Duration
	// Logger gets refused handshakes; nil discards them.
	Logger *log.Logger
	// OnRefused, when not nil, is called for every refused inbound
	// handshake (Handler.Admit's refusals included), to count them.
	OnRefused func(error)
}

// GRPC is the network transport. Create it with ListenGRPC.
type GRPC struct {
	cfg GRPCConfig
	lis net.Listener
	srv *grpc.Server

	mu      sync.Mutex
	handler Handler
	closed  bool
}

var _ Transport = (*GRPC)(nil)

// grpcWindow is the flow-control window per stream and per connection.
// Static windows turn off gRPC's BDP estimation, which answers nearly
// every data frame of a quiet stream with a ping (one more write, read and
// ack per chat frame: a quarter of the idle CPU of a 50-member group).
// 1 MiB is credit, not memory, and more than a chat stream needs.
const grpcWindow = 1 << 20

// grpcMaxStreams bounds the concurrent streams of one inbound connection.
const grpcMaxStreams = 256

// ListenGRPC listens on addr ("host:port", port 0 for a free one). The
// transport accepts nothing until Serve.
func ListenGRPC(addr string, cfg GRPCConfig) (*GRPC, error) {
	if cfg.PeerID == nil || len(cfg.Local.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("grpc transport: local identity and PeerID are required")
	}
	if cfg.MaxFrameBytes <= 0 || cfg.HandshakeTimeout <= 0 {
		return nil, errors.New("grpc transport: frame limit and handshake timeout must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(discard{}, "", 0)
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("chat listener: %w", err)
	}
	g := &GRPC{cfg: cfg, lis: lis}
	g.srv = grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxFrameBytes),
		grpc.MaxSendMsgSize(cfg.MaxFrameBytes),
		grpc.InitialWindowSize(grpcWindow),
		grpc.InitialConnWindowSize(grpcWindow),
		grpc.MaxConcurrentStreams(grpcMaxStreams),
		grpc.ConnectionTimeout(cfg.HandshakeTimeout),
		grpc.WaitForHandlers(true), // Stop waits for stream handlers, so Close leaves none behind
	)
	chatpb.RegisterChatServer(g.srv, grpcServer{g: g})
	return g, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Addr returns the bound address (host:port).
func (g *GRPC) Addr() string { return g.lis.Addr().String() }

// Serve accepts streams until Close.
func (g *GRPC) Serve(h Handler) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil // closed before it served: nothing to accept
	}
	if g.handler != nil {
		g.mu.Unlock()
		return errors.New("grpc transport: Serve called twice")
	}
	g.handler = h
	g.mu.Unlock()
	if err := g.srv.Serve(g.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("chat listener: %w", err)
	}
	return nil
}

// Close stops the listener and every accepted stream, and waits for their
// handlers.
func (g *GRPC) Close() error {
	g.mu.Lock()
	already := g.closed
	g.closed = true
	served := g.handler != nil
	g.mu.Unlock()
	if already {
		return nil
	}
	g.srv.Stop()
	if !served {
		g.lis.Close() // Stop closes only listeners that Serve was given
	}
	return nil
}

// grpcServer adapts the generated service to the transport.
type grpcServer struct {
	chatpb.UnimplementedChatServer
	g *GRPC
}

func (s grpcServer) Connect(stream chatpb.Chat_ConnectServer) error {
	s.g.mu.Lock()
	h := s.g.handler
	s.g.mu.Unlock()
	peer, err := s.g.accept(stream, h)
	if err != nil {
		s.g.cfg.Logger.Printf("chat handshake refused: %v", err)
		if s.g.cfg.OnRefused != nil {
			s.g.cfg.OnRefused(err)
		}
		return fmt.Errorf("handshake: %w", err)
	}
	c := &grpcAccepted{stream: stream, peer: peer}
	h.ServeConn(c)
	return nil
}

// handshakeFrames is how many frames the listener's side of the handshake
// reads (Hello, Auth).
const handshakeFrames = 2

// accept runs the listener's side of the handshake and returns the
// authenticated dialer. A reader goroutine receives the two handshake
// frames so that the handshake can time out; after it, the stream's
// handler receives itself, so a frame reaches the chat pipeline without a
// hand-off between goroutines (under load that costs a wake-up per frame).
func (g *GRPC) accept(stream chatpb.Chat_ConnectServer, h Handler) (Peer, error) {
	ctx, cancel := context.WithTimeout(stream.Context(), g.cfg.HandshakeTimeout)
	defer cancel()
	frames := make(chan *chatpb.Frame, handshakeFrames)
	readErr := make(chan error, 1)
	// The reader ends after two frames or when the stream ends: the
	// handler returns on a handshake error, which ends the stream.
	go func() {
		for range handshakeFrames {
			f, err := stream.Recv()
			if err != nil {
				readErr <- err
				return
			}
			frames <- f // buffered for every handshake frame
		}
	}()
	next := func() (*chatpb.Frame, error) {
		select {
		case f := <-frames:
			return f, nil
		case err := <-readErr:
			return nil, err
		case <-ctx.Done():
			return nil, errors.New("handshake timed out")
		}
	}
	f, err := next()
	if err != nil {
		return Peer{}, err
	}
	hello := f.GetHello()
	if err := g.checkHello(hello, g.cfg.Local.ID); err != nil {
		return Peer{}, err
	}
	dialer := Peer{ID: hello.PeerId, Key: ed25519.PublicKey(hello.PublicKey)}
	if err := h.Admit(ctx, dialer); err != nil {
		return Peer{}, err
	}
	myNonce := newNonce()
	reply := &chatpb.Hello{
		Protocol:  g.cfg.Protocol,
		PeerId:    g.cfg.Local.ID,
		PublicKey: g.cfg.Local.Public().Key,
		Nonce:     myNonce,
		TargetId:  dialer.ID,
		Signature: ed25519.Sign(g.cfg.Local.Key, helloSigningBytes("listener", dialer.ID, g.cfg.Local.ID, hello.Nonce, myNonce)),
	}
	if err := stream.Send(&chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: reply}}); err != nil {
		return Peer{}, fmt.Errorf("send hello: %w", err)
	}
	f, err = next()
	if err != nil {
		return Peer{}, err
	}
	auth := f.GetAuth()
	if auth == nil {
		return Peer{}, errors.New("expected auth")
	}
	if !ed25519.Verify(dialer.Key, helloSigningBytes("dialer", dialer.ID, g.cfg.Local.ID, hello.Nonce, myNonce), auth.Signature) {
		return Peer{}, fmt.Errorf("peer %s: bad auth signature", dialer.ID)
	}
	return dialer, nil
}

// Dial opens a stream to want at addr and runs the dialer's side of the
// handshake.
func (g *GRPC) Dial(ctx context.Context, addr string, want Peer) (Conn, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(g.cfg.MaxFrameBytes), grpc.MaxCallSendMsgSize(g.cfg.MaxFrameBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	c := &grpcDialed{cc: cc, cancel: cancel, peer: want}
	stream, err := chatpb.NewChatClient(cc).Connect(sctx, grpc.WaitForReady(false))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open stream to %s: %w", addr, err)
	}
	c.stream = stream
	// The handshake must finish in time; cancelling the stream unblocks
	// its Recv.
	hctx, hcancel := context.WithTimeout(ctx, g.cfg.HandshakeTimeout+time.Second)
	defer hcancel()
	stop := context.AfterFunc(hctx, cancel)
	err = g.handshake(stream, addr, want)
	if !stop() && err == nil {
		err = fmt.Errorf("handshake with %s: %w", addr, hctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// handshake runs the dialer's side.
func (g *GRPC) handshake(stream chatpb.Chat_ConnectClient, addr string, want Peer) error {
	self := g.cfg.Local
	myNonce := newNonce()
	hello := &chatpb.Hello{Protocol: g.cfg.Protocol, PeerId: self.ID, PublicKey: self.Public().Key, Nonce: myNonce, TargetId: want.ID}
	if err := stream.Send(&chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: hello}}); err != nil {
		return fmt.Errorf("send hello: %w", err)
	}
	f, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	reply := f.GetHello()
	if err := g.checkHello(reply, self.ID); err != nil {
		return fmt.Errorf("peer hello: %w", err)
	}
	if reply.PeerId != want.ID || !bytes.Equal(reply.PublicKey, want.Key) {
		return fmt.Errorf("%s answers as %s, not %s: stale address?", addr, reply.PeerId, want.ID)
	}
	if !ed25519.Verify(want.Key, helloSigningBytes("listener", self.ID, want.ID, myNonce, reply.Nonce), reply.Signature) {
		return fmt.Errorf("peer %s: bad hello signature", want.ID)
	}
	auth := &chatpb.Auth{Signature: ed25519.Sign(self.Key, helloSigningBytes("dialer", self.ID, want.ID, myNonce, reply.Nonce))}
	if err := stream.Send(&chatpb.Frame{Msg: &chatpb.Frame_Auth{Auth: auth}}); err != nil {
		return fmt.Errorf("send auth: %w", err)
	}
	return nil
}

const nonceLen = 16

func newNonce() []byte {
	b := make([]byte, nonceLen)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func helloSigningBytes(role, dialer, listener string, dialerNonce, listenerNonce []byte) []byte {
	b := make([]byte, 0, 64+len(dialer)+len(listener))
	b = append(b, "hearsay/hello/v1/"...)
	b = append(b, role...)
	b = append(b, '\n')
	b = append(b, dialer...)
	b = append(b, '\n')
	b = append(b, listener...)
	b = append(b, '\n')
	b = append(b, dialerNonce...)
	b = append(b, listenerNonce...)
	return b
}

// checkHello validates a Hello's identity fields.
func (g *GRPC) checkHello(h *chatpb.Hello, wantTarget string) error {
	if h == nil {
		return errors.New("expected hello")
	}
	if h.Protocol != g.cfg.Protocol {
		return fmt.Errorf("protocol %d, this peer speaks %d", h.Protocol, g.cfg.Protocol)
	}
	if len(h.PublicKey) != ed25519.PublicKeySize || g.cfg.PeerID(h.PublicKey) != h.PeerId {
		return fmt.Errorf("peer id %q does not match its key", h.PeerId)
	}
	if len(h.Nonce) != nonceLen {
		return fmt.Errorf("nonce is %d bytes", len(h.Nonce))
	}
	if h.TargetId != wantTarget {
		return fmt.Errorf("hello for %q, this is %q", h.TargetId, wantTarget)
	}
	return nil
}

// grpcDialed is the dialer's end of a stream: its own client connection,
// closed with the stream.
type grpcDialed struct {
	cc     *grpc.ClientConn
	cancel context.CancelFunc
	stream chatpb.Chat_ConnectClient
	peer   Peer
	once   sync.Once
}

func (c *grpcDialed) Peer() Peer                   { return c.peer }
func (c *grpcDialed) Send(f *chatpb.Frame) error   { return c.stream.Send(f) }
func (c *grpcDialed) Recv() (*chatpb.Frame, error) { return c.stream.Recv() }

// Close cancels the stream (a blocked Send or Recv returns) and closes the
// client connection.
func (c *grpcDialed) Close() error {
	c.once.Do(func() {
		c.cancel()
		c.cc.Close()
	})
	return nil
}

// grpcAccepted is the listener's end of a stream. gRPC ends a server
// stream only when its handler returns, so Close makes later Sends fail
// and the next Recv return ErrClosed; a Recv blocked at that moment
// returns with the next frame or when the dialer or the transport closes.
type grpcAccepted struct {
	stream chatpb.Chat_ConnectServer
	peer   Peer
	mu     sync.Mutex
	closed bool
}

func (c *grpcAccepted) Peer() Peer { return c.peer }

func (c *grpcAccepted) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *grpcAccepted) Send(f *chatpb.Frame) error {
	if c.isClosed() {
		return ErrClosed
	}
	return c.stream.Send(f)
}

func (c *grpcAccepted) Recv() (*chatpb.Frame, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	f, err := c.stream.Recv()
	if err == nil && c.isClosed() {
		return nil, ErrClosed
	}
	return f, err
}

func (c *grpcAccepted) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}
