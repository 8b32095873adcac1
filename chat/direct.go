package chat

// Direct messages: end-to-end encrypted, one recipient, delivered when the
// recipient is offline through holders.
//
// The sender signs a DirectBody (its identity key) and seals it with HPKE
// to the recipient's encryption key (direct_keys.go), with the recipient
// and message ID in HPKE's info, so a sealed message cannot be moved to
// another recipient or ID. Both ends store their readable copy in
// direct.db (direct_store.go); nobody else stores the text.
//
// Delivery. A message is pending once stored. When the recipient is a live
// member with an established stream, the sender pushes the Sealed form to
// it (Direct); otherwise it asks up to DirectConfig.Holders other live
// members to hold it (Direct with hold). The recipient acknowledges storing
// it (DirectAck result 1), a holder holding it (2) or being full (3: the
// sender asks another); the first of these makes the message sent. Holders
// persist what they hold and push it to the recipient when it is back
// (the retry loop sees its stream up); the recipient's ack, which only the
// recipient can send over its authenticated stream, lets a holder drop it,
// as does the end of DirectConfig.Retention. The recipient deduplicates by
// ID, so copies from several holders and the sender show once.
//
// States. The recipient signs a Receipt (delivered when it stored and
// showed the message, read when its user showed the conversation,
// MarkDirectRead) and sends it to the sender until the sender acks it
// (result 5). Receipts are not held by others: a receipt for a sender
// that is offline waits in the recipient's store until both are online.
//
// Everything is retried by one loop (directLoop) every
// DirectConfig.RetryInterval, and at once when a stream to a peer opens.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

const (
	directIDBytes   = 16
	directInfo      = "hearsay/direct/v1\n"
	directBodyTag   = "hearsay/direct-body/v1\n"
	receiptTag      = "hearsay/receipt/v1\n"
	maxSealedBytes  = 72 << 10
	maxKnownEncKeys = 65536

	// DirectAck results (chat.proto).
	ackStored  = 1
	ackHeld    = 2
	ackFull    = 3
	ackRefused = 4
	ackReceipt = 5

	// record states (DirectRecord.state); they only grow.
	statePending   = 1
	stateSent      = 2
	stateDelivered = 3
	stateRead      = 4
)

var stateNames = map[uint32]string{statePending: hearsay.StatePending, stateSent: hearsay.StateSent,
	stateDelivered: hearsay.StateDelivered, stateRead: hearsay.StateRead}

// DirectConfig configures direct messages. Zero fields mean the default.
type DirectConfig struct {
	// Holders is how many peers hold a message for an offline recipient
	// (default 3).
	Holders int
	// Retention is how long a holder keeps a message whose recipient has
	// not collected it (default 7 days).
	Retention time.Duration
	// MaxHeldPerSender, MaxHeldPerRecipient and MaxHeld bound what this
	// peer holds for others: per peer that handed messages over, per
	// recipient, and in all (defaults 256, 512, 4096; a message is at most
	// 72 KiB sealed). A full holder says so and the sender asks another.
	MaxHeldPerSender    int
	MaxHeldPerRecipient int
	MaxHeld             int
	// MaxPending bounds this peer's own undelivered messages (default
	// 1024): SendDirect fails beyond it.
	MaxPending int
	// RetryInterval is how often undelivered messages, held messages and
	// receipts are sent again (default 1 s).
	RetryInterval time.Duration
	// NoReadReceipts stops this peer from telling senders that it read
	// their messages (delivery receipts are still sent).
	NoReadReceipts bool
}

func (c DirectConfig) withDefaults() DirectConfig {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Holders, 3)
	def(&c.MaxHeldPerSender, 256)
	def(&c.MaxHeldPerRecipient, 512)
	def(&c.MaxHeld, 4096)
	def(&c.MaxPending, 1024)
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	return c
}

// Direct-message errors.
var (
	// ErrNoEncKey: the recipient's encryption key is not known (it never
	// was online together with this peer or a peer that relayed its key).
	ErrNoEncKey = errors.New("recipient's encryption key is not known yet")
	// ErrTooManyPending: DirectConfig.MaxPending undelivered messages.
	ErrTooManyPending = errors.New("too many undelivered direct messages")
)

// outMsg is an own message not yet delivered.
type outMsg struct {
	rec      *chatpb.DirectRecord
	stored   bool                 // the recipient acked storing it
	asked    map[string]time.Time // holders asked, when
	lastPush time.Time            // last push to the recipient
}

// heldMsg is a message held for another peer.
type heldMsg struct {
	to, submitter string
	stored        int64
	size          int
	lastPush      time.Time
}

// directState is the node's direct-message state. mu guards the maps; the
// store is written under mu so memory and disk agree.
type directState struct {
	cfg   DirectConfig
	key   *directKey
	store directStore
	kick  chan struct{} // wakes directLoop (buffered 1)

	mu      sync.Mutex
	keys    map[string]*chatpb.EncKey // known keys by peer ID, own included
	keysGen chan struct{}             // closed and replaced when a key is learnt
	out     map[string]*outMsg        // by ID (raw bytes as string)
	held    map[string]*heldMsg
	bySub   map[string]int // held per submitter
	byTo    map[string]int // held per recipient

	sent, received, forged, invalid, misaddressed, replays, holdRefused atomic.Uint64
}

