package chat

// Inbound: who may open a connection (admit), serving the connections of
// a link, accepted or dialed (serveConn, serveLink), and routing their
// frames (handleFrame), then the receive
// pipeline: every envelope from a peer, pushed (Envelope and Batch frames)
// or repaired (Repair frames, anti-entropy), takes the same steps, for the envelopes that arrived together at once: drop the ones
// already stored, verify the rest in one signature batch, store them in
// one log append, then per room hand them to the room (room.receive),
// which forwards pushed ones once (large rooms), orders and delivers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/chat/transport"
)

// admit accepts a dialer that is a live member presenting the key of its
// node meta. The dialer may have joined a moment ago: it waits for gossip
// until ctx (the handshake deadline) ends.
func (n *Node) admit(ctx context.Context, p transport.Peer) error {
	m, err := n.waitMember(ctx, p.ID)
	if err != nil {
		return err
	}
	if !bytes.Equal(m.Pub, p.Key) {
		return fmt.Errorf("peer %s presents another key than its node meta", p.ID)
	}
	return nil
}

// serveConn serves one admitted inbound connection: it joins the pair's
// link (made for it when there is none), which applies the rule when the
// pair already has a connection, and its frames are served like those of
// a connection this node dialed, until it closes or the node shuts down.
// A node that is not started (or has left) makes no link, and the
// connection closes.
func (n *Node) serveConn(c transport.Conn) {
	p, lc := n.acceptLink(c.Peer().ID, c)
	if lc == nil {
		return
	}
	n.serveLink(p, lc)
}

// serveLink reads one connection of link p, dialed or accepted, until it
// closes: every frame type is handled the same whichever end dialed. The
// reader handles each frame itself (a frame reaches the pipeline without a
// hand-off) and never writes: a Pong goes to the link's writer (reply).
func (n *Node) serveLink(p *peerConn, lc *linkConn) {
	defer p.readerDone(lc)
	for {
		f, err := lc.c.Recv()
		if err != nil {
			return
		}
		p.touch()
		if h := n.cfg.frameReceived; h != nil {
			h(p.id, f)
		}
		if pong := f.GetPong(); pong != nil {
			p.gotPong(pong.GetNonce())
			continue
		}
		if reply := n.handleFrame(f, p.id); reply != nil {
			p.reply(reply)
		}
	}
}

// handleFrame acts on one frame from the authenticated peer and returns
// the frame to answer on the same link (a pong), or nil.
func (n *Node) handleFrame(f *chatpb.Frame, peer string) *chatpb.Frame {
	switch m := f.Msg.(type) {
	case *chatpb.Frame_Envelope:
		n.handleEnvelope(m.Envelope, peer)
	case *chatpb.Frame_Batch:
		n.handleBatch(m.Batch, peer)
	case *chatpb.Frame_Ping:
		return pongFrame(m.Ping.GetNonce())
	case *chatpb.Frame_RoomSet:
		n.handleRoomSet(m.RoomSet, peer)
	case *chatpb.Frame_RoomSetDigest:
		n.handleRoomSetDigest(m.RoomSetDigest, peer)
	case *chatpb.Frame_Status:
		n.handleStatus(m.Status, peer)
	case *chatpb.Frame_Repair:
		n.handleRepair(m.Repair, peer)
	case *chatpb.Frame_EncKeys:
		n.handleEncKeys(m.EncKeys, peer)
	case *chatpb.Frame_Direct:
		n.handleDirect(m.Direct, peer)
	case *chatpb.Frame_DirectAck:
		n.handleDirectAck(m.DirectAck, peer)
	case *chatpb.Frame_Receipt:
		n.handleReceipt(m.Receipt, peer)
	case *chatpb.Frame_Overlay:
		n.handleOverlay(m.Overlay, peer)
	case *chatpb.Frame_Bye:
		n.markLeaving(peer)
		return pongFrame(m.Bye.GetNonce())
	default:
		n.stats.badFrames.Add(1)
	}
	return nil
}

// handleEnvelope runs the pipeline on one pushed envelope.
func (n *Node) handleEnvelope(env *chatpb.Envelope, from string) {
	n.receive([]*chatpb.Envelope{env}, from, "")
}

// handleBatch runs the pipeline on a Batch frame's envelopes; an empty
// batch, or one over maxBatchEnvelopes envelopes or maxFrameListEntries
// deps and stamped messages in all, is a bad frame.
func (n *Node) handleBatch(b *chatpb.Batch, from string) {
	envs := b.GetEnvelopes()
	if len(envs) == 0 || len(envs) > maxBatchEnvelopes || listEntries(envs) > maxFrameListEntries {
		n.stats.badFrames.Add(1)
		return
	}
	n.receive(envs, from, "")
}

