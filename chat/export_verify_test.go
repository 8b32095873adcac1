package chat

import "github.com/hearsay-chat/hearsay/chat/chatpb"

// OnSignatureCheckForTest calls f with the envelopes of every signature
// check the node makes from now on (f must be safe for concurrent use).
func (n *Node) OnSignatureCheckForTest(f func(envs []*chatpb.Envelope)) {
	n.verify.onCheck.Store(&f)
}
