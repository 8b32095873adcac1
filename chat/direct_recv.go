package chat

// Receiving direct-message frames: sealed messages (ours to open, or to
// hold for another peer), acks and receipts (direct.go explains the
// protocol).

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// handleDirect takes a sealed message from peer from: ours to open, or one
// to hold for someone else.
func (n *Node) handleDirect(m *chatpb.Direct, from string) {
	d := n.dm
	s := m.GetSealed()
	if err := checkSealed(s); err != nil {
		d.count(err)
		return
	}
	if s.To != n.id.ID {
		if !m.Hold {
			d.misaddressed.Add(1)
			n.sendTo(from, directAckFrame(s.Id, ackRefused, 0))
			return
		}
		n.sendTo(from, directAckFrame(s.Id, n.holdFor(s, from), 0))
		return
	}
	body, err := openSealed(d.key.priv, n.id.ID, s)
	if err != nil {
		d.count(err)
		n.logger.Printf("direct message from %s: %v", from, err)
		n.sendTo(from, directAckFrame(s.Id, ackRefused, 0))
		return
	}
	if !n.speakers.knows(body.Origin, body.OriginKey) {
		// Signed by a key that is no member identity we know: perhaps
		// one that joined while we were away. Not refused for good, so
		// a holder keeps it for a later try.
		d.invalid.Add(1)
		n.sendTo(from, directAckFrame(s.Id, ackLater, 0))
		return
	}
	now := time.Now()
	d.mu.Lock()
	old, err := d.record(s.Id)
	if err == nil && old == nil && d.rcptBy[body.Origin] >= d.cfg.MaxReceiptsPerSender {
		// The sender has not acked the receipts of what it sent before
		// (DirectConfig.MaxReceiptsPerSender): not now.
		d.mu.Unlock()
		d.deferred.Add(1)
		n.sendTo(from, directAckFrame(s.Id, ackLater, 0))
		return
	}
	if err == nil && old == nil {
		rec := &chatpb.DirectRecord{Id: s.Id, Peer: body.Origin, Nick: body.Nick, Text: body.Text, Action: body.Action,
			SentUnixNano: body.SentUnixNano, State: stateDelivered, StoredUnixNano: now.UnixNano()}
		var op storeOp
		var r *chatpb.Receipt
		op, r, err = receiptOp(n.id, rec, stateDelivered)
		if err == nil {
			// One transaction (one commit and its fsyncs) for both.
			err = d.putRecordLocked(rec, true, op)
		}
		if err == nil {
			d.rcptBy[r.To]++
		}
		d.mu.Unlock()
		if err != nil {
			n.logger.Printf("store direct message: %v", err)
			return // not acked: sent again
		}
		d.received.Add(1)
		n.emit(n.directEvent(hearsay.EventDirect, rec))
		// The ack first: on the same stream, the sender sees sent before
		// delivered. Only this receipt: the retry loop sends the others.
		n.sendTo(from, directAckFrame(s.Id, ackStored, 0))
		if slices.Contains(n.liveIDs(), r.To) {
			n.sendTo(r.To, receiptFrame(r))
		}
		return
	}
	d.mu.Unlock()
	if err != nil {
		n.logger.Printf("read direct message: %v", err)
		return
	}
	d.replays.Add(1) // a resend, a copy from another holder, or a replay
	n.sendTo(from, directAckFrame(s.Id, ackStored, 0))
}

// holdFor stores a sealed message for its offline recipient, within the
// quotas, and returns the ack result.
func (n *Node) holdFor(s *chatpb.Sealed, from string) uint32 {
	d := n.dm
	d.mu.Lock()
	defer d.mu.Unlock()
	id := string(s.Id)
	if h, ok := d.held[id]; ok {
		// The same message again (a resend, or another submitter's copy),
		// or another message under its ID. Answering "held" to the second
		// would let whoever got there first decide what the recipient
		// receives from this holder: the sender is told to ask another.
		if h.to == s.To && h.size == len(s.Ciphertext) && d.heldCiphertextIsLocked(id, s.Ciphertext) {
			return ackHeld
		}
		d.holdRefused.Add(1)
		return ackFull
	}
	if len(d.held) >= d.cfg.MaxHeld || d.bySub[from] >= d.cfg.MaxHeldPerSender || d.byTo[s.To] >= d.cfg.MaxHeldPerRecipient {
		d.holdRefused.Add(1)
		return ackFull
	}
	// Only the fields we know are kept: unknown ones would make a held
	// message larger than the quota's 72 KiB reckoning.
	s = proto.Clone(s).(*chatpb.Sealed)
	s.ProtoReflect().SetUnknown(nil)
	h := &chatpb.HeldRecord{Sealed: s, Submitter: from, StoredUnixNano: time.Now().UnixNano()}
	b, err := proto.Marshal(h)
	if err == nil {
		err = d.store.apply(storeOp{bucket: bucketHeld, key: s.Id, val: b})
	}
	if err != nil {
		n.logger.Printf("hold direct message: %v", err)
		return ackFull
	}
	d.addHeldLocked(id, h)
	d.wake() // the recipient may be reachable from here
	return ackHeld
}

