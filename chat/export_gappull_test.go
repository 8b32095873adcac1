package chat

import "github.com/hearsay-chat/hearsay/chat/chatpb"

// SendBatchForTest queues envs as one Batch frame on the stream to peer
// id: the receiver runs them through its pipeline together, as a sender's
// queued run.
func (n *Node) SendBatchForTest(id string, envs []*chatpb.Envelope) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p != nil && p.enqueue(batchFrame(envs))
}

// SendPingForTest queues a ping frame on the stream to peer id: a frame
// that is not an envelope, so no batch takes it in (a test marks with it
// how far the link's writer has got).
func (n *Node) SendPingForTest(id string, nonce uint64) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p != nil && p.enqueue(pingFrame(nonce))
}
