package chat

// Reconnect: memberlist stops gossiping to a member it declared dead, so
// after a partition that outlived the suspicion timeout the two sides
// never hear of each other again. Like Serf's reconnect, every
// ReconnectInterval the node tries to join one member it saw fail (not
// leave) within ReconnectTimeout, picked at random. A successful join
// merges the two memberlist views; both sides then see each other alive,
// open their chat streams, and anti-entropy repairs the rooms. cmd/hearsay
// additionally rejoins through the bootstrap service and cached contacts.

import (
	"math/rand/v2"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// reconnectLoop runs until Shutdown.
func (n *Node) reconnectLoop() {
	tick := time.NewTicker(n.cfg.ReconnectInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		n.reconnectOnce()
	}
}

// reconnectOnce tries to join one recently failed member. It blocks for
// one memberlist join attempt (bounded by memberlist's TCP timeout).
func (n *Node) reconnectOnce() {
	ml, err := n.active()
	if err != nil {
		return
	}
	now := time.Now()
	n.mu.Lock()
	var addrs []string
	for _, m := range n.members {
		if m.State == hearsay.StateDead && now.Sub(m.Since) <= n.cfg.ReconnectTimeout && m.Addr != "" {
			addrs = append(addrs, m.Addr)
		}
	}
	n.mu.Unlock()
	if len(addrs) == 0 {
		return
	}
	addr := addrs[rand.IntN(len(addrs))]
	n.stats.reconnects.Add(1)
	if _, err := ml.Join([]string{addr}); err != nil {
		n.logger.Printf("reconnect to %s: %v", addr, err)
		return
	}
	n.logger.Printf("reconnected to %s", addr)
}
