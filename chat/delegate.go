package chat

// The memberlist Delegate: node meta, user messages, the broadcast queue
// and push/pull state. One tiny adapter forwards each callback to a handleX
// method of the Node. Callbacks run on memberlist's goroutines: they copy
// what they keep and never block on the network or on the application.
//
// User packets start with a type byte so later issues can add kinds of
// gossip (room membership, digests) next to the key/value entries:
//
//	1  KVEntry (protobuf)

import (
	"strings"

	"github.com/hashicorp/memberlist"
)

const (
	packetKV byte = 1
)

// delegate adapts memberlist.Delegate to the node.
type delegate struct{ n *Node }

var _ memberlist.Delegate = (*delegate)(nil)

func (d *delegate) NodeMeta(limit int) []byte { return d.n.handleNodeMeta(limit) }
func (d *delegate) NotifyMsg(b []byte)        { d.n.handleNotifyMsg(b) }
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.n.handleGetBroadcasts(overhead, limit)
}
func (d *delegate) LocalState(join bool) []byte            { return d.n.handleLocalState(join) }
func (d *delegate) MergeRemoteState(buf []byte, join bool) { d.n.handleMergeRemoteState(buf, join) }

// handleNodeMeta returns the encoded meta. It never returns more than limit
// (memberlist panics): validation of nick and address keeps it far below,
// and if that ever failed the node would advertise no meta (peers then
// refuse to chat with it) rather than crash.
func (n *Node) handleNodeMeta(limit int) []byte {
	b, err := encodeMeta(n.localMeta())
	if err != nil || len(b) > limit {
		n.logger.Printf("node meta too large (%d bytes, limit %d): %v", len(b), limit, err)
		return nil
	}
	return b
}

// handleNotifyMsg handles a user packet. b is reused by memberlist after
// the call returns: decoders copy what they keep (protobuf Unmarshal
// copies).
func (n *Node) handleNotifyMsg(b []byte) {
	if len(b) == 0 {
		n.stats.badFrames.Add(1)
		return
	}
	switch b[0] {
	case packetKV:
		n.kv.handleBroadcast(b[1:])
	default:
		n.stats.badFrames.Add(1)
	}
}

func (n *Node) handleGetBroadcasts(overhead, limit int) [][]byte {
	if n.broadcasts == nil {
		return nil
	}
	return n.broadcasts.GetBroadcasts(overhead, limit)
}

func (n *Node) handleLocalState(bool) []byte { return n.kv.encodeState() }

func (n *Node) handleMergeRemoteState(buf []byte, _ bool) { n.kv.mergeState(buf) }

// isKeyError reports whether a memberlist join error means the two sides
// disagree about encryption.
func isKeyError(err error) bool {
	s := strings.ToLower(err.Error())
	for _, k := range []string{"decrypt", "encrypt", "no installed keys", "not encrypted", "keyring"} {
		if strings.Contains(s, k) {
			return true
		}
	}
	return false
}