// openDirect loads the key and store and rebuilds the in-memory state.
func openDirect(cfg Config, id *Identity) (*directState, error) {
	k, err := loadOrCreateDirectKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	st, err := openDirectStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	d := &directState{cfg: cfg.Direct.withDefaults(), key: k, store: st, kick: make(chan struct{}, 1),
		keys: make(map[string]*chatpb.EncKey), keysGen: make(chan struct{}),
		out: make(map[string]*outMsg), held: make(map[string]*heldMsg),
		bySub: make(map[string]int), byTo: make(map[string]int)}
	d.keys[id.ID] = signEncKey(id, cfg.Nick, k)
	err = st.each(bucketKeys, nil, func(_, v []byte) error {
		var ek chatpb.EncKey
		if proto.Unmarshal(v, &ek) == nil && checkEncKey(&ek) == nil && ek.PeerId != id.ID {
			d.keys[ek.PeerId] = &ek
		}
		return nil
	})
	if err == nil {
		err = st.each(bucketDM, nil, func(k, v []byte) error {
			var r chatpb.DirectRecord
			if proto.Unmarshal(v, &r) == nil && r.Outgoing && r.State < stateDelivered && r.Sealed != nil {
				d.out[string(r.Id)] = &outMsg{rec: &r, asked: make(map[string]time.Time)}
			}
			return nil
		})
	}
	if err == nil {
		err = st.each(bucketHeld, nil, func(k, v []byte) error {
			var h chatpb.HeldRecord
			if proto.Unmarshal(v, &h) == nil && h.Sealed != nil {
				d.addHeldLocked(string(k), &h)
			}
			return nil
		})
	}
	if err != nil {
		st.close()
		return nil, fmt.Errorf("load %s: %w", DirectStoreFile, err)
	}
	return d, nil
}

func (d *directState) addHeldLocked(id string, h *chatpb.HeldRecord) {
	d.held[id] = &heldMsg{to: h.Sealed.To, submitter: h.Submitter, stored: h.StoredUnixNano, size: len(h.Sealed.Ciphertext)}
	d.bySub[h.Submitter]++
	d.byTo[h.Sealed.To]++
}

func (d *directState) dropHeldLocked(id string) error {
	h := d.held[id]
	if h == nil {
		return nil
	}
	if err := d.store.apply(storeOp{bucket: bucketHeld, key: []byte(id)}); err != nil {
		return err
	}
	delete(d.held, id)
	if d.bySub[h.submitter]--; d.bySub[h.submitter] <= 0 {
		delete(d.bySub, h.submitter)
	}
	if d.byTo[h.to]--; d.byTo[h.to] <= 0 {
		delete(d.byTo, h.to)
	}
	return nil
}

func (d *directState) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// DirectID formats a direct message ID (hex, 32 characters).
func directID(id []byte) string { return hex.EncodeToString(id) }

// --- signing ---------------------------------------------------------------

func directBodySigningBytes(b *chatpb.DirectBody) []byte {
	c := canon{b: make([]byte, 0, len(directBodyTag)+len(b.Text)+128)}
	c.b = append(c.b, directBodyTag...)
	c.str(1, b.Origin)
	c.bytes(2, b.OriginKey)
	c.str(3, b.To)
	c.bytes(4, b.Id)
	c.int(5, b.SentUnixNano)
	c.str(6, b.Nick)
	c.str(7, b.Text)
	var action uint64
	if b.Action {
		action = 1
	}
	c.uint(8, action)
	return c.b
}

func receiptSigningBytes(r *chatpb.Receipt) []byte {
	c := canon{b: make([]byte, 0, 128)}
	c.b = append(c.b, receiptTag...)
	c.str(1, r.Origin)
	c.bytes(2, r.OriginKey)
	c.str(3, r.To)
	c.bytes(4, r.Id)
	c.uint(5, uint64(r.State))
	c.int(6, r.UnixNano)
	return c.b
}

// sealInfo is HPKE's info for a message: it binds the ciphertext to its
// recipient and ID.
func sealInfo(to string, id []byte) []byte {
	return []byte(directInfo + to + "\n" + directID(id))
}

// checkSealed checks the clear part of a sealed message.
func checkSealed(s *chatpb.Sealed) error {
	switch {
	case s == nil:
		return fmt.Errorf("%w: no sealed message", ErrInvalid)
	case len(s.Id) != directIDBytes:
		return fmt.Errorf("%w: message ID of %d bytes", ErrInvalid, len(s.Id))
	case !hearsay.ValidPeerID(s.To):
		return fmt.Errorf("%w: recipient %q", ErrInvalid, s.To)
	case len(s.Ciphertext) == 0 || len(s.Ciphertext) > maxSealedBytes:
		return fmt.Errorf("%w: ciphertext of %d bytes", ErrInvalid, len(s.Ciphertext))
	}
	return nil
}

