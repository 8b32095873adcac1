package order

import "slices"

// causalState is the causal mode's stage: per-origin queues of accepted
// messages waiting for their dependencies.
type causalState struct {
	delivered map[string]uint64 // origin -> highest seq delivered (or consumed)
	wait      map[string][]Meta // origin -> accepted, undelivered, in seq order
	nwait     int
}

func (c *causalState) init() {
	c.delivered = map[string]uint64{}
	c.wait = map[string][]Meta{}
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

// depsFor returns the delivered vector without self, as sent in Deps.
func (c *causalState) depsFor(self string) map[string]uint64 {
	d := make(map[string]uint64, len(c.delivered))
	for o, s := range c.delivered {
		if o != self && s > 0 {
			d[o] = s
		}
	}
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
	}
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

// settle delivers every queue head whose dependencies are met, scanning
// origins in sorted order until a pass delivers nothing, so the output is
// deterministic.
func (c *causalState) settle(m *Machine) {
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
				if _, blocked := c.blocker(head); blocked && head.Kind == KindData {
					break
				}
				c.wait[o] = c.wait[o][1:]
				c.nwait--
				c.delivered[o] = head.Seq
				progress = true
				if head.Kind == KindData {
					m.deliver(head)
				}
			}
		}
	}
	for _, o := range origins {
		if len(c.wait[o]) == 0 {
			delete(c.wait, o)
		}
	}
}
