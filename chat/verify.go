package chat

// Signature checks. Verifying Ed25519 signatures is most of what a peer
// spends per received message (one check per message per receiver), so the
// receive pipeline verifies the envelopes of a batch frame together, with
// the curve25519-voi implementation: its batch verification costs ~15 µs
// per signature for 16 at once with cached expanded keys, against ~50 µs
// for crypto/ed25519's single check (docs/BENCHMARKS.md).
//
// Batch and single verification must accept exactly the same signatures,
// or a crafted message could be accepted by a peer that saw it in a batch
// and refused by one that saw it alone. RFC 8032's cofactorless rule does
// not give that; the ZIP-215 rules (cofactored equation, canonical S, any
// encoding of A and R that decodes) do, and accept every signature RFC 8032
// accepts. Every envelope check in hearsay uses them (protocol version 2).
// Signing is unchanged: crypto/ed25519 signatures are standard.

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"sync/atomic"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// zip215 selects the ZIP-215 verification rules.
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// keyCacheGen is the size of a keyCache generation: the cache holds the
// keys of at most 2×keyCacheGen origins. An expanded key is about 1.3 KB
// (a decompressed point with its precomputed tables), so an unbounded
// cache grew with the number of origins a peer ever verified: at 200
// peers in one process, each holding the keys of all 200, they were
// 52 MB of a 280 MB heap (about 0.26 MB per peer). A chat room's active
// speakers are few, and a key out of the cache costs one expansion
// (about a fifth of a verification: 3 to 7 µs more per envelope in
// BenchmarkCheckEnvelopes) on its next message.
const keyCacheGen = 32

// keyCache keeps expanded public keys (decompressed points with their
// precomputed tables) by key bytes: expanding a key costs about a fifth of
// a verification, and every message of an origin carries the same key.
// It keeps two generations: a key is looked up in the current one, then
// in the previous one, which moves it to the current one; when the
// current one is full it becomes the previous one and the oldest is
// dropped. So the keys used since the last rotation stay, whatever the
// number of others, and the whole costs no list upkeep per lookup (the
// least recently used, nearly).
//
// Keys are expanded before the signature and membership checks, so a
// peer could send envelopes under fresh keys (anyone can make one) to
// push the members' keys out, 32 to 64 envelopes at a time; admit, when
// set, says which keys may enter (a node's: those of member identities),
// and any other is expanded for its check and not kept.
type keyCache struct {
	admit func(origin string, pub []byte) bool

	mu        sync.Mutex
	cur, prev map[string]*voi.ExpandedPublicKey
}

// expanded returns the expanded key pub of origin, or an error when pub
// is not a point encoding.
func (c *keyCache) expanded(origin string, pub []byte) (*voi.ExpandedPublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key of %d bytes", len(pub))
	}
	if c != nil {
		c.mu.Lock()
		ek := c.cur[string(pub)]
		if ek == nil {
			if ek = c.prev[string(pub)]; ek != nil {
				c.putLocked(pub, ek)
			}
		}
		c.mu.Unlock()
		if ek != nil {
			return ek, nil
		}
	}
	ek, err := voi.NewExpandedPublicKey(voi.PublicKey(pub))
	if err != nil {
		return nil, err
	}
	if c != nil && (c.admit == nil || c.admit(origin, pub)) {
		c.mu.Lock()
		c.putLocked(pub, ek)
		c.mu.Unlock()
	}
	return ek, nil
}

// putLocked adds pub's expanded key to the current generation, rotating
// the generations when it is full. Caller holds c.mu.
func (c *keyCache) putLocked(pub []byte, ek *voi.ExpandedPublicKey) {
	if c.cur == nil || len(c.cur) >= keyCacheGen {
		c.prev, c.cur = c.cur, make(map[string]*voi.ExpandedPublicKey, keyCacheGen)
	}
	c.cur[string(pub)] = ek
}

// len returns the number of keys held.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// checkEnvelopes is CheckEnvelope for several envelopes at once: errs[i]
// is envs[i]'s error (wrapping ErrInvalid or ErrForged) or nil. The
// signatures of the envelopes that pass the field checks are verified in
// one batch; when the batch fails, each is checked alone (voi does this),
// so one forged envelope costs its batch the speed-up, never a wrong
// verdict for the others. keys may be nil (no caching: CheckEnvelope).
func checkEnvelopes(keys *keyCache, envs []*chatpb.Envelope) []error {
	errs := make([]error, len(envs))
	type pending struct {
		i   int
		ek  *voi.ExpandedPublicKey
		msg []byte
	}
	todo := make([]pending, 0, len(envs))
	for i, e := range envs {
		if err := checkEnvelopeFields(e); err != nil {
			errs[i] = err
			continue
		}
		ek, err := keys.expanded(e.Origin, e.OriginKey)
		if err != nil {
			errs[i] = fmt.Errorf("%w: origin %s: bad key: %v", ErrForged, e.Origin, err)
			continue
		}
		todo = append(todo, pending{i: i, ek: ek, msg: SigningBytes(e)})
	}
	switch len(todo) {
	case 0:
		return errs
	case 1:
		p := todo[0]
		if !voi.VerifyExpandedWithOptions(p.ek, p.msg, envs[p.i].Signature, zip215) {
			errs[p.i] = badSignature(envs[p.i])
		}
		return errs
	}
	bv := voi.NewBatchVerifierWithCapacity(len(todo))
	for _, p := range todo {
		bv.AddExpandedWithOptions(p.ek, p.msg, envs[p.i].Signature, zip215)
	}
	if ok, valid := bv.Verify(nil); !ok {
		for k, p := range todo {
			if !valid[k] {
				errs[p.i] = badSignature(envs[p.i])
			}
		}
	}
	return errs
}

