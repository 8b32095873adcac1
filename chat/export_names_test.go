package chat

import (
	"fmt"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"google.golang.org/protobuf/proto"
)

// KVPacketForTest returns the memberlist user packet that carries e, as a
// peer broadcasts it.
func KVPacketForTest(e *chatpb.KVEntry) []byte {
	b, err := proto.Marshal(e)
	if err != nil {
		panic(err)
	}
	return append([]byte{packetKV}, b...)
}

// KVSigningBytesForTest exposes what a key/value entry's signature covers.
func KVSigningBytesForTest(e *chatpb.KVEntry) []byte { return kvSigningBytes(e) }

// SendUserPacketForTest sends b to the member id as a memberlist user
// message over memberlist's TCP stream (its NotifyMsg receives it).
func (n *Node) SendUserPacketForTest(id string, b []byte) error {
	for _, m := range n.ml.Members() {
		if m.Name == id {
			return n.ml.SendReliable(m, b)
		}
	}
	return fmt.Errorf("no member %s", id)
}

// NotifyMsgForTest hands b to the node as memberlist would a user packet.
func (n *Node) NotifyMsgForTest(b []byte) { n.handleNotifyMsg(b) }

// KVOriginsForTest returns the number of entries per origin in the
// key/value state (tombstones included).
func (n *Node) KVOriginsForTest() map[string]int {
	n.kv.mu.Lock()
	defer n.kv.mu.Unlock()
	out := make(map[string]int)
	for _, e := range n.kv.m {
		out[e.Origin]++
	}
	return out
}

// checkBoundsLocked checks the key/value store's bounds and counts: no
// version ahead of the clock, per-origin and strangers' counts right and
// within their bounds. Caller holds s.mu.
func (s *kvStore) checkBoundsLocked() error {
	if len(s.m) > MaxKVEntries {
		return fmt.Errorf("%d kv entries, bound %d", len(s.m), MaxKVEntries)
	}
	per, strange := map[string]int{}, 0
	for _, e := range s.m {
		if err := checkKVVersion(e, time.Now()); err != nil {
			return fmt.Errorf("stored an entry from the future: %w", err)
		}
		per[e.Origin]++
		if s.strangers[e.Origin] {
			strange++
		}
	}
	for o, k := range per {
		if k > MaxKVPerOrigin || k != s.byOrigin[o] {
			return fmt.Errorf("origin %s holds %d entries (counted %d), bound %d", o, k, s.byOrigin[o], MaxKVPerOrigin)
		}
	}
	if len(per) != len(s.byOrigin) {
		return fmt.Errorf("%d origins counted, %d hold entries", len(s.byOrigin), len(per))
	}
	if strange != s.strange || strange > MaxKVStrangers {
		return fmt.Errorf("strangers hold %d entries (counted %d), bound %d", strange, s.strange, MaxKVStrangers)
	}
	return nil
}

// StoredForTest returns how many messages of origin the log holds for
// room, held back or not.
func (n *Node) StoredForTest(room, origin string) int {
	recs, err := n.log.Range(n.ctx, room, origin, 1, msglog.MaxRange)
	if err != nil {
		panic(err)
	}
	return len(recs)
}
