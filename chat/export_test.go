package chat

import (
	"context"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// SendEnvelopeForTest queues env, as is, on the stream to peer id (tests
// use it to inject forged, altered and duplicate envelopes).
func (n *Node) SendEnvelopeForTest(id string, env *chatpb.Envelope) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p != nil && p.enqueue(&chatpb.Frame{Msg: &chatpb.Frame_Envelope{Envelope: env}})
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
