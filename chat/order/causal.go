package order

import "slices"

// causalState is the causal mode's stage: per-origin queues of accepted
// messages waiting for their dependencies. Total rooms run it too, before
// their timestamp order (see totalState).
//
// Deps are compacted in two ways, as Matrix's prev_events name only the
// latest events their sender had seen (the rest is implied):
//
//   - by our own stream: a message of ours names only the entries of our
//     delivered vector that grew since the Deps of our earlier messages
//     (a receiver delivers our messages in seq order, so when it considers
//     one, our earlier ones are delivered and their Deps were met);
//   - by the others' messages: an entry o:s need not be named when a
//     message we delivered from another origin named o:s' >= s in its own
//     Deps (implied below). A receiver delivers that message only after
//     o:s', and our message only after that message's origin reaches it
//     (its entry is named, implied in turn, or named by an earlier message
//     of ours). Causality has no cycles, so every omitted entry is reached
//     through one that is named.
//
// Both are exact: what is omitted is implied by what is named, never
// guessed. Only direct Deps feed implied (not their transitive closure,
// which would cost a vector per message), so a message may still name an
// entry some chain implies: a message costs about the number of concurrent
// senders since our last one, not the size of the room (a room where
// everyone speaks in turn: one entry). When more than MaxDepsPerMessage
// entries are new, the surplus rides in acks numbered just before the
// message, and any message that carries Deps (data or ack) waits for
// them.
type causalState struct {
	delivered map[string]uint64 // origin -> highest seq delivered (or consumed)
	wait      map[string][]Meta // origin -> accepted, undelivered, in seq order
	nwait     int
	// named is the vector our Deps are drawn from. In causal rooms it is
	// delivered itself. In total rooms (dataOnly) it holds only the data
	// that passed this stage (and floors): every member acks every data
	// message there, so naming acks would cost a room-sized vector per
	// message, and a data message names what its sender showed, which
	// is data.
	named    map[string]uint64
	dataOnly bool
	// sent is, per origin, the highest seq named in the Deps of our own
	// accepted messages (ours sent now, or replayed after a restart): what
	// the next message of ours need not name again.
	sent map[string]uint64
	// grown holds the origins whose delivered count grew since the last
	// depsFor: only they can need naming, so a message costs what changed,
	// not the size of the room.
	grown map[string]struct{}
	// implied is, per origin o, the highest seq of o named in the Deps of a
	// message of another origin that we delivered (or consumed): naming
	// that message's origin implies o up to there. With dataOnly, only
	// data feeds it: an ack's origin is named only up to its last data.
	implied map[string]uint64
}

// init prepares the stage; dataOnly is for total rooms (see named).
func (c *causalState) init(dataOnly bool) {
	c.delivered = map[string]uint64{}
	c.named = c.delivered
	c.dataOnly = dataOnly
	if dataOnly {
		c.named = map[string]uint64{}
	}
	c.wait = map[string][]Meta{}
	c.sent = map[string]uint64{}
	c.grown = map[string]struct{}{}
	c.implied = map[string]uint64{}
}

// noteSent records the Deps of one of our accepted messages.
func (c *causalState) noteSent(deps map[string]uint64) {
	for o, s := range deps {
		if s > c.sent[o] {
			c.sent[o] = s
		}
	}
}

// ready reports whether msg, accepted next for its origin, is deliverable.
func (c *causalState) ready(msg Meta) bool {
	if len(c.wait[msg.Origin]) > 0 {
		return false
	}
	for p, s := range msg.Deps {
		if p != msg.Origin && c.delivered[p] < s {
			return false
		}
	}
	return true
}

// depsFor returns the entries of the named vector (without self) that
// our earlier messages did not name already: the Deps of our next message.
func (c *causalState) depsFor(self string) map[string]uint64 {
	var d map[string]uint64
	for o := range c.grown {
		if s := c.named[o]; o != self && s > c.sent[o] && s > c.implied[o] {
			if d == nil {
				d = map[string]uint64{}
			}
			d[o] = s
		}
	}
	clear(c.grown)
	if len(d) == 0 {
		return nil
	}
	return d
}

func (c *causalState) accept(msg Meta) {
	c.wait[msg.Origin] = append(c.wait[msg.Origin], msg)
	c.nwait++
}

func (c *causalState) floor(origin string, seq uint64) {
	if seq > c.delivered[origin] {
		c.delivered[origin] = seq
		c.grown[origin] = struct{}{}
	}
	c.named[origin] = max(c.named[origin], seq)
	q := c.wait[origin]
	i := 0
	for i < len(q) && q[i].Seq <= seq {
		i++
	}
	c.nwait -= i
	c.wait[origin] = q[i:]
}

// blocker returns the first unmet dependency of the head msg.
func (c *causalState) blocker(msg Meta) (ID, bool) {
	keys := make([]string, 0, len(msg.Deps))
	for p := range msg.Deps {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		if p != msg.Origin && c.delivered[p] < msg.Deps[p] {
			return ID{p, c.delivered[p] + 1}, true
		}
	}
	return ID{}, false
}

// pass takes msg, the next of its origin with its deps met, out of this
// stage: delivered (in total rooms: handed to the timestamp order).
func (c *causalState) pass(m *Machine, msg Meta) {
	o := msg.Origin
	c.delivered[o] = msg.Seq
	if !c.dataOnly || msg.Kind == KindData {
		c.named[o] = msg.Seq
		c.grown[o] = struct{}{}
		for p, s := range msg.Deps {
			if p != o && s > c.implied[p] {
				c.implied[p] = s
			}
		}
	}
	switch {
	case m.cfg.Mode == Total:
		m.t.accept(m, msg)
	case msg.Kind == KindData:
		m.deliver(msg)
	}
}

// settle delivers every queue head whose dependencies are met (in total
// rooms: passes it to the timestamp order), scanning origins in sorted
// order until a pass delivers nothing, so the output is deterministic.
func (c *causalState) settle(m *Machine) {
	if c.nwait == 0 {
		return // nothing waits (accept passes what is ready at once in total rooms)
	}
	origins := make([]string, 0, len(c.wait))
	for o := range c.wait {
		origins = append(origins, o)
	}
	slices.Sort(origins)
	for progress := true; progress; {
		progress = false
		for _, o := range origins {
			for len(c.wait[o]) > 0 {
				head := c.wait[o][0]
				// Data and the acks that carry part of a message's
				// Deps wait alike (blocker is false without Deps).
				if _, blocked := c.blocker(head); blocked {
					break
				}
				c.wait[o] = c.wait[o][1:]
				c.nwait--
				c.pass(m, head)
				progress = true
			}
		}
	}
	for _, o := range origins {
		if len(c.wait[o]) == 0 {
			delete(c.wait, o)
		}
	}
}
