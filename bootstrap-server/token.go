package bootstrapserver

// The admin token of a local service kept in a file. A service started
// without an explicit token (the one a peer embeds, or `hearsay bootstrap
// serve` without --admin-token) generates one on first use, so reset and
// configuration changes are never open to whoever can reach the port;
// the local user's tools read the same file.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AdminTokenFile is the file name of the generated admin token in a data
// directory.
const AdminTokenFile = "bootstrap-admin-token"

// maxTokenFileBytes bounds what is read from a token file.
const maxTokenFileBytes = 4 << 10

// LoadOrCreateAdminToken returns the token stored at path, creating its
// directory (0700) and a fresh random token (0600) on first use. A token
// file that others can read is refused: the token would not be a secret.
func LoadOrCreateAdminToken(path string) (string, error) {
	tok, err := ReadAdminToken(path)
	if err == nil {
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create admin token directory: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	tok = hex.EncodeToString(raw[:])
	// Write a temporary file, then link it into place: the link fails if
	// another process was faster, and nobody ever reads a half-written
	// token. Two peers starting at once thus agree on one token.
	tmp, err := os.CreateTemp(filepath.Dir(path), AdminTokenFile+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("create admin token %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(tok + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return "", fmt.Errorf("write admin token %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadAdminToken(path)
		}
		return "", fmt.Errorf("create admin token %s: %w", path, err)
	}
	return tok, nil
}

// ReadAdminToken reads the token at path (its first line). It fails with
// an error wrapping fs.ErrNotExist when there is none, and refuses a file
// that others can read or that holds no token.
func ReadAdminToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read admin token %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("admin token %s has mode %v: others can read it; run chmod 600 on it", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes))
	if err != nil {
		return "", fmt.Errorf("read admin token %s: %w", path, err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("admin token %s is empty", path)
	}
	return tok, nil
}
