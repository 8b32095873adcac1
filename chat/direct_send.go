package chat

// Sending a direct message: resolve the recipient, sign and seal, store
// the readable copy, and deliver it to the recipient or to holders
// (direct.go explains the protocol).

import (
	"context"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// directPeer is who a direct message goes to.
type directPeer struct {
	id, nick string
}

// resolveDirect finds the recipient: a member (live or not) by ID, prefix,
// nick or display name, or else a peer whose key we know by its ID or its
// signed nick.
func (n *Node) resolveDirect(who string) (directPeer, error) {
	who = strings.TrimPrefix(strings.TrimSpace(who), "@")
	m, err := n.resolvePeer(who)
	if err == nil {
		return directPeer{id: m.ID, nick: m.Nick}, nil
	}
	if errors.Is(err, ErrAmbiguousPeer) {
		return directPeer{}, err
	}
	n.mu.Lock()
	if m := n.members[who]; m != nil {
		n.mu.Unlock()
		return directPeer{id: m.ID, nick: m.Nick}, nil
	}
	n.mu.Unlock()
	d := n.dm
	d.mu.Lock()
	defer d.mu.Unlock()
	var found []*chatpb.EncKey
	for id, k := range d.keys {
		if id != n.id.ID && (id == who || k.Nick == who || (len(who) >= 4 && strings.HasPrefix(id, who))) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return directPeer{id: found[0].PeerId, nick: found[0].Nick}, nil
	case 0:
		return directPeer{}, fmt.Errorf("%w: nobody is called %q", ErrUnknownPeer, who)
	}
	return directPeer{}, fmt.Errorf("%w: %q matches %d peers; use the peer ID", ErrAmbiguousPeer, who, len(found))
}

// SendDirect sends text to one peer (peer ID, ID prefix, nick or display
// name), end-to-end encrypted, and returns the message ID (hex). The
// message is stored (pending) and shown as a direct event before it
// returns; delivery continues in the background (to the recipient, or to
// holders while it is offline), and state events follow. It blocks for
// file I/O and, when the recipient is online but its key has not arrived
// yet, until the key arrives or ctx ends. Safe for concurrent use.
func (n *Node) SendDirect(ctx context.Context, who, text string) (string, error) {
	return n.sendDirect(ctx, who, text, false)
}

// SendDirectAction sends a /me action ("* alice waves") to one peer, as
// SendDirect.
func (n *Node) SendDirectAction(ctx context.Context, who, text string) (string, error) {
	return n.sendDirect(ctx, who, text, true)
}

func (n *Node) sendDirect(ctx context.Context, who, text string, action bool) (string, error) {
	if _, err := n.active(); err != nil {
		return "", err
	}
	if len(text) > n.cfg.MaxBodyBytes || len(text) > MaxBodyBytes {
		return "", fmt.Errorf("%w: %d bytes", ErrTooLarge, len(text))
	}
	if !utf8.ValidString(text) || text == "" {
		return "", errors.New("direct message: empty or not UTF-8")
	}
	to, err := n.resolveDirect(who)
	if err != nil {
		return "", err
	}
	if to.id == n.id.ID {
		return "", errors.New("direct message: that is you")
	}
	pub, err := n.waitEncKey(ctx, to.id)
	if err != nil {
		return "", err
	}
	d := n.dm
	d.mu.Lock()
	full := len(d.out) >= d.cfg.MaxPending
	d.mu.Unlock()
	if full {
		return "", fmt.Errorf("%w (%d): wait for deliveries", ErrTooManyPending, d.cfg.MaxPending)
	}
	nonce := make([]byte, directIDBytes)
	rand.Read(nonce)
	id := deriveDirectID(n.id.ID, nonce)
	now := time.Now()
	nick := n.Nick()
	body := &chatpb.DirectBody{Origin: n.id.ID, OriginKey: n.id.Pub, To: to.id, Id: id, Nonce: nonce,
		SentUnixNano: now.UnixNano(), Nick: nick, Text: text, Action: action}
	body.Signature = n.id.Sign(directBodySigningBytes(body))
	pt, err := proto.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode direct message: %w", err)
	}
	ct, err := hpke.Seal(pub, directKDF, directAEAD, sealInfo(to.id, id), pt)
	if err != nil {
		return "", fmt.Errorf("seal direct message: %w", err)
	}
	rec := &chatpb.DirectRecord{Id: id, Peer: to.id, Outgoing: true, Nick: nick, Text: text, Action: action,
		SentUnixNano: now.UnixNano(), State: statePending, StoredUnixNano: now.UnixNano(),
		Sealed: &chatpb.Sealed{Id: id, To: to.id, SentUnixNano: now.UnixNano(), Ciphertext: ct}}
	d.mu.Lock()
	err = d.putRecordLocked(rec, true)
	if err == nil {
		d.out[string(id)] = newOutMsg(rec)
	}
	d.mu.Unlock()
	if err != nil {
		return "", err
	}
	d.sent.Add(1)
	n.emit(n.directEvent(hearsay.EventDirect, rec))
	n.deliverOut()
	return directID(id), nil
}

