package chat

// Key/value broadcasts (the REPL's /kv, cli-chat's broadcastadd/del/list):
// small shared state spread through memberlist's TransmitLimitedQueue.
//
// Every entry is signed by the peer that changed it and carries a version;
// conflicts resolve by (version, origin), the larger wins, so every peer
// ends with the same state whatever order it hears the changes in. A
// deletion is a tombstone entry.
//
// The version is a hybrid logical clock in Unix milliseconds: a change
// gets max(highest version seen + 1, now), so it wins over everything this
// peer has seen and stays close to wall time. The rule, then, for two
// writes of one key: a write made after its writer saw the other wins;
// of two concurrent writes (neither writer had seen the other's), the one
// with the later writer's clock wins, to the millisecond, and at equal
// versions the larger origin peer ID. With skewed clocks the write made
// later in real time can lose, so a peer whose own entry is replaced by
// another peer's is told (an EventKV event, kvSuperseded): no write is
// lost in silence. A received version more than
// MaxKVAhead ahead of this peer's clock is refused: a peer cannot take a
// key for ever with version 2^64-1, and the clock cannot be pushed to
// overflow. (Peers of earlier versions counted from 1; their entries are
// valid and lose to any new change.)
//
// The store is bounded three ways: MaxKVEntries in all, MaxKVPerOrigin per
// origin, and MaxKVStrangers for the origins this node does not know as
// members, together. When a bound is reached the oldest tombstone under it
// is forgotten, or else the entry is refused (counted in KVDrops) and a
// local change gets an error that says which bound and whose entries fill
// it. Refusals depend on what a node has seen, so under such pressure two
// nodes' states may differ until entries are deleted. memberlist
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
	"math"
	"sync"
	"time"
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
	n         *Node
	mu        sync.Mutex
	clock     uint64                     // highest version seen or made
	m         map[string]*chatpb.KVEntry // by key
	byOrigin  map[string]int             // entries per origin
	strange   int                        // entries of origins not known as members
	strangers map[string]bool            // the origins counted in strange
}

func newKVStore(n *Node) *kvStore {
	return &kvStore{n: n, m: make(map[string]*chatpb.KVEntry), byOrigin: make(map[string]int), strangers: make(map[string]bool)}
}

// errKVOld: an entry that does not win over the one stored (a duplicate
// or an older change), dropped silently.
var errKVOld = errors.New("not newer")

// kvMillis is t as a key/value version.
func kvMillis(t time.Time) uint64 {
	if ms := t.UnixMilli(); ms > 0 {
		return uint64(ms)
	}
	return 0
}