// openSealed decrypts and checks a sealed message addressed to self: the
// body must decrypt under our key, name us and the same ID, and carry a
// valid signature of the key its origin derives from.
func openSealed(priv hpke.PrivateKey, self string, s *chatpb.Sealed) (*chatpb.DirectBody, error) {
	if err := checkSealed(s); err != nil {
		return nil, err
	}
	if s.To != self {
		return nil, fmt.Errorf("%w: for %s, not us", errMisaddressed, s.To)
	}
	pt, err := hpke.Open(priv, directKDF, directAEAD, sealInfo(s.To, s.Id), s.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: direct message does not decrypt: %v", ErrForged, err)
	}
	var b chatpb.DirectBody
	if err := proto.Unmarshal(pt, &b); err != nil {
		return nil, fmt.Errorf("%w: direct message body: %v", ErrInvalid, err)
	}
	switch {
	case len(b.OriginKey) != ed25519.PublicKeySize || len(b.Signature) != ed25519.SignatureSize:
		return nil, fmt.Errorf("%w: key or signature size", ErrInvalid)
	case b.Origin != PeerIDFromKey(b.OriginKey):
		return nil, fmt.Errorf("%w: origin %q is not its key's", ErrForged, b.Origin)
	case len(b.Text) > MaxBodyBytes || !utf8.ValidString(b.Text):
		return nil, fmt.Errorf("%w: text", ErrInvalid)
	case b.Nick != "" && nickCharset(b.Nick) != nil:
		return nil, fmt.Errorf("%w: nick", ErrInvalid)
	case !ed25519.Verify(b.OriginKey, directBodySigningBytes(&b), b.Signature):
		return nil, fmt.Errorf("%w: direct message from %s: bad signature", ErrForged, b.Origin)
	case b.To != s.To || !bytes.Equal(b.Id, s.Id):
		// Signed by its origin for another recipient or ID: a copy moved.
		return nil, fmt.Errorf("%w: signed for %s, sealed for %s", errMisaddressed, b.To, s.To)
	}
	return &b, nil
}

var errMisaddressed = errors.New("misaddressed")

// checkReceipt checks a receipt's form and signature.
func checkReceipt(r *chatpb.Receipt) error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: empty receipt", ErrInvalid)
	case len(r.OriginKey) != ed25519.PublicKeySize || len(r.Signature) != ed25519.SignatureSize:
		return fmt.Errorf("%w: key or signature size", ErrInvalid)
	case len(r.Id) != directIDBytes || (r.State != stateDelivered && r.State != stateRead) || !hearsay.ValidPeerID(r.To):
		return fmt.Errorf("%w: receipt fields", ErrInvalid)
	case r.Origin != PeerIDFromKey(r.OriginKey):
		return fmt.Errorf("%w: receipt origin %q is not its key's", ErrForged, r.Origin)
	case !ed25519.Verify(r.OriginKey, receiptSigningBytes(r), r.Signature):
		return fmt.Errorf("%w: receipt from %s: bad signature", ErrForged, r.Origin)
	}
	return nil
}

// count counts a refused input by its error.
func (d *directState) count(err error) {
	switch {
	case errors.Is(err, ErrForged):
		d.forged.Add(1)
	case errors.Is(err, errMisaddressed):
		d.misaddressed.Add(1)
	default:
		d.invalid.Add(1)
	}
}

// --- keys ------------------------------------------------------------------

