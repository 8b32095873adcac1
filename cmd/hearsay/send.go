package main

// `hearsay send` and `hearsay tail`: clients of a running peer's local API
// (package api). They find the peer of a profile (--nick, like the peer's
// own flag, or --data-dir) by the address and token files in its data
// directory; they never join the group themselves.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/repl"
)

// profileOpts name the peer a client command talks to.
type profileOpts struct {
	nick    string
	dataDir string
}

func addProfileFlags(cmd *cobra.Command, o *profileOpts) {
	f := cmd.Flags()
	f.StringVar(&o.nick, "nick", "", "profile: the nick of the running peer (default: $USER)")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory of the running peer (default $XDG_DATA_HOME/hearsay/<nick>)")
}

// complete resolves the data directory the way the peer does.
func (o *profileOpts) complete(streams *ioStreams) error {
	if o.dataDir != "" {
		return nil
	}
	if o.nick == "" {
		o.nick = defaultNick(streams.Getenv)
	}
	if err := chat.ValidateNick(o.nick); err != nil {
		return fmt.Errorf("--nick: %w", err)
	}
	o.dataDir = filepath.Join(defaultDataDir(streams.Getenv), o.nick)
	return nil
}

// dial connects to the profile's peer, with an error that says what to do
// when none runs.
func (o *profileOpts) dial(ctx context.Context) (*api.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := api.Dial(dctx, o.dataDir)
	if errors.Is(err, api.ErrNoPeer) {
		who := "profile " + o.nick
		if o.nick == "" {
			who = "data directory " + o.dataDir
		}
		return nil, fmt.Errorf("no hearsay peer is running for %s: start one first (hearsay --nick %s), then send and tail through it: %w",
			who, orDefault(o.nick, "NICK"), err)
	}
	return c, err
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// sendOpts are the flags of `hearsay send`.
type sendOpts struct {
	profileOpts
	room string
	to   string
	text string
}

// maxStdinBytes bounds the text read from stdin: a message's limit, and
// one byte to notice more.
const maxStdinBytes = api.DefaultMaxMessageBytes + 1

func newSendCmd(streams *ioStreams, runF func(context.Context, *sendOpts) error) *cobra.Command {
	o := &sendOpts{}
	cmd := &cobra.Command{
		Use:   "send [--nick PROFILE] [--room #ROOM | --to NICK] [TEXT…]",
		Short: "Send a message through the running peer of a profile",
		Long: `send hands a message to the hearsay peer already running with that profile
(its --nick or --data-dir), through the peer's local API: it does not join the
group itself. The text is the arguments, or standard input when there are none.`,
		Example: `  hearsay send --nick alice hello everyone
  hearsay send --nick alice --room '#dev' build is green
  uptime | hearsay send --nick bot --room ops`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(streams, args); err != nil {
				return &usageError{err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runSend(cmd.Context(), streams, o)
		},
	}
	addProfileFlags(cmd, &o.profileOpts)
	cmd.Flags().StringVar(&o.room, "room", "", "room to send to (default #lobby)")
	cmd.Flags().StringVar(&o.to, "to", "", "send a direct message to this member (nick or peer ID)")
	return cmd
}

func (o *sendOpts) complete(streams *ioStreams, args []string) error {
	if err := o.profileOpts.complete(streams); err != nil {
		return err
	}
	if o.room != "" && o.to != "" {
		return errors.New("--room and --to: give one")
	}
	if o.room != "" {
		room, err := api.ParseRoom(o.room)
		if err != nil {
			return fmt.Errorf("--room: %w", err)
		}
		o.room = room
	}
	if len(args) > 0 {
		o.text = strings.Join(args, " ")
	} else {
		b, err := io.ReadAll(io.LimitReader(streams.In, maxStdinBytes))
		if err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
		if len(b) >= maxStdinBytes {
			return fmt.Errorf("standard input is over the message limit of %d bytes", api.DefaultMaxMessageBytes)
		}
		o.text = strings.TrimRight(string(b), "\r\n")
	}
	if strings.TrimSpace(o.text) == "" {
		return errors.New("nothing to send: give the text as arguments or on standard input")
	}
	return nil
}

func runSend(ctx context.Context, streams *ioStreams, o *sendOpts) error {
	c, err := o.dial(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := api.SendRequest{Room: o.room, To: o.to, Text: o.text}
	if req.Room == "" && req.To == "" {
		req.Room = "lobby"
	}
	res, err := c.Send(sctx, req)
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	dest := "#" + res.Room
	if res.To != "" {
		dest = res.To
	}
	fmt.Fprintf(streams.ErrOut, "sent %s to %s\n", res.ID, dest)
	return nil
}

// tailOpts are the flags of `hearsay tail`.
type tailOpts struct {
	profileOpts
	room string
	json bool
}

func newTailCmd(streams *ioStreams, runF func(context.Context, *tailOpts) error) *cobra.Command {
	o := &tailOpts{}
	cmd := &cobra.Command{
		Use:   "tail [--nick PROFILE] [--room #ROOM] [--json]",
		Short: "Print the events of the running peer of a profile as they happen",
		Long: `tail follows the event stream of the hearsay peer already running with that
profile, through its local API, until interrupted or until the peer stops. A
dropped connection is resumed where it stopped (no event lost or repeated).`,
		Example: `  hearsay tail --nick alice
  hearsay tail --nick alice --room '#dev' --json | jq .text`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.complete(streams); err != nil {
				return &usageError{err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runTail(cmd.Context(), streams, o)
		},
	}
	addProfileFlags(cmd, &o.profileOpts)
	cmd.Flags().StringVar(&o.room, "room", "", "only this room's events")
	cmd.Flags().BoolVar(&o.json, "json", false, "print each event as one JSON object per line (the --json schema)")
	return cmd
}

func (o *tailOpts) complete(streams *ioStreams) error {
	if err := o.profileOpts.complete(streams); err != nil {
		return err
	}
	if o.room != "" {
		room, err := api.ParseRoom(o.room)
		if err != nil {
			return fmt.Errorf("--room: %w", err)
		}
		o.room = room
	}
	return nil
}

// tailRetry is how long tail tries to resume a dropped stream before it
// decides the peer is gone.
const tailRetry = 5 * time.Second

func runTail(ctx context.Context, streams *ioStreams, o *tailOpts) error {
	c, err := o.dial(ctx)
	if err != nil {
		return err
	}
	last := ""
	print := func(s api.Streamed) error {
		if s.ID != "" {
			last = s.ID
		}
		if o.json {
			_, err := fmt.Fprintf(streams.Out, "%s\n", s.JSON)
			return err
		}
		_, err := fmt.Fprintln(streams.Out, formatEvent(s.Event))
		return err
	}
	for {
		err := c.StreamEvents(ctx, o.room, last, print)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var apiErr *api.Error
		if errors.As(err, &apiErr) {
			return fmt.Errorf("tail: %w", err)
		}
		// Dropped: resume after the last event, while the peer answers.
		deadline := time.Now().Add(tailRetry)
		for {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			_, serr := c.Self(sctx)
			cancel()
			if serr == nil {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("tail: the peer stopped (%v)", serr)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// formatEvent is tail's plain line: time, room and sender, with peer text
// made safe for a terminal (repl.Sanitize).
func formatEvent(ev hearsay.Event) string {
	ts := ev.Time.Local().Format("15:04:05")
	switch ev.Type {
	case hearsay.EventMessage, hearsay.EventHistory:
		late := ""
		if ev.Late {
			late = " (late)"
		}
		return fmt.Sprintf("%s #%s <%s> %s%s", ts, repl.Sanitize(ev.Room), repl.Sanitize(ev.From), repl.SanitizeMultiline(ev.Text), late)
	case hearsay.EventJoin, hearsay.EventLeave, hearsay.EventFailed:
		return fmt.Sprintf("%s * %s %s", ts, repl.Sanitize(ev.From), ev.Type)
	case hearsay.EventNick:
		return fmt.Sprintf("%s * %s is now %s", ts, repl.Sanitize(ev.Text), repl.Sanitize(ev.From))
	}
	room := ""
	if ev.Room != "" {
		room = " #" + repl.Sanitize(ev.Room)
	}
	return fmt.Sprintf("%s%s [%s] %s", ts, room, repl.Sanitize(ev.Type), repl.SanitizeMultiline(ev.Text))
}
