package main

// --peerster-bridge: the peer also runs a Peerster gossiper and relays
// between the Peerster network and one hearsay room (peerster.Bridge). The
// bridge sees the node's events through a tap in front of the REPL (the
// node has one event reader) and posts with the node's Send: it uses the
// chat node's public API only.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/spf13/pflag"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/peerster"
	"github.com/hearsay-chat/hearsay/repl"
)

// bridgeOpts are the bridge flags of `hearsay`.
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
	f.StringVar(&o.peers, "peerster-peers", "", "Peerster gossipers the bridge knows at start, `ip:port,…` (others learn it when it sends to them)")
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

// startBridge starts the bridge of the flags for node, or returns nil
// when there is none. The caller closes it.
func startBridge(node *chat.Node, o *bridgeOpts, logOut io.Writer) (*peerster.Bridge, error) {
	if o.addr == "" {
		return nil, nil
	}
	gcfg := peerster.DefaultConfig()
	gcfg.Name = o.name
	gcfg.GossipAddr = o.addr
	gcfg.Peers = o.peerList
	br, err := peerster.NewBridge(peerster.BridgeConfig{
		Gossiper: gcfg,
		Room:     o.room,
		Chat:     node,
		Logf:     func(f string, a ...any) { fmt.Fprintf(logOut, f+"\n", a...) },
	})
	if err != nil {
		return nil, fmt.Errorf("--peerster-bridge: %w", err)
	}
	return br, nil
}

// joinBridgeRoom joins the bridged room once the peer is in the group, and
// says what the bridge does.
func joinBridgeRoom(ctx context.Context, node *chat.Node, br *peerster.Bridge, o *bridgeOpts, r *repl.REPL) {
	if br == nil {
		return
	}
	if _, err := node.JoinRoom(ctx, o.room, 0); err != nil {
		r.Notify(hearsay.Event{Type: hearsay.EventError, Text: fmt.Sprintf("peerster bridge: join #%s: %v", o.room, err)})
		return
	}
	r.Printf("peerster bridge: #%s ⇄ Peerster gossiper %s as %q (Peerster messages are unsigned: a name@peerster is only what a datagram claimed)",
		o.room, br.Gossiper().Addr(), o.name)
}

// tappedPeer is the REPL's peer with its events read through the bridge's
// tap.
type tappedPeer struct {
	repl.Peer
	events <-chan hearsay.Event
}

func (p tappedPeer) Events() <-chan hearsay.Event { return p.events }