// heldCiphertextIsLocked reports whether the message held under id has
// ciphertext ct.
func (d *directState) heldCiphertextIsLocked(id string, ct []byte) bool {
	b, err := d.store.get(bucketHeld, []byte(id))
	if err != nil || b == nil {
		return false
	}
	var h chatpb.HeldRecord
	return proto.Unmarshal(b, &h) == nil && h.Sealed != nil && bytes.Equal(h.Sealed.Ciphertext, ct)
}

// receiptOp signs a receipt for an incoming record: the store write that
// keeps it until its sender acks it, and the receipt.
func receiptOp(id *Identity, rec *chatpb.DirectRecord, state uint32) (storeOp, *chatpb.Receipt, error) {
	r := &chatpb.Receipt{Origin: id.ID, OriginKey: id.Pub, To: rec.Peer, Id: rec.Id, State: state, UnixNano: time.Now().UnixNano()}
	r.Signature = id.Sign(receiptSigningBytes(r))
	b, err := proto.Marshal(r)
	if err != nil {
		return storeOp{}, nil, fmt.Errorf("encode receipt: %w", err)
	}
	return storeOp{bucket: bucketRcpt, key: rcptKey(r.To, rec.Id, state), val: b}, r, nil
}

// rcptKey is a stored receipt's key: the sender it goes to first, so one
// sender's receipts are a prefix scan.
func rcptKey(to string, id []byte, state uint32) []byte {
	k := make([]byte, 0, len(to)+len(id)+1)
	return append(append(append(k, to...), id...), byte(state))
}

// sendReceipts sends the stored receipts for peer to (all peers when to
// is empty) that are reachable now.
// Receipts for a sender that does not come back within
// DirectConfig.Retention are dropped (as holders drop what nobody
// collects), so the bucket stays bounded by what arrives in that time.
func (n *Node) sendReceipts(to string) {
	d := n.dm
	live := n.liveIDs()
	cutoff := time.Now().Add(-d.cfg.Retention).UnixNano()
	var rs []*chatpb.Receipt
	var expired []storeOp
	var expiredTo []string
	var reach []string // senders without a link to us
	_ = d.store.each(bucketRcpt, []byte(to), func(k, v []byte) error {
		var r chatpb.Receipt
		switch {
		case proto.Unmarshal(v, &r) != nil || r.UnixNano < cutoff:
			expired = append(expired, storeOp{bucket: bucketRcpt, key: bytes.Clone(k)})
			expiredTo = append(expiredTo, r.To)
		case (to == "" || r.To == to) && slices.Contains(live, r.To):
			rs = append(rs, &r)
		case !slices.Contains(reach, r.To):
			reach = append(reach, r.To)
		}
		return nil
	})
	if len(expired) > 0 {
		d.mu.Lock()
		if err := d.store.apply(expired...); err != nil {
			n.logger.Printf("drop expired receipts: %v", err)
		} else {
			for _, t := range expiredTo {
				d.dropRcptLocked(t)
			}
		}
		d.mu.Unlock()
	}
	for _, r := range rs {
		n.sendTo(r.To, receiptFrame(r))
	}
	// A sender that is a live member with no link to us (a large group
	// keeps few links) gets one: its receipts go at the next round.
	for _, id := range reach {
		if n.liveMember(id) {
			n.reach(id)
		}
	}
}

// dropRcptLocked counts one receipt for sender to as gone.
func (d *directState) dropRcptLocked(to string) {
	if d.rcptBy[to]--; d.rcptBy[to] <= 0 {
		delete(d.rcptBy, to)
	}
}

