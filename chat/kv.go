package chat

// Key/value broadcasts (the REPL's /kv, cli-chat's broadcastadd/del/list):
// small shared state spread through memberlist's TransmitLimitedQueue.
//
// Every entry is signed by the peer that changed it and carries a version
// from that peer's key/value Lamport clock; conflicts resolve by (version,
// origin), the larger wins, so every peer ends with the same state whatever
// order it hears the changes in. A deletion is a tombstone entry. memberlist
// does not re-gossip user broadcasts, so a receiver that applies a newer
// entry queues it again (named by key: a newer change replaces an older one
// still in the queue) and drops anything not newer (dedup). Entries are
// bounded (64-byte key, 256-byte value) so that a broadcast always fits the
// space memberlist leaves in a packet: a larger one would never leave the
// queue. Late joiners get the whole state in push/pull (LocalState /
// MergeRemoteState).

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// maxKVBroadcast bounds one encoded key/value broadcast: with memberlist's
// compound message overhead it stays far below the ~1.36 KB a UDP packet
// leaves for user broadcasts.
const maxKVBroadcast = 512

// maxKVState bounds the push/pull state accepted from a peer.
const maxKVState = MaxKVEntries * (maxKVBroadcast + 8)

const kvPrefix = "hearsay/kv/v1\n"

type kvStore struct {
	n     *Node
	mu    sync.Mutex
	clock uint64
	m     map[string]*chatpb.KVEntry
}

func newKVStore(n *Node) *kvStore {
	return &kvStore{n: n, m: make(map[string]*chatpb.KVEntry)}
}

func kvSigningBytes(e *chatpb.KVEntry) []byte {
	c := canon{b: make([]byte, 0, 64+len(e.Key)+len(e.Value))}
	c.b = append(c.b, kvPrefix...)
	c.rawStr(e.Key)
	c.rawStr(e.Value)
	if e.Deleted {
		c.b = append(c.b, 1)
	} else {
		c.b = append(c.b, 0)
	}
	c.b = binary.AppendUvarint(c.b, e.Version)
	c.rawStr(e.Origin)
	return c.b
}

// ValidateKVKey checks a key: 1 to 64 bytes of printable ASCII, no spaces.
func ValidateKVKey(key string) error {
	if key == "" {
		return errors.New("key is empty")
	}
	if len(key) > MaxKVKeyBytes {
		return fmt.Errorf("key is %d bytes, at most %d", len(key), MaxKVKeyBytes)
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return fmt.Errorf("key %q: only printable ASCII without spaces", key)
		}
	}
	return nil
}

func validateKVValue(v string) error {
	if len(v) > MaxKVValueBytes {
		return fmt.Errorf("value is %d bytes, at most %d (key/values are for small shared state)", len(v), MaxKVValueBytes)
	}
	if !utf8.ValidString(v) {
		return errors.New("value is not valid UTF-8")
	}
	return nil
}

// checkKVEntry validates and verifies an entry received from a peer.
func checkKVEntry(e *chatpb.KVEntry) error {
	if err := ValidateKVKey(e.Key); err != nil {
		return err
	}
	if err := validateKVValue(e.Value); err != nil {
		return err
	}
	if e.Deleted && e.Value != "" {
		return errors.New("tombstone with a value")
	}
	if e.Version == 0 {
		return errors.New("version 0")
	}
	if !hearsay.ValidPeerID(e.Origin) || len(e.OriginKey) != ed25519.PublicKeySize || PeerIDFromKey(e.OriginKey) != e.Origin {
		return fmt.Errorf("origin %q does not match its key", e.Origin)
	}
	if len(e.Signature) != ed25519.SignatureSize || !ed25519.Verify(e.OriginKey, kvSigningBytes(e), e.Signature) {
		return errors.New("bad signature")
	}
	return nil
}

// DecodeKVEntry decodes and checks one key/value broadcast payload (without
// the packet type byte). It does not keep b.
func DecodeKVEntry(b []byte) (*chatpb.KVEntry, error) {
	if len(b) > maxKVBroadcast {
		return nil, fmt.Errorf("kv entry is %d bytes, over %d", len(b), maxKVBroadcast)
	}
	var e chatpb.KVEntry
	if err := proto.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode kv entry: %w", err)
	}
	if err := checkKVEntry(&e); err != nil {
		return nil, fmt.Errorf("kv entry: %w", err)
	}
	return &e, nil
}

// newer reports whether a wins over b.
func kvNewer(a, b *chatpb.KVEntry) bool {
	if b == nil {
		return true
	}
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	return a.Origin > b.Origin
}

// kvBroadcast is one queued entry, named by key so a newer change replaces
// an older one in the queue.
type kvBroadcast struct {
	key string
	msg []byte
}

var _ memberlist.NamedBroadcast = (*kvBroadcast)(nil)

func (b *kvBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*kvBroadcast)
	return ok && o.key == b.key
}
func (b *kvBroadcast) Name() string    { return "kv:" + b.key }
func (b *kvBroadcast) Message() []byte { return b.msg }
func (b *kvBroadcast) Finished()       {}