// receive runs the pipeline on envelopes that arrived together over an
// authenticated stream from peer from (their origins, a forwarder, or a
// repairing member), in arrival order. repairOf is the room of the Repair
// frame they came in ("" for pushed envelopes): each of them must belong
// to it, and they are neither forwarded nor checked for gaps. Each
// envelope is treated exactly as if it had arrived alone; doing the steps
// for the whole batch at once shares a signature batch, a log transaction
// and a room lock among them.
func (n *Node) receive(envs []*chatpb.Envelope, from, repairOf string) {
	n.receiveChecked(envs, nil, from, repairOf)
}

// receiveChecked is receive for envelopes some of which this node has
// verified already: verified[i] (verified is nil, none, or as long as
// envs) reports that envs[i] is the decoding of bytes this node checked
// (checkEnvelopes passed that envelope, or the bytes equal ones it
// verified or stored), so its signature is not checked again. verified is
// a local fact, never read from the network: only the overlay driver sets
// it, for the payloads checkOverlayPayload passed (overlayDriver.deliver).
// Every other check runs as for any envelope.
func (n *Node) receiveChecked(envs []*chatpb.Envelope, verified []bool, from, repairOf string) {
	n.stats.received.Add(uint64(len(envs)))
	fresh := make([]*chatpb.Envelope, 0, len(envs))
	var todo []*chatpb.Envelope // fresh envelopes not verified yet (verified != nil)
	var at []int                // their indexes in fresh
	for i, env := range envs {
		if n.known(env) {
			// Held already (verified when stored): no signature check.
			n.stats.duplicates.Add(1)
			continue
		}
		if verified != nil && !verified[i] {
			todo = append(todo, env)
			at = append(at, len(fresh))
		}
		fresh = append(fresh, env)
	}
	var errs []error
	if verified == nil {
		errs = n.verify.check(fresh)
	} else {
		errs = make([]error, len(fresh))
		for k, err := range n.verify.check(todo) {
			errs[at[k]] = err
		}
	}
	ahead := n.aheadCheck(len(fresh))
	ok := fresh[:0]
	for i, env := range fresh {
		switch {
		case errs[i] != nil:
			n.countDrop(errs[i], from)
		case env.Kind == chatpb.Kind_KIND_SYSTEM:
			// System lines are the node's own voice (bare lines on the
			// screen); a peer that sends one is trying to speak in it.
			n.countDrop(fmt.Errorf("%w: %s/%d: peers cannot send system messages", ErrInvalid, env.Origin, env.Seq), from)
		case env.Kind == chatpb.Kind_KIND_DIRECT || env.Kind == chatpb.Kind_KIND_RECEIPT:
			// Since protocol 5 direct messages are sealed and travel
			// apart from rooms (direct.go); a plaintext one in a room
			// would be stored by every member.
			n.countDrop(fmt.Errorf("%w: %s/%d: direct messages do not travel in rooms", ErrInvalid, env.Origin, env.Seq), from)
		case repairOf != "" && env.Room != repairOf:
			n.stats.invalid.Add(1)
		case n.joinedRoom(env.Room) == nil:
			n.stats.unjoined.Add(1)
		case !n.speakers.knows(env.Origin, env.OriginKey) &&
			(repairOf == "" || !n.speakers.vouch(env.OriginKey, from)):
			// Signed, but by a key that is not a member identity, pushed
			// or beyond what the repairing member may vouch for
			// (memberkeys.go).
			n.stats.strangers.Add(1)
			n.logger.Printf("drop envelope from %s: origin %s is not a member identity", from, env.Origin)
		case ahead.drop(env):
			n.stats.heldDiskDrops.Add(1) // fetched again by anti-entropy (heldback.go)
		default:
			ok = append(ok, env)
		}
	}
	if len(ok) == 0 {
		return
	}
	// A received message can be fetched again from its sender by
	// anti-entropy, so its fsync is deferred (msglog AppendBatchDeferred):
	// a killed process keeps it, only an OS crash can lose it.
	isNew, err := n.storeReceived(n.ctx, ok)
	if err != nil {
		n.logger.Printf("from %s: %v", from, err)
		return
	}
	stored := ok[:0]
	for i, env := range ok {
		if !isNew[i] {
			n.stats.duplicates.Add(1) // a copy in the same batch, or raced in by another stream
			continue
		}
		stored = append(stored, env)
	}
	n.stats.stored.Add(uint64(len(stored)))
	if verified == nil {
		// Not the overlay's deliveries (only overlayDriver.deliver
		// passes verified): stored off the tree, they go to the tree
		// below us as well.
		n.ovl.offTree(stored, repairOf == "")
	}
	if repairOf != "" {
		n.stats.repaired.Add(uint64(len(stored)))
		n.backlog.note(stored)
	}
	// Per room, in arrival order (a batch may interleave rooms).
	for len(stored) > 0 {
		name := stored[0].Room
		var mine, rest []*chatpb.Envelope
		for _, env := range stored {
			if env.Room == name {
				mine = append(mine, env)
			} else {
				rest = append(rest, env)
			}
		}
		stored = rest
		r := n.joinedRoom(name)
		if r == nil {
			continue // parted meanwhile: stored, replayed if rejoined
		}
		r.received.Add(chatCount(mine))
		for _, pull := range r.receive(mine, from, repairOf == "") {
			if n.sendGapPull(pull, r.name) {
				n.stats.gapPulls.Add(1)
			}
		}
		if repairOf != "" {
			r.notify() // a join's catch-up waits for repairs
		}
	}
}

