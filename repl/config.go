package repl

import (
	"errors"
	"os"
	"time"
)

// MaxMessageBytes is the largest message body the peer accepts (64 KiB,
// chat.MaxBodyBytes; docs/DESIGN.md, "Messages, rooms and ordering").
// The REPL refuses longer lines before they reach the peer.
const MaxMessageBytes = 64 << 10

// Config configures a REPL. Start from DefaultConfig.
type Config struct {
	// Peer is the chat peer. Required.
	Peer Peer
	// Lifecycle drives the memberlist node step by step (the /ml commands).
	// Used only when Manual is set; usually the same value as Peer.
	Lifecycle Lifecycle
	// Manual enables the /ml lifecycle commands (hearsay --manual).
	Manual bool
	// Bootstrap is the bootstrap service client; nil disables /bootstrap.
	Bootstrap Bootstrap
	// Rooms enables the room commands (/join, /part, /switch, /rooms,
	// /history) and the per-room part of /stats; usually the same value as
	// Peer. Nil hides those commands.
	Rooms Rooms
	// Faults enables /fault (show, partition, heal, drop, delay, jitter).
	// Nil hides it; a Faults whose injection is off makes /fault show say
	// so and the other subcommands explain how to switch it on.
	Faults Faults
	// Direct enables the direct-message commands (/msg, /query,
	// /receipts) and conversations as targets; usually the same value as
	// Peer. Nil hides them.
	Direct Direct

	// JSON prints every event as one JSON object per line. JSON mode
	// always reads input line by line, also on a terminal.
	JSON bool
	// Color selects nick colours: "auto" (when Out is a terminal),
	// "always" or "never".
	Color string
	// EchoOwn makes the REPL print the user's own messages itself as soon
	// as Send returns, and drop the peer's message events from this peer
	// ID. Leave it false when the peer emits own messages on Events (the
	// chat peer does, in delivery order).
	EchoOwn bool
	// Room is the current room at start, without '#'.
	Room string

	// HistoryFile persists the typed lines (one per line, appended as they
	// are entered). Empty disables persistence.
	HistoryFile string
	// HistorySize is how many lines are kept and loaded.
	HistorySize int

	// ScriptFile, when set, is run by Run before reading input
	// (hearsay --script FILE).
	ScriptFile string
	// KeepGoing runs the rest of a script or of line-mode input after a
	// command fails (the run still fails at its end); without it the
	// first failed command stops the run (hearsay --keep-going).
	KeepGoing bool
	// Interactive forces the terminal prompt (true) or line mode (false);
	// nil chooses the prompt when In and Out are both terminals and JSON
	// is off.
	Interactive *bool

	// CommandTimeout bounds network commands (/ping, /bootstrap, /ml join).
	CommandTimeout time.Duration
	// MaxMessageBytes refuses longer messages early.
	MaxMessageBytes int
	// MaxSleep bounds /sleep.
	MaxSleep time.Duration

	// OnSignal is called when go-prompt is about to end the process
	// because of SIGINT, SIGTERM or SIGQUIT (go-prompt v0.2.6 calls
	// os.Exit itself; deferred functions never run). It runs on
	// go-prompt's goroutine after the terminal is restored; the process
	// exits when it returns, so it must do the host's cleanup (leave the
	// group and the bootstrap service, with a timeout) synchronously. The
	// signal may be nil when it could not be identified. Optional.
	OnSignal func(sig os.Signal)

	// DrainEvents says the host closes Peer.Events when it stops the peer
	// after Run (hearsay shuts its node down): the event reader then
	// outlives Run, and Close waits until every event still on its way
	// is printed and the channel is closed (at most DrainTimeout). The
	// node counts a message shown once it delivered it, so an event
	// dropped here would never be printed by any run. Without it the
	// reader stops when Run ends.
	DrainEvents bool
	// DrainTimeout bounds Close's wait for the event channel to close (0:
	// 3 s).
	DrainTimeout time.Duration

	// Now and Location make timestamps deterministic in tests.
	Now      func() time.Time
	Location *time.Location
}

// DefaultConfig returns a configuration with the documented defaults; the
// caller sets Peer (and Bootstrap, Lifecycle, HistoryFile as available).
func DefaultConfig() Config {
	return Config{
		Color:           "auto",
		Room:            "lobby",
		HistorySize:     1000,
		CommandTimeout:  10 * time.Second,
		MaxMessageBytes: MaxMessageBytes,
		MaxSleep:        time.Hour,
		Now:             time.Now,
		Location:        time.Local,
	}
}

func (c *Config) validate() error {
	if c.Peer == nil {
		return errors.New("repl: Config.Peer is required")
	}
	if c.Manual && c.Lifecycle == nil {
		return errors.New("repl: Config.Lifecycle is required in manual mode")
	}
	switch c.Color {
	case "", "auto", "always", "never":
	default:
		return errors.New(`repl: Config.Color must be "auto", "always" or "never"`)
	}
	d := DefaultConfig()
	if c.Room == "" {
		c.Room = d.Room
	}
	if c.HistorySize <= 0 {
		c.HistorySize = d.HistorySize
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = d.CommandTimeout
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	if c.MaxSleep <= 0 {
		c.MaxSleep = d.MaxSleep
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Location == nil {
		c.Location = d.Location
	}
	return nil
}
