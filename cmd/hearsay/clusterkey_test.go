package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/hearsay-chat/hearsay/chat"
)

// Finding 10 of the security review, from the command's side: the
// passphrase need not be on the command line (file and environment work:
// TestClusterKeySources), the flag's help warns that ps shows it, and
// the key a peer starts with is argon2id of the passphrase with the
// versioned salt. The peer's chat configuration has no plaintext transport:
// only tests set chat.Config.ChatTransport.
func TestClusterKeyFromCommand(t *testing.T) {
	streams := &ioStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard, Getenv: func(string) string { return "" }}
	f := newRootCmd(streams).Flags().Lookup("cluster-key")
	if f == nil || !strings.Contains(f.Usage, "visible in ps") || !strings.Contains(f.Usage, "--cluster-key-file") {
		t.Fatalf("--cluster-key help does not warn about ps and name the alternatives: %+v", f)
	}
	o := peerOpts{clusterKey: "correct horse"}
	cfg := o.chatConfig(io.Discard)
	want := argon2.IDKey([]byte("correct horse"), []byte("hearsay/cluster-key/v2/argon2id"), 3, 64<<10, 4, 32)
	if !bytes.Equal(cfg.ClusterKey, want) {
		t.Fatalf("cluster key %x, want argon2id with the v2 salt %x", cfg.ClusterKey, want)
	}
	if !bytes.Equal(cfg.ClusterKey, chat.ClusterKeyFromPassphrase("correct horse")) {
		t.Fatal("the command and the library derive different keys")
	}
	if cfg.ChatTransport != nil {
		t.Fatal("the peer command selects a chat transport other than TLS")
	}
}