// checkKVVersion refuses a version more than MaxKVAhead ahead of now.
func checkKVVersion(e *chatpb.KVEntry, now time.Time) error {
	if limit := kvMillis(now.Add(MaxKVAhead)); e.Version > limit {
		return fmt.Errorf("version %d is more than %v ahead of this peer's clock (%d)", e.Version, MaxKVAhead, kvMillis(now))
	}
	return nil
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

// applyLocked stores e if it wins, within the bounds (see the file
// comment). known says whether e's origin is a member (or this node). It
// returns errKVOld when e does not win, and an error that says which bound
// is reached when there is no room for it. When e replaces this node's own
// entry (another peer's write won over ours), it returns that entry as
// lost, for the caller to tell the user once s.mu is released. Caller
// holds s.mu.
func (s *kvStore) applyLocked(e *chatpb.KVEntry, known bool) (lost *chatpb.KVEntry, err error) {
	cur := s.m[e.Key]
	if !kvNewer(e, cur) {
		return nil, errKVOld
	}
	s.clock = max(s.clock, e.Version)
	if cur == nil || cur.Origin != e.Origin { // e takes a new slot of its origin
		if err := s.makeRoomLocked(e, cur, known); err != nil {
			s.n.stats.kvDrops.Add(1)
			return nil, err
		}
	}
	self := s.n.id.ID
	if cur != nil && cur.Origin == self && e.Origin != self && !(cur.Deleted && e.Deleted) {
		lost = cur
	}
	if cur != nil {
		s.forgetLocked(cur)
	}
	if s.strangerLocked(e.Origin, known) {
		s.strangers[e.Origin] = true
	}
	s.m[e.Key] = e
	s.byOrigin[e.Origin]++
	if s.strangers[e.Origin] {
		s.strange++
	}
	s.n.stats.kvUpdates.Add(1)
	return lost, nil
}

// kvSuperseded tells the user that winner, another peer's entry, replaced
// this node's own entry lost (an EventKV event; the REPL prints "kv: your
// write a = 99 was superseded by carol's a = 1"). It takes n.mu: the
// caller does not hold s.mu.
func (n *Node) kvSuperseded(lost, winner *chatpb.KVEntry) {
	who := n.displayName(winner.Origin, "")
	mine := fmt.Sprintf("write %s = %s", lost.Key, lost.Value)
	if lost.Deleted {
		mine = "deletion of " + lost.Key
	}
	theirs := fmt.Sprintf("%s's %s = %s", who, winner.Key, winner.Value)
	if winner.Deleted {
		theirs = fmt.Sprintf("%s's deletion of %s", who, winner.Key)
	}
	n.emit(hearsay.Event{Type: hearsay.EventKV, From: who, FromID: winner.Origin,
		Text: fmt.Sprintf("your %s was superseded by %s", mine, theirs)})
}

// strangerLocked reports whether origin's entries count as a stranger's:
// decided by its first entry (known says whether it is a member now) and
// kept while it holds any, so the counts stay exact when membership
// changes. Caller holds s.mu.
func (s *kvStore) strangerLocked(origin string, known bool) bool {
	return s.strangers[origin] || !known && s.byOrigin[origin] == 0
}

// forgetLocked removes e (stored) from the map and the counts. Caller
// holds s.mu.
func (s *kvStore) forgetLocked(e *chatpb.KVEntry) {
	delete(s.m, e.Key)
	if s.byOrigin[e.Origin]--; s.byOrigin[e.Origin] <= 0 {
		delete(s.byOrigin, e.Origin)
	}
	if s.strangers[e.Origin] {
		s.strange--
		if s.byOrigin[e.Origin] == 0 {
			delete(s.strangers, e.Origin)
		}
	}
}

// makeRoomLocked makes room for one more entry of e's origin, replacing
// cur (nil, or another origin's entry for the same key), by forgetting
// the oldest tombstone under each bound that is reached. Caller holds
// s.mu.
func (s *kvStore) makeRoomLocked(e, cur *chatpb.KVEntry, known bool) error {
	o := e.Origin
	if s.byOrigin[o] >= MaxKVPerOrigin && !s.evictTombstoneLocked(e.Key, func(t *chatpb.KVEntry) bool { return t.Origin == o }) {
		who := "peer " + o
		if o == s.n.id.ID {
			who = "this peer"
		}
		return fmt.Errorf("key/value store: %s holds %d entries, at most %d per peer: delete some of its keys first", who, s.byOrigin[o], MaxKVPerOrigin)
	}
	if s.strangerLocked(o, known) && s.strange >= MaxKVStrangers &&
		!s.evictTombstoneLocked(e.Key, func(t *chatpb.KVEntry) bool { return s.strangers[t.Origin] }) {
		return fmt.Errorf("key/value store: peers that are not members hold %d entries, at most %d together", s.strange, MaxKVStrangers)
	}
	if cur == nil && len(s.m) >= MaxKVEntries && !s.evictTombstoneLocked(e.Key, func(*chatpb.KVEntry) bool { return true }) {
		mine := s.byOrigin[s.n.id.ID]
		return fmt.Errorf("key/value store is full: %d entries (%d of this peer's, %d of peers that are not members, at most %d per peer): delete some keys first",
			len(s.m), mine, s.strange, MaxKVPerOrigin)
	}
	return nil
}

// evictTombstoneLocked frees a slot by forgetting the oldest tombstone
// that match accepts, other than the one of key (about to be replaced).
func (s *kvStore) evictTombstoneLocked(key string, match func(*chatpb.KVEntry) bool) bool {
	var victim *chatpb.KVEntry
	for _, e := range s.m {
		if e.Deleted && e.Key != key && match(e) && (victim == nil || e.Version < victim.Version) {
			victim = e
		}
	}
	if victim == nil {
		return false
	}
	s.forgetLocked(victim)
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
	if s.clock == math.MaxUint64 { // cannot happen: received versions are bounded by the clock
		return errors.New("key/value clock exhausted")
	}
	version := max(s.clock+1, kvMillis(time.Now()))
	e := &chatpb.KVEntry{Key: key, Value: value, Deleted: deleted, Version: version,
		Origin: s.n.id.ID, OriginKey: append([]byte(nil), s.n.id.Pub...)}
	e.Signature = s.n.id.Sign(kvSigningBytes(e))
	if b, _ := proto.Marshal(e); len(b)+1 > maxKVBroadcast {
		return fmt.Errorf("key/value entry is %d bytes encoded, at most %d", len(b)+1, maxKVBroadcast)
	}
	if _, err := s.applyLocked(e, true); err != nil { // our own entry: never lost
		return fmt.Errorf("set %q: %w", key, err)
	}
	s.queueLocked(e)
	return nil
}

// handleBroadcast applies a received entry and re-queues it if it won.
func (s *kvStore) handleBroadcast(b []byte) {
	e, err := DecodeKVEntry(b)
	if err == nil {
		err = checkKVVersion(e, time.Now())
	}
	if err != nil {
		s.n.stats.kvDrops.Add(1)
		s.n.logger.Printf("drop kv broadcast: %v", err)
		return
	}
	known := s.n.isMember(e.Origin) // before s.mu: it takes n.mu
	s.mu.Lock()
	lost, err := s.applyLocked(e, known)
	switch {
	case err == nil:
		s.queueLocked(e)
	case !errors.Is(err, errKVOld):
		s.n.logger.Printf("drop kv entry %q from %s: %v", e.Key, e.Origin, err)
	}
	s.mu.Unlock()
	if lost != nil {
		s.n.kvSuperseded(lost, e)
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
	now := time.Now()
	known := make(map[string]bool)
	for _, e := range st.Entries {
		if _, ok := known[e.Origin]; !ok {
			known[e.Origin] = s.n.isMember(e.Origin) // before s.mu: it takes n.mu
		}
	}
	type loss struct{ lost, winner *chatpb.KVEntry }
	var losses []loss
	s.mu.Lock()
	refused := 0
	for _, e := range st.Entries {
		if err := checkKVEntry(e); err != nil {
			s.n.stats.kvDrops.Add(1)
			continue
		}
		if err := checkKVVersion(e, now); err != nil {
			s.n.stats.kvDrops.Add(1)
			continue
		}
		lost, err := s.applyLocked(e, known[e.Origin])
		if err != nil && !errors.Is(err, errKVOld) {
			refused++
		}
		if lost != nil {
			losses = append(losses, loss{lost, e})
		}
	}
	s.mu.Unlock()
	if refused > 0 {
		s.n.logger.Printf("kv state: %d entries refused (store bounds)", refused)
	}
	for _, l := range losses {
		s.n.kvSuperseded(l.lost, l.winner)
	}
}

// kvStateEntriesField is KVState.entries' field number.
const kvStateEntriesField = 1

// DecodeKVState decodes push/pull key/value state, bounding its size and
// entry count; entries still need checking one by one. It does not keep b.
// The entries are counted on b's bytes before it is decoded: an empty
// entry is two bytes on the wire and some 200 decoded (a KVEntry and its
// share of the list), so a state within maxKVState decoded to 266,000
// entries, 54 MB, before their count could be checked.
func DecodeKVState(b []byte) (*chatpb.KVState, error) {
	if len(b) > maxKVState {
		return nil, fmt.Errorf("kv state is %d bytes, over %d", len(b), maxKVState)
	}
	// innerEntries counts what proto.Unmarshal would decode, up to the
	// first byte it cannot parse (where the decoder fails too).
	if k := innerEntries(b, kvStateEntriesField, false); k > MaxKVEntries {
		return nil, fmt.Errorf("kv state has %d entries, over %d", k, MaxKVEntries)
	}
	var st chatpb.KVState
	if err := proto.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("decode kv state: %w", err)
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
