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
// has seen more identities than that refuses newcomers' messages, and an
// error event says so.
//
// History written by a member that left before this node joined reaches
// it only in repairs (anti-entropy), from members that hold it: a total
// or sequencer room cannot be followed without the departed sequencer's
// stamps. A repairing member vouches for such origins (it accepted them
// itself): the stream proves which member vouched, and each member may
// vouch for at most maxVouchedPerPeer identities per run of this node, so
// a member cannot flood the set. That grants a member nothing it lacks
// (any member could join with as many fresh identities), while keys from
// nowhere, in pushed envelopes or from beyond a member's quota, are
// refused. Causal deps naming an origin that is not a member identity
// are dropped before ordering (feedLocked): they could never be met.

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

// maxVouchedPerPeer bounds the identities one member may introduce in
// repairs during one run of this node.
const maxVouchedPerPeer = 1024

// memberKeys is the set of verified member identities. Safe for
// concurrent use.
type memberKeys struct {
	mu   sync.Mutex
	keys map[string]string // peer ID -> public key bytes
	f    *os.File          // append-only file; nil without a data directory
	full bool              // reported once
	// vouched counts, per member, the identities it introduced in repairs.
	vouched map[string]int
}

// openMemberKeys loads the set from dir (created if absent); with dir ""
// the set lives in memory only. Unreadable lines are skipped: the file is
// this node's own, but a damaged line must not stop the node.
func openMemberKeys(dir string) (*memberKeys, error) {
	k := &memberKeys{keys: map[string]string{}, vouched: map[string]int{}}
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
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.addLocked(pub)
}

// vouch records pub, the key of an origin whose envelope the member
// voucher repaired, as a member identity, unless voucher has used its
// quota (maxVouchedPerPeer) or the set is full; it reports whether pub
// is a member identity now.
func (k *memberKeys) vouch(pub []byte, voucher string) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[PeerIDFromKey(pub)]; ok {
		return key == string(pub)
	}
	if k.vouched[voucher] >= maxVouchedPerPeer || len(k.vouched) >= maxMemberKeys {
		return false
	}
	if err := k.addLocked(pub); err != nil {
		return false
	}
	_, ok := k.keys[PeerIDFromKey(pub)]
	if ok {
		k.vouched[voucher]++
	}
	return ok
}

// addLocked is add; the caller holds k.mu.
func (k *memberKeys) addLocked(pub ed25519.PublicKey) error {
	id := PeerIDFromKey(pub)
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
