package bench

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUnsupported is returned (wrapped) by System.Start when the system
// cannot do what the SystemConfig asks (for example inject a drop ratio).
var ErrUnsupported = errors.New("not supported")

// System is a group of peers under test. The runner calls Start once, then
// Send many times from any goroutine, Counters from any goroutine, and
// Stop once. A System is not reused after Stop.
type System interface {
	// Name is the system's name in reports: "hearsay", "naive", "serf".
	Name() string
	// Start starts cfg.Peers peers on 127.0.0.1 and joins them into one
	// group. It blocks until every peer sees every other peer as a member
	// (or ctx ends). From then on the system calls obs.Deliver for every
	// message a peer delivers to its user, from any goroutine.
	Start(ctx context.Context, cfg SystemConfig, obs Observer) error
	// Send publishes payload from peer from (0 ≤ from < Peers). It blocks
	// until the system has accepted the message locally (signed, stored,
	// queued: whatever the system does before it returns to its user).
	// Safe for concurrent use.
	Send(ctx context.Context, from int, payload []byte) error
	// Counters returns the system's traffic counters since Start, summed
	// over all peers. Safe for concurrent use.
	Counters() Counters
	// Stop stops every peer and waits for their goroutines. Idempotent.
	Stop() error
}

// SystemConfig is what a workload asks of a system.
type SystemConfig struct {
	// Peers is the group size N.
	Peers int
	// Size is the payload size the workload will send, so that a system
	// with a message size limit can say so at Start.
	Size int
	// Drop is the ratio (0 to 1) of message frames to drop on receipt.
	// A system that cannot inject drops returns ErrUnsupported when Drop
	// is above zero.
	Drop float64
	// Order is the room ordering mode for systems that have one ("" is
	// the system's default). Others ignore it.
	Order string
	// Store and FanoutThreshold are hearsay experiment knobs (see Spec);
	// other systems ignore them.
	Store           string
	FanoutThreshold int
	TreeThreshold   int
	// NoWire says the workload reports no bytes per delivery
	// (throughput, latency, cost, idle): a system whose byte count costs CPU (the
	// hearsay one samples every socket of the process each second) may
	// leave it out, so that the count does not take CPU from the load.
	NoWire bool
	// Progress, when not nil, receives one-line progress notes.
	Progress func(format string, args ...any)
}

// Observer receives deliveries. Deliver is called by the system, from any
// goroutine, for every message peer delivers to its user, with the payload
// exactly as sent; it must not keep payload. It never blocks for long.
type Observer interface {
	Deliver(peer int, payload []byte)
}

// Counters are a system's traffic counters, summed over its peers.
type Counters struct {
	// Copies is the number of message copies peers received from the
	// network, duplicates included (the optimum is one per message and
	// receiving peer).
	Copies uint64
	// WireBytes is the number of bytes peers received from the network on
	// the message path (see each system for what it includes); zero when
	// the system cannot count.
	WireBytes uint64
	// WireKnown tells whether WireBytes is counted at all.
	WireKnown bool
	// FrameBytes is the bytes peers wrote to their links by frame kind
	// (hearsay: chat Stats.FrameBytes, summed over the peers); nil when
	// the system does not count them.
	FrameBytes map[string]uint64
}

// settle waits until cond is true, polling every 20 ms, or returns an
// error when ctx ends or timeout passes. status, when not nil, says how
// far the group got: it goes to progress every 10 s and into the timeout
// error, with the process's open files when they are near the limit, so
// that a large group that does not converge says where it stands. It is
// called only for those notes, so it may cost more than cond.
func settle(ctx context.Context, timeout time.Duration, what string, progress Progress, cond func() bool, status func() string) error {
	start := time.Now()
	deadline := start.Add(timeout)
	lastNote := start
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	state := func() string {
		if status == nil {
			return "not yet"
		}
		return status()
	}
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %s%s", timeout, what, state(), fileNote())
		}
		if time.Since(lastNote) >= 10*time.Second {
			lastNote = time.Now()
			progress.printf("waiting for %s (%v): %s", what, time.Since(start).Round(time.Second), state())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// fileNote says how many descriptors the process has open when they are
// near its limit ("" otherwise): the likely reason a large group does not
// converge.
func fileNote() string {
	if note := limitNote(openFiles(), fileLimit()); note != "" {
		return "; " + note
	}
	return ""
}
