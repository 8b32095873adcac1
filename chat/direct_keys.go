package chat

// Encryption keys for direct messages. Each peer has an HPKE key pair
// (KEM MLKEM768X25519, the hybrid post-quantum "X-Wing") kept in
// DataDir/direct.key, next to its identity. The public key is 1,216 bytes,
// too large for memberlist's node meta (512), so a peer signs it with its
// Ed25519 identity key (EncKey) and sends it in the greeting of every kept
// link, together with a few keys of members that are offline: a sender can
// then seal a message to a peer that is offline now, if it ever learnt its
// key. A live member that is not a neighbour gives its key when asked
// (requestEncKey, on a link made on demand: greetings.go). A
// receiver keeps a key only when it is signed by the identity behind the
// peer ID and that identity is a member identity (memberkeys.go).

import (
	"crypto/hpke"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// DirectKeyFile is the encryption key's file name in the data directory.
const DirectKeyFile = "direct.key"

const (
	encKeyPrefix = "hearsay/enckey/v1\n"
	// encKeyBytes is the size of an MLKEM768X25519 public key.
	encKeyBytes = 1216
	// maxEncKeysPerFrame bounds an EncKeys frame.
	maxEncKeysPerFrame = 16
)

// The HPKE suite of direct messages.
var (
	directKEM  = hpke.MLKEM768X25519()
	directKDF  = hpke.HKDFSHA256()
	directAEAD = hpke.ChaCha20Poly1305()
)

// directKey is this peer's encryption key pair.
type directKey struct {
	priv   hpke.PrivateKey
	pub    []byte
	issued int64 // unix nanoseconds of its creation
}

// loadOrCreateDirectKey reads DataDir/direct.key, creating it (0600) on
// first use; an empty dir gives an ephemeral key (tests). A key file others
// can read is refused, as for the identity.
func loadOrCreateDirectKey(dir string) (*directKey, error) {
	if dir == "" {
		return newDirectKey()
	}
	path := filepath.Join(dir, DirectKeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := newDirectKey()
		if err != nil {
			return nil, err
		}
		seed, err := k.priv.Bytes()
		if err != nil {
			return nil, fmt.Errorf("encode direct key: %w", err)
		}
		blk := &pem.Block{Type: "HEARSAY HPKE PRIVATE KEY", Headers: map[string]string{
			"KEM": "MLKEM768X25519", "Issued": strconv.FormatInt(k.issued, 10)}, Bytes: seed}
		err = writeNewSecret(path, pem.EncodeToMemory(blk), "direct key")
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateDirectKey(dir) // another process won the race
		}
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read direct key: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("direct key %s has mode %v: others can read the private key; run chmod 600 on it", DirectKeyFile, st.Mode().Perm())
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "HEARSAY HPKE PRIVATE KEY" {
		return nil, fmt.Errorf("direct key %s: not a PEM HPKE private key", DirectKeyFile)
	}
	priv, err := directKEM.NewPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("direct key %s: %w", DirectKeyFile, err)
	}
	issued, err := strconv.ParseInt(blk.Headers["Issued"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct key %s: issued time: %w", DirectKeyFile, err)
	}
	return &directKey{priv: priv, pub: priv.PublicKey().Bytes(), issued: issued}, nil
}

func newDirectKey() (*directKey, error) {
	priv, err := directKEM.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate direct key: %w", err)
	}
	return &directKey{priv: priv, pub: priv.PublicKey().Bytes(), issued: time.Now().UnixNano()}, nil
}

// encKeySigningBytes is what an EncKey's signature covers.
func encKeySigningBytes(k *chatpb.EncKey) []byte {
	c := canon{b: make([]byte, 0, len(encKeyPrefix)+len(k.EncKey)+96)}
	c.b = append(c.b, encKeyPrefix...)
	c.str(1, k.PeerId)
	c.bytes(2, k.IdentityKey)
	c.bytes(3, k.EncKey)
	c.int(4, k.IssuedUnixNano)
	c.str(5, k.Nick)
	return c.b
}

// signEncKey returns id's signed announcement of the key.
func signEncKey(id *Identity, nick string, k *directKey) *chatpb.EncKey {
	ek := &chatpb.EncKey{PeerId: id.ID, IdentityKey: id.Pub, EncKey: k.pub, IssuedUnixNano: k.issued, Nick: nick}
	ek.Signature = id.Sign(encKeySigningBytes(ek))
	return ek
}

// checkEncKey checks an announced key's form and signature (not whether
// its identity is a member: the caller asks the member keys).
func checkEncKey(k *chatpb.EncKey) error {
	switch {
	case k == nil:
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(k.EncKey) != encKeyBytes:
		return fmt.Errorf("%w: encryption key of %d bytes, want %d", ErrInvalid, len(k.EncKey), encKeyBytes)
	case k.Nick != "" && ValidateNick(k.Nick) != nil:
		return fmt.Errorf("%w: nick", ErrInvalid)
	}
	if err := checkSigned("encryption key", k.PeerId, k.IdentityKey, k.Signature, encKeySigningBytes(k)); err != nil {
		return err
	}
	if _, err := directKEM.NewPublicKey(k.EncKey); err != nil {
		return fmt.Errorf("%w: encryption key of %s: %v", ErrInvalid, k.PeerId, err)
	}
	return nil
}

// encKeysFrame returns our key followed by up to 15 keys of members that
// are not live now (offline: a sender may need to seal to them; a live
// one gives its own when asked, requestEncKey), the most recently issued
// first, for the greeting of a kept link to peer to (greetings.go). In a
// group where everyone is online it carries one key (about 1.3 KB).
func (n *Node) encKeysFrame(to string) *chatpb.Frame {
	live := n.liveMembers()
	d := n.dm
	d.mu.Lock()
	own := d.keys[n.id.ID]
	others := make([]*chatpb.EncKey, 0, len(d.keys))
	for id, k := range d.keys {
		if id != n.id.ID && id != to && !live[id] {
			others = append(others, k)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(others, func(a, b *chatpb.EncKey) int { return -cmpInt64(a.IssuedUnixNano, b.IssuedUnixNano) })
	keys := append([]*chatpb.EncKey{own}, others[:min(len(others), maxEncKeysPerFrame-1)]...)
	return &chatpb.Frame{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: keys}}}
}

// ownKeyFrame returns an EncKeys frame with our key only: a request for
// the peer's key, or the answer to one (greetings.go).
func (n *Node) ownKeyFrame() *chatpb.Frame {
	n.dm.mu.Lock()
	own := n.dm.keys[n.id.ID]
	n.dm.mu.Unlock()
	return &chatpb.Frame{Msg: &chatpb.Frame_EncKeys{EncKeys: &chatpb.EncKeys{Keys: []*chatpb.EncKey{own}}}}
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
// member identities, and answers with our own key when the peer's link
// is not kept (greetings.go).
func (n *Node) handleEncKeys(ks *chatpb.EncKeys, from string) {
	if len(ks.GetKeys()) == 0 || len(ks.Keys) > maxEncKeysPerFrame {
		n.stats.badFrames.Add(1)
		return
	}
	defer n.answerEncKeys(from)
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
