package discovery

// Rejoin: memberlist stops gossiping with a member it declared dead, so
// after a partition that outlived the suspicion timeout the two sides
// never hear of each other again; and a peer that started alone (no
// service, no cache) never meets the group. Every RejoinInterval the agent
// joins peers that are not live members of the node's view:
//   - members the node saw fail (not leave) within RejoinWindow, as
//     serf's reconnect does;
//   - contacts from the service, or from the cache when it does not
//     answer, that are not alive or suspect.
// At most RejoinMax addresses per round, chosen at random: a join to an
// unreachable address costs memberlist's TCP timeout. One successful join
// merges the two memberlist views; both sides then see each other alive,
// open their chat streams, and anti-entropy repairs the rooms. This agent
// is the only owner of rejoining: the chat library does not reconnect by
// itself.

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// rejoin runs one round. It blocks for the contact list and the join, each
// bounded by RequestTimeout.
func (a *Agent) rejoin() {
	ctx, cancel := context.WithTimeout(a.base, a.cfg.RequestTimeout)
	cs, _, _ := a.contacts(ctx, a.node.ID()) // the service is optional: failed members still count
	cancel()
	addrs := rejoinCandidates(a.node.Members(), cs, time.Now(), a.cfg.RejoinWindow)
	if len(addrs) == 0 {
		return
	}
	if len(addrs) > a.cfg.RejoinMax {
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		addrs = addrs[:a.cfg.RejoinMax]
	}
	a.rejoins.Add(uint64(len(addrs)))
	ctx, cancel = context.WithTimeout(a.base, a.cfg.RequestTimeout)
	defer cancel()
	if _, err := a.node.Join(ctx, addrs); err != nil {
		a.report("rejoin", err)
		return
	}
	a.report("rejoin", nil)
}

// rejoinCandidates returns the memberlist addresses to join again, without
// duplicates: members (the node's view; Self is skipped) that failed
// within window before now, and contacts whose ID is not an alive or
// suspect member.
func rejoinCandidates(members []hearsay.Member, contacts []cachedContact, now time.Time, window time.Duration) []string {
	var out []string
	seen := map[string]bool{}
	add := func(addr string) {
		if addr != "" && !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	live := map[string]bool{}
	for _, m := range members {
		switch {
		case m.Self:
			live[m.ID] = true
		case m.State == hearsay.StateAlive || m.State == hearsay.StateSuspect:
			live[m.ID] = true
		case m.State == hearsay.StateDead && now.Sub(m.Since) <= window:
			add(m.Addr)
		}
	}
	for _, c := range contacts {
		if !live[c.ID] {
			add(c.Addr)
		}
	}
	return out
}
