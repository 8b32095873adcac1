package chat

// Latency hooks for metrics. The node reports two durations to an
// optional Observer (Config.Observer): how long Send took to store a
// message in the log (send → stored), and how long a message received from
// a peer waited between its arrival and its delivery (receive → delivered:
// the time its ordering condition held it back). The node imports no
// metrics library; cmd/hearsay hands it one (package api's metrics).

import (
	"time"

	"github.com/hearsay-chat/hearsay/chat/order"
)

// Observer receives latency observations. Its methods are called with
// room locks held, so they must be fast, must not block and must not call
// back into the node; they are called concurrently.
type Observer interface {
	// SendStored is how long a Send took from its call until the message
	// was committed to the log.
	SendStored(d time.Duration)
	// ReceiveDelivered is how long a chat message received from a peer
	// waited from its arrival until it was delivered (shown).
	ReceiveDelivered(d time.Duration)
}

// noteArrivalLocked records when a pushed or repaired data message
// arrived, for ReceiveDelivered. The map is bounded like the envelope
// cache: when full it is cleared, and those messages are simply not
// observed. Caller holds r.mu.
func (r *room) noteArrivalLocked(id order.ID, at time.Time) {
	if r.env.cfg.Observer == nil || r.cache == nil {
		return
	}
	if r.arrived == nil {
		r.arrived = map[order.ID]time.Time{}
	}
	if len(r.arrived) >= maxCache {
		clear(r.arrived)
	}
	r.arrived[id] = at
}

// observeDeliveredLocked reports a delivered message's wait, if its
// arrival was recorded. Caller holds r.mu.
func (r *room) observeDeliveredLocked(id order.ID) {
	at, ok := r.arrived[id]
	if !ok {
		return
	}
	delete(r.arrived, id)
	r.env.cfg.Observer.ReceiveDelivered(time.Since(at))
}

// QueueLens returns the frames waiting in the send queues of all peer
// streams, and the events waiting in Events for their reader: the queue
// sizes metrics show. Safe for concurrent use.
func (n *Node) QueueLens() (sendQueued, eventsQueued int) {
	n.mu.Lock()
	for _, p := range n.peers {
		sendQueued += p.queue.len()
	}
	n.mu.Unlock()
	return sendQueued, n.events.len()
}
