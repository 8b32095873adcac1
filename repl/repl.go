package repl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// REPL is hearsay's command loop: the command table, the dispatcher, the
// completer, the printer and the event pump. Create it with New, run it
// with Run, and Close it when done. Exec and Complete may be called
// directly (tests, embedding); Notify and Printf are safe for concurrent
// use.
type REPL struct {
	cfg Config
	io  IOStreams
	p   *printer

	commands []*Command
	byName   map[string]*Command

	mu   sync.Mutex // guards room
	room string     // the current target: a room, or a conversation "@bob"

	act *activity // conversations and unread counts (cmd_direct.go)

	hist *history

	execDepth int // /exec nesting; only used on the command goroutine

	stopPump  chan struct{}
	pumpWG    sync.WaitGroup
	pumpOnce  sync.Once
	closeOnce sync.Once
	closed    atomic.Bool

	// quitRequested is set by /quit for the prompt's exit checker.
	quitRequested atomic.Bool
}

// New builds a REPL. It does not start reading input or events (Run does).
// It opens the history file when Config.HistoryFile is set.
func New(cfg Config, streams IOStreams) (*REPL, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if streams.Out == nil {
		return nil, errors.New("repl: IOStreams.Out is required")
	}
	color := cfg.Color == "always" || (cfg.Color == "auto" && streams.OutIsTerminal())
	r := &REPL{
		cfg:  cfg,
		io:   streams,
		room: cfg.Room,
		act:  newActivity(),
		p: &printer{out: streams.Out, errOut: streams.ErrOut, json: cfg.JSON, color: color && !cfg.JSON,
			loc: cfg.Location, now: cfg.Now},
		stopPump: make(chan struct{}),
	}
	if r.p.errOut == nil {
		r.p.errOut = streams.Out
	}
	r.p.room = r.Room
	r.Register(builtinCommands()...)
	if cfg.HistoryFile != "" {
		h, err := openHistory(cfg.HistoryFile, cfg.HistorySize)
		if err != nil {
			return nil, err
		}
		r.hist = h
	}
	return r, nil
}

// Close stops the event pump and closes the history and log files. It is
// idempotent and safe to call after Run returned; it does not close the
// Peer.
func (r *REPL) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		if r.cfg.DrainEvents {
			r.drainEvents()
		}
		r.stopEvents()
		err = r.p.setLog(nil, "")
		if r.hist != nil {
			err = errors.Join(err, r.hist.close())
		}
	})
	return err
}

// Room returns the current room (without '#'). Safe for concurrent use.
func (r *REPL) Room() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.room
}

// SetRoom selects the current target (/join, /switch, /part, /query): a
// room, or a conversation "@bob". Its unread count is cleared. Safe for
// concurrent use.
func (r *REPL) SetRoom(room string) {
	r.mu.Lock()
	r.room = room
	r.mu.Unlock()
	r.act.clear(targetLabel(room))
}

// Notify prints an event from the host (for example "using bootstrap at
// …"). Safe for concurrent use; on a terminal the event appears above the
// line being typed.
func (r *REPL) Notify(ev hearsay.Event) { r.p.emit(ev) }

// Printf prints command output (a "system" event in --json mode). Safe for
// concurrent use.
func (r *REPL) Printf(format string, args ...any) { r.p.emit(sysf(format, args...)) }

// Config returns the REPL's configuration (after defaults were applied).
func (r *REPL) Config() Config { return r.cfg }

// Peer returns the configured peer.
func (r *REPL) Peer() Peer { return r.cfg.Peer }

// sendMessage sends text to the current room. With EchoOwn the REPL shows
// it at once (and the pump drops the peer's own message events);
// otherwise the peer's event shows it.
func (r *REPL) sendMessage(ctx context.Context, text string) error {
	if n := len(text); n > r.cfg.MaxMessageBytes {
		return fmt.Errorf("message not sent: it is %d bytes, the limit is %d bytes (%d KiB); split it or send a file path instead",
			n, r.cfg.MaxMessageBytes, r.cfg.MaxMessageBytes>>10)
	}
	room := r.Room()
	if isConversation(room) {
		return r.sendDirect(ctx, room, text, false)
	}
	id, err := r.cfg.Peer.Send(ctx, room, text)
	if err != nil {
		return restate("message not sent to #"+room, "send to #"+room, err)
	}
	if r.cfg.EchoOwn {
		r.p.emit(hearsay.Event{Type: hearsay.EventMessage, Room: room, From: r.cfg.Peer.Nick(), FromID: r.cfg.Peer.ID(), ID: id.String(), Text: text})
	}
	return nil
}