// waitEncKey returns the recipient's public key; for a live member whose
// key has not arrived it asks for it and waits (greetings.go).
func (n *Node) waitEncKey(ctx context.Context, id string) (hpke.PublicKey, error) {
	d := n.dm
	deadline := time.NewTimer(n.cfg.HandshakeTimeout + time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		k := d.keys[id]
		gen := d.keysGen
		d.mu.Unlock()
		if k != nil {
			pub, err := directKEM.NewPublicKey(k.EncKey)
			if err != nil {
				return nil, fmt.Errorf("key of %s: %w", id, err)
			}
			return pub, nil
		}
		if !n.liveMember(id) {
			return nil, fmt.Errorf("%w for %s: it must be online once with you or a peer you meet", ErrNoEncKey, id)
		}
		// A live member sends its key in the greeting of a kept link;
		// one we keep no link to (a large group keeps links to a few
		// neighbours) answers ours with it (greetings.go).
		n.requestEncKey(id)
		select {
		case <-gen:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w for %s: %w", ErrNoEncKey, id, ctx.Err())
		case <-deadline.C:
			return nil, fmt.Errorf("%w for %s", ErrNoEncKey, id)
		case <-n.ctx.Done():
			return nil, ErrShutdown
		}
	}
}

// putRecordLocked stores a record (and, when new, its conversation
// entry), with the extra ops in the same transaction.
func (d *directState) putRecordLocked(rec *chatpb.DirectRecord, isNew bool, extra ...storeOp) error {
	b, err := proto.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode direct record: %w", err)
	}
	ops := append([]storeOp{{bucket: bucketDM, key: rec.Id, val: b}}, extra...)
	if isNew {
		ops = append(ops, storeOp{bucket: bucketConv, key: convKey(rec.Peer, rec.StoredUnixNano, rec.Id), val: rec.Id})
	}
	return d.store.apply(ops...)
}

func convKey(peer string, stored int64, id []byte) []byte {
	k := make([]byte, 0, len(peer)+1+8+len(id))
	k = append(k, peer...)
	k = append(k, '/')
	k = binary.BigEndian.AppendUint64(k, uint64(stored))
	return append(k, id...)
}

func (d *directState) record(id []byte) (*chatpb.DirectRecord, error) {
	b, err := d.store.get(bucketDM, id)
	if err != nil || b == nil {
		return nil, err
	}
	var r chatpb.DirectRecord
	if err := proto.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode direct record: %w", err)
	}
	return &r, nil
}

// sendTo queues f on the stream to peer id; false if there is none or its
// queue is full.
func (n *Node) sendTo(id string, f *chatpb.Frame) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p != nil && p.enqueue(f)
}

// waitingIDs returns the live members whose stream is down for less than
// the handshake timeout (connecting, or reconnecting after a blip): a
// message for one of them waits for the stream rather than going to
// holders.
func (n *Node) waitingIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []string
	for id, p := range n.peers {
		if !p.connected.Load() && p.unreachableFor() < n.cfg.HandshakeTimeout {
			ids = append(ids, id)
		}
	}
	return ids
}

// liveIDs returns the peers with an established stream.
func (n *Node) liveIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []string
	for id, p := range n.peers {
		if p.connected.Load() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func directFrame(s *chatpb.Sealed, hold bool) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Direct{Direct: &chatpb.Direct{Sealed: s, Hold: hold}}}
}

func directAckFrame(id []byte, result, state uint32) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_DirectAck{DirectAck: &chatpb.DirectAck{Id: id, Result: result, State: state}}}
}

func receiptFrame(r *chatpb.Receipt) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Receipt{Receipt: r}}
}

// deliverOut sends each undelivered own message where it can go now: to
// the recipient when it is reachable (until it acks), otherwise to holders
// until DirectConfig.Holders hold it. Called by SendDirect and the retry
// loop.
func (n *Node) deliverOut() {
	d := n.dm
	now := time.Now()
	live, waiting := n.liveIDs(), n.waitingIDs()
	type send struct {
		to   string
		f    *chatpb.Frame
		hold bool
	}
	var sends []send
	d.mu.Lock()
	for _, o := range d.out {
		to := o.rec.Peer
		if slices.Contains(live, to) {
			if !o.stored && now.Sub(o.lastPush) >= d.cfg.RetryInterval {
				o.lastPush = now
				sends = append(sends, send{to: to, f: directFrame(o.rec.Sealed, false)})
			}
			continue
		}
		if slices.Contains(waiting, to) {
			continue // its stream is coming up: no need for holders
		}
		if n.liveMember(to) && n.reach(to) {
			// A live member we keep no link to (a large group keeps
			// links to a few neighbours only): one is coming up.
			continue
		}
		held := len(o.rec.Holders)
		if held >= d.cfg.Holders {
			continue
		}
		pending := 0
		for _, t := range o.asked {
			if now.Sub(t) < 5*d.cfg.RetryInterval {
				pending++
			}
		}
		for _, h := range live {
			if held+pending >= d.cfg.Holders {
				break
			}
			if h == to || slices.Contains(o.rec.Holders, h) || o.fullNow(h, now, d.cfg.RetryInterval) {
				continue
			}
			if t, ok := o.asked[h]; ok && now.Sub(t) < 5*d.cfg.RetryInterval {
				continue
			}
			o.asked[h] = now
			pending++
			sends = append(sends, send{to: h, f: directFrame(o.rec.Sealed, true), hold: true})
		}
	}
	d.mu.Unlock()
	for _, s := range sends {
		n.sendTo(s.to, s.f)
	}
}