// encKeysFrame returns our key followed by up to 15 other known keys (the
// most recently issued), for a stream that opens to peer to.
func (n *Node) encKeysFrame(to string) *chatpb.Frame {
	d := n.dm
	d.mu.Lock()
	own := d.keys[n.id.ID]
	others := make([]*chatpb.EncKey, 0, len(d.keys))
	for id, k := range d.keys {
		if id != n.id.ID && id != to {
			others = append(others, k)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(others, func(a, b *chatpb.EncKey) int { return -cmpInt64(a.IssuedUnixNano, b.IssuedUnixNano) })
	keys := append([]*chatpb.EncKey{own}, others[:min(len(others), maxEncKeysPerFrame-1)]...)
	return &chatpb.Frame{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: keys}}}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// handleEncKeys records the keys a peer sent that verify and belong to
// member identities.
func (n *Node) handleEncKeys(ks *chatpb.EncKeys, from string) {
	if len(ks.GetKeys()) == 0 || len(ks.Keys) > maxEncKeysPerFrame {
		n.stats.badFrames.Add(1)
		return
	}
	d := n.dm
	for _, k := range ks.Keys {
		if err := checkEncKey(k); err != nil {
			d.count(err)
			n.logger.Printf("encryption key from %s: %v", from, err)
			continue
		}
		if k.PeerId == n.id.ID {
			continue
		}
		if !n.speakers.knows(k.PeerId, k.IdentityKey) {
			d.invalid.Add(1) // not a member identity: keys are free
			continue
		}
		if err := d.learnKey(k); err != nil {
			n.logger.Printf("encryption key of %s: %v", k.PeerId, err)
		}
	}
}

func (d *directState) learnKey(k *chatpb.EncKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.keys[k.PeerId]
	if old != nil && old.IssuedUnixNano >= k.IssuedUnixNano {
		return nil
	}
	if old == nil && len(d.keys) >= maxKnownEncKeys {
		return fmt.Errorf("known encryption keys full (%d)", maxKnownEncKeys)
	}
	b, err := proto.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	if err := d.store.apply(storeOp{bucket: bucketKeys, key: []byte(k.PeerId), val: b}); err != nil {
		return err
	}
	d.keys[k.PeerId] = k
	close(d.keysGen)
	d.keysGen = make(chan struct{})
	return nil
}

// HasEncKey reports whether the encryption key of peer id is known.
// Never blocks for long.
func (n *Node) HasEncKey(id string) bool {
	n.dm.mu.Lock()
	defer n.dm.mu.Unlock()
	return n.dm.keys[id] != nil
}

// --- sending ---------------------------------------------------------------

// DirectRecipient is who a direct message goes to.
type directPeer struct {
	id, nick string
}

// resolveDirect finds the recipient: a member (live or not) by ID, prefix,
// nick or display name, or else a peer whose key we know by its ID or its
// signed nick.
func (n *Node) resolveDirect(who string) (directPeer, error) {
	who = strings.TrimPrefix(strings.TrimSpace(who), "@")
	m, err := n.resolvePeer(who)
	if err == nil {
		return directPeer{id: m.ID, nick: m.Nick}, nil
	}
	if errors.Is(err, ErrAmbiguousPeer) {
		return directPeer{}, err
	}
	n.mu.Lock()
	if m := n.members[who]; m != nil {
		n.mu.Unlock()
		return directPeer{id: m.ID, nick: m.Nick}, nil
	}
	n.mu.Unlock()
	d := n.dm
	d.mu.Lock()
	defer d.mu.Unlock()
	var found []*chatpb.EncKey
	for id, k := range d.keys {
		if id != n.id.ID && (id == who || k.Nick == who || (len(who) >= 4 && strings.HasPrefix(id, who))) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 1:
		return directPeer{id: found[0].PeerId, nick: found[0].Nick}, nil
	case 0:
		return directPeer{}, fmt.Errorf("%w: nobody is called %q", ErrUnknownPeer, who)
	}
	return directPeer{}, fmt.Errorf("%w: %q matches %d peers; use the peer ID", ErrAmbiguousPeer, who, len(found))
}

// SendDirect sends text to one peer (peer ID, ID prefix, nick or display
// name), end-to-end encrypted, and returns the message ID (hex). The
// message is stored (pending) and shown as a direct event before it
// returns; delivery continues in the background (to the recipient, or to
// holders while it is offline), and state events follow. It blocks for
// file I/O and, when the recipient is online but its key has not arrived
// yet, until the key arrives or ctx ends. Safe for concurrent use.
func (n *Node) SendDirect(ctx context.Context, who, text string) (string, error) {
	return n.sendDirect(ctx, who, text, false)
}

// SendDirectAction sends a /me action ("* alice waves") to one peer, as
// SendDirect.
func (n *Node) SendDirectAction(ctx context.Context, who, text string) (string, error) {
	return n.sendDirect(ctx, who, text, true)
}

func (n *Node) sendDirect(ctx context.Context, who, text string, action bool) (string, error) {
	if _, err := n.active(); err != nil {
		return "", err
	}
	if len(text) > n.cfg.MaxBodyBytes || len(text) > MaxBodyBytes {
		return "", fmt.Errorf("%w: %d bytes", ErrTooLarge, len(text))
	}
	if !utf8.ValidString(text) || text == "" {
		return "", errors.New("direct message: empty or not UTF-8")
	}
	to, err := n.resolveDirect(who)
	if err != nil {
		return "", err
	}
	if to.id == n.id.ID {
		return "", errors.New("direct message: that is you")
	}
	pub, err := n.waitEncKey(ctx, to.id)
	if err != nil {
		return "", err
	}
	d := n.dm
	d.mu.Lock()
	full := len(d.out) >= d.cfg.MaxPending
	d.mu.Unlock()
	if full {
		return "", fmt.Errorf("%w (%d): wait for deliveries", ErrTooManyPending, d.cfg.MaxPending)
	}
	id := make([]byte, directIDBytes)
	rand.Read(id)
	now := time.Now()
	nick := n.Nick()
	body := &chatpb.DirectBody{Origin: n.id.ID, OriginKey: n.id.Pub, To: to.id, Id: id,
		SentUnixNano: now.UnixNano(), Nick: nick, Text: text, Action: action}
	body.Signature = n.id.Sign(directBodySigningBytes(body))
	pt, err := proto.Marshal(body)
	if err != nil {
		return "", fmt.Errorf("encode direct message: %w", err)
	}
	ct, err := hpke.Seal(pub, directKDF, directAEAD, sealInfo(to.id, id), pt)
	if err != nil {
		return "", fmt.Errorf("seal direct message: %w", err)
	}
	rec := &chatpb.DirectRecord{Id: id, Peer: to.id, Outgoing: true, Nick: nick, Text: text, Action: action,
		SentUnixNano: now.UnixNano(), State: statePending, StoredUnixNano: now.UnixNano(),
		Sealed: &chatpb.Sealed{Id: id, To: to.id, SentUnixNano: now.UnixNano(), Ciphertext: ct}}
	d.mu.Lock()
	err = d.putRecordLocked(rec, true)
	if err == nil {
		d.out[string(id)] = &outMsg{rec: rec, asked: make(map[string]time.Time)}
	}
	d.mu.Unlock()
	if err != nil {
		return "", err
	}
	d.sent.Add(1)
	n.emit(n.directEvent(hearsay.EventDirect, rec))
	n.deliverOut()
	return directID(id), nil
}

// waitEncKey returns the recipient's public key; for a live member whose
// key has not arrived it waits (the key comes when its stream opens).
func (n *Node) waitEncKey(ctx context.Context, id string) (hpke.PublicKey, error) {
	d := n.dm
	deadline := time.NewTimer(n.cfg.HandshakeTimeout + time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		k := d.keys[id]
		gen := d.keysGen
		d.mu.Unlock()
		if k != nil {
			pub, err := directKEM.NewPublicKey(k.EncKey)
			if err != nil {
				return nil, fmt.Errorf("key of %s: %w", id, err)
			}
			return pub, nil
		}
		if !n.isLive(id) {
			return nil, fmt.Errorf("%w for %s: it must be online once with you or a peer you meet", ErrNoEncKey, id)
		}
		select {
		case <-gen:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w for %s: %w", ErrNoEncKey, id, ctx.Err())
		case <-deadline.C:
			return nil, fmt.Errorf("%w for %s", ErrNoEncKey, id)
		case <-n.ctx.Done():
			return nil, ErrShutdown
		}
	}
}

// putRecordLocked stores a record (and, when new, its conversation entry).
func (d *directState) putRecordLocked(rec *chatpb.DirectRecord, isNew bool) error {
	b, err := proto.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode direct record: %w", err)
	}
	ops := []storeOp{{bucket: bucketDM, key: rec.Id, val: b}}
	if isNew {
		ops = append(ops, storeOp{bucket: bucketConv, key: convKey(rec.Peer, rec.StoredUnixNano, rec.Id), val: rec.Id})
	}
	return d.store.apply(ops...)
}