// applyLocked stores e if it wins and reports whether it did. Caller holds
// s.mu.
func (s *kvStore) applyLocked(e *chatpb.KVEntry) bool {
	if e.Version > s.clock {
		s.clock = e.Version
	}
	cur := s.m[e.Key]
	if !kvNewer(e, cur) {
		return false
	}
	if cur == nil && len(s.m) >= MaxKVEntries && !s.evictTombstoneLocked() {
		s.n.stats.kvDrops.Add(1)
		return false
	}
	s.m[e.Key] = e
	s.n.stats.kvUpdates.Add(1)
	return true
}

// evictTombstoneLocked frees a slot by forgetting the oldest tombstone.
func (s *kvStore) evictTombstoneLocked() bool {
	var victim *chatpb.KVEntry
	for _, e := range s.m {
		if e.Deleted && (victim == nil || e.Version < victim.Version) {
			victim = e
		}
	}
	if victim == nil {
		return false
	}
	delete(s.m, victim.Key)
	return true
}

// queueLocked puts e on memberlist's broadcast queue. Caller holds s.mu
// (so the queue sees changes in the order they won).
func (s *kvStore) queueLocked(e *chatpb.KVEntry) {
	b, err := proto.Marshal(e)
	if err != nil || len(b)+1 > maxKVBroadcast {
		s.n.stats.kvDrops.Add(1)
		return
	}
	if q := s.n.broadcasts; q != nil {
		q.QueueBroadcast(&kvBroadcast{key: e.Key, msg: append([]byte{packetKV}, b...)})
	}
}

// set makes a local change and queues it.
func (s *kvStore) set(key, value string, deleted bool) error {
	if err := ValidateKVKey(key); err != nil {
		return err
	}
	if err := validateKVValue(value); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if deleted {
		if cur := s.m[key]; cur == nil || cur.Deleted {
			return fmt.Errorf("key %q is not set", key)
		}
	}
	s.clock++
	e := &chatpb.KVEntry{Key: key, Value: value, Deleted: deleted, Version: s.clock,
		Origin: s.n.id.ID, OriginKey: append([]byte(nil), s.n.id.Pub...)}
	e.Signature = s.n.id.Sign(kvSigningBytes(e))
	if b, _ := proto.Marshal(e); len(b)+1 > maxKVBroadcast {
		return fmt.Errorf("key/value entry is %d bytes encoded, at most %d", len(b)+1, maxKVBroadcast)
	}
	if !s.applyLocked(e) {
		return fmt.Errorf("key/value store is full (%d entries)", MaxKVEntries)
	}
	s.queueLocked(e)
	return nil
}

// handleBroadcast applies a received entry and re-queues it if it won.
func (s *kvStore) handleBroadcast(b []byte) {
	e, err := DecodeKVEntry(b)
	if err != nil {
		s.n.stats.kvDrops.Add(1)
		s.n.logger.Printf("drop kv broadcast: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.applyLocked(e) {
		s.queueLocked(e)
	}
}

// encodeState returns the push/pull state: every entry, tombstones
// included.
func (s *kvStore) encodeState() []byte {
	s.mu.Lock()
	st := &chatpb.KVState{Entries: make([]*chatpb.KVEntry, 0, len(s.m))}
	for _, e := range s.m {
		st.Entries = append(st.Entries, e)
	}
	s.mu.Unlock()
	b, err := proto.Marshal(st)
	if err != nil {
		s.n.logger.Printf("encode kv state: %v", err)
		return nil
	}
	return b
}

// mergeState applies a peer's push/pull state. Entries that win are not
// re-broadcast: push/pull itself spreads them.
func (s *kvStore) mergeState(b []byte) {
	if len(b) == 0 {
		return
	}
	st, err := DecodeKVState(b)
	if err != nil {
		s.n.stats.kvDrops.Add(1)
		s.n.logger.Printf("drop kv state: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range st.Entries {
		if err := checkKVEntry(e); err != nil {
			s.n.stats.kvDrops.Add(1)
			continue
		}
		s.applyLocked(e)
	}
}

// DecodeKVState decodes push/pull key/value state, bounding its size and
// entry count; entries still need checking one by one. It does not keep b.
func DecodeKVState(b []byte) (*chatpb.KVState, error) {
	if len(b) > maxKVState {
		return nil, fmt.Errorf("kv state is %d bytes, over %d", len(b), maxKVState)
	}
	var st chatpb.KVState
	if err := proto.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode kv state: %w", err)
	}
	if len(st.Entries) > MaxKVEntries {
		return nil, fmt.Errorf("kv state has %d entries, over %d", len(st.Entries), MaxKVEntries)
	}
	return &st, nil
}

// list returns the live entries.
func (s *kvStore) list() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.m))
	for k, e := range s.m {
		if !e.Deleted {
			out[k] = e.Value
		}
	}
	return out
}

// KVSet sets key to value for the whole group (at most 64 and 256 bytes).
// It returns once the change is applied locally and queued for gossip;
// every live member has it within a few gossip rounds. Safe for concurrent
// use.
func (n *Node) KVSet(key, value string) error {
	if _, err := n.active(); err != nil {
		return err
	}
	return n.kv.set(key, value, false)
}

// KVDel deletes key for the whole group (a tombstone wins over older
// values).
func (n *Node) KVDel(key string) error {
	if _, err := n.active(); err != nil {
		return err
	}
	return n.kv.set(key, "", true)
}

// KVList returns a copy of the live key/values.
func (n *Node) KVList() map[string]string { return n.kv.list() }