// startEvents starts the goroutine that prints the peer's events. It is
// stopped by stopEvents (Run's end, Close).
func (r *REPL) startEvents() {
	ch := r.cfg.Peer.Events()
	if ch == nil {
		return
	}
	r.pumpWG.Add(1)
	go func() {
		defer r.pumpWG.Done()
		self := r.cfg.Peer.ID()
		var bl backlog // catch-up messages waiting for their marker (backlog.go)
		defer bl.stop()
		for {
			select {
			case <-r.stopPump:
				return
			case <-bl.quiet():
				r.flushBacklog(&bl)
			case ev, ok := <-ch:
				if !ok {
					r.flushBacklog(&bl)
					return
				}
				if r.cfg.EchoOwn && ev.Type == hearsay.EventMessage && ev.FromID != "" && ev.FromID == self {
					continue // printed by sendMessage already
				}
				if ev.Backlog && ev.Type == hearsay.EventMessage {
					if bl.add(ev) {
						r.flushBacklog(&bl)
					}
					continue
				}
				r.flushBacklog(&bl)
				// The activity list first: the prompt redrawn under the
				// printed line (and anyone who saw the line) has it.
				r.noteEvent(ev)
				r.p.emit(ev)
			}
		}
	}()
}

// drainEvents waits until the event reader has printed every event and
// seen the channel close (Config.DrainEvents), or DrainTimeout passed.
func (r *REPL) drainEvents() {
	wait := r.cfg.DrainTimeout
	if wait <= 0 {
		wait = 3 * time.Second
	}
	done := make(chan struct{})
	go func() { // ends when the reader does (at the latest by stopEvents)
		r.pumpWG.Wait()
		close(done)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

func (r *REPL) stopEvents() {
	r.pumpOnce.Do(func() { close(r.stopPump) })
	r.pumpWG.Wait()
}

// Run runs Config.ScriptFile if set, then reads input until /quit, end of
// input or ctx is done: with the terminal prompt when In and Out are
// terminals (and JSON is off), otherwise line by line. It prints the
// peer's events while it runs. A failed command of the script or of line
// mode stops the run with an error wrapping ErrCommandFailed, unless
// Config.KeepGoing (then the run goes on and the error comes at its end);
// a failed command at the terminal prompt never ends it. Otherwise it
// returns nil on /quit and end of input,
// ctx.Err() when ctx ended it, and an error wrapping ErrInterrupted when a
// signal stopped the prompt. Run may be called once.
func (r *REPL) Run(ctx context.Context) error {
	if r.closed.Load() {
		return errors.New("repl: Run after Close")
	}
	r.startEvents()
	if !r.cfg.DrainEvents {
		defer r.stopEvents()
	}
	// scriptErr is a script's failed commands, kept with KeepGoing so
	// that the run still fails after the input is read.
	var scriptErr error
	if r.cfg.ScriptFile != "" {
		err := r.RunScript(ctx, r.cfg.ScriptFile)
		switch {
		case errors.Is(err, ErrQuit) && errors.Is(err, ErrCommandFailed):
			var se *scriptError
			if errors.As(err, &se) {
				c := *se
				c.quit = false // the run ends here, and fails
				return &c
			}
			return err
		case errors.Is(err, ErrQuit):
			return nil
		case errors.Is(err, ErrCommandFailed) && r.cfg.KeepGoing:
			scriptErr = err
		case err != nil:
			return err
		}
	}
	interactive := r.io.IsTerminal() && !r.cfg.JSON
	if r.cfg.Interactive != nil {
		interactive = *r.cfg.Interactive
	}
	var err error
	if interactive {
		// The prompt never ends because a command failed: the user
		// sees the error and types the next line.
		err = r.runPrompt(ctx)
	} else {
		err = r.runStdin(ctx)
	}
	if err == nil {
		return scriptErr
	}
	if scriptErr != nil && errors.Is(err, ErrCommandFailed) {
		return errors.Join(scriptErr, err)
	}
	return err
}