func convKey(peer string, stored int64, id []byte) []byte {
	k := make([]byte, 0, len(peer)+1+8+len(id))
	k = append(k, peer...)
	k = append(k, '/')
	k = binary.BigEndian.AppendUint64(k, uint64(stored))
	return append(k, id...)
}

func (d *directState) record(id []byte) (*chatpb.DirectRecord, error) {
	b, err := d.store.get(bucketDM, id)
	if err != nil || b == nil {
		return nil, err
	}
	var r chatpb.DirectRecord
	if err := proto.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode direct record: %w", err)
	}
	return &r, nil
}

// isLive reports whether id is a live member with an established stream.
func (n *Node) isLive(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[id]
	return p != nil && p.connected.Load()
}

// sendTo queues f on the stream to peer id; false if there is none or its
// queue is full.
func (n *Node) sendTo(id string, f *chatpb.Frame) bool {
	n.mu.Lock()
	p := n.peers[id]
	n.mu.Unlock()
	return p != nil && p.enqueue(f)
}

// waitingIDs returns the live members whose stream is down for less than
// the handshake timeout (connecting, or reconnecting after a blip): a
// message for one of them waits for the stream rather than going to
// holders.
func (n *Node) waitingIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []string
	for id, p := range n.peers {
		if !p.connected.Load() && p.unreachableFor() < n.cfg.HandshakeTimeout {
			ids = append(ids, id)
		}
	}
	return ids
}

// liveIDs returns the peers with an established stream.
func (n *Node) liveIDs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ids []string
	for id, p := range n.peers {
		if p.connected.Load() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func directFrame(s *chatpb.Sealed, hold bool) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Direct{Direct: &chatpb.Direct{Sealed: s, Hold: hold}}}
}

func directAckFrame(id []byte, result, state uint32) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_DirectAck{DirectAck: &chatpb.DirectAck{Id: id, Result: result, State: state}}}
}

func receiptFrame(r *chatpb.Receipt) *chatpb.Frame {
	return &chatpb.Frame{Msg: &chatpb.Frame_Receipt{Receipt: r}}
}

// deliverOut sends each undelivered own message where it can go now: to
// the recipient when it is reachable (until it acks), otherwise to holders
// until DirectConfig.Holders hold it. Called by SendDirect and the retry
// loop.
func (n *Node) deliverOut() {
	d := n.dm
	now := time.Now()
	live, waiting := n.liveIDs(), n.waitingIDs()
	type send struct {
		to   string
		f    *chatpb.Frame
		hold bool
	}
	var sends []send
	d.mu.Lock()
	for _, o := range d.out {
		to := o.rec.Peer
		if slices.Contains(live, to) {
			if !o.stored && now.Sub(o.lastPush) >= d.cfg.RetryInterval {
				o.lastPush = now
				sends = append(sends, send{to: to, f: directFrame(o.rec.Sealed, false)})
			}
			continue
		}
		if slices.Contains(waiting, to) {
			continue // its stream is coming up: no need for holders
		}
		held := len(o.rec.Holders)
		if held >= d.cfg.Holders {
			continue
		}
		pending := 0
		for _, t := range o.asked {
			if now.Sub(t) < 5*d.cfg.RetryInterval {
				pending++
			}
		}
		for _, h := range live {
			if held+pending >= d.cfg.Holders {
				break
			}
			if h == to || slices.Contains(o.rec.Holders, h) || slices.Contains(o.rec.Full, h) {
				continue
			}
			if t, ok := o.asked[h]; ok && now.Sub(t) < 5*d.cfg.RetryInterval {
				continue
			}
			o.asked[h] = now
			pending++
			sends = append(sends, send{to: h, f: directFrame(o.rec.Sealed, true), hold: true})
		}
	}
	d.mu.Unlock()
	for _, s := range sends {
		n.sendTo(s.to, s.f)
	}
}

// --- receiving -------------------------------------------------------------

