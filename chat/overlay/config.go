package overlay

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config configures a Node. Start from DefaultConfig.
type Config struct {
	// Self is this peer's ID (at most MaxPeerIDLen bytes).
	Self string
	// Seed seeds the Node's random choices; one seed and one sequence of
	// inputs give one sequence of outputs.
	Seed uint64

	// ActiveSize is the HyParView active view: the neighbours this peer
	// keeps connected. About log N + c (ActiveSizeFor).
	ActiveSize int
	// ActiveSlack lets a full active view take up to this many more
	// neighbours when they ask (a low-priority Neighbor request): without
	// it a small group of peers whose requests every full peer refuses
	// stays cut off from the rest (seen in the simulator at 10,000 peers
	// joining within 10 s). Joins and high-priority requests still make
	// room by dropping a neighbour at ActiveSize.
	ActiveSlack int
	// PassiveSize is the passive view: peers known to be alive recently,
	// candidates to replace a failed neighbour.
	PassiveSize int
	// ARWL is the length of the random walk a join takes (active random
	// walk length); PRWL is the step of that walk at which a peer adds the
	// joining peer to its passive view.
	ARWL, PRWL uint8
	// ShuffleActive and ShufflePassive are how many active and passive
	// peers a shuffle carries (plus the sender itself).
	ShuffleActive, ShufflePassive int
	// ShuffleInterval is the period of the passive view exchange.
	ShuffleInterval time.Duration
	// MaintainInterval is how often the Node checks its views: it asks a
	// passive peer to become a neighbour while the active view is short,
	// and joins its contact again until it took us in, or while the view
	// is short with nobody left to ask (Node.Join).
	MaintainInterval time.Duration
	// NeighborTimeout bounds how long a neighbour request stays
	// unanswered before another candidate is tried.
	NeighborTimeout time.Duration

	// GraftTimeout is how long a peer waits, after the first announcement
	// of a message it lacks, for the eager push before it grafts the
	// announcer; GraftRetry is the wait before each further graft (another
	// announcer, or the same again).
	GraftTimeout, GraftRetry time.Duration
	// DisconnectOneSided answers a tree message (Gossip, IHave, Graft,
	// Prune) from a peer that is not in the active view, and that we are
	// not asking to be a neighbour, with a Disconnect: its sender holds a
	// link we do not, and would otherwise count us as a neighbour that
	// never pushes nor announces to it. A driver that probes its
	// neighbours (chat's, every second) finds such links itself, and one
	// whose inputs can overtake each other (chat's view and tree frames
	// wait in separate queues) must leave it off: a neighbour's first
	// gossip handled before the view message that made it one would
	// drop a link both ends hold.
	DisconnectOneSided bool
	// GraftTimeoutMin, when positive, makes the graft timer adapt to how
	// late the tree's payloads are (graft.go): between GraftTimeoutMin and
	// GraftTimeout, twice the latest lateness seen, halving every
	// lateHalfLife without a later one; GraftRetry scales with it. 0 keeps
	// the timer at GraftTimeout (the simulator's fixed link latencies).
	GraftTimeoutMin time.Duration
	// MaxGraftAttempts bounds the grafts for one missing message.
	MaxGraftAttempts int
	// LazyInterval batches announcements: each lazy neighbour gets one
	// IHAVE per interval with every ID queued for it. 0 sends at once.
	LazyInterval time.Duration
	// OptimizeThreshold enables Plumtree's tree optimisation: a peer that
	// hears an announcement whose path is shorter than the one it received
	// the message on by at least this many hops grafts the announcer and
	// prunes its parent. 0 disables it.
	OptimizeThreshold uint32

	// Bounds on the state the Node keeps.
	MaxTrees      int // origins whose tree links are remembered (least recently used go)
	MaxSeen       int // received message IDs remembered (duplicate detection)
	MaxCache      int // payloads kept to answer grafts
	MaxCacheBytes int // total bytes of those payloads
	MaxMissing    int // announced, not received messages tracked
	MaxAnnouncers int // announcers remembered per missing message
	MaxLazyQueue  int // IDs queued per lazy neighbour
	// Bounds on what one message may carry.
	MaxIHave   int // announcements per IHAVE, IDs per GRAFT
	MaxPayload int // payload bytes of one message
}

