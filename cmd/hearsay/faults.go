package main

// Fault-injection flags for experiments: --faults switches chat's fault
// injection on (so /fault partition and /fault heal work), --fault-drop,
// --fault-delay and --fault-jitter set its initial drop ratio, delay and
// jitter (any of them implies --faults). Off by default: a peer started
// without them never drops or delays anything, and fault injection cannot
// be switched on later from the REPL.

import (
	"fmt"
	"sync"

	"github.com/spf13/pflag"

	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/repl"
)

// faultOpts are the fault-injection flags of `hearsay`.
type faultOpts struct {
	on     bool
	drop   string // ratio 0..1 or a percentage; parsed in complete
	delay  string
	jitter string
	seed   int64

	settings repl.FaultSettings // filled by complete
}

func addFaultFlags(f *pflag.FlagSet, o *faultOpts) {
	f.BoolVar(&o.on, "faults", false, "enable fault injection for experiments (/fault partition|heal|drop|delay|jitter); off by default")
	f.StringVar(&o.drop, "fault-drop", "", "drop this share (`RATIO`: 0 to 1 or a percentage, e.g. 0.2 or 20%) of outgoing chat frames (implies --faults)")
	f.StringVar(&o.delay, "fault-delay", "", "delay every outgoing chat frame by `DURATION`, e.g. 50ms (implies --faults)")
	f.StringVar(&o.jitter, "fault-jitter", "", "add a random delay in [0, `DURATION`) per chat frame, which reorders frames (implies --faults)")
	f.Int64Var(&o.seed, "fault-seed", 0, "`SEED` of the fault injection's random choices (0: random), for repeatable runs")
}

// complete parses and validates the flags; any --fault-* value switches
// fault injection on.
func (o *faultOpts) complete() error {
	if o.drop != "" {
		v, err := repl.ParseDropRatio(o.drop)
		if err != nil {
			return fmt.Errorf("--fault-drop: %w", err)
		}
		o.settings.DropRatio, o.on = v, true
	}
	if o.delay != "" {
		d, err := repl.ParseFaultDelay(o.delay)
		if err != nil {
			return fmt.Errorf("--fault-delay: %w", err)
		}
		o.settings.Delay, o.on = d, true
	}
	if o.jitter != "" {
		d, err := repl.ParseFaultDelay(o.jitter)
		if err != nil {
			return fmt.Errorf("--fault-jitter: %w", err)
		}
		o.settings.Jitter, o.on = d, true
	}
	if o.seed != 0 {
		o.on = true
	}
	return nil
}

// chatFaults is the chat configuration for the flags: nil (no fault
// injection at all) unless switched on.
func (o *faultOpts) chatFaults() *chat.Faults {
	if !o.on {
		return nil
	}
	return &chat.Faults{DropRatio: o.settings.DropRatio, Delay: chat.Duration(o.settings.Delay),
		Jitter: chat.Duration(o.settings.Jitter), Seed: o.seed}
}

// warning is the line a peer prints at start when faults are on.
func (o *faultOpts) warning() string {
	return "warning: fault injection is ON (" + repl.DescribeFaults(o.settings) +
		"); for experiments only, see /fault show"
}

// faultControl makes the node's fault injection a repl.Faults. chat keeps
// no getter for the settings, so the current ones are kept here; they
// change only through SetFaultSettings.
type faultControl struct {
	node *chat.Node
	on   bool
	seed int64

	mu  sync.Mutex
	cur repl.FaultSettings
}

var _ repl.Faults = (*faultControl)(nil)

func newFaultControl(node *chat.Node, o *faultOpts) *faultControl {
	return &faultControl{node: node, on: o.on, seed: o.seed, cur: o.settings}
}

// FaultSettings implements repl.Faults.
func (c *faultControl) FaultSettings() (repl.FaultSettings, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur, c.on
}

// SetFaultSettings implements repl.Faults. The seed is not reapplied, so
// the random sequence continues.
func (c *faultControl) SetFaultSettings(fs repl.FaultSettings) error {
	if !c.on {
		return chat.ErrNoFaults
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.node.SetFaults(chat.Faults{DropRatio: fs.DropRatio, Delay: chat.Duration(fs.Delay), Jitter: chat.Duration(fs.Jitter)})
	if err != nil {
		return err
	}
	c.cur = fs
	return nil
}

// Partition implements repl.Faults.
func (c *faultControl) Partition(peers ...string) error { return c.node.Partition(peers...) }

// Heal implements repl.Faults.
func (c *faultControl) Heal() error { return c.node.Heal() }

// Partitioned implements repl.Faults.
func (c *faultControl) Partitioned() []string { return c.node.Partitioned() }
