package repl

// The command table. A command is a name, a usage line, help text, an
// argument completer and a run function; a command with subcommands (/kv,
// /bootstrap, /config, /ml, /log) picks one with its first argument. Run
// functions only return errors; Exec is the one place that prints them,
// with the usage of the command when the error is a usage error.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hearsay-chat/hearsay"
)

// ErrQuit is returned by Exec for /quit: the caller stops reading input.
var ErrQuit = errors.New("quit")

// Command is one REPL command or subcommand.
type Command struct {
	// Name without the leading '/'.
	Name string
	// Aliases are other names for the command.
	Aliases []string
	// Args is the usage of the arguments, e.g. "NICK" or "[N]".
	Args string
	// Summary is one line for /help.
	Summary string
	// Help is longer text for /help NAME.
	Help string
	// Sub lists subcommands; the first argument selects one. Run, if set
	// too, handles the command given without arguments.
	Sub []*Command
	// MinArgs and MaxArgs bound the number of arguments (MaxArgs < 0:
	// unlimited). They are checked before Run.
	MinArgs, MaxArgs int
	// Manual marks commands that exist only in --manual mode.
	Manual bool
	// Available, when set, hides the command (from /help, completion and
	// the dispatcher) unless it reports true, e.g. room commands when the
	// peer has no rooms.
	Available func(r *REPL) bool
	// Complete returns candidates for the word being typed after args
	// (the complete words before it). The engine keeps those that start
	// with word. Optional.
	Complete func(r *REPL, args []string, word string) []Suggestion
	// Run executes the command. It returns a *UsageError for bad
	// arguments and plain errors otherwise; it never prints errors.
	Run func(ctx context.Context, r *REPL, inv *Invocation) error

	parent *Command
}

// Invocation is a parsed command line.
type Invocation struct {
	// Args are the words after the command (and subcommand) name, with
	// quotes removed.
	Args []string
	// Rest is the raw text after the command (and subcommand) name.
	Rest string
}

// Suggestion is one completion candidate.
type Suggestion struct {
	Text        string
	Description string
}

