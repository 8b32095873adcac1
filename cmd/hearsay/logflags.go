package main

// Flags for the message log and its repair: retention (how much history a
// peer keeps per room), the anti-entropy interval and eager push's
// fan-out. Defaults are chat.DefaultConfig's.

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/hearsay-chat/hearsay/chat"
)

// minAntiEntropyInterval keeps a typo ("1ns") from flooding the group.
const minAntiEntropyInterval = 10 * time.Millisecond

// logOpts are the message-log flags of `hearsay`.
type logOpts struct {
	retentionAge    time.Duration
	retentionCount  int
	antiEntropy     time.Duration
	fanoutThreshold int
	fanout          int
	treeThreshold   int
}

func addLogFlags(f *pflag.FlagSet, o *logOpts) {
	def := chat.DefaultConfig()
	f.DurationVar(&o.retentionAge, "retention-age", def.RetentionMaxAge, "keep each room's messages for `DURATION` (0: no age limit)")
	f.IntVar(&o.retentionCount, "retention-count", def.RetentionMaxCount, "keep at most `N` messages per room (0: no count limit)")
	f.DurationVar(&o.antiEntropy, "anti-entropy-interval", def.AntiEntropyInterval, "every `DURATION`, compare message logs with a random room member and repair what is missing")
	f.IntVar(&o.fanoutThreshold, "fanout-threshold", def.FanoutThreshold, "rooms with at most `N` other members get every message straight from its origin; larger rooms gossip it")
	f.IntVar(&o.fanout, "fanout", def.Fanout, "in larger rooms, the origin and each first receiver forward a message to `K` random members")
	f.IntVar(&o.treeThreshold, "tree-threshold", def.TreeThreshold, "in groups of more than `N` live peers, room messages go over a broadcast tree and each peer keeps links to a few neighbours only (-1: never)")
}

// complete validates the flags.
func (o *logOpts) complete() error {
	switch {
	case o.retentionAge < 0:
		return fmt.Errorf("--retention-age %v: must not be negative (0: no age limit)", o.retentionAge)
	case o.retentionCount < 0:
		return fmt.Errorf("--retention-count %d: must not be negative (0: no count limit)", o.retentionCount)
	case o.antiEntropy < minAntiEntropyInterval:
		return fmt.Errorf("--anti-entropy-interval %v: want at least %v", o.antiEntropy, minAntiEntropyInterval)
	case o.fanoutThreshold < 0:
		return fmt.Errorf("--fanout-threshold %d: must not be negative", o.fanoutThreshold)
	case o.fanout < 1:
		return fmt.Errorf("--fanout %d: want at least 1", o.fanout)
	case o.treeThreshold < -1 || o.treeThreshold == 0:
		return fmt.Errorf("--tree-threshold %d: want -1 (never) or at least 1", o.treeThreshold)
	}
	return nil
}

// apply sets the chat configuration from the flags.
func (o *logOpts) apply(cfg *chat.Config) {
	cfg.RetentionMaxAge = o.retentionAge
	cfg.RetentionMaxCount = o.retentionCount
	cfg.AntiEntropyInterval = o.antiEntropy
	cfg.FanoutThreshold = o.fanoutThreshold
	cfg.Fanout = o.fanout
	cfg.TreeThreshold = o.treeThreshold
}
