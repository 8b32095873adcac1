package chat

// Backlog marks: a chat message that arrives in a repair (anti-entropy)
// and was sent well before it arrived is catch-up, not live traffic (a
// restarted peer fetching what it missed, or a late joiner fetching the
// room's past); its event carries Backlog so a client can show it under a
// "from while you were away" marker instead of as if it had just been
// said. A message repaired within seconds of being sent (a frame lost on
// the way) stays live.

import (
	"strconv"
	"sync"
	"time"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

const (
	// backlogAge is how old a repaired message must be to count as
	// backlog.
	backlogAge = 5 * time.Second
	// maxBacklogMarks bounds the marks waiting for their delivery; when
	// full they are forgotten (those messages show as live).
	maxBacklogMarks = 65536
)

// backlogMarks are the repaired messages not yet delivered. Safe for
// concurrent use; the zero value is ready.
type backlogMarks struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func backlogKey(env *chatpb.Envelope) string {
	return env.Room + "/" + env.Origin + "/" + strconv.FormatUint(env.Seq, 10)
}

// note marks the old chat messages among envs, just stored from a repair.
func (b *backlogMarks) note(envs []*chatpb.Envelope) {
	cutoff := time.Now().Add(-backlogAge).UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, env := range envs {
		if env.Kind != chatpb.Kind_KIND_CHAT || env.SentUnixNano > cutoff {
			continue
		}
		if b.m == nil || len(b.m) >= maxBacklogMarks {
			b.m = make(map[string]struct{})
		}
		b.m[backlogKey(env)] = struct{}{}
	}
}

// take reports whether env was marked, and forgets the mark.
func (b *backlogMarks) take(env *chatpb.Envelope) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := backlogKey(env)
	_, ok := b.m[k]
	delete(b.m, k)
	return ok
}