// MaxPeerIDLen bounds a peer ID in any message.
const MaxPeerIDLen = 64

// DefaultConfig returns the configuration used for groups of up to tens of
// thousands of peers: the parameters of the HyParView and Plumtree papers'
// 10,000-node evaluation (active 5, passive 30, walks 6 and 3, shuffles of
// 3 + 4 peers) with timers for a LAN or WAN chat.
func DefaultConfig(self string, seed uint64) Config {
	return Config{
		Self:               self,
		Seed:               seed,
		ActiveSize:         5,
		ActiveSlack:        1,
		PassiveSize:        30,
		ARWL:               6,
		PRWL:               3,
		ShuffleActive:      3,
		ShufflePassive:     4,
		ShuffleInterval:    10 * time.Second,
		MaintainInterval:   time.Second,
		NeighborTimeout:    2 * time.Second,
		GraftTimeout:       400 * time.Millisecond,
		GraftRetry:         200 * time.Millisecond,
		MaxGraftAttempts:   6,
		DisconnectOneSided: true,
		LazyInterval:       50 * time.Millisecond,
		OptimizeThreshold:  2,
		MaxTrees:           1024,
		MaxSeen:            65536,
		MaxCache:           1024,
		MaxCacheBytes:      16 << 20,
		MaxMissing:         4096,
		MaxAnnouncers:      4,
		MaxLazyQueue:       1024,
		MaxIHave:           256,
		MaxPayload:         1 << 20,
	}
}

// ActiveSizeFor returns an active view size for a group of about n peers:
// ceil(log10 n) + 1, at least 3 (the HyParView paper's fanout log n with
// its active view fanout + 1: 5 at 10,000 peers).
func ActiveSizeFor(n int) int {
	if n < 2 {
		return 3
	}
	s := int(math.Ceil(math.Log10(float64(n)))) + 1
	return max(s, 3)
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Self == "" || len(c.Self) > MaxPeerIDLen:
		return fmt.Errorf("self ID must be 1 to %d bytes, got %d", MaxPeerIDLen, len(c.Self))
	case c.ActiveSize < 1 || c.ActiveSlack < 0 || c.ActiveSize+c.ActiveSlack > 64:
		return fmt.Errorf("active view size %d + slack %d out of 1..64", c.ActiveSize, c.ActiveSlack)
	case c.PassiveSize < 1 || c.PassiveSize > 1024:
		return fmt.Errorf("passive view size %d out of 1..1024", c.PassiveSize)
	case c.PRWL > c.ARWL:
		return fmt.Errorf("passive walk step %d beyond the walk length %d", c.PRWL, c.ARWL)
	case c.ShuffleActive < 0 || c.ShufflePassive < 0 || c.ShuffleActive+c.ShufflePassive > 255:
		return errors.New("shuffle sizes must be non-negative and sum to at most 255")
	case c.ShuffleInterval <= 0 || c.MaintainInterval <= 0 || c.NeighborTimeout <= 0:
		return errors.New("shuffle, maintain and neighbour intervals must be positive")
	case c.GraftTimeout <= 0 || c.GraftRetry <= 0 || c.MaxGraftAttempts < 1:
		return errors.New("graft timers and attempts must be positive")
	case c.GraftTimeoutMin < 0 || c.GraftTimeoutMin > c.GraftTimeout:
		return fmt.Errorf("graft timeout minimum %v out of 0..%v (the graft timeout)", c.GraftTimeoutMin, c.GraftTimeout)
	case c.LazyInterval < 0:
		return errors.New("lazy interval must not be negative")
	case c.MaxTrees < 1 || c.MaxSeen < 1 || c.MaxCache < 0 || c.MaxCacheBytes < 0 || c.MaxMissing < 1 ||
		c.MaxAnnouncers < 1 || c.MaxLazyQueue < 1 || c.MaxIHave < 1 || c.MaxPayload < 1:
		return errors.New("every bound must be positive")
	}
	return nil
}

// shuffleLen is the most peers a shuffle or its reply may carry.
func (c Config) shuffleLen() int { return c.ShuffleActive + c.ShufflePassive + 1 }