// handleDirect takes a sealed message from peer from: ours to open, or one
// to hold for someone else.
func (n *Node) handleDirect(m *chatpb.Direct, from string) {
	d := n.dm
	s := m.GetSealed()
	if err := checkSealed(s); err != nil {
		d.count(err)
		return
	}
	if s.To != n.id.ID {
		if !m.Hold {
			d.misaddressed.Add(1)
			n.sendTo(from, directAckFrame(s.Id, ackRefused, 0))
			return
		}
		n.sendTo(from, directAckFrame(s.Id, n.holdFor(s, from), 0))
		return
	}
	body, err := openSealed(d.key.priv, n.id.ID, s)
	if err != nil {
		d.count(err)
		n.logger.Printf("direct message from %s: %v", from, err)
		n.sendTo(from, directAckFrame(s.Id, ackRefused, 0))
		return
	}
	if !n.speakers.knows(body.Origin, body.OriginKey) {
		d.invalid.Add(1) // signed by a key that is no member identity
		n.sendTo(from, directAckFrame(s.Id, ackRefused, 0))
		return
	}
	now := time.Now()
	d.mu.Lock()
	old, err := d.record(s.Id)
	if err == nil && old == nil {
		rec := &chatpb.DirectRecord{Id: s.Id, Peer: body.Origin, Nick: body.Nick, Text: body.Text, Action: body.Action,
			SentUnixNano: body.SentUnixNano, State: stateDelivered, StoredUnixNano: now.UnixNano()}
		err = d.putRecordLocked(rec, true)
		if err == nil {
			err = d.queueReceiptLocked(n.id, rec, stateDelivered)
		}
		d.mu.Unlock()
		if err != nil {
			n.logger.Printf("store direct message: %v", err)
			return // not acked: sent again
		}
		d.received.Add(1)
		n.emit(n.directEvent(hearsay.EventDirect, rec))
		// The ack first: on the same stream, the sender sees sent before
		// delivered.
		n.sendTo(from, directAckFrame(s.Id, ackStored, 0))
		n.sendReceipts(body.Origin)
		return
	}
	d.mu.Unlock()
	if err != nil {
		n.logger.Printf("read direct message: %v", err)
		return
	}
	d.replays.Add(1) // a resend, a copy from another holder, or a replay
	n.sendTo(from, directAckFrame(s.Id, ackStored, 0))
}

// holdFor stores a sealed message for its offline recipient, within the
// quotas, and returns the ack result.
func (n *Node) holdFor(s *chatpb.Sealed, from string) uint32 {
	d := n.dm
	d.mu.Lock()
	defer d.mu.Unlock()
	id := string(s.Id)
	if _, ok := d.held[id]; ok {
		return ackHeld
	}
	if len(d.held) >= d.cfg.MaxHeld || d.bySub[from] >= d.cfg.MaxHeldPerSender || d.byTo[s.To] >= d.cfg.MaxHeldPerRecipient {
		d.holdRefused.Add(1)
		return ackFull
	}
	h := &chatpb.HeldRecord{Sealed: s, Submitter: from, StoredUnixNano: time.Now().UnixNano()}
	b, err := proto.Marshal(h)
	if err == nil {
		err = d.store.apply(storeOp{bucket: bucketHeld, key: s.Id, val: b})
	}
	if err != nil {
		n.logger.Printf("hold direct message: %v", err)
		return ackFull
	}
	d.addHeldLocked(id, h)
	d.wake() // the recipient may be reachable from here
	return ackHeld
}

// queueReceiptLocked signs a receipt for an incoming record and stores it
// until its sender acks it.
func (d *directState) queueReceiptLocked(id *Identity, rec *chatpb.DirectRecord, state uint32) error {
	r := &chatpb.Receipt{Origin: id.ID, OriginKey: id.Pub, To: rec.Peer, Id: rec.Id, State: state, UnixNano: time.Now().UnixNano()}
	r.Signature = id.Sign(receiptSigningBytes(r))
	b, err := proto.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode receipt: %w", err)
	}
	return d.store.apply(storeOp{bucket: bucketRcpt, key: rcptKey(rec.Id, state), val: b})
}

func rcptKey(id []byte, state uint32) []byte { return append(slices.Clone(id), byte(state)) }

// sendReceipts sends the stored receipts for peer to (all peers when to
// is empty) that are reachable now.
func (n *Node) sendReceipts(to string) {
	d := n.dm
	live := n.liveIDs()
	var rs []*chatpb.Receipt
	_ = d.store.each(bucketRcpt, nil, func(_, v []byte) error {
		var r chatpb.Receipt
		if proto.Unmarshal(v, &r) == nil && (to == "" || r.To == to) && slices.Contains(live, r.To) {
			rs = append(rs, &r)
		}
		return nil
	})
	for _, r := range rs {
		n.sendTo(r.To, receiptFrame(r))
	}
}

