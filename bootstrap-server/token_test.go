package bootstrapserver

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestAdminTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", AdminTokenFile)
	tok, err := LoadOrCreateAdminToken(path)
	if err != nil || len(tok) != 64 {
		t.Fatalf("first use: %q, %v", tok, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	again, err := LoadOrCreateAdminToken(path)
	if err != nil || again != tok {
		t.Fatalf("second use: %q, %v; want the same token", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAdminToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable token: %v, want a refusal", err)
	}
	empty := filepath.Join(t.TempDir(), AdminTokenFile)
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateAdminToken(empty); err == nil {
		t.Error("an empty token file was accepted")
	}
}

// Peers starting at once must agree on one token.
func TestAdminTokenConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), AdminTokenFile)
	var wg sync.WaitGroup
	toks := make([]string, 8)
	errs := make([]error, 8)
	for i := range toks {
		wg.Add(1)
		go func() { defer wg.Done(); toks[i], errs[i] = LoadOrCreateAdminToken(path) }()
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Fatalf("creator %d: %q, %v; creator 0: %q", i, toks[i], errs[i], toks[0])
		}
	}
}
