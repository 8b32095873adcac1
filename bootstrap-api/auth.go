package bootstrapapi

// Signed requests. A v1 join, refill or leave may carry an Auth: the
// Ed25519 public key behind the peer ID, a timestamp, and a signature over
// the canonical encoding of the request (SigningBytes). The service checks
// that the key hashes to the ID, that the signature verifies, and that the
// timestamp is within MaxClockSkew of its clock; inside the store
// transaction the rules then refuse a timestamp that is not later than
// the last one accepted for that ID (a replay). A signed entry can only be
// renewed, replaced or removed by a request signed with the same key, so
// nobody can remove or overwrite another peer's entry.
//
// The peer ID derivation is the chat package's (chat/identity.go): the
// first 8 bytes of SHA-256 of the public key, in lower-case hex. It is
// duplicated here on purpose: the backends import this package and must not
// pull in the chat engine. A test in cmd/hearsay checks that both agree.

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"
)

const (
	// PeerIDBytes is how many bytes of SHA-256(public key) make a peer ID
	// (twice as many hex characters).
	PeerIDBytes = 8
	// MaxClockSkew is how far a signed request's timestamp may be from the
	// service's clock, either way. Outside it the request is refused as
	// stale; inside it, replays are refused by the per-ID timestamp rule.
	MaxClockSkew = 2 * time.Minute
	// MaxTombstones bounds the remembered timestamps of IDs that have no
	// live entry (left or expired), kept so that a captured signed join
	// cannot bring an entry back while its timestamp is still fresh.
	MaxTombstones = MaxMaxPeers
	// signingContext separates these signatures from every other use of
	// a peer's key (chat envelopes, TLS certificates).
	signingContext = "hearsay-bootstrap-v1"
)

// Auth proves that a v1 join, refill or leave was made by the holder of
// the key behind the peer ID. A request without Auth is unsigned: it is
// served with the legacy rules and can never change a signed entry.
type Auth struct {
	// Key is the Ed25519 public key (32 bytes; base64 in JSON) whose
	// PeerIDFromKey is the request's id.
	Key []byte `json:"key"`
	// TS is the request time in Unix milliseconds. It must be within
	// MaxClockSkew of the service's clock and later than the last signed
	// request accepted for the same id.
	TS int64 `json:"ts"`
	// Sig is the Ed25519 signature (64 bytes; base64 in JSON) of
	// SigningBytes(op, id, nick, addr, protocol, key, ts).
	Sig []byte `json:"sig"`
}

// Signer signs requests with a peer's identity key. The chat identity
// satisfies it through a small adapter in cmd; NewKeySigner wraps a bare
// key. Implementations must be safe for concurrent use.
type Signer interface {
	// PublicKey returns the Ed25519 public key whose hash is the peer ID.
	PublicKey() ed25519.PublicKey
	// Sign returns the Ed25519 signature of msg.
	Sign(msg []byte) []byte
}

// NewKeySigner returns a Signer over an Ed25519 private key.
func NewKeySigner(priv ed25519.PrivateKey) Signer { return keySigner{priv} }

type keySigner struct{ priv ed25519.PrivateKey }

func (k keySigner) PublicKey() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }
func (k keySigner) Sign(msg []byte) []byte       { return ed25519.Sign(k.priv, msg) }

// PeerIDFromKey derives the peer ID of an Ed25519 public key: the first
// PeerIDBytes bytes of its SHA-256, in lower-case hex. It is the same
// derivation as the chat package's.
func PeerIDFromKey(pub []byte) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:PeerIDBytes])
}

// SigningBytes is the canonical encoding a signature covers: the context
// string "hearsay-bootstrap-v1", then op, id, nick, addr, protocol and key,
// each as a 4-byte big-endian length followed by its bytes, then ts as an
// 8-byte big-endian two's-complement integer. A leave signs empty nick,
// addr and protocol. Length prefixes make the encoding unambiguous, and op
// keeps a signed leave from being replayed as a join (or the reverse).
func SigningBytes(op, id, nick, addr, protocol string, key []byte, ts int64) []byte {
	n := len(signingContext) + 4*6 + len(op) + len(id) + len(nick) + len(addr) + len(protocol) + len(key) + 8
	b := make([]byte, 0, n)
	b = append(b, signingContext...)
	for _, f := range [][]byte{[]byte(op), []byte(id), []byte(nick), []byte(addr), []byte(protocol), key} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return binary.BigEndian.AppendUint64(b, uint64(ts))
}

// SignJoin sets req.Auth: a signature by s of a join or refill (op) made
// at ts (Unix milliseconds). It does not check that req.ID is s's ID.
func SignJoin(s Signer, op string, req *JoinRequest, ts int64) {
	key := s.PublicKey()
	req.Auth = &Auth{Key: key, TS: ts,
		Sig: s.Sign(SigningBytes(op, req.ID, req.Nick, req.Addr, req.Protocol, key, ts))}
}

// SignLeave sets req.Auth: a signature by s of a leave made at ts.
func SignLeave(s Signer, req *LeaveRequest, ts int64) {
	key := s.PublicKey()
	req.Auth = &Auth{Key: key, TS: ts, Sig: s.Sign(SigningBytes("leave", req.ID, "", "", "", key, ts))}
}

// VerifyAuth checks a's key, freshness and signature for a request op on
// id with the given fields, at the service time now. It does not check for
// replays: that needs the stored state and is the rules' job. Errors are
// *Error with code bad_signature or stale.
func VerifyAuth(a *Auth, op, id, nick, addr, protocol string, now time.Time) error {
	if len(a.Key) != ed25519.PublicKeySize {
		return Errorf(ECodeBadSignature, "auth key is %d bytes, want an Ed25519 public key of %d", len(a.Key), ed25519.PublicKeySize)
	}
	if len(a.Sig) != ed25519.SignatureSize {
		return Errorf(ECodeBadSignature, "auth signature is %d bytes, want %d", len(a.Sig), ed25519.SignatureSize)
	}
	if got := PeerIDFromKey(a.Key); got != id {
		return Errorf(ECodeBadSignature, "auth key belongs to peer %s, not to id %q", got, clip(id))
	}
	// Compare in milliseconds without overflow: now±skew is far from the
	// int64 limits, and ts is only compared, never added to.
	nowMs, skew := now.UnixMilli(), MaxClockSkew.Milliseconds()
	if a.TS < nowMs-skew || a.TS > nowMs+skew {
		return Errorf(ECodeStale, "auth timestamp %d is more than %s from the service time %d (Unix ms); check the clock",
			a.TS, MaxClockSkew, nowMs)
	}
	if !ed25519.Verify(a.Key, SigningBytes(op, id, nick, addr, protocol, a.Key, a.TS), a.Sig) {
		return Errorf(ECodeBadSignature, "auth signature does not verify for this %s request", op)
	}
	return nil
}

// encodeKey is how a record stores the key that signed it.
func encodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }
