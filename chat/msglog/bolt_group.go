package msglog

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// commitLoop is the group committer: it blocks for one append, takes every
// other append already queued (up to MaxGroup), and commits them together.
func (l *Bolt) commitLoop() {
	defer l.wg.Done()
	group := make([]appendReq, 0, l.cfg.MaxGroup)
	for first := range l.appends {
		group = append(group[:0], first)
	drain:
		for len(group) < l.cfg.MaxGroup {
			select {
			case r, ok := <-l.appends:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		l.commitGroup(group)
	}
}

func (l *Bolt) commitGroup(group []appendReq) {
	results := make([]appendResult, len(group))
	deferred := true
	for _, r := range group {
		deferred = deferred && r.deferred
	}
	err := l.updateSync(context.Background(), deferred, func(tx *bolt.Tx) error {
		for i, r := range group {
			n, err := l.appendTx(tx, r.rec)
			if err != nil {
				return err
			}
			results[i].isNew = n
		}
		return nil
	})
	if err != nil && len(group) > 1 {
		for _, r := range group {
			l.commitGroup([]appendReq{r})
		}
		return
	}
	for i, r := range group {
		results[i].err = err
		r.done <- results[i]
	}
}