func badSignature(e *chatpb.Envelope) error {
	return fmt.Errorf("%w: bad signature on %s/%d", ErrForged, e.Origin, e.Seq)
}

// checkEnvelopeFields is CheckEnvelope without the signature: the limits,
// the format rules, and the origin matching its key.
func checkEnvelopeFields(e *chatpb.Envelope) error {
	if err := validateEnvelope(e); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(e.OriginKey) != ed25519.PublicKeySize || PeerIDFromKey(e.OriginKey) != e.Origin {
		return fmt.Errorf("%w: origin %s does not match its key", ErrForged, e.Origin)
	}
	if len(e.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes on %s/%d", ErrForged, len(e.Signature), e.Origin, e.Seq)
	}
	return nil
}

// maxCombined bounds the envelopes one combining round verifies at once.
const maxCombined = 256

// combiner shares signature batches among the goroutines that receive
// envelopes at the same time (one per incoming stream). A batch of 16
// signatures costs about 60 % of 16 single checks, but one stream's frame
// rarely holds more than a few envelopes; the node's streams together do.
// It is flat combining, not a worker: the first caller verifies its own
// envelopes inline (no hand-off when the node is quiet) and, while it
// works, later callers queue; it then verifies what queued in one batch
// and hands each caller its verdicts. A combiner runs at most maxRounds
// rounds from the one holding its own envelopes; if callers are still
// queued then, it
// passes the role to the first of them and returns, so a stream's
// goroutine never verifies for the others indefinitely while its own
// frames wait.
type combiner struct {
	keys *keyCache

	// onCheck, when set, is called with the envelopes of every check
	// before they are verified: a test hook that shows which signatures
	// the node checks (a payload the overlay driver verified is not
	// checked again by the receive pipeline).
	onCheck atomic.Pointer[func(envs []*chatpb.Envelope)]

	mu      sync.Mutex
	busy    bool // a combiner is running (or has been handed the role)
	pending []*verifyReq
}

// maxRounds bounds the rounds a combiner runs, counting from the one
// holding its own envelopes.
const maxRounds = 2

type verifyReq struct {
	envs []*chatpb.Envelope
	errs []error
	// done receives false when errs is set, or true when this caller is
	// to take over as combiner (its envelopes are still pending).
	done chan bool
}

// check returns checkEnvelopes(envs), verified together with whatever
// other callers ask meanwhile.
func (c *combiner) check(envs []*chatpb.Envelope) []error {
	if len(envs) == 0 {
		return nil
	}
	if f := c.onCheck.Load(); f != nil {
		(*f)(envs)
	}
	req := &verifyReq{envs: envs, done: make(chan bool, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, req)
	if c.busy {
		c.mu.Unlock()
		if combine := <-req.done; !combine {
			return req.errs
		}
		c.mu.Lock() // the role was handed to us; busy stays set
	}
	c.busy = true
	ownDone, extra := false, 0
	for len(c.pending) > 0 {
		if ownDone && extra >= maxRounds {
			// Hand over: the first queued caller combines from here on.
			c.pending[0].done <- true
			c.mu.Unlock()
			return req.errs
		}
		var round []*verifyReq
		n := 0
		for len(c.pending) > 0 && (n == 0 || n+len(c.pending[0].envs) <= maxCombined) {
			r := c.pending[0]
			c.pending[0] = nil
			c.pending = c.pending[1:]
			round = append(round, r)
			n += len(r.envs)
		}
		c.mu.Unlock()
		all := make([]*chatpb.Envelope, 0, n)
		for _, r := range round {
			all = append(all, r.envs...)
		}
		errs := checkEnvelopes(c.keys, all)
		for _, r := range round {
			r.errs, errs = errs[:len(r.envs):len(r.envs)], errs[len(r.envs):]
			if r == req {
				ownDone = true
			} else {
				r.done <- false
			}
		}
		if ownDone {
			extra++
		}
		c.mu.Lock()
	}
	c.busy = false
	c.mu.Unlock()
	return req.errs
}
