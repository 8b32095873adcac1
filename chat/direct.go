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
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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
	directIDTag     = "hearsay/direct-id/v1\n"
	receiptTag      = "hearsay/receipt/v1\n"
	maxSealedBytes  = 72 << 10
	maxKnownEncKeys = 65536

	// DirectAck results (chat.proto).
	ackStored  = 1
	ackHeld    = 2
	ackFull    = 3
	ackRefused = 4
	ackReceipt = 5
	ackLater   = 6

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
	// MaxReceiptsPerSender bounds the receipts this peer keeps for one
	// sender until that sender acks them (default 1024; each incoming
	// message makes at most two, delivered and read). At the bound a new
	// message from that sender is answered "not now" (holders keep it,
	// a live sender retries) instead of being stored: a member that
	// floods a peer and never acks its receipts cannot grow the peer's
	// store without limit.
	MaxReceiptsPerSender int
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
	def(&c.MaxReceiptsPerSender, 1024)
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
	fullAt   map[string]time.Time // holders in rec.Full, when they said so (or when the record was loaded)
	lastPush time.Time            // last push to the recipient
}

// fullRetryRounds is how many RetryIntervals a holder that answered "full"
// is left alone before it is asked again (30 s by default). A holder is
// full for a while (its quotas free up as recipients collect or
// retention expires), not for ever: without a retry a sender whose
// other candidates were full or gone kept fewer holders than
// DirectConfig.Holders until it restarted, and a member could make
// itself look full once to stay out of a message's holders for good.
const fullRetryRounds = 30

// newOutMsg returns the pending state of rec; holders it lists as full
// count as full from now (when they said so is not stored).
func newOutMsg(rec *chatpb.DirectRecord) *outMsg {
	o := &outMsg{rec: rec, asked: make(map[string]time.Time), fullAt: make(map[string]time.Time)}
	now := time.Now()
	for _, h := range rec.Full {
		o.fullAt[h] = now
	}
	return o
}

// fullNow reports whether holder h answered "full" less than
// fullRetryRounds intervals ago; a holder whose answer is older leaves
// rec.Full and may be asked again. Caller holds d.mu.
func (o *outMsg) fullNow(h string, now time.Time, interval time.Duration) bool {
	if !slices.Contains(o.rec.Full, h) {
		return false
	}
	if t, ok := o.fullAt[h]; ok && now.Sub(t) < fullRetryRounds*interval {
		return true
	}
	o.rec.Full = slices.DeleteFunc(o.rec.Full, func(x string) bool { return x == h })
	delete(o.fullAt, h)
	return false
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
	rcptBy  map[string]int // stored receipts per sender they go to

	sent, received, forged, invalid, misaddressed, replays, holdRefused, deferred atomic.Uint64
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
		bySub: make(map[string]int), byTo: make(map[string]int), rcptBy: make(map[string]int)}
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
				d.out[string(r.Id)] = newOutMsg(&r)
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
	if err == nil {
		err = d.loadReceipts()
	}
	if err != nil {
		st.close()
		return nil, fmt.Errorf("load %s: %w", DirectStoreFile, err)
	}
	return d, nil
}

// loadReceipts counts the stored receipts per sender, moving any stored
// under the key of protocol 5 (ID and state, without the sender) to
// rcptKey's, so a sender's receipts are found without a scan of all.
func (d *directState) loadReceipts() error {
	var moves []storeOp
	err := d.store.each(bucketRcpt, nil, func(k, v []byte) error {
		var r chatpb.Receipt
		if proto.Unmarshal(v, &r) != nil || !hearsay.ValidPeerID(r.To) {
			moves = append(moves, storeOp{bucket: bucketRcpt, key: bytes.Clone(k)})
			return nil
		}
		if nk := rcptKey(r.To, r.Id, r.State); !bytes.Equal(k, nk) {
			moves = append(moves, storeOp{bucket: bucketRcpt, key: bytes.Clone(k)},
				storeOp{bucket: bucketRcpt, key: nk, val: bytes.Clone(v)})
		}
		d.rcptBy[r.To]++
		return nil
	})
	if err != nil || len(moves) == 0 {
		return err
	}
	return d.store.apply(moves...)
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

// deriveDirectID is the ID of origin's direct message with the given nonce.
// A recipient keeps one message per ID, so IDs are bound to their origin:
// otherwise a holder that saw alice's ID (it travels in the clear) could
// deliver a message of its own under it first, and alice's real one would
// be taken for a replay and never shown. A hash keeps the origin hidden
// from holders; 128 bits leave no second preimage to search for.
func deriveDirectID(origin string, nonce []byte) []byte {
	h := sha256.New()
	h.Write([]byte(directIDTag))
	h.Write([]byte(origin))
	h.Write([]byte{'\n'})
	h.Write(nonce)
	return h.Sum(nil)[:directIDBytes]
}

// directID formats a direct message ID (hex, 32 characters).
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
	c.bytes(10, b.Nonce)
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
	case len(b.Text) > MaxBodyBytes || !utf8.ValidString(b.Text):
		return nil, fmt.Errorf("%w: text", ErrInvalid)
	case b.Nick != "" && nickCharset(b.Nick) != nil:
		return nil, fmt.Errorf("%w: nick", ErrInvalid)
	}
	if err := checkSigned("direct message", b.Origin, b.OriginKey, b.Signature, directBodySigningBytes(&b)); err != nil {
		return nil, err
	}
	switch {
	case b.To != s.To || !bytes.Equal(b.Id, s.Id):
		// Signed by its origin for another recipient or ID: a copy moved.
		return nil, fmt.Errorf("%w: signed for %s, sealed for %s", errMisaddressed, b.To, s.To)
	case len(b.Nonce) != directIDBytes || !bytes.Equal(b.Id, deriveDirectID(b.Origin, b.Nonce)):
		// A valid message of its origin under an ID that is not its own:
		// an attempt to shadow another sender's message (deriveDirectID).
		return nil, fmt.Errorf("%w: message ID %s is not derived from its origin %s", ErrForged, directID(b.Id), b.Origin)
	}
	return &b, nil
}

var errMisaddressed = errors.New("misaddressed")

// checkReceipt checks a receipt's form and signature.
func checkReceipt(r *chatpb.Receipt) error {
	switch {
	case r == nil:
		return fmt.Errorf("%w: empty receipt", ErrInvalid)
	case len(r.Id) != directIDBytes || (r.State != stateDelivered && r.State != stateRead) || !hearsay.ValidPeerID(r.To):
		return fmt.Errorf("%w: receipt fields", ErrInvalid)
	}
	return checkSigned("receipt", r.Origin, r.OriginKey, r.Signature, receiptSigningBytes(r))
}

// checkSigned checks a signed statement of origin (what names it in
// errors): the key and signature sizes, that origin is the ID key derives
// to, and the signature over msg.
func checkSigned(what, origin string, key, sig, msg []byte) error {
	switch {
	case len(key) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize:
		return fmt.Errorf("%w: %s key or signature size", ErrInvalid, what)
	case origin != PeerIDFromKey(key):
		return fmt.Errorf("%w: %s origin %q is not its key's", ErrForged, what, origin)
	case !ed25519.Verify(key, msg, sig):
		return fmt.Errorf("%w: %s of %s: bad signature", ErrForged, what, origin)
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
