package repl

// /fault: the peer's fault injection, for experiments (hearsay --faults or
// --fault-drop/--fault-delay/--fault-jitter). It can only be switched on
// at start, so that a peer a user runs normally never drops anything.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxFaultDelay mirrors the chat layer's bound on delay and jitter.
const maxFaultDelay = time.Minute

var errFaultsOff = errors.New("fault injection is off; start hearsay with --faults (or --fault-drop, --fault-delay, --fault-jitter) to use /fault")

// faultsOn returns the Faults interface when fault injection is enabled.
func (r *REPL) faultsOn() (Faults, FaultSettings, error) {
	if r.cfg.Faults == nil {
		return nil, FaultSettings{}, errors.New("fault injection is not available in this peer")
	}
	fs, on := r.cfg.Faults.FaultSettings()
	if !on {
		return nil, FaultSettings{}, errFaultsOff
	}
	return r.cfg.Faults, fs, nil
}

// ParseDropRatio parses a drop ratio: a number from 0 to 1 or a
// percentage ("20%").
func ParseDropRatio(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if strings.HasSuffix(t, "%") {
		t, scale = strings.TrimSuffix(t, "%"), 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v != v || v < 0 || v/scale > 1 {
		return 0, fmt.Errorf("bad drop ratio %q: want a number from 0 to 1 (0.2) or a percentage (20%%)", s)
	}
	return v / scale, nil
}

// ParseFaultDelay parses a delay or jitter: a Go duration from 0 to 1m.
func ParseFaultDelay(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 || d > maxFaultDelay {
		return 0, fmt.Errorf("bad duration %q: want 0 to %v, e.g. 50ms", s, maxFaultDelay)
	}
	return d, nil
}

// DescribeFaults is one line for the startup warning and /fault show.
func DescribeFaults(fs FaultSettings) string {
	return fmt.Sprintf("drop %s of outgoing chat frames, delay %v, jitter %v",
		strconv.FormatFloat(fs.DropRatio*100, 'f', -1, 64)+"%", fs.Delay, fs.Jitter)
}

func cmdFault() *Command {
	return &Command{
		Name:    "fault",
		Summary: "fault injection for experiments: partition, heal, drop, delay",
		Help: "Only when the peer was started with --faults or a --fault-* flag. A partition cuts\n" +
			"chat frames and memberlist traffic with the named peers; run it on both sides for a\n" +
			"full split. After /fault heal the two sides find each other again through the\n" +
			"bootstrap service and anti-entropy repairs what they missed.",
		Sub: []*Command{
			{
				Name: "show", MaxArgs: 0,
				Summary: "current faults and partitioned peers",
				Run: func(_ context.Context, r *REPL, _ *Invocation) error {
					if r.cfg.Faults == nil {
						return errors.New("fault injection is not available in this peer")
					}
					fs, on := r.cfg.Faults.FaultSettings()
					if !on {
						r.Printf("fault injection is off (start hearsay with --faults to enable it)")
						return nil
					}
					cut := r.cfg.Faults.Partitioned()
					names := r.memberNames()
					parts := make([]string, len(cut))
					for i, id := range cut {
						parts[i] = names.name(id)
					}
					p := "none"
					if len(parts) > 0 {
						p = strings.Join(parts, ", ")
					}
					r.Printf("fault injection on: %s\npartitioned from: %s", DescribeFaults(fs), p)
					return nil
				},
			},
			{
				Name: "partition", Aliases: []string{"cut"}, Args: "NICK|ID…", MinArgs: 1, MaxArgs: -1,
				Summary: "cut this peer off from the named peers",
				Complete: func(r *REPL, args []string, _ string) []Suggestion {
					var out []Suggestion
					for _, n := range r.nicks(false) {
						if !contains(args, n) {
							out = append(out, Suggestion{Text: n, Description: "member"})
						}
					}
					return out
				},
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					f, _, err := r.faultsOn()
					if err != nil {
						return err
					}
					if err := f.Partition(inv.Args...); err != nil {
						return fmt.Errorf("partition: %w", err)
					}
					r.Printf("partitioned from %s (run /fault partition on their side too for a full split; /fault heal ends it)",
						Sanitize(strings.Join(inv.Args, ", ")))
					return nil
				},
			},
			{
				Name: "heal", MaxArgs: 0,
				Summary: "end every partition",
				Run: func(_ context.Context, r *REPL, _ *Invocation) error {
					f, _, err := r.faultsOn()
					if err != nil {
						return err
					}
					n := len(f.Partitioned())
					if err := f.Heal(); err != nil {
						return fmt.Errorf("heal: %w", err)
					}
					r.Printf("healed: no longer partitioned from %s", plural(n, "peer"))
					return nil
				},
			},
			{
				Name: "drop", Args: "RATIO", MinArgs: 1, MaxArgs: 1,
				Summary:  "drop this share of outgoing chat frames (0.2 or 20%)",
				Complete: completeWords("0", "0.05", "0.2", "0.5"),
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					v, err := ParseDropRatio(inv.Args[0])
					if err != nil {
						return usagef("%s", err.Error())
					}
					return r.updateFaults(func(fs *FaultSettings) { fs.DropRatio = v })
				},
			},
			{
				Name: "delay", Args: "DURATION", MinArgs: 1, MaxArgs: 1,
				Summary:  "delay every outgoing chat frame",
				Complete: completeWords("0s", "20ms", "100ms", "500ms"),
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					d, err := ParseFaultDelay(inv.Args[0])
					if err != nil {
						return usagef("%s", err.Error())
					}
					return r.updateFaults(func(fs *FaultSettings) { fs.Delay = d })
				},
			},
			{
				Name: "jitter", Args: "DURATION", MinArgs: 1, MaxArgs: 1,
				Summary:  "add a random delay in [0, DURATION) per frame (reorders frames)",
				Complete: completeWords("0s", "20ms", "100ms", "500ms"),
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					d, err := ParseFaultDelay(inv.Args[0])
					if err != nil {
						return usagef("%s", err.Error())
					}
					return r.updateFaults(func(fs *FaultSettings) { fs.Jitter = d })
				},
			},
		},
	}
}

func (r *REPL) updateFaults(change func(*FaultSettings)) error {
	f, fs, err := r.faultsOn()
	if err != nil {
		return err
	}
	change(&fs)
	if err := f.SetFaultSettings(fs); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	r.Printf("fault injection: %s", DescribeFaults(fs))
	return nil
}
