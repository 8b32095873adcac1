package chat

// Read receipts, conversation history, undelivered messages, and the
// retry loop that delivers, hands held messages over and resends
// receipts (direct.go explains the protocol).

import (
	"crypto/hpke"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// MarkDirectRead records that the user saw the conversation with who (the
// REPL calls it when a conversation's messages are shown in the active
// window) and, unless DirectConfig.NoReadReceipts, tells the sender.
// Blocks for file I/O.
func (n *Node) MarkDirectRead(who string) error {
	p, err := n.resolveDirect(who)
	if err != nil {
		return err
	}
	d := n.dm
	recs, err := d.conversation(p.id, 0)
	if err != nil {
		return err
	}
	d.mu.Lock()
	for _, rec := range recs {
		if rec.Outgoing || rec.State >= stateRead {
			continue
		}
		rec.State = stateRead
		var extra []storeOp
		if !d.cfg.NoReadReceipts {
			var op storeOp
			if op, _, err = receiptOp(n.id, rec, stateRead); err != nil {
				break
			}
			extra = append(extra, op)
		}
		err = d.putRecordLocked(rec, false, extra...)
		if err != nil {
			break
		}
		if len(extra) > 0 {
			d.rcptBy[rec.Peer]++
		}
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	n.sendReceipts(p.id)
	return nil
}

// conversation returns the stored messages with peer, oldest first; the
// last limit when limit > 0.
func (d *directState) conversation(peer string, limit int) ([]*chatpb.DirectRecord, error) {
	var ids [][]byte
	err := d.store.each(bucketConv, []byte(peer+"/"), func(_, v []byte) error {
		ids = append(ids, slices.Clone(v))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read conversation: %w", err)
	}
	if limit > 0 && len(ids) > limit {
		ids = ids[len(ids)-limit:]
	}
	out := make([]*chatpb.DirectRecord, 0, len(ids))
	for _, id := range ids {
		r, err := d.record(id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// DirectHistory returns up to limit past messages of the conversation with
// who (0: all), oldest first, as history events (To, State set). Blocks
// for file I/O.
func (n *Node) DirectHistory(who string, limit int) ([]hearsay.Event, error) {
	p, err := n.resolveDirect(who)
	if err != nil {
		return nil, err
	}
	recs, err := n.dm.conversation(p.id, limit)
	if err != nil {
		return nil, err
	}
	evs := make([]hearsay.Event, len(recs))
	for i, r := range recs {
		evs[i] = n.directEvent(hearsay.EventHistory, r)
	}
	return evs, nil
}

// Undelivered returns this node's own direct messages that no delivery
// receipt has confirmed yet, oldest first, as direct events with State.
func (n *Node) Undelivered() []hearsay.Event {
	d := n.dm
	d.mu.Lock()
	recs := make([]*chatpb.DirectRecord, 0, len(d.out))
	for _, o := range d.out {
		recs = append(recs, proto.Clone(o.rec).(*chatpb.DirectRecord))
	}
	d.mu.Unlock()
	slices.SortFunc(recs, func(a, b *chatpb.DirectRecord) int { return cmpInt64(a.StoredUnixNano, b.StoredUnixNano) })
	evs := make([]hearsay.Event, len(recs))
	for i, r := range recs {
		evs[i] = n.directEvent(hearsay.EventDirect, r)
	}
	return evs
}

// directEvent is the event showing rec.
func (n *Node) directEvent(typ string, rec *chatpb.DirectRecord) hearsay.Event {
	self, selfNick := n.id.ID, n.Nick()
	ev := hearsay.Event{Type: typ, Time: time.Unix(0, rec.SentUnixNano), ID: directID(rec.Id), Action: rec.Action}
	peerName := n.displayName(rec.Peer, n.directNick(rec))
	if rec.Outgoing {
		ev.From, ev.FromID, ev.To, ev.ToID, ev.Self = n.displayName(self, selfNick), self, peerName, rec.Peer, true
		ev.State = stateNames[rec.State]
	} else {
		ev.From, ev.FromID, ev.To, ev.ToID = peerName, rec.Peer, n.displayName(self, selfNick), self
	}
	if typ != hearsay.EventState {
		ev.Text = rec.Text
	} else {
		ev.Text = ev.State
		ev.Time = time.Now()
	}
	return ev
}

// directNick is the best nick known for the other end of rec.
func (n *Node) directNick(rec *chatpb.DirectRecord) string {
	n.mu.Lock()
	m := n.members[rec.Peer]
	n.mu.Unlock()
	if m != nil && m.Valid {
		return m.Nick
	}
	if !rec.Outgoing && rec.Nick != "" {
		return rec.Nick
	}
	n.dm.mu.Lock()
	defer n.dm.mu.Unlock()
	if k := n.dm.keys[rec.Peer]; k != nil && k.Nick != "" {
		return k.Nick
	}
	return "?"
}

// directLoop retries deliveries, hands held messages to recipients that
// are back, sends stored receipts and ends retention, every
// RetryInterval and whenever woken (a stream opened, a holder was full).
func (n *Node) directLoop() {
	defer n.wg.Done()
	d := n.dm
	tick := time.NewTicker(d.cfg.RetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-d.kick:
		}
		n.deliverOut()
		n.pushHeld()
		n.sendReceipts("")
	}
}

// maxPushPerRound bounds the held messages pushed to one recipient per
// round (the rest follow in the next rounds).
const maxPushPerRound = 256

// pushHeld sends held messages to their recipients that are reachable,
// and drops those past retention.
func (n *Node) pushHeld() {
	d := n.dm
	now := time.Now()
	live := n.liveIDs()
	type push struct {
		id []byte
		to string
	}
	var pushes []push
	var reach []string // recipients without a link to us
	perTo := make(map[string]int)
	d.mu.Lock()
	for id, h := range d.held {
		if now.Sub(time.Unix(0, h.stored)) > d.cfg.Retention {
			if err := d.dropHeldLocked(id); err != nil {
				n.logger.Printf("retention of held message: %v", err)
			}
			continue
		}
		if !slices.Contains(live, h.to) {
			reach = append(reach, h.to)
			continue
		}
		if now.Sub(h.lastPush) < d.cfg.RetryInterval || perTo[h.to] >= maxPushPerRound {
			continue
		}
		h.lastPush = now
		perTo[h.to]++
		pushes = append(pushes, push{id: []byte(id), to: h.to})
	}
	d.mu.Unlock()
	// A recipient that is back but has no link to us (a large group keeps
	// few links) gets one: its messages go at the next round.
	slices.Sort(reach)
	for _, to := range slices.Compact(reach) {
		if n.liveMember(to) {
			n.reach(to)
		}
	}
	for _, p := range pushes {
		b, err := d.store.get(bucketHeld, p.id)
		var h chatpb.HeldRecord
		if err != nil || b == nil || proto.Unmarshal(b, &h) != nil {
			continue
		}
		n.sendTo(p.to, directFrame(h.Sealed, false))
	}
}

// directStats fills the direct-message counters of st.
func (n *Node) directStats(st *hearsay.Stats) {
	d := n.dm
	d.mu.Lock()
	st.DirectHeld = len(d.held)
	d.mu.Unlock()
	st.DirectSent, st.DirectReceived = d.sent.Load(), d.received.Load()
	st.DirectForged, st.DirectInvalid = d.forged.Load(), d.invalid.Load()
	st.DirectMisaddressed, st.DirectReplays = d.misaddressed.Load(), d.replays.Load()
	st.DirectHoldRefused, st.DirectDeferred = d.holdRefused.Load(), d.deferred.Load()
}

// ResolveDirect names the peer a direct message to who would go to: its
// peer ID and display name. who is a peer ID, ID prefix, nick or display
// name of a member (live or not), or of a peer whose encryption key is
// known. Never blocks for long.
func (n *Node) ResolveDirect(who string) (id, name string, err error) {
	p, err := n.resolveDirect(who)
	if err != nil {
		return "", "", err
	}
	return p.id, n.displayName(p.id, p.nick), nil
}

// DirectSizes returns, for a direct message of textBytes bytes from a
// peer with a 5-byte nick, the encoded size of its Direct frame (what
// crosses the chat connection, before the 4-byte length and the TLS
// record) and of the record a holder stores (its bbolt value; the key is
// the 16-byte ID). For measurements (BenchmarkDirectLive).
func DirectSizes(textBytes int) (wire, held int) {
	id, err := NewIdentity()
	if err != nil {
		return 0, 0
	}
	k, err := newDirectKey()
	if err != nil {
		return 0, 0
	}
	nonce := make([]byte, directIDBytes)
	mid := deriveDirectID(id.ID, nonce)
	body := &chatpb.DirectBody{Origin: id.ID, OriginKey: id.Pub, To: id.ID, Id: mid, Nonce: nonce, SentUnixNano: time.Now().UnixNano(),
		Nick: "alice", Text: strings.Repeat("x", textBytes)}
	body.Signature = id.Sign(directBodySigningBytes(body))
	pt, _ := proto.Marshal(body)
	ct, err := hpke.Seal(k.priv.PublicKey(), directKDF, directAEAD, sealInfo(id.ID, mid), pt)
	if err != nil {
		return 0, 0
	}
	s := &chatpb.Sealed{Id: mid, To: id.ID, SentUnixNano: body.SentUnixNano, Ciphertext: ct}
	h := &chatpb.HeldRecord{Sealed: s, Submitter: id.ID, StoredUnixNano: body.SentUnixNano}
	return proto.Size(directFrame(s, false)), proto.Size(h)
}