// handleDirectAck acts on an ack from peer from.
func (n *Node) handleDirectAck(a *chatpb.DirectAck, from string) {
	d := n.dm
	if len(a.Id) != directIDBytes {
		d.invalid.Add(1)
		return
	}
	id := string(a.Id)
	if a.Result == ackReceipt {
		if a.State != stateDelivered && a.State != stateRead {
			d.invalid.Add(1)
			return
		}
		k := rcptKey(a.Id, a.State)
		b, err := d.store.get(bucketRcpt, k)
		if err != nil || b == nil {
			d.replays.Add(1) // acked before: the ack of a resent receipt
			return
		}
		var r chatpb.Receipt
		if proto.Unmarshal(b, &r) != nil || r.To != from {
			d.misaddressed.Add(1) // only the message's sender may ack
			return
		}
		if err := d.store.apply(storeOp{bucket: bucketRcpt, key: k}); err != nil {
			n.logger.Printf("drop receipt: %v", err)
		}
		return
	}
	d.mu.Lock()
	if h := d.held[id]; h != nil && a.Result == ackStored && h.to == from {
		// The recipient itself (authenticated stream) has it: done.
		if err := d.dropHeldLocked(id); err != nil {
			n.logger.Printf("drop held message: %v", err)
		}
		d.mu.Unlock()
		return
	}
	o := d.out[id]
	if o == nil {
		d.mu.Unlock()
		d.replays.Add(1) // an ack for a message no longer pending (or never ours)
		return
	}
	switch a.Result {
	case ackStored:
		if from != o.rec.Peer {
			d.mu.Unlock()
			d.misaddressed.Add(1)
			return
		}
		o.stored = true
	case ackHeld, ackFull:
		if slices.Contains(o.rec.Holders, from) || slices.Contains(o.rec.Full, from) {
			d.mu.Unlock()
			d.replays.Add(1) // the answer to a repeated request
			return
		}
		if _, asked := o.asked[from]; !asked {
			d.mu.Unlock()
			d.misaddressed.Add(1)
			return
		}
		delete(o.asked, from)
		if a.Result == ackFull {
			if !slices.Contains(o.rec.Full, from) {
				o.rec.Full = append(o.rec.Full, from)
			}
			d.mu.Unlock()
			d.wake() // ask another holder
			return
		}
		if !slices.Contains(o.rec.Holders, from) {
			o.rec.Holders = append(o.rec.Holders, from)
		}
	default:
		// Refused (ackRefused), or unknown: the other end will not take
		// it; the retry loop tries again or elsewhere.
		d.mu.Unlock()
		n.logger.Printf("direct message %s refused by %s (%d)", directID(a.Id), from, a.Result)
		return
	}
	var changed *chatpb.DirectRecord
	if o.rec.State < stateSent {
		o.rec.State = stateSent
		changed = proto.Clone(o.rec).(*chatpb.DirectRecord)
	}
	if err := d.putRecordLocked(o.rec, false); err != nil {
		n.logger.Printf("store direct state: %v", err)
	}
	d.mu.Unlock()
	if changed != nil { // built without d.mu: directEvent takes it
		n.emit(n.directEvent(hearsay.EventState, changed))
	}
}

// handleReceipt records a recipient's signed receipt and acks it.
func (n *Node) handleReceipt(r *chatpb.Receipt, from string) {
	d := n.dm
	if err := checkReceipt(r); err != nil {
		d.count(err)
		n.logger.Printf("receipt from %s: %v", from, err)
		return
	}
	if r.To != n.id.ID {
		d.misaddressed.Add(1)
		return
	}
	d.mu.Lock()
	rec, err := d.record(r.Id)
	if err != nil || rec == nil || !rec.Outgoing || rec.Peer != r.Origin {
		// Not one of our messages, or signed by someone it was not for.
		d.mu.Unlock()
		d.misaddressed.Add(1)
		return
	}
	var changed []*chatpb.DirectRecord // shown after d.mu: directEvent takes it
	if r.State <= rec.State {
		d.replays.Add(1) // already recorded; ack again so it stops
	} else {
		if rec.State < stateSent {
			// The receipt overtook the ack (or the ack was lost): a
			// delivered message was sent, and the user sees each step.
			rec.State = stateSent
			changed = append(changed, proto.Clone(rec).(*chatpb.DirectRecord))
		}
		rec.State = r.State
		rec.Sealed = nil // delivered: never sent again
		if err := d.putRecordLocked(rec, false); err != nil {
			d.mu.Unlock()
			n.logger.Printf("store receipt: %v", err)
			return
		}
		delete(d.out, string(r.Id))
		changed = append(changed, rec)
	}
	d.mu.Unlock()
	for _, rec := range changed {
		n.emit(n.directEvent(hearsay.EventState, rec))
	}
	n.sendTo(from, directAckFrame(r.Id, ackReceipt, r.State))
}

// --- read receipts, history, listing ---------------------------------------

// MarkDirectRead records that the user saw the conversation with who (the
// REPL calls it when a conversation's messages are shown in the active
// window) and, unless DirectConfig.NoReadReceipts, tells the sender.
// Blocks for file I/O.
func (n *Node) MarkDirectRead(who string) error {
	p, err := n.resolveDirect(who)
	if err != nil {
		return err
	}
	d := n.dm
	recs, err := d.conversation(p.id, 0)
	if err != nil {
		return err
	}
	d.mu.Lock()
	for _, rec := range recs {
		if rec.Outgoing || rec.State >= stateRead {
			continue
		}
		rec.State = stateRead
		err = d.putRecordLocked(rec, false)
		if err == nil && !d.cfg.NoReadReceipts {
			err = d.queueReceiptLocked(n.id, rec, stateRead)
		}
		if err != nil {
			break
		}
	}
	d.mu.Unlock()
	if err != nil {
		return err
	}
	n.sendReceipts(p.id)
	return nil
}

