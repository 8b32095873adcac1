package chat

// The node's side of the chat transport (chat/transport): every peer
// listens for authenticated streams, and a pair of peers shares one
// persistent stream used in both directions (peerconn.go, links.go), so a
// message costs no new connection or handshake. The transport proves each
// end's identity; the node decides who may open a stream (admit: only
// live members of its memberlist group whose node meta carries the same
// key, so the cluster key, which guards memberlist, also guards who may
// chat) and serves the frames of admitted streams (serveConn); both are in
// receive.go, where inbound frames start.

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hearsay-chat/hearsay/chat/transport"
)

// transportHandler adapts the node to transport.Handler.
type transportHandler struct{ n *Node }

var _ transport.Handler = transportHandler{}

func (h transportHandler) Admit(ctx context.Context, p transport.Peer) error {
	return h.n.admit(ctx, p)
}

func (h transportHandler) ServeConn(c transport.Conn) { h.n.serveConn(c) }

// newTransport builds the chat transport: Config.ChatTransport when set
// (tests, the simulator), else the TLS transport on host:Config.ChatPort.
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
		tc := tlsTransportConfig(&n.cfg, local)
		tc.Logger = n.logger
		tc.OnRefused = func(error) { n.stats.refused.Add(1) }
		if check := tc.CheckFrame; check != nil {
			tc.CheckFrame = func(b []byte) error {
				err := check(b)
				if err != nil {
					n.stats.badFrames.Add(1)
				}
				return err
			}
		}
		if n.cfg.TuneChatTransport != nil {
			n.cfg.TuneChatTransport(&tc)
		}
		g, err := transport.ListenTLS(net.JoinHostPort(host, strconv.Itoa(n.cfg.ChatPort)), tc)
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

// tlsTransportConfig is the TLS transport's configuration for a node with
// cfg and identity local.
func tlsTransportConfig(cfg *Config, local transport.Local) transport.TLSConfig {
	return transport.TLSConfig{
		Local:         local,
		Protocol:      ProtocolVersion,
		PeerID:        func(k ed25519.PublicKey) string { return PeerIDFromKey(k) },
		ClusterKey:    cfg.ClusterKey,
		MaxFrameBytes: maxFrameBytes,
		// Bounds of repeated fields, checked before a frame is decoded
		// (framebounds.go); the node counts what it refuses as bad frames.
		CheckFrame:       checkFrameBounds,
		HandshakeTimeout: cfg.HandshakeTimeout,
		// The read deadline of accepted streams. Each end of a kept link
		// refreshes its room set on it every 5 to 10 anti-entropy
		// intervals (roomsets.go): a stream quiet for 30 of them has lost
		// its dialer. A link that is not kept closes itself after
		// linkIdleRounds (10) quiet intervals, before this cuts it.
		IdleTimeout: max(30*time.Second, 30*cfg.AntiEntropyInterval),
	}
}
