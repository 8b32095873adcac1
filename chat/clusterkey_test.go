package chat

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// The passphrase goes through argon2id: the same passphrase gives the same
// 32-byte key on every peer, another gives another, and the key is not the
// fast unsalted hash of protocol 2 (finding 10 of the security review).
func TestClusterKeyFromPassphrase(t *testing.T) {
	a, b := ClusterKeyFromPassphrase("one secret"), ClusterKeyFromPassphrase("one secret")
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("keys %x, %x: want the same 32 bytes", a, b)
	}
	if bytes.Equal(a, ClusterKeyFromPassphrase("one secreT")) {
		t.Fatal("two passphrases gave one key")
	}
	old := sha256.Sum256([]byte("hearsay/cluster-key/v1\none secret"))
	if bytes.Equal(a, old[:]) {
		t.Fatal("the key is still one SHA-256 of the passphrase")
	}
}

// BenchmarkClusterKeyFromPassphrase is what one guess costs an attacker
// (and a peer, once per start).
func BenchmarkClusterKeyFromPassphrase(b *testing.B) {
	for b.Loop() {
		ClusterKeyFromPassphrase("correct horse battery staple")
	}
}
