package chat

// The message log: every message this node has seen, per room and origin
// (chat/msglog). A bbolt file in the data directory when there is one, so
// history and seq counters survive restarts; in memory otherwise (tests,
// ephemeral peers).

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat/msglog"
)

// receivedSyncInterval is how long a received message may stay written
// to the log's write-ahead file but not fsynced (msglog
// Config.SyncInterval): a killed process keeps it, an OS crash within it
// can lose it, and anti-entropy fetches it again from the peers. Our own
// messages are fsynced before they leave, whatever it is. Each interval
// costs a durable bbolt commit (two fdatasyncs, a new write-ahead file):
// at msglog's default of 100 ms the commits of received messages took a
// third of the CPU of 50 peers receiving 20 messages a second in one
// process (docs/BENCHMARKS.md, "Issue 16, fourth stop").
const receivedSyncInterval = time.Second

// openLog opens the message log cfg asks for.
func openLog(cfg Config) (msglog.Log, error) {
	lc := msglog.DefaultConfig()
	lc.Retention = msglog.Retention{MaxAge: cfg.RetentionMaxAge, MaxCount: cfg.RetentionMaxCount}
	// Room envelopes are bounded by the frame limit; the log refuses more.
	lc.MaxData = maxFrameBytes
	lc.SyncInterval = receivedSyncInterval
	kind := cfg.MessageLog
	if kind == "" {
		kind = MessageLogMemory
		if cfg.DataDir != "" {
			kind = MessageLogBolt
		}
	}
	if kind == MessageLogMemory {
		l, err := msglog.NewMem(lc)
		if err != nil {
			return nil, fmt.Errorf("message log: %w", err)
		}
		return l, nil
	}
	l, err := msglog.OpenBolt(filepath.Join(cfg.DataDir, MessageLogFile), lc)
	if err != nil {
		return nil, err // already says which file
	}
	return l, nil
}

// loadRooms opens the rooms this node had joined before a restart (their
// machines restored from the log) and joins the lobby. It runs at the end
// of Start.
func (n *Node) loadRooms(ctx context.Context) error {
	n.startedAt.Store(time.Now().UnixNano())
	infos, err := n.log.Rooms(ctx)
	if err != nil {
		return fmt.Errorf("load rooms: %w", err)
	}
	n.joinMu.Lock()
	for _, info := range infos {
		if info.Joined.IsZero() || n.joinedRoom(info.Name) != nil {
			continue
		}
		// Total and sequencer rooms wait for their members (tryRestore).
		deferred := info.Mode == hearsay.OrderTotal.String() || info.Mode == hearsay.OrderSequencer.String()
		if _, err := n.openRoom(ctx, info, deferred); err != nil {
			n.joinMu.Unlock()
			return fmt.Errorf("load room #%s: %w", info.Name, err)
		}
	}
	n.joinMu.Unlock()
	if _, err := n.JoinRoom(ctx, DefaultRoom, 0); err != nil && !errors.Is(err, ErrModeConflict) {
		return fmt.Errorf("join the lobby: %w", err)
	}
	n.announceRooms()
	return nil
}

// pruneLoop applies retention every Config.RetentionInterval until
// Shutdown. Retention is the log's own concern: it runs apart from
// anti-entropy, whose rounds it would otherwise delay.
func (n *Node) pruneLoop() {
	tick := time.NewTicker(n.cfg.RetentionInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
			n.prune()
		}
	}
}

// prune applies retention to the log.
func (n *Node) prune() {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	k, err := n.log.Prune(ctx, time.Now())
	if err != nil {
		n.logger.Printf("prune message log: %v", err)
		return
	}
	if k > 0 {
		n.logger.Printf("retention pruned %d messages", k)
	}
}
