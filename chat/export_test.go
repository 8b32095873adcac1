package chat

import (
	"context"
	"fmt"
	"slices"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// SendEnvelopeForTest queues env, as is, on the stream to peer id (tests
// use it to inject forged, altered and duplicate envelopes).
func (n *Node) SendEnvelopeForTest(id string, env *chatpb.Envelope) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p != nil && p.enqueue(envelopeFrame(env))
}

// NextSeqForTest returns the sequence number the next message to room
// will get (after the last one stored).
func (n *Node) NextSeqForTest(room string) uint64 {
	last, err := n.log.LastSeq(context.Background(), room, n.id.ID)
	if err != nil {
		panic(err)
	}
	return last + 1
}

// ArrivalOrderForTest returns the IDs ("origin/seq") of the data messages
// of room in the order this node stored them (receive time).
func (n *Node) ArrivalOrderForTest(room string) []string {
	ctx := context.Background()
	vv, err := n.log.VersionVector(ctx, room)
	if err != nil {
		panic(err)
	}
	var recs []msglog.Record
	for o := range vv {
		rs, err := n.log.Range(ctx, room, o, 1, msglog.MaxRange)
		if err != nil {
			panic(err)
		}
		for _, r := range rs {
			if env, err := decodeStored(r.Data); err == nil && env.Kind == chatpb.Kind_KIND_CHAT {
				recs = append(recs, r)
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b msglog.Record) int { return a.RecvTime.Compare(b.RecvTime) })
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = hearsay.MsgID{Origin: r.Origin, Seq: r.Seq}.String()
	}
	return ids
}

// OrderStatsForTest returns the ordering machine's counters of a joined
// room.
func (n *Node) OrderStatsForTest(room string) string {
	r := n.joinedRoom(room)
	if r == nil {
		return "not joined"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("%+v members=%v", r.m.Stats(), r.members)
}

// EnvelopesForTest returns origin's stored envelopes of room, in seq
// order, as they were received (signed).
func (n *Node) EnvelopesForTest(room, origin string) []*chatpb.Envelope {
	rs, err := n.log.Range(context.Background(), room, origin, 1, msglog.MaxRange)
	if err != nil {
		panic(err)
	}
	var envs []*chatpb.Envelope
	for _, r := range rs {
		if env, err := decodeStored(r.Data); err == nil {
			envs = append(envs, env)
		}
	}
	return envs
}

// SelfReapedForTest reports whether memberlist has dropped this node's own
// entry from its node map (GossipToTheDeadTime after Leave): its
// LocalNode then dereferences a nil entry.
func (n *Node) SelfReapedForTest() (reaped bool) {
	n.mu.Lock()
	ml := n.ml
	n.mu.Unlock()
	defer func() {
		if recover() != nil {
			reaped = true
		}
	}()
	_ = ml.LocalNode().Name
	return false
}
