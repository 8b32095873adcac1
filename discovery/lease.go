package discovery

// The lease: the service forgets a contact that is not renewed within the
// lease TTL, so a peer that crashed does not stay a first contact. The
// agent renews at a third of the TTL, so two renewals may fail before the
// lease lapses; a renewal that finds the embedded default gone takes it
// over (service.go) and registers there.

import (
	"context"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// joinRequest is the node's contact as the service stores it. Every
// registration (first and renewals) goes through here.
func joinRequest(node Node) bootstrapapi.JoinRequest {
	return bootstrapapi.JoinRequest{ID: node.ID(), Nick: node.Nick(), Addr: node.AdvertiseAddr(), Protocol: Protocol}
}

// renew registers the node's contact again. It blocks for at most
// RequestTimeout (twice with a takeover).
func (a *Agent) renew() {
	ctx, cancel := context.WithTimeout(a.base, a.cfg.RequestTimeout)
	defer cancel()
	_, err := a.client.Join(ctx, joinRequest(a.node))
	if err != nil && a.takeOver(ctx) {
		_, err = a.client.Join(ctx, joinRequest(a.node))
	}
	if err == nil {
		a.renewals.Add(1)
	}
	a.report("renew bootstrap lease", err)
}
