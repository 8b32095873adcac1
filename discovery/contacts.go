package discovery

// First contacts come from the service; the agent caches the last list it
// got in DataDir/contacts.json and falls back to that cache when no
// service answers, so a group whose service is down can still be joined
// by its former members. The cache is local input but is still bounded
// and checked: at most maxCacheBytes are read, and addresses that do not
// parse are skipped.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
)

// CacheFile is the contact cache's file name in the data directory.
const CacheFile = "contacts.json"

// maxCacheBytes bounds what is read back from the contact cache.
const maxCacheBytes = 1 << 20

// cachedContact is one entry of contacts.json.
type cachedContact struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

func (a *Agent) cachePath() string { return filepath.Join(a.cfg.DataDir, CacheFile) }

// contacts returns the contacts other than selfID: from the service, which
// also refreshes the cache, or, when it does not answer, from the cache.
// source says which.
func (a *Agent) contacts(ctx context.Context, selfID string) (cs []cachedContact, source string, err error) {
	l, err := a.client.List(ctx, 0)
	if err == nil {
		for _, p := range l.Peers {
			if p.ID != selfID && p.Addr != "" {
				cs = append(cs, cachedContact{ID: p.ID, Addr: p.Addr})
			}
		}
		a.updateCache(cs)
		return cs, "bootstrap service", nil
	}
	cached, cerr := a.readCache()
	if cerr != nil || len(cached) == 0 {
		return nil, "", fmt.Errorf("no contacts: %w (and no cached contacts: %v)", err, cerr)
	}
	for _, c := range cached {
		if c.ID != selfID {
			cs = append(cs, c)
		}
	}
	return cs, "cached contacts (bootstrap unreachable: " + err.Error() + ")", nil
}

// Contacts returns the memberlist addresses of first contacts other than
// selfID, from the service or, when it does not answer, from the cache;
// source says which. It blocks for the request (bounded by ctx).
func (a *Agent) Contacts(ctx context.Context, selfID string) (addrs []string, source string, err error) {
	cs, source, err := a.contacts(ctx, selfID)
	for _, c := range cs {
		addrs = append(addrs, c.Addr)
	}
	return addrs, source, err
}

// JoinGroup fetches contacts and joins the group through them. With no
// contacts (the first peer) it does nothing and says so. It returns a
// line for the user.
func (a *Agent) JoinGroup(ctx context.Context, node Node) (string, error) {
	addrs, source, err := a.Contacts(ctx, node.ID())
	if err != nil {
		return "", err
	}
	if len(addrs) == 0 {
		return "no other peer registered: this peer starts the group", nil
	}
	n, err := node.Join(ctx, addrs)
	if err != nil && n == 0 {
		return "", fmt.Errorf("join the group through %d contacts from the %s: %w", len(addrs), source, err)
	}
	return fmt.Sprintf("joined the group through %d of %d contacts from the %s", n, len(addrs), source), nil
}

// updateCache writes cs to the cache when it is not empty and differs
// from what was written last (rejoin rounds list the service every
// RejoinInterval).
func (a *Agent) updateCache(cs []cachedContact) {
	if len(cs) == 0 {
		return
	}
	a.mu.Lock()
	same := slices.Equal(a.cached, cs)
	a.mu.Unlock()
	if same {
		return
	}
	err := a.writeCache(cs)
	if err == nil {
		a.mu.Lock()
		a.cached = slices.Clone(cs)
		a.mu.Unlock()
	}
	a.report("cache contacts", err)
}

func (a *Agent) writeCache(cs []cachedContact) error {
	b, err := json.MarshalIndent(cs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// Write and rename, so a crash leaves the old cache or the new one.
	tmp := a.cachePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, a.cachePath()); err != nil {
		return fmt.Errorf("replace %s: %w", a.cachePath(), err)
	}
	return nil
}

func (a *Agent) readCache() ([]cachedContact, error) {
	f, err := os.Open(a.cachePath())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCacheBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.cachePath(), err)
	}
	cs, err := parseCache(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.cachePath(), err)
	}
	return cs, nil
}

// parseCache decodes the contact cache, at most maxCacheBytes, and keeps
// the entries whose address parses.
func parseCache(b []byte) ([]cachedContact, error) {
	if len(b) > maxCacheBytes {
		return nil, fmt.Errorf("over %d bytes", maxCacheBytes)
	}
	var cs []cachedContact
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("decode contacts: %w", err)
	}
	valid := cs[:0]
	for _, c := range cs {
		if _, _, err := bootstrapapi.SplitAddr(c.Addr); err == nil {
			valid = append(valid, c)
		}
	}
	return valid, nil
}