// conversation returns the stored messages with peer, oldest first; the
// last limit when limit > 0.
func (d *directState) conversation(peer string, limit int) ([]*chatpb.DirectRecord, error) {
	var ids [][]byte
	err := d.store.each(bucketConv, []byte(peer+"/"), func(_, v []byte) error {
		ids = append(ids, slices.Clone(v))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read conversation: %w", err)
	}
	if limit > 0 && len(ids) > limit {
		ids = ids[len(ids)-limit:]
	}
	out := make([]*chatpb.DirectRecord, 0, len(ids))
	for _, id := range ids {
		r, err := d.record(id)
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// DirectHistory returns up to limit past messages of the conversation with
// who (0: all), oldest first, as history events (To, State set). Blocks
// for file I/O.
func (n *Node) DirectHistory(who string, limit int) ([]hearsay.Event, error) {
	p, err := n.resolveDirect(who)
	if err != nil {
		return nil, err
	}
	recs, err := n.dm.conversation(p.id, limit)
	if err != nil {
		return nil, err
	}
	evs := make([]hearsay.Event, len(recs))
	for i, r := range recs {
		evs[i] = n.directEvent(hearsay.EventHistory, r)
	}
	return evs, nil
}

// Undelivered returns this node's own direct messages that no delivery
// receipt has confirmed yet, oldest first, as direct events with State.
func (n *Node) Undelivered() []hearsay.Event {
	d := n.dm
	d.mu.Lock()
	recs := make([]*chatpb.DirectRecord, 0, len(d.out))
	for _, o := range d.out {
		recs = append(recs, proto.Clone(o.rec).(*chatpb.DirectRecord))
	}
	d.mu.Unlock()
	slices.SortFunc(recs, func(a, b *chatpb.DirectRecord) int { return cmpInt64(a.StoredUnixNano, b.StoredUnixNano) })
	evs := make([]hearsay.Event, len(recs))
	for i, r := range recs {
		evs[i] = n.directEvent(hearsay.EventDirect, r)
	}
	return evs
}

// directEvent is the event showing rec.
func (n *Node) directEvent(typ string, rec *chatpb.DirectRecord) hearsay.Event {
	self, selfNick := n.id.ID, n.Nick()
	ev := hearsay.Event{Type: typ, Time: time.Unix(0, rec.SentUnixNano), ID: directID(rec.Id), Action: rec.Action}
	peerName := n.displayName(rec.Peer, n.directNick(rec))
	if rec.Outgoing {
		ev.From, ev.FromID, ev.To, ev.ToID, ev.Self = n.displayName(self, selfNick), self, peerName, rec.Peer, true
		ev.State = stateNames[rec.State]
	} else {
		ev.From, ev.FromID, ev.To, ev.ToID = peerName, rec.Peer, n.displayName(self, selfNick), self
	}
	if typ != hearsay.EventState {
		ev.Text = rec.Text
	} else {
		ev.Text = ev.State
		ev.Time = time.Now()
	}
	return ev
}

// directNick is the best nick known for the other end of rec.
func (n *Node) directNick(rec *chatpb.DirectRecord) string {
	n.mu.Lock()
	m := n.members[rec.Peer]
	n.mu.Unlock()
	if m != nil && m.Valid {
		return m.Nick
	}
	if !rec.Outgoing && rec.Nick != "" {
		return rec.Nick
	}
	n.dm.mu.Lock()
	defer n.dm.mu.Unlock()
	if k := n.dm.keys[rec.Peer]; k != nil && k.Nick != "" {
		return k.Nick
	}
	return "?"
}

// --- the retry loop --------------------------------------------------------

// directLoop retries deliveries, hands held messages to recipients that
// are back, sends stored receipts and ends retention, every
// RetryInterval and whenever woken (a stream opened, a holder was full).
func (n *Node) directLoop() {
	defer n.wg.Done()
	d := n.dm
	tick := time.NewTicker(d.cfg.RetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		case <-d.kick:
		}
		n.deliverOut()
		n.pushHeld()
		n.sendReceipts("")
	}
}

// maxPushPerRound bounds the held messages pushed to one recipient per
// round (the rest follow in the next rounds).
const maxPushPerRound = 256

// pushHeld sends held messages to their recipients that are reachable,
// and drops those past retention.
func (n *Node) pushHeld() {
	d := n.dm
	now := time.Now()
	live := n.liveIDs()
	type push struct {
		id []byte
		to string
	}
	var pushes []push
	perTo := make(map[string]int)
	d.mu.Lock()
	for id, h := range d.held {
		if now.Sub(time.Unix(0, h.stored)) > d.cfg.Retention {
			if err := d.dropHeldLocked(id); err != nil {
				n.logger.Printf("retention of held message: %v", err)
			}
			continue
		}
		if !slices.Contains(live, h.to) || now.Sub(h.lastPush) < d.cfg.RetryInterval || perTo[h.to] >= maxPushPerRound {
			continue
		}
		h.lastPush = now
		perTo[h.to]++
		pushes = append(pushes, push{id: []byte(id), to: h.to})
	}
	d.mu.Unlock()
	for _, p := range pushes {
		b, err := d.store.get(bucketHeld, p.id)
		var h chatpb.HeldRecord
		if err != nil || b == nil || proto.Unmarshal(b, &h) != nil {
			continue
		}
		n.sendTo(p.to, directFrame(h.Sealed, false))
	}
}

// directStats fills the direct-message counters of st.
func (n *Node) directStats(st *hearsay.Stats) {
	d := n.dm
	d.mu.Lock()
	st.DirectHeld = len(d.held)
	d.mu.Unlock()
	st.DirectSent, st.DirectReceived = d.sent.Load(), d.received.Load()
	st.DirectForged, st.DirectInvalid = d.forged.Load(), d.invalid.Load()
	st.DirectMisaddressed, st.DirectReplays = d.misaddressed.Load(), d.replays.Load()
	st.DirectHoldRefused = d.holdRefused.Load()
}

// ResolveDirect names the peer a direct message to who would go to: its
// peer ID and display name. who is a peer ID, ID prefix, nick or display
// name of a member (live or not), or of a peer whose encryption key is
// known. Never blocks for long.
func (n *Node) ResolveDirect(who string) (id, name string, err error) {
	p, err := n.resolveDirect(who)
	if err != nil {
		return "", "", err
	}
	return p.id, n.displayName(p.id, p.nick), nil
}
