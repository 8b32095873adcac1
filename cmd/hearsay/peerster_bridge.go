package main

// The Peerster bridge of a peer: --peerster-bridge at start, or the REPL's
// /bridge peerster at any time, runs a Peerster gossiper and relays
// between its network and one hearsay room (peerster.Bridge). The bridge
// sees the node's events through a tap in front of the REPL (the node has
// one event reader) and posts with the node's Send: it uses the chat
// node's public API only. The tap is always there, so a bridge can start
// later; without a bridge it only forwards.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/peerster"
	"github.com/hearsay-chat/hearsay/repl"
)

// bridgeOpts are the bridge flags of `hearsay`, and the arguments of
// /bridge peerster.
type bridgeOpts struct {
	addr     string // the bridge gossiper's udp4 ip:port; empty: no bridge
	room     string // normalised by complete
	peers    string
	name     string
	peerList []string // parsed from peers by complete
}

func addBridgeFlags(f *pflag.FlagSet, o *bridgeOpts) {
	f.StringVar(&o.addr, "peerster-bridge", "", "also run a Peerster gossiper on `ADDR` (udp ip:port) and bridge it into --peerster-room (Peerster messages are unsigned: see README)")
	f.StringVar(&o.room, "peerster-room", "#peerster", "the hearsay `ROOM` the Peerster bridge relays")
	f.StringVar(&o.peers, "peerster-peers", "", "`PEERS` (ip:port,…): Peerster gossipers the bridge knows at start (others learn it when it sends to them)")
	f.StringVar(&o.name, "peerster-name", "", "the bridge's origin `NAME` in Peerster (default: the nick)")
}

// complete validates the bridge flags; nick is the peer's nick.
func (o *bridgeOpts) complete(nick string) error {
	if o.addr == "" {
		if o.peers != "" || o.name != "" {
			return errors.New("--peerster-peers and --peerster-name need --peerster-bridge")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return fmt.Errorf("--peerster-bridge %q: %w", o.addr, err)
	}
	room, err := chat.NormalizeRoom(o.room)
	if err != nil {
		return fmt.Errorf("--peerster-room: %w", err)
	}
	o.room = room
	if o.name == "" {
		o.name = nick
	}
	for _, p := range strings.Split(o.peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.peerList = append(o.peerList, p)
		}
	}
	return nil
}

// peersterHost owns the peer's bridge, if any, and the tap that feeds it.
// Safe for concurrent use.
type peersterHost struct {
	node   *chat.Node
	logOut io.Writer
	stop   chan struct{} // closed by Close: the tap stops forwarding

	mu   sync.Mutex
	br   *peerster.Bridge // nil: no bridge
	opts bridgeOpts       // the running bridge's
}

func newPeersterHost(node *chat.Node, logOut io.Writer) *peersterHost {
	return &peersterHost{node: node, logOut: logOut, stop: make(chan struct{})}
}

// tap returns the events channel the REPL reads.
func (h *peersterHost) tap() <-chan hearsay.Event {
	return peerster.Tap(h.node.Events(), h.offer, h.stop)
}

func (h *peersterHost) offer(ev hearsay.Event) {
	h.mu.Lock()
	br := h.br
	h.mu.Unlock()
	if br != nil {
		br.HandleEvent(ev)
	}
}

// start starts a bridge of o (completed); it does not join the room.
func (h *peersterHost) start(o bridgeOpts) (*peerster.Bridge, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.br != nil {
		return nil, fmt.Errorf("a Peerster bridge runs already on %s (/bridge off first)", h.br.Gossiper().Addr())
	}
	gcfg := peerster.DefaultConfig()
	gcfg.Name = o.name
	gcfg.GossipAddr = o.addr
	gcfg.Peers = o.peerList
	br, err := peerster.NewBridge(peerster.BridgeConfig{
		Gossiper: gcfg,
		Room:     o.room,
		Chat:     h.node,
		Logf:     func(f string, a ...any) { fmt.Fprintf(h.logOut, f+"\n", a...) },
	})
	if err != nil {
		return nil, fmt.Errorf("peerster bridge: %w", err)
	}
	h.br, h.opts = br, o
	return br, nil
}

// joinRoom joins the running bridge's room and returns the line that says
// what the bridge does.
func (h *peersterHost) joinRoom(ctx context.Context) (string, error) {
	h.mu.Lock()
	br, o := h.br, h.opts
	h.mu.Unlock()
	if br == nil {
		return "", errors.New("no Peerster bridge runs")
	}
	if _, err := h.node.JoinRoom(ctx, o.room, 0); err != nil {
		return "", fmt.Errorf("peerster bridge: join #%s: %w", o.room, err)
	}
	return fmt.Sprintf("peerster bridge: #%s ⇄ Peerster gossiper %s as %q (Peerster messages are unsigned: a name@peerster is only what a datagram claimed)",
		o.room, br.Gossiper().Addr(), o.name), nil
}