// handleDirectAck acts on an ack from peer from.
func (n *Node) handleDirectAck(a *chatpb.DirectAck, from string) {
	d := n.dm
	if len(a.Id) != directIDBytes {
		d.invalid.Add(1)
		return
	}
	id := string(a.Id)
	if a.Result == ackReceipt {
		if a.State != stateDelivered && a.State != stateRead {
			d.invalid.Add(1)
			return
		}
		// Stored under the sender's ID: only the message's sender may
		// ack its receipt.
		k := rcptKey(from, a.Id, a.State)
		d.mu.Lock()
		defer d.mu.Unlock()
		b, err := d.store.get(bucketRcpt, k)
		if err != nil || b == nil {
			if rec, rerr := d.record(a.Id); rerr == nil && rec != nil && !rec.Outgoing && rec.Peer != from {
				d.misaddressed.Add(1) // a receipt for another peer's message
			} else {
				d.replays.Add(1) // acked before: the ack of a resent receipt
			}
			return
		}
		if err := d.store.apply(storeOp{bucket: bucketRcpt, key: k}); err != nil {
			n.logger.Printf("drop receipt: %v", err)
			return
		}
		d.dropRcptLocked(from)
		return
	}
	d.mu.Lock()
	if h := d.held[id]; h != nil && (a.Result == ackStored || a.Result == ackRefused) && h.to == from {
		// The recipient itself (authenticated stream) has it, or will
		// never take it (it does not decrypt or verify): done. Kept, a
		// refused message would be pushed to the recipient again every
		// retry for the whole retention time, a flood a member could
		// start with garbage addressed to anyone.
		if err := d.dropHeldLocked(id); err != nil {
			n.logger.Printf("drop held message: %v", err)
		}
		d.mu.Unlock()
		return
	}
	o := d.out[id]
	if o == nil {
		d.mu.Unlock()
		d.replays.Add(1) // an ack for a message no longer pending (or never ours)
		return
	}
	switch a.Result {
	case ackStored:
		if from != o.rec.Peer {
			d.mu.Unlock()
			d.misaddressed.Add(1)
			return
		}
		o.stored = true
	case ackHeld, ackFull:
		if slices.Contains(o.rec.Holders, from) {
			d.mu.Unlock()
			d.replays.Add(1) // the answer to a repeated request
			return
		}
		if _, asked := o.asked[from]; !asked {
			d.mu.Unlock()
			if slices.Contains(o.rec.Full, from) {
				d.replays.Add(1) // a repeated "full"
			} else {
				d.misaddressed.Add(1)
			}
			return
		}
		delete(o.asked, from)
		if a.Result == ackFull {
			if !slices.Contains(o.rec.Full, from) {
				o.rec.Full = append(o.rec.Full, from)
			}
			o.fullAt[from] = time.Now() // asked again after fullRetryRounds
			d.mu.Unlock()
			d.wake() // ask another holder
			return
		}
		// Held, also by a holder that was full before and has room now.
		o.rec.Full = slices.DeleteFunc(o.rec.Full, func(x string) bool { return x == from })
		delete(o.fullAt, from)
		if !slices.Contains(o.rec.Holders, from) {
			o.rec.Holders = append(o.rec.Holders, from)
		}
	default:
		// Refused (ackRefused), or unknown: the other end will not take
		// it; the retry loop tries again or elsewhere.
		d.mu.Unlock()
		n.logger.Printf("direct message %s refused by %s (%d)", directID(a.Id), from, a.Result)
		return
	}
	var changed *chatpb.DirectRecord
	if o.rec.State < stateSent {
		o.rec.State = stateSent
		changed = proto.Clone(o.rec).(*chatpb.DirectRecord)
	}
	if err := d.putRecordLocked(o.rec, false); err != nil {
		n.logger.Printf("store direct state: %v", err)
	}
	d.mu.Unlock()
	if changed != nil { // built without d.mu: directEvent takes it
		n.emit(n.directEvent(hearsay.EventState, changed))
	}
}

// handleReceipt records a recipient's signed receipt and acks it.
func (n *Node) handleReceipt(r *chatpb.Receipt, from string) {
	d := n.dm
	if err := checkReceipt(r); err != nil {
		d.count(err)
		n.logger.Printf("receipt from %s: %v", from, err)
		return
	}
	if r.To != n.id.ID {
		d.misaddressed.Add(1)
		return
	}
	d.mu.Lock()
	rec, err := d.record(r.Id)
	if err != nil || rec == nil || !rec.Outgoing || rec.Peer != r.Origin {
		// Not one of our messages, or signed by someone it was not for.
		d.mu.Unlock()
		d.misaddressed.Add(1)
		return
	}
	var changed []*chatpb.DirectRecord // shown after d.mu: directEvent takes it
	if r.State <= rec.State {
		d.replays.Add(1) // already recorded; ack again so it stops
	} else {
		if rec.State < stateSent {
			// The receipt overtook the ack (or the ack was lost): a
			// delivered message was sent, and the user sees each step.
			rec.State = stateSent
			changed = append(changed, proto.Clone(rec).(*chatpb.DirectRecord))
		}
		rec.State = r.State
		rec.Sealed = nil // delivered: never sent again
		if err := d.putRecordLocked(rec, false); err != nil {
			d.mu.Unlock()
			n.logger.Printf("store receipt: %v", err)
			return
		}
		delete(d.out, string(r.Id))
		changed = append(changed, rec)
	}
	d.mu.Unlock()
	for _, rec := range changed {
		n.emit(n.directEvent(hearsay.EventState, rec))
	}
	n.sendTo(from, directAckFrame(r.Id, ackReceipt, r.State))
}
