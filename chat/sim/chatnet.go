package sim

// The chat transport of a simulated peer, from the network in:
//
//	transport.MemNetwork  (shared by the simulation; frames encoded as on the wire)
//	cutTransport          (this file: the partitions, one direction at a time)
//	transport.WithFaults  (random loss, delay and reordering, seeded per peer)
//
// The cut sits under the fault decorator, so a frame the decorator delayed
// is checked when it actually leaves: a partition that starts while it
// waits loses it, as it would lose a packet still in a router's queue.

import (
	"context"
	"fmt"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// cutTransport drops the frames a peer sends across a cut and refuses
// streams across one.
type cutTransport struct {
	transport.Transport
	self string // our peer ID
	cut  func(from, to string) bool
	lost *atomic.Uint64
}

func (t *cutTransport) Dial(ctx context.Context, addr string, want transport.Peer) (transport.Conn, error) {
	if t.cut(t.self, want.ID) || t.cut(want.ID, t.self) {
		return nil, fmt.Errorf("dial %s: no route to host (partitioned)", addr)
	}
	c, err := t.Transport.Dial(ctx, addr, want)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, t: t}, nil
}

func (t *cutTransport) Serve(h transport.Handler) error {
	return t.Transport.Serve(cutHandler{h: h, t: t})
}

type cutHandler struct {
	h transport.Handler
	t *cutTransport
}

func (c cutHandler) Admit(ctx context.Context, p transport.Peer) error { return c.h.Admit(ctx, p) }
func (c cutHandler) ServeConn(conn transport.Conn)                     { c.h.ServeConn(&cutConn{Conn: conn, t: c.t}) }

// cutConn loses what it sends while its direction is cut. Streams stay
// open across a partition (as TCP connections do until they time out);
// the peers' failure detector and redials decide what happens to them.
type cutConn struct {
	transport.Conn
	t *cutTransport
}

func (c *cutConn) Send(f *chatpb.Frame) (int, error) {
	if c.t.cut(c.t.self, c.Conn.Peer().ID) {
		c.t.lost.Add(1)
		return proto.Size(f), nil // lost on the way: the sender paid for it
	}
	return c.Conn.Send(f)
}