// off stops the bridge; the room stays joined.
func (h *peersterHost) off() error {
	h.mu.Lock()
	br := h.br
	h.br = nil
	h.mu.Unlock()
	if br == nil {
		return errors.New("no Peerster bridge runs")
	}
	return br.Close()
}

// Close stops the bridge and the tap's forwarding. Idempotent.
func (h *peersterHost) Close() {
	_ = h.off()
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
}

// startFlags starts the bridge of --peerster-bridge, if given.
func (h *peersterHost) startFlags(o *bridgeOpts) error {
	if o.addr == "" {
		return nil
	}
	_, err := h.start(*o)
	return err
}

// joinFlagRoom joins the flag bridge's room once the peer is in the group.
func (h *peersterHost) joinFlagRoom(ctx context.Context, r *repl.REPL) {
	h.mu.Lock()
	running := h.br != nil
	h.mu.Unlock()
	if !running {
		return
	}
	msg, err := h.joinRoom(ctx)
	if err != nil {
		r.Notify(hearsay.Event{Type: hearsay.EventError, Text: err.Error()})
		return
	}
	r.Printf("%s", msg)
}

// commands returns /bridge: show, peerster, off.
func (h *peersterHost) commands() []*repl.Command {
	return []*repl.Command{{
		Name:    "bridge",
		Summary: "bridge a Peerster network into a room",
		Help: `/bridge shows the bridge. /bridge peerster ADDR [#ROOM] [PEER…] runs a Peerster
gossiper on udp ADDR (ip:port) and bridges it into ROOM (default #peerster),
which it joins: Peerster messages appear as name@peerster, messages of the
room are rumored into Peerster under the nick. PEERs are Peerster gossipers
(ip:port) it knows at start. Peerster messages are unsigned: name@peerster is
only what a datagram claimed. /bridge off stops it.`,
		MaxArgs: 0,
		Run: func(_ context.Context, r *repl.REPL, _ *repl.Invocation) error {
			h.mu.Lock()
			br, o := h.br, h.opts
			h.mu.Unlock()
			if br == nil {
				r.Printf("no bridge (/bridge peerster ADDR [#ROOM] [PEER…])")
				return nil
			}
			s, g := br.Stats(), br.Gossiper()
			r.Printf("peerster bridge: #%s ⇄ %s as %q, %d Peerster peers; %d to the room, %d to Peerster, %d dropped",
				o.room, g.Addr(), o.name, len(g.Peers()), s.ToHearsay, s.ToPeerster, s.Dropped)
			return nil
		},
		Sub: []*repl.Command{
			{
				Name:    "peerster",
				Args:    "ADDR [#ROOM] [PEER…]",
				Summary: "run a Peerster gossiper on ADDR and bridge it into ROOM",
				MinArgs: 1, MaxArgs: -1,
				Run: func(ctx context.Context, r *repl.REPL, inv *repl.Invocation) error {
					o := bridgeOpts{addr: inv.Args[0], room: "#peerster"}
					rest := inv.Args[1:]
					if len(rest) > 0 && strings.HasPrefix(rest[0], "#") {
						o.room, rest = rest[0], rest[1:]
					}
					o.peers = strings.Join(rest, ",")
					if err := o.complete(h.node.Nick()); err != nil {
						return &repl.UsageError{Msg: strings.ReplaceAll(strings.ReplaceAll(err.Error(), "--peerster-bridge", "ADDR"), "--peerster-room", "ROOM")}
					}
					if _, err := h.start(o); err != nil {
						return err
					}
					msg, err := h.joinRoom(ctx)
					if err != nil {
						_ = h.off()
						return err
					}
					r.Printf("%s", msg)
					return nil
				},
			},
			{
				Name:    "off",
				Summary: "stop the Peerster bridge (the room stays joined)",
				Run: func(_ context.Context, r *repl.REPL, _ *repl.Invocation) error {
					if err := h.off(); err != nil {
						return err
					}
					r.Printf("peerster bridge stopped")
					return nil
				},
			},
		},
	}}
}

// tappedPeer is the REPL's peer with its events read through the tap.
// It embeds agentPeer, so every method of the node stays visible.
type tappedPeer struct {
	agentPeer
	events <-chan hearsay.Event
}

func (p tappedPeer) Events() <-chan hearsay.Event { return p.events }
