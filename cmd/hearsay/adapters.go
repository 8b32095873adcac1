package main

// The concrete chat node, discovery agent and bootstrap client as the
// small interfaces the REPL and the discovery agent declare (the consumer
// owns the interface).

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/hearsay-chat/hearsay"
	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/discovery"
	"github.com/hearsay-chat/hearsay/repl"
)

// The chat node is the REPL's peer as it is: repl's interfaces are
// declared with the domain types (package hearsay) that chat produces, and
// the REPL reads the node's Events channel itself until Shutdown closes it.
var (
	_ repl.Peer      = (*chat.Node)(nil)
	_ repl.Lifecycle = (*chat.Node)(nil)
	_ repl.Rooms     = (*chat.Node)(nil)
	_ discovery.Node = (*chat.Node)(nil)
)

// agentPeer is the chat node as the REPL's peer, with the discovery
// agent's rejoin count in Stats (the agent, not the node, rejoins).
type agentPeer struct {
	*chat.Node
	agent *discovery.Agent // nil when the peer runs without one
}

var _ repl.Peer = agentPeer{}

// Stats returns the node's counters plus the agent's rejoin attempts.
func (p agentPeer) Stats() hearsay.Stats {
	s := p.Node.Stats()
	s.Reconnects = p.agent.Stats().Rejoins
	return s
}

// identitySigner makes a chat identity a bootstrapapi.Signer: the
// bootstrap client signs the peer's join, refill and leave with the key
// behind its ID, and bootstrap-api does not import chat.
type identitySigner struct{ id *chat.Identity }

var _ bootstrapapi.Signer = identitySigner{}

func (s identitySigner) PublicKey() ed25519.PublicKey { return s.id.Pub }
func (s identitySigner) Sign(msg []byte) []byte       { return s.id.Sign(msg) }

// bootstrapAdapter makes a *bootstrapapi.Client a repl.Bootstrap.
type bootstrapAdapter struct {
	c *bootstrapapi.Client
}

var _ repl.Bootstrap = bootstrapAdapter{}

func toJoinRequest(c repl.Contact) bootstrapapi.JoinRequest {
	return bootstrapapi.JoinRequest{ID: c.ID, Nick: c.Nick, Addr: c.Addr, Protocol: discovery.Protocol}
}

func toJoinResult(r bootstrapapi.JoinResponse) repl.JoinResult {
	return repl.JoinResult{Stored: r.Stored, Renewed: r.Renewed, Replaced: r.Replaced, NumPeers: r.NumPeers}
}

func (b bootstrapAdapter) Join(ctx context.Context, c repl.Contact) (repl.JoinResult, error) {
	r, err := b.c.Join(ctx, toJoinRequest(c))
	return toJoinResult(r), err
}

func (b bootstrapAdapter) Refill(ctx context.Context, c repl.Contact) (repl.JoinResult, error) {
	r, err := b.c.Refill(ctx, toJoinRequest(c))
	return toJoinResult(r), err
}

func (b bootstrapAdapter) Leave(ctx context.Context, id string) error {
	r, err := b.c.Leave(ctx, id)
	if err == nil && !r.Removed {
		return fmt.Errorf("%s was not registered with the bootstrap service", id)
	}
	return err
}

func (b bootstrapAdapter) List(ctx context.Context, n int) ([]repl.Contact, error) {
	r, err := b.c.List(ctx, n)
	if err != nil {
		return nil, err
	}
	out := make([]repl.Contact, len(r.Peers))
	for i, p := range r.Peers {
		out[i] = repl.Contact{ID: p.ID, Nick: p.Nick, Addr: p.Addr, Since: p.Since, Expires: p.Expires}
	}
	return out, nil
}

func (b bootstrapAdapter) Reset(ctx context.Context) (int, error) {
	r, err := b.c.Reset(ctx)
	return r.Removed, err
}

func toReplConfig(c bootstrapapi.Config) repl.BootstrapConfig {
	return repl.BootstrapConfig{MaxPeers: c.MaxPeers, MinRefillCandidates: c.MinRefillCandidates, LeaseTTL: c.LeaseTTL()}
}

func (b bootstrapAdapter) Config(ctx context.Context) (repl.BootstrapConfig, error) {
	c, err := b.c.Config(ctx)
	return toReplConfig(c), err
}

func (b bootstrapAdapter) SetConfig(ctx context.Context, u repl.BootstrapConfigUpdate) (repl.BootstrapConfig, error) {
	var cu bootstrapapi.ConfigUpdate
	cu.MaxPeers, cu.MinRefillCandidates = u.MaxPeers, u.MinRefillCandidates
	if u.LeaseTTL != nil {
		if *u.LeaseTTL%time.Second != 0 {
			return repl.BootstrapConfig{}, fmt.Errorf("lease TTL %s: must be whole seconds", *u.LeaseTTL)
		}
		secs := int64(*u.LeaseTTL / time.Second)
		cu.LeaseTTLSeconds = &secs
	}
	c, err := b.c.SetConfig(ctx, cu)
	return toReplConfig(c), err
}
