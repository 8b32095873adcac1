package chat

// Delivery: a room feeds stored envelopes to its ordering machine and acts
// on what the machine says (see room.go). Pushed and repaired envelopes
// reach here the same way, from the node's one receive pipeline
// (receive.go).

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/order"
)

// receive takes stored envelopes of the room that arrived from peer from:
// it forwards new pushed ones once (forward; rooms above the fanout
// threshold), feeds them to the machine, and returns the pulls to make at
// once for the origins a pushed envelope shows a gap in (an earlier seq of
// its origin is missing). A pull asks for the one origin's messages
// (pullRange). It goes to the origin if it is a live member of the room,
// else to the peer the envelope came from; in tree mode always to the
// latter, the neighbour that relayed it (over a kept link), which had the
// envelope that shows the gap and, most likely, the one before. Sent to
// the origin with the whole vector, the pulls of a large group under loss
// converged on the one peer that was also sending, over links opened on
// demand (N=50, tree, 20 % loss: the sender answered 790 statuses with
// 11,229 repaired messages in 10 s; 79 and 517 since).
//
// A message held for a dependency of another origin that never arrived is
// not pulled here: across origins, a dependency arriving after the message
// that names it is the normal case (different links, different queues),
// and pulling at once repaired messages still in flight (with every peer
// sending at N=30: 1,013 pulls where there were 3). It leaves a tail mark
// instead (tailpull.go), pulled from the peer that brought the message if
// the dependency has not come half an interval later.
//
// At most one pull per origin and room per AntiEntropyInterval/10, so a
// burst of messages behind one gap asks once (and a pull or repair frame
// that is lost is retried 100 ms later at the next message, not a quarter
// interval later: measured under 20 % loss at N=50, p99 to full delivery
// 1.9 s against 3.3 s).
func (r *room) receive(envs []*chatpb.Envelope, from string, forward bool) []gapPull {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == roomParted {
		return nil
	}
	cfg := r.env.cfg
	if forward && r.fanoutLocked() {
		// Gossip mode: forward once, on first receipt (this is it: the log
		// said the message is new).
		for _, env := range envs {
			if targets := r.targetsLocked(env.Origin, from); len(targets) > 0 {
				r.env.stats.forwarded.Add(1)
				pushTo(targets, env)
			}
		}
	}
	// In seq order per origin: a repair carries them so, a batch may not,
	// and [4, 3] behind want 3 is no gap.
	now := time.Now()
	sorted := slices.Clone(envs)
	slices.SortStableFunc(sorted, func(a, b *chatpb.Envelope) int {
		if c := strings.Compare(a.Origin, b.Origin); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	// An envelope shows a gap when its seq is past the next one its origin
	// needs, counting the envelopes before it.
	var gapOrigins []string
	// Per gap origin: the first seq missing and the highest received.
	var gapFrom, gapTop map[string]uint64
	if r.state.fed() {
		next := map[string]uint64{}
		for _, env := range sorted {
			want, ok := next[env.Origin]
			if !ok {
				want = r.m.WantOf(env.Origin)
			}
			switch {
			case env.Seq > want:
				if !slices.Contains(gapOrigins, env.Origin) {
					gapOrigins = append(gapOrigins, env.Origin)
					if gapFrom == nil {
						gapFrom, gapTop = map[string]uint64{}, map[string]uint64{}
					}
					gapFrom[env.Origin] = want
				}
				gapTop[env.Origin] = env.Seq // sorted: the last is the highest
			case env.Seq == want:
				want++
			}
			next[env.Origin] = want
		}
	}
	if forward {
		for _, env := range envs {
			r.hot.note(env.Origin, now)
		}
	}
	if r.env.cfg.Observer != nil {
		for _, env := range envs {
			if env.Kind == chatpb.Kind_KIND_CHAT {
				r.noteArrivalLocked(order.ID{Origin: env.Origin, Seq: env.Seq}, now)
			}
		}
	}
	if forward {
		r.feedLocked(envs) // arrival order, as pushed
	} else {
		r.feedLocked(sorted)
	}
	if mode := r.m.Mode(); mode == order.Causal || mode == order.Total {
		// Total rooms' data carries deps too (chat/order's causal stage
		// in front of the timestamp order).
		r.noteHeldDepsLocked(envs, from, now)
	}
	if len(gapOrigins) == 0 {
		return nil
	}
	if !forward {
		// A repair shows a gap too (it carried what its sender held, not
		// all we lack): not pulled now, the repair answered a pull or a
		// status already, but remembered, so the next anti-entropy round
		// pulls it if it is still open (retryGapPullsLocked). Without
		// this a hole behind repaired messages waited for the rounds'
		// slice sweep.
		for _, origin := range gapOrigins {
			if _, ok := r.gapPulls[origin]; !ok && len(r.gapPulls) < maxGapPulls {
				r.gapPulls[origin] = gapMark{} // never pulled: due at the next round, no bar to a pull now
			}
		}
		return nil
	}
	viaRelay := r.env.overlay != nil && r.env.overlay.treeMode()
	var pulls []gapPull
	for _, origin := range gapOrigins {
		if m, ok := r.gapPulls[origin]; ok && now.Sub(m.last) < cfg.AntiEntropyInterval/10 {
			continue
		}
		if len(r.gapPulls) >= maxGapPulls {
			clear(r.gapPulls) // forgetting allows an early extra pull, and leaves holes to the rounds
		}
		r.gapPulls[origin] = gapMark{last: now}
		_, member := r.members[origin]
		peer := gapPullPeer(origin, from, member, viaRelay)
		missing := r.m.Gaps(origin, maxPullSeqs)
		if len(missing) == 0 {
			// The machine holds nothing of origin back (it refused the
			// message: full): the holes are at most the seqs between the
			// gap and the highest one received.
			for s := gapFrom[origin]; s < gapTop[origin] && len(missing) < maxPullSeqs; s++ {
				missing = append(missing, s)
			}
		}
		pulls = append(pulls, gapPull{peer: peer, origin: origin, missing: missing})
	}
	return pulls
}

// gapPull asks peer for the messages of origin this node lacks (a status
// for that origin alone: pullRange), naming the holes below the highest
// one the machine holds back (missing, gappull.go).
type gapPull struct {
	peer, origin string
	missing      []uint64
}

// pullRange returns the range of origins [lo, hi) that holds origin
// alone: the origins are strings, and origin+"\x00" is the least one
// greater than origin.
func pullRange(origin string) (lo, hi string) { return origin, origin + "\x00" }

// feedLocked gives stored envelopes to the machine and acts on the output.
// Caller holds r.mu.
func (r *room) feedLocked(envs []*chatpb.Envelope) {
	if len(envs) == 0 {
		return
	}
	if !r.state.fed() {
		return // stored; the restore replays them (and shows what was never shown)
	}
	metas := make([]order.Meta, 0, len(envs))
	for _, env := range envs {
		m := metaOf(env)
		// A dep on an origin this node never accepts (not a member
		// identity it has seen: memberkeys.go) would hold the message
		// forever; it waits for what it can get.
		for o := range m.Deps {
			if !r.env.isMember(o) {
				delete(m.Deps, o)
			}
		}
		if m.Kind == order.KindData {
			if len(r.cache) >= maxCache {
				clear(r.cache) // deliveries fall back to the log
			}
			r.cache[m.ID()] = env
		}
		metas = append(metas, m)
	}
	out, err := r.m.Receive(metas...)
	if err != nil {
		r.env.stats.invalid.Add(1)
		r.env.logger.Printf("#%s: %v", r.name, err)
	}
	r.handleOutputLocked(out)
	r.reportConflictsLocked()
}

// handleOutputLocked acts on what the machine returned: sign, store and
// send our control messages, show deliveries, note refusals. Caller holds
// r.mu.
func (r *room) handleOutputLocked(out order.Output) {
	env := r.env
	for _, meta := range out.Send {
		e := envelopeFor(meta, r.name)
		SignEnvelope(env.id, e)
		if _, err := storeEnvelope(env.ctx, e, env.log.Append); err != nil {
			env.emit(hearsay.Event{Type: hearsay.EventError, Text: "ordering message for #" + r.name + " not stored: " + err.Error()})
			continue
		}
		env.stats.stored.Add(1) // not r.received: that counts chat messages
		env.stats.controlSent.Add(1)
		// That synced append applied and fsynced every deferred append
		// before it: the outbox entries (all committed earlier, under this
		// lock) are durable now.
		r.releaseLocked(r.outBase + uint64(len(r.outbox)))
		if len(r.outbox) > 0 {
			// An earlier message of ours waits for its fsync: this one
			// follows it, so peers receive our seqs in order.
			r.outbox = append(r.outbox, outEntry{env: e, durable: true})
			continue
		}
		r.disseminateLocked(e)
	}
	// In the machine's order, late ones among them: an origin's late
	// message precedes its later seqs delivered in the same output.
	for _, meta := range out.Show {
		if meta.Late {
			r.late.Add(1)
		}
		r.deliverLocked(meta, meta.Late)
	}
	for _, id := range out.Refused {
		delete(r.cache, id)
		r.refused = true
		env.stats.heldDrops.Add(1)
	}
}

// deliverLocked shows one delivered (or late) data message. Caller holds
// r.mu.
func (r *room) deliverLocked(meta order.Meta, late bool) {
	id := meta.ID()
	e := r.cache[id]
	delete(r.cache, id)
	if !late {
		r.delivered.Add(1)
		r.env.stats.delivered.Add(1)
	}
	// Shown once, by whichever run of this peer delivers it first
	// (shown.go): a replay is silent up to the marks and shows the rest.
	if id.Seq <= r.env.shown.get(r.name, id.Origin) {
		return
	}
	if err := r.env.shown.set(r.name, id.Origin, id.Seq); err != nil {
		r.env.logger.Printf("#%s: %v", r.name, err)
	}
	if !r.state.shown() && r.env.shown.fresh {
		// A data directory from before the marks: its replay is the
		// history earlier runs showed.
		return
	}
	if r.arrived != nil {
		r.observeDeliveredLocked(id)
	}
	if e == nil {
		rec, err := r.env.log.Get(r.env.ctx, r.name, id.Origin, id.Seq)
		if err == nil {
			e, err = decodeStored(rec.Data)
		}
		if err != nil {
			r.env.emit(hearsay.Event{Type: hearsay.EventError, Text: fmtMsgErr(id, r.name, err)})
			return
		}
	}
	ev, ok := r.env.event(e)
	if !ok {
		return
	}
	ev.Late = late
	if !r.state.shown() {
		// Shown by a restart's replay: it arrived while we were away.
		ev.Backlog = true
	}
	r.env.emit(ev)
}

func fmtMsgErr(id order.ID, room string, err error) string {
	return "message " + hearsay.MsgID{Origin: id.Origin, Seq: id.Seq}.String() + " of #" + room + " cannot be shown: " + err.Error()
}

// metaOf returns the ordering fields of a verified envelope.
func metaOf(env *chatpb.Envelope) order.Meta {
	m := order.Meta{
		Origin: env.Origin, Seq: env.Seq, Lamport: env.Lamport,
		Epoch: env.Epoch, Prev: env.Prev, Cut: env.Cut, Global: env.Global, Candidate: env.Candidate,
	}
	switch env.Kind {
	case chatpb.Kind_KIND_ACK:
		m.Kind = order.KindAck
	case chatpb.Kind_KIND_STAMP:
		m.Kind = order.KindStamp
	case chatpb.Kind_KIND_SYNC:
		m.Kind = order.KindSync
	default:
		// Chat, system, direct and receipt messages all take their place in
		// the origin's stream; which of them are shown is decided at delivery.
		m.Kind = order.KindData
	}
	if len(env.Deps) > 0 {
		m.Deps = make(map[string]uint64, len(env.Deps))
		for _, d := range env.Deps {
			m.Deps[d.Origin] = d.Seq
		}
	}
	for _, s := range env.Stamped {
		m.Stamped = append(m.Stamped, order.ID{Origin: s.Origin, Seq: s.Seq})
	}
	return m
}

// messageEvent turns a data envelope into the event to show; ok is false
// for kinds that are not shown (control messages, receipts, direct
// messages to another peer).
func (n *Node) messageEvent(env *chatpb.Envelope) (hearsay.Event, bool) {
	typ := hearsay.EventMessage
	switch env.Kind {
	case chatpb.Kind_KIND_CHAT:
	case chatpb.Kind_KIND_SYSTEM:
		// Never a bare system line: peers cannot send them (the receive
		// pipeline refuses them), and one kept in an older log is shown
		// as what it is, a message from its origin.
	case chatpb.Kind_KIND_DIRECT:
		if env.To != n.id.ID && env.Origin != n.id.ID {
			return hearsay.Event{}, false
		}
	default:
		return hearsay.Event{}, false
	}
	id := hearsay.MsgID{Origin: env.Origin, Seq: env.Seq}
	return hearsay.Event{Type: typ, Time: time.Unix(0, env.SentUnixNano), Room: env.Room,
		From: n.displayName(env.Origin, env.Nick), FromID: env.Origin, ID: id.String(),
		Text: string(env.Body), Self: env.Origin == n.id.ID, Backlog: n.backlog.take(env), State: ownState(env, n.id.ID)}, true
}
