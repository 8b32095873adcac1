package chat

// Who may speak: an envelope is accepted only from an origin that is, or
// was, a member of the group with a verified identity, never from a key
// that appears from nowhere. Signatures alone prove only that someone
// holds a key, and keys are free: 1,030 envelopes signed by fresh keys
// once made every later lobby message invalid (their deps outgrew the
// limit), and 6,000 made status frames outgrow the frame limit.
//
// A verified identity is a memberlist member whose node meta carries the
// key its peer ID derives from (decodeMeta checks it; with a cluster key,
// memberlist itself admits only key holders). The set of such keys is
// kept on disk (memberKeysFile in the data directory, one hex key per
// line, append-only), so the history of members that have left still
// verifies after a restart. It is bounded (maxMemberKeys): a group that
// has seen more identities than that refuses newcomers' messages until the
// file is trimmed by hand, which is logged.
//
// Limit: a peer accepts only the origins it has seen in the group itself,
// so a peer that joins after a member left does not accept that member's
// history from others (and causal messages naming it wait for nothing it
// will get: the room drops such deps before ordering, see feedLocked).

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// memberKeysFile is the file, in the data directory, of the identities
// this node has seen as members.
const memberKeysFile = "members.keys"

// maxMemberKeys bounds the identities kept (about 100 bytes each in
// memory, 65 on disk).
const maxMemberKeys = 1 << 16

// memberKeys is the set of verified member identities. Safe for
// concurrent use.
type memberKeys struct {
	mu   sync.Mutex
	keys map[string]string // peer ID -> public key bytes
	f    *os.File          // append-only file; nil without a data directory
	full bool              // reported once
}

// openMemberKeys loads the set from dir (created if absent); with dir ""
// the set lives in memory only. Unreadable lines are skipped: the file is
// this node's own, but a damaged line must not stop the node.
func openMemberKeys(dir string) (*memberKeys, error) {
	k := &memberKeys{keys: map[string]string{}}
	if dir == "" {
		return k, nil
	}
	path := filepath.Join(dir, memberKeysFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open member keys: %w", err)
	}
	// Read at most what maxMemberKeys lines take, whatever the file holds.
	sc := bufio.NewScanner(io.LimitReader(f, int64(maxMemberKeys)*(2*ed25519.PublicKeySize+1)))
	for sc.Scan() && len(k.keys) < maxMemberKeys {
		pub, err := hex.DecodeString(string(bytes.TrimSpace(sc.Bytes())))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			continue
		}
		k.keys[PeerIDFromKey(pub)] = string(pub)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, bufio.ErrTooLong) {
		_ = f.Close()
		return nil, fmt.Errorf("read member keys %s: %w", path, err)
	}
	// A torn last line (a crash mid-write) must not swallow the next key.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte("\n")); err != nil {
				_ = f.Close()
				return nil, fmt.Errorf("repair member keys %s: %w", path, err)
			}
		}
	}
	k.f = f
	return k, nil
}

// add records pub (whose peer ID the caller has checked) as a member
// identity, on disk first. It reports an error only when it could not be
// recorded; a set already full is errMemberKeysFull.
func (k *memberKeys) add(pub ed25519.PublicKey) error {
	id := PeerIDFromKey(pub)
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[id]; ok {
		return nil
	}
	if len(k.keys) >= maxMemberKeys {
		if k.full {
			return nil
		}
		k.full = true
		return errMemberKeysFull
	}
	if k.f != nil {
		// One write of one whole line (O_APPEND): a crash leaves at worst
		// a torn last line, skipped on load. Not fsynced: a key lost to an
		// OS crash is learned again when its owner is next seen.
		if _, err := k.f.Write([]byte(hex.EncodeToString(pub) + "\n")); err != nil {
			return fmt.Errorf("record member key %s: %w", id, err)
		}
	}
	k.keys[id] = string(pub)
	return nil
}

var errMemberKeysFull = fmt.Errorf("the set of known member identities is full (%d): messages of newer members are refused", maxMemberKeys)

// knows reports whether id is a member identity with key pub.
func (k *memberKeys) knows(id string, pub []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, ok := k.keys[id]
	return ok && key == string(pub)
}

// isMember reports whether id is a member identity.
func (k *memberKeys) isMember(id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.keys[id]
	return ok
}

// close closes the file.
func (k *memberKeys) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.f == nil {
		return nil
	}
	err := k.f.Close()
	k.f = nil
	return err
}