// UsageError is an error in how a command was called; Exec prints it with
// the command's usage.
type UsageError struct {
	Cmd *Command
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// path returns "/kv set" for a subcommand.
func (c *Command) path() string {
	if c.parent != nil {
		return c.parent.path() + " " + c.Name
	}
	return "/" + c.Name
}

// Usage returns the usage lines of the command.
func (c *Command) Usage() string {
	var b strings.Builder
	if c.Run != nil || len(c.Sub) == 0 {
		b.WriteString(strings.TrimSpace(c.path() + " " + c.Args))
	}
	for _, s := range c.Sub {
		if b.Len() > 0 {
			b.WriteString("\n       ")
		}
		b.WriteString(strings.TrimSpace(s.path() + " " + s.Args))
	}
	return b.String()
}

// Register adds commands to the table (for later features such as rooms).
// A command whose name or alias is taken replaces the old one. Not safe
// to call while Exec or Complete run.
func (r *REPL) Register(cmds ...*Command) {
	for _, c := range cmds {
		linkParents(c)
		for i, old := range r.commands {
			if old.Name == c.Name {
				r.commands = append(r.commands[:i], r.commands[i+1:]...)
				break
			}
		}
		r.commands = append(r.commands, c)
	}
	sort.Slice(r.commands, func(i, j int) bool { return r.commands[i].Name < r.commands[j].Name })
	r.byName = make(map[string]*Command)
	for _, c := range r.commands {
		r.byName[c.Name] = c
		for _, a := range c.Aliases {
			if _, taken := r.byName[a]; !taken {
				r.byName[a] = c
			}
		}
	}
}

func linkParents(c *Command) {
	for _, s := range c.Sub {
		s.parent = c
		linkParents(s)
	}
}

// lookup finds a command by name, hiding manual-only commands outside
// manual mode.
func (r *REPL) lookup(name string) *Command {
	c := r.byName[strings.ToLower(name)]
	if c == nil || !r.shown(c) {
		return nil
	}
	return c
}

// visible returns the commands available in this mode.
func (r *REPL) visible() []*Command {
	var out []*Command
	for _, c := range r.commands {
		if r.shown(c) {
			out = append(out, c)
		}
	}
	return out
}

// shown reports whether c exists in this REPL's mode and configuration.
func (r *REPL) shown(c *Command) bool {
	return (!c.Manual || r.cfg.Manual) && (c.Available == nil || c.Available(r))
}

// Exec runs one input line: a command when it starts with '/', otherwise
// a message to the current room ("//text" sends "/text"). It prints the
// result and any error, and returns the error (ErrQuit for /quit) so that
// scripts can tell. It is what the terminal prompt, stdin mode, --script
// and /exec all call. Blocks until the command is done; Exec calls must
// not run concurrently.
func (r *REPL) Exec(ctx context.Context, line string) error {
	line = strings.TrimRight(line, "\r\n")
	cmd, err := r.exec(ctx, line)
	if err == nil || errors.Is(err, ErrQuit) {
		return err
	}
	r.printError(cmd, err)
	return err
}

func (r *REPL) printError(cmd *Command, err error) {
	msg := err.Error()
	var ue *UsageError
	if errors.As(err, &ue) {
		if ue.Cmd != nil {
			cmd = ue.Cmd
		}
		if cmd != nil {
			msg += "\nusage: " + cmd.Usage()
			if cmd.parent == nil {
				msg += "\n(see /help " + cmd.Name + ")"
			}
		}
	}
	r.p.emit(hearsay.Event{Type: hearsay.EventError, Text: msg})
}

func (r *REPL) exec(ctx context.Context, line string) (*Command, error) {
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return nil, nil
	}
	if !strings.HasPrefix(trimmed, "/") || strings.HasPrefix(trimmed, "//") {
		text := line
		if strings.HasPrefix(trimmed, "//") {
			text = trimmed[1:]
		}
		return nil, r.sendMessage(ctx, text)
	}
	name, rest := splitCommand(trimmed)
	cmd := r.lookup(name)
	if cmd == nil {
		msg := fmt.Sprintf("unknown command /%s; type /help for the list", Sanitize(name))
		if s := r.closest(name); s != "" {
			msg = fmt.Sprintf("unknown command /%s; did you mean /%s? (type /help for the list)", Sanitize(name), s)
		}
		return nil, errors.New(msg)
	}
	for {
		args, err := SplitArgs(rest)
		if err != nil {
			return cmd, &UsageError{Cmd: cmd, Msg: err.Error()}
		}
		if len(cmd.Sub) > 0 && len(args) > 0 {
			sub := findSub(cmd, args[0])
			if sub == nil {
				return cmd, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("unknown subcommand %q of %s", Sanitize(args[0]), cmd.path())}
			}
			_, rest = splitCommand(rest)
			cmd = sub
			continue
		}
		if cmd.Run == nil {
			return cmd, &UsageError{Cmd: cmd, Msg: cmd.path() + " needs a subcommand"}
		}
		if len(args) < cmd.MinArgs {
			return cmd, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("%s: missing argument", cmd.path())}
		}
		if cmd.MaxArgs >= 0 && len(args) > cmd.MaxArgs {
			return cmd, &UsageError{Cmd: cmd, Msg: fmt.Sprintf("%s: too many arguments", cmd.path())}
		}
		err = cmd.Run(ctx, r, &Invocation{Args: args, Rest: rest})
		var ue *UsageError
		if errors.As(err, &ue) && ue.Cmd == nil {
			ue.Cmd = cmd
		}
		return cmd, err
	}
}

func findSub(c *Command, name string) *Command {
	name = strings.ToLower(name)
	for _, s := range c.Sub {
		if s.Name == name {
			return s
		}
		for _, a := range s.Aliases {
			if a == name {
				return s
			}
		}
	}
	return nil
}

// closest suggests a command for a mistyped name: the only command that
// starts with it, or that it starts with.
func (r *REPL) closest(name string) string {
	name = strings.ToLower(name)
	var found []string
	for _, c := range r.visible() {
		if name != "" && (strings.HasPrefix(c.Name, name) || strings.HasPrefix(name, c.Name)) {
			found = append(found, c.Name)
		}
	}
	if len(found) == 1 {
		return found[0]
	}
	return ""
}