// known reports whether the log already holds env's (room, origin, seq).
// A stored envelope was verified before it was stored, so a copy of it is
// dropped as a duplicate without the signature check (~60 µs, most of the
// receive cost when copies arrive by several paths); a forged copy of a
// stored message is dropped the same way, never stored or shown. Only
// envelopes whose fields are within the limits are looked up.
func (n *Node) known(env *chatpb.Envelope) bool {
	if validateEnvelope(env) != nil {
		return false
	}
	_, err := n.log.Get(n.ctx, env.Room, env.Origin, env.Seq)
	return err == nil
}

// countDrop counts and logs an envelope refused by its checks.
func (n *Node) countDrop(err error, from string) {
	if errors.Is(err, ErrForged) {
		n.stats.forged.Add(1)
	} else {
		n.stats.invalid.Add(1)
	}
	n.logger.Printf("drop envelope from %s: %v", from, err)
}

// storeReceived appends verified envelopes received from peers in one
// log append with a deferred fsync (msglog AppendBatchDeferred): written
// before delivery, so a killed process keeps them; an OS crash within
// msglog's SyncInterval (receivedSyncInterval) can lose them, and
// anti-entropy fetches them again from the peers. isNew[i] reports whether envs[i] was not stored yet.
func (n *Node) storeReceived(ctx context.Context, envs []*chatpb.Envelope) ([]bool, error) {
	recs, err := recordsOf(envs, time.Now())
	if err != nil {
		return nil, err
	}
	isNew, err := n.log.AppendBatchDeferred(ctx, recs)
	if err != nil {
		return nil, fmt.Errorf("store %d received messages: %w", len(envs), err)
	}
	return isNew, nil
}

// recordsOf encodes envelopes as log records received at now.
func recordsOf(envs []*chatpb.Envelope, now time.Time) ([]msglog.Record, error) {
	recs := make([]msglog.Record, len(envs))
	for i, env := range envs {
		data, err := proto.Marshal(env)
		if err != nil {
			return nil, fmt.Errorf("encode envelope %s/%d: %w", env.Origin, env.Seq, err)
		}
		recs[i] = msglog.Record{Room: env.Room, Origin: env.Origin, Seq: env.Seq,
			Meta: msglog.Meta{Lamport: env.Lamport, SendTime: time.Unix(0, env.SentUnixNano), RecvTime: now}, Data: data}
	}
	return recs, nil
}

// storeEnvelope appends one envelope of our own with appendFn (msglog
// Append: fsynced before it returns; AppendDeferred: committed, fsynced
// by the caller's Sync) and reports whether it was new.
func storeEnvelope(ctx context.Context, env *chatpb.Envelope,
	appendFn func(ctx context.Context, room, origin string, seq uint64, meta msglog.Meta, data []byte) (bool, error)) (bool, error) {
	data, err := proto.Marshal(env)
	if err != nil {
		return false, fmt.Errorf("encode envelope: %w", err)
	}
	meta := msglog.Meta{Lamport: env.Lamport, SendTime: time.Unix(0, env.SentUnixNano), RecvTime: time.Now()}
	isNew, err := appendFn(ctx, env.Room, env.Origin, env.Seq, meta, data)
	if err != nil {
		return false, fmt.Errorf("store %s/%d in #%s: %w", env.Origin, env.Seq, env.Room, err)
	}
	return isNew, nil
}

// decodeStored decodes an envelope read from the log and checks its
// fields (a damaged file must not crash the node). The signature is not
// checked again: only verified envelopes are stored, signature checks cost
// ~50 µs each (History reads thousands), and every peer that receives a
// repaired envelope verifies it anyway.
func decodeStored(b []byte) (*chatpb.Envelope, error) {
	if len(b) > maxFrameBytes {
		return nil, fmt.Errorf("%w: stored envelope of %d bytes", ErrInvalid, len(b))
	}
	var e chatpb.Envelope
	if err := proto.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: stored envelope: %v", ErrInvalid, err)
	}
	// A message stored before nicks followed the PRECIS profile stays
	// readable: the log holds only envelopes verified on arrival.
	if err := validateEnvelopeNick(&e, nickCharset); err != nil {
		return nil, fmt.Errorf("%w: stored envelope: %v", ErrInvalid, err)
	}
	return &e, nil
}

// chatCount counts the chat messages among envs: a room's RECEIVED counts
// what users sent, not the ordering traffic (acks, stamps, syncs) that
// carries it.
func chatCount(envs []*chatpb.Envelope) uint64 {
	var k uint64
	for _, e := range envs {
		if e.Kind == chatpb.Kind_KIND_CHAT {
			k++
		}
	}
	return k
}
