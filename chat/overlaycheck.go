package chat

// Verified payloads in flight. In the tree a peer often gets a second
// copy of a message before its first is stored (a neighbour relays it
// back, or two parents push it while the tree settles): the copy cannot be
// recognised by the log lookup in checkOverlayPayload yet, and would cost
// a second signature check (~60 µs) only for the machine to drop it as a
// duplicate. A copy byte-for-byte equal to a payload this node verified a
// moment ago is as good as verified: the signature covers the decoded
// fields, and equal bytes decode to equal fields.

import (
	"bytes"
	"sync"

	"github.com/hearsay-chat/hearsay/chat/overlay"
)

const (
	// maxRecentVerified bounds the payloads remembered: a few hundred
	// covers the messages in flight through one peer (the driver's inbox
	// drains 64 at a time, the pipeline stores in batches).
	maxRecentVerified = 256
	// maxRecentVerifiedBytes bounds their bytes. The payloads are shared
	// with the machine's cache (the same slices), so in the common case
	// this memory is spent anyway.
	maxRecentVerifiedBytes = 1 << 20
)

// recentVerified remembers the last payloads checkOverlayPayload verified,
// by message ID, oldest first out. Safe for concurrent use (connections'
// goroutines call it).
type recentVerified struct {
	mu    sync.Mutex
	byID  map[overlay.MsgID][]byte
	order []overlay.MsgID // insertion order; len(order) == len(byID)
	bytes int
}

// has reports whether payload is the payload verified under id.
func (r *recentVerified) has(id overlay.MsgID, payload []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.byID[id]
	return ok && bytes.Equal(p, payload)
}

// add remembers payload, verified, under id (the caller must not change
// payload), forgetting the oldest beyond the bounds. A payload over the
// byte bound is not remembered.
func (r *recentVerified) add(id overlay.MsgID, payload []byte) {
	if len(payload) > maxRecentVerifiedBytes {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = make(map[overlay.MsgID][]byte, maxRecentVerified)
	}
	if _, ok := r.byID[id]; ok {
		// The same payload verified twice by connections at once, or
		// another one under the same ID (an origin that signed two
		// messages with one seq): keep the first.
		return
	}
	for len(r.order) > 0 && (len(r.order) >= maxRecentVerified || r.bytes+len(payload) > maxRecentVerifiedBytes) {
		oldest := r.order[0]
		r.order = r.order[1:]
		r.bytes -= len(r.byID[oldest])
		delete(r.byID, oldest)
	}
	r.byID[id] = payload
	r.order = append(r.order, id)
	r.bytes += len(payload)
}
