package repl

// Basic commands: /help, /quit, /echo, /sleep, /exec, /log, /nick.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hearsay-chat/hearsay"
)

// builtinCommands returns the command table. Each call returns fresh
// values, so REPLs never share state.
func builtinCommands() []*Command {
	return append([]*Command{
		cmdHelp(), cmdQuit(), cmdEcho(), cmdSleep(), cmdExec(), cmdLog(), cmdNick(),
		cmdWho(), cmdMembers(), cmdHealth(), cmdPing(), cmdKV(), cmdStats(), cmdConfig(), cmdML(),
		cmdBootstrap(),
	}, append(roomCommands(), directCommands()...)...)
}

func cmdHelp() *Command {
	return &Command{
		Name: "help", Args: "[COMMAND]", MaxArgs: 1,
		Summary: "list commands, or explain one",
		Help:    "Plain text is a message to the current room; commands start with '/'.\nStart a message with '//' to send a text that begins with '/'.",
		Complete: func(r *REPL, args []string, _ string) []Suggestion {
			if len(args) > 0 {
				return nil
			}
			var out []Suggestion
			for _, c := range r.visible() {
				out = append(out, Suggestion{Text: c.Name, Description: c.Summary})
			}
			return out
		},
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			if len(inv.Args) == 1 {
				c := r.lookup(strings.TrimPrefix(inv.Args[0], "/"))
				if c == nil {
					return usagef("no command /%s", Sanitize(strings.TrimPrefix(inv.Args[0], "/")))
				}
				r.Printf("%s", helpText(c))
				return nil
			}
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			for _, c := range r.visible() {
				fmt.Fprintf(tw, "  /%s\t%s\n", strings.TrimSpace(c.Name+" "+c.Args), c.Summary)
			}
			_ = tw.Flush()
			r.Printf("Commands (/help COMMAND for details; plain text is a message to #%s):\n%s", r.Room(), strings.TrimRight(b.String(), "\n"))
			return nil
		},
	}
}

func helpText(c *Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n%s", c.Usage(), c.Summary)
	if c.Help != "" {
		b.WriteString("\n" + c.Help)
	}
	if len(c.Sub) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "\n")
		for _, s := range c.Sub {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(s.Name+" "+s.Args), s.Summary)
		}
		_ = tw.Flush()
	}
	if len(c.Aliases) > 0 {
		b.WriteString("\naliases: /" + strings.Join(c.Aliases, ", /"))
	}
	return strings.TrimRight(b.String(), "\n")
}

func cmdQuit() *Command {
	return &Command{
		Name: "quit", Aliases: []string{"exit"}, MaxArgs: 0,
		Summary: "leave the group and exit",
		Help:    "Ctrl-D on an empty line does the same. The host leaves the group and the bootstrap service.",
		Run: func(context.Context, *REPL, *Invocation) error {
			return ErrQuit
		},
	}
}

func cmdEcho() *Command {
	return &Command{
		Name: "echo", Args: "TEXT", MaxArgs: -1,
		Summary: "print TEXT (for scripts)",
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			r.Printf("%s", inv.Rest)
			return nil
		},
	}
}

func cmdSleep() *Command {
	return &Command{
		Name: "sleep", Args: "DURATION", MinArgs: 1, MaxArgs: 1,
		Summary:  "pause, e.g. /sleep 500ms (for scripts)",
		Help:     "DURATION is a Go duration: 300ms, 2s, 1m30s. Incoming events keep printing meanwhile.",
		Complete: completeWords("100ms", "500ms", "1s", "2s", "5s"),
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			d, err := time.ParseDuration(inv.Args[0])
			if err != nil || d < 0 {
				return usagef("bad duration %q (examples: 500ms, 2s, 1m)", Sanitize(inv.Args[0]))
			}
			if d > r.cfg.MaxSleep {
				return usagef("duration %v is longer than the limit %v", d, r.cfg.MaxSleep)
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("sleep interrupted: %w", ctx.Err())
			}
		},
	}
}

func cmdExec() *Command {
	return &Command{
		Name: "exec", Args: "FILE", MinArgs: 1, MaxArgs: 1,
		Summary:  "run the commands of FILE",
		Help:     "One command or message per line; '#' starts a comment line; blank lines are skipped;\n/quit in the file ends the session.",
		Complete: completeFile,
		Run: func(ctx context.Context, r *REPL, inv *Invocation) error {
			return r.RunScript(ctx, expandPath(inv.Args[0]))
		},
	}
}

func cmdLog() *Command {
	return &Command{
		Name:    "log",
		Summary: "copy everything printed to a file",
		Run: func(_ context.Context, r *REPL, _ *Invocation) error {
			if n := r.p.logName(); n != "" {
				r.Printf("logging to %s", n)
			} else {
				r.Printf("logging is off")
			}
			return nil
		},
		Sub: []*Command{
			{
				Name: "on", Args: "FILE", MinArgs: 1, MaxArgs: 1,
				Summary:  "start logging to FILE (appends)",
				Complete: completeFile,
				Run: func(_ context.Context, r *REPL, inv *Invocation) error {
					path := expandPath(inv.Args[0])
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
					if err != nil {
						return fmt.Errorf("open log file: %w", err)
					}
					if err := r.p.setLog(f, path); err != nil {
						r.p.emit(hearsay.Event{Type: hearsay.EventError, Text: "closing the previous log: " + err.Error()})
					}
					r.Printf("logging to %s", path)
					return nil
				},
			},
			{
				Name: "off", MaxArgs: 0,
				Summary: "stop logging",
				Run: func(_ context.Context, r *REPL, _ *Invocation) error {
					n := r.p.logName()
					if n == "" {
						r.Printf("logging is off")
						return nil
					}
					if err := r.p.setLog(nil, ""); err != nil {
						return fmt.Errorf("close log %s: %w", n, err)
					}
					r.Printf("stopped logging to %s", n)
					return nil
				},
			},
		},
	}
}

func cmdNick() *Command {
	return &Command{
		Name: "nick", Args: "[NAME]", MaxArgs: 1,
		Summary: "show or change your nick",
		Help:    "Two peers may share a nick; others then see them apart as nick#xxxx.",
		Run: func(_ context.Context, r *REPL, inv *Invocation) error {
			p := r.cfg.Peer
			if len(inv.Args) == 0 {
				r.Printf("you are %s (%s)", Sanitize(p.Nick()), Sanitize(p.ID()))
				return nil
			}
			if err := p.SetNick(inv.Args[0]); err != nil {
				return fmt.Errorf("change nick: %w", err)
			}
			r.Printf("you are now known as %s", Sanitize(p.Nick()))
			return nil
		},
	}
}

// expandPath expands a leading "~/" to the home directory.
func expandPath(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[2:])
		}
	}
	return p
}

// errNoBootstrap is returned by /bootstrap when no service is configured.
var errNoBootstrap = errors.New("no bootstrap service configured (start hearsay with --bootstrap URL)")
