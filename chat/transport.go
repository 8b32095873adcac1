package chat

// The node's side of the chat transport (chat/transport): every peer
// listens for authenticated streams and dials every other live member
// once (peerconn.go), keeping one persistent stream per direction, so a
// message costs no new connection or handshake. The transport proves each
// end's identity; the node decides who may open a stream (Admit: only
// live members of its memberlist group whose node meta carries the same
// key, so the cluster key, which guards memberlist, also guards who may
// chat) and serves the frames of admitted streams (ServeConn).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"strconv"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// transportHandler adapts the node to transport.Handler.
type transportHandler struct{ n *Node }

var _ transport.Handler = transportHandler{}

func (h transportHandler) Admit(ctx context.Context, p transport.Peer) error {
	return h.n.admit(ctx, p)
}

func (h transportHandler) ServeConn(c transport.Conn) { h.n.serveConn(c) }

// admit accepts a dialer that is a live member presenting the key of its
// node meta. The dialer may have joined a moment ago: it waits for gossip
// until ctx (the handshake deadline) ends.
func (n *Node) admit(ctx context.Context, p transport.Peer) error {
	m, err := n.waitMember(ctx, p.ID)
	if err != nil {
		return err
	}
	if !bytes.Equal(m.Pub, p.Key) {
		return fmt.Errorf("peer %s presents another key than its node meta", p.ID)
	}
	return nil
}

// serveConn serves one admitted inbound stream until the dialer closes it
// or the node shuts down. Only this goroutine sends on the stream (pongs),
// and it receives itself: a frame reaches the pipeline without a hand-off.
func (n *Node) serveConn(c transport.Conn) {
	peer := c.Peer().ID
	for {
		f, err := c.Recv()
		if err != nil {
			return
		}
		if reply := n.handleFrame(f, peer); reply != nil {
			if err := c.Send(reply); err != nil {
				return
			}
		}
	}
}

// handleFrame acts on one frame from the authenticated dialer peer and
// returns the frame to answer on the same stream (a pong), or nil.
func (n *Node) handleFrame(f *chatpb.Frame, peer string) *chatpb.Frame {
	switch m := f.Msg.(type) {
	case *chatpb.Frame_Envelope:
		n.handleEnvelope(m.Envelope, peer)
	case *chatpb.Frame_Batch:
		n.handleBatch(m.Batch, peer)
	case *chatpb.Frame_Ping:
		return pongFrame(m.Ping.GetNonce())
	case *chatpb.Frame_RoomSet:
		n.handleRoomSet(m.RoomSet, peer)
	case *chatpb.Frame_Status:
		n.handleStatus(m.Status, peer)
	case *chatpb.Frame_Repair:
		n.handleRepair(m.Repair, peer)
	case *chatpb.Frame_Bye:
		n.markLeaving(peer)
		return pongFrame(m.Bye.GetNonce())
	default:
		n.stats.badFrames.Add(1)
	}
	return nil
}

// newTransport builds the chat transport: Config.ChatTransport when set
// (tests, the simulator), else the gRPC transport on host:Config.ChatPort.
// With fault injection it is wrapped in the fault decorator.
func (n *Node) newTransport(host string) (transport.Transport, error) {
	local := transport.Local{ID: n.id.ID, Key: n.id.priv}
	var t transport.Transport
	if n.cfg.ChatTransport != nil {
		var err error
		if t, err = n.cfg.ChatTransport(local); err != nil {
			return nil, fmt.Errorf("chat transport: %w", err)
		}
	} else {
		g, err := transport.ListenGRPC(net.JoinHostPort(host, strconv.Itoa(n.cfg.ChatPort)), transport.GRPCConfig{
			Local:            local,
			Protocol:         ProtocolVersion,
			PeerID:           func(k ed25519.PublicKey) string { return PeerIDFromKey(k) },
			MaxFrameBytes:    maxFrameBytes,
			HandshakeTimeout: n.cfg.HandshakeTimeout,
			Logger:           n.logger,
			OnRefused:        func(error) { n.stats.refused.Add(1) },
		})
		if err != nil {
			return nil, err
		}
		t = g
	}
	if n.faults != nil {
		t = transport.WithFaults(t, n.faults)
	}
	return t, nil
}
