package chat

import "github.com/hearsay-chat/hearsay/chat/chatpb"

// SetFrameHookForTest makes every link's writer call hook with each frame
// it wrote and the peer it went to (hook must be safe for concurrent use).
func SetFrameHookForTest(cfg *Config, hook func(to string, f *chatpb.Frame)) { cfg.frameSent = hook }

// SendStatusForTest sends the status of room to peer to, as an
// anti-entropy round does (over a link made on demand when there is none).
func (n *Node) SendStatusForTest(to, room string, wantReply bool) {
	n.sendStatus(to, room, false, wantReply)
}

// ForgetEncKeyForTest drops the encryption key of id from memory, as if it
// had never arrived.
func (n *Node) ForgetEncKeyForTest(id string) {
	n.dm.mu.Lock()
	defer n.dm.mu.Unlock()
	delete(n.dm.keys, id)
}
