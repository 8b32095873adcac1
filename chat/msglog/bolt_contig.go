package msglog

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Contiguous implements Log: the origin's contig in bbolt, then extended
// over the seqs that follow it in the memtable. bbolt is read first: a
// record the applier moves meanwhile may be seen in neither place (the
// result is then low, which is allowed), never counted twice.
func (l *Bolt) Contiguous(ctx context.Context, room, origin string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	l.mu.RLock() // Close waits for us
	defer l.mu.RUnlock()
	if l.closed {
		return 0, ErrClosed
	}
	var contig uint64
	err := l.view(ctx, func(tx *bolt.Tx) error {
		rt, err := openRoom(tx, room, false)
		if err != nil || rt == nil {
			return err
		}
		st, err := rt.state(origin)
		contig = st.contig
		return err
	})
	if err != nil {
		return 0, err
	}
	l.memMu.RLock()
	defer l.memMu.RUnlock()
	for {
		if _, ok := l.lookupLocked(memKey{room, origin, contig + 1}); !ok {
			return contig, nil
		}
		contig++
	}
}
