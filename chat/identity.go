package chat

// A peer's identity is an Ed25519 key pair kept in its data directory
// (identity.key, PKCS#8 PEM, mode 0600). The peer ID is derived from the
// public key, so anyone holding the key can check an ID without a directory:
// it is the first 8 bytes of SHA-256(public key) in lower-case hex (16
// characters), and it is the memberlist node name.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hearsay-chat/hearsay"
)

const identityFile = "identity.key"

// Identity is a peer's key pair and the peer ID derived from it. It is
// immutable and safe for concurrent use.
type Identity struct {
	ID   string
	Pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

// PeerIDFromKey derives the peer ID of an Ed25519 public key.
func PeerIDFromKey(pub []byte) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:hearsay.PeerIDLen/2])
}

// NewIdentity creates a fresh in-memory identity.
func NewIdentity() (*Identity, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &Identity{ID: PeerIDFromKey(pub), Pub: pub, priv: priv}, nil
}

// Sign signs msg with the identity's private key.
func (id *Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.priv, msg) }

// LoadOrCreateIdentity reads the identity in dir, creating dir (0700) and a
// new key (0600) on first use. A key file readable by others is refused.
func LoadOrCreateIdentity(dir string) (*Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, identityFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createIdentity(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity %s has mode %v: others can read the private key; run chmod 600 on it", identityFile, st.Mode().Perm())
	}
	return parseIdentity(data)
}

func parseIdentity(data []byte) (*Identity, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("identity %s: not a PEM private key", identityFile)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", identityFile, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("identity %s: %T is not an Ed25519 key", identityFile, key)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return &Identity{ID: PeerIDFromKey(pub), Pub: pub, priv: priv}, nil
}

func createIdentity(path string) (*Identity, error) {
	id, err := NewIdentity()
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.priv)
	if err != nil {
		return nil, fmt.Errorf("encode identity: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	err = writeNewSecret(path, data, "identity")
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateIdentity(filepath.Dir(path)) // another process won the race
	}
	if err != nil {
		return nil, err
	}
	return id, nil
}

// writeNewSecret creates path (0600) with data and fsyncs it. O_EXCL: two
// processes starting on one data directory must not each write a
// different key; the loser gets an error wrapping fs.ErrExist and reads
// the winner's file.
func writeNewSecret(path string, data []byte, what string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", what, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	return nil
}
