package chat

// The chat transport: each peer serves the Chat gRPC service (chat.proto)
// on its chat address and dials every other live member once, keeping one
// persistent stream per direction, so a message costs no new connection or
// handshake. Both ends authenticate on the stream with a nonce handshake
// (Hello, signed Hello, Auth): each proves it holds the private key of the
// peer ID it claims, and the listener accepts only dialers that are live
// members of its memberlist group (so the cluster key, which guards
// memberlist, also guards who may chat).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

const nonceLen = 16

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

func newNonce() []byte {
	b := make([]byte, nonceLen)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

// checkHello validates a Hello's identity fields.
func checkHello(h *chatpb.Hello, wantTarget string) error {
	if h == nil {
		return errors.New("expected hello")
	}
	if h.Protocol != ProtocolVersion {
		return fmt.Errorf("protocol %d, this peer speaks %d", h.Protocol, ProtocolVersion)
	}
	if len(h.PublicKey) != ed25519.PublicKeySize || PeerIDFromKey(h.PublicKey) != h.PeerId {
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

// chatServer adapts the generated gRPC service to the node.
type chatServer struct {
	chatpb.UnimplementedChatServer
	n *Node
}

func (s *chatServer) Connect(stream chatpb.Chat_ConnectServer) error {
	return s.n.handleStream(stream)
}

// handleStream serves one inbound stream: handshake, then frames until the
// dialer closes it or the node shuts down (the server's Stop ends every
// stream's Recv). Only this goroutine sends on the stream. During the
// handshake a reader goroutine receives its two frames (Hello, Auth), so
// that the handshake can time out; after it, this goroutine receives
// itself: a frame reaches the pipeline without a hand-off between
// goroutines, which under load costs a wake-up per frame.
func (n *Node) handleStream(stream chatpb.Chat_ConnectServer) error {
	ctx := stream.Context()
	frames := make(chan *chatpb.Frame, handshakeFrames)
	readErr := make(chan error, 1)
	if !n.spawn(func() {
		for range handshakeFrames {
			f, err := stream.Recv()
			if err != nil {
				readErr <- err
				return
			}
			frames <- f // buffered for every handshake frame
		}
	}) {
		return ErrShutdown
	}
	next := func(timeout <-chan time.Time) (*chatpb.Frame, error) {
		select {
		case f := <-frames:
			return f, nil
		case err := <-readErr:
			return nil, err
		case <-timeout:
			return nil, errors.New("handshake timed out")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-n.ctx.Done():
			return nil, ErrShutdown
		}
	}

	peer, err := n.acceptHandshake(ctx, stream, next)
	if err != nil {
		n.stats.refused.Add(1)
		n.logger.Printf("chat handshake refused: %v", err)
		return fmt.Errorf("handshake: %w", err)
	}
	// The handshake took both frames, so the reader has made its last
	// Recv: from here on this goroutine is the stream's only receiver.
	for {
		f, err := stream.Recv()
		if err != nil {
			return nil
		}
		if n.faults.blocks(peer) {
			n.stats.faultDrops.Add(1)
			continue
		}
		if reply := n.handleFrame(f, peer); reply != nil {
			if err := stream.Send(reply); err != nil {
				return nil
			}
		}
	}
}

// handleFrame acts on one frame from the authenticated dialer peer and
// returns the frame to answer on the same stream (a pong), or nil.
func (n *Node) handleFrame(f *chatpb.Frame, peer string) *chatpb.Frame {
	pong := func(nonce uint64) *chatpb.Frame {
		return &chatpb.Frame{Msg: &chatpb.Frame_Pong{Pong: &chatpb.Pong{Nonce: nonce}}}
	}
	switch m := f.Msg.(type) {
	case *chatpb.Frame_Envelope:
		n.handleEnvelope(m.Envelope, peer)
	case *chatpb.Frame_Batch:
		n.handleBatch(m.Batch, peer)
	case *chatpb.Frame_Ping:
		return pong(m.Ping.GetNonce())
	case *chatpb.Frame_RoomSet:
		n.handleRoomSet(m.RoomSet, peer)
	case *chatpb.Frame_Status:
		n.handleStatus(m.Status, peer)
	case *chatpb.Frame_Repair:
		n.handleRepair(m.Repair, peer)
	case *chatpb.Frame_Bye:
		n.markLeaving(peer)
		return pong(m.Bye.GetNonce())
	default:
		n.stats.badFrames.Add(1)
	}
	return nil
}

// handshakeFrames is how many frames the listener's side of the handshake
// reads (Hello, Auth).
const handshakeFrames = 2

// acceptHandshake runs the listener's side of the handshake and returns
// the authenticated dialer's peer ID.
func (n *Node) acceptHandshake(ctx context.Context, stream chatpb.Chat_ConnectServer, next func(<-chan time.Time) (*chatpb.Frame, error)) (string, error) {
	timer := time.NewTimer(n.cfg.HandshakeTimeout)
	defer timer.Stop()
	f, err := next(timer.C)
	if err != nil {
		return "", err
	}
	hello := f.GetHello()
	if err := checkHello(hello, n.id.ID); err != nil {
		return "", err
	}
	dialer := hello.PeerId
	// The dialer may have joined a moment ago; give gossip until the
	// handshake deadline to tell us about it.
	wctx, cancel := context.WithTimeout(ctx, n.cfg.HandshakeTimeout)
	m, err := n.waitMember(wctx, dialer)
	cancel()
	if err != nil {
		return "", err
	}
	if !bytes.Equal(m.Pub, hello.PublicKey) {
		return "", fmt.Errorf("peer %s presents another key than its node meta", dialer)
	}
	myNonce := newNonce()
	reply := &chatpb.Hello{
		Protocol:  ProtocolVersion,
		PeerId:    n.id.ID,
		PublicKey: n.id.Pub,
		Nonce:     myNonce,
		TargetId:  dialer,
		Signature: n.id.Sign(helloSigningBytes("listener", dialer, n.id.ID, hello.Nonce, myNonce)),
	}
	if err := stream.Send(&chatpb.Frame{Msg: &chatpb.Frame_Hello{Hello: reply}}); err != nil {
		return "", fmt.Errorf("send hello: %w", err)
	}
	f, err = next(timer.C)
	if err != nil {
		return "", err
	}
	auth := f.GetAuth()
	if auth == nil {
		return "", errors.New("expected auth")
	}
	if !ed25519.Verify(hello.PublicKey, helloSigningBytes("dialer", dialer, n.id.ID, hello.Nonce, myNonce), auth.Signature) {
		return "", fmt.Errorf("peer %s: bad auth signature", dialer)
	}
	return dialer, nil
}
