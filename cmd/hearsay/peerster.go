package main

// `hearsay peerster …` and `hearsay peerster client …`: a Peerster
// gossiper and its command-line client, with the course handout's flags in
// its own syntax (-flag=value, one dash), which cobra does not parse: the
// command disables cobra's flag parsing and reads its arguments with the
// standard flag package, as the course's implementations do.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hearsay-chat/hearsay/peerster"
)

// peersterOpts are the flags of `hearsay peerster` (gossiper) and of
// `hearsay peerster client`.
type peersterOpts struct {
	client     bool // the client, not the gossiper
	uiPort     string
	gossipAddr string
	name       string
	peers      []string // parsed from -peers
	simple     bool
	msg        string
	dropRate   float64 // hidden test flag -dropRate
}

// newPeersterCmd returns `hearsay peerster`. Its parse step fills and
// validates peersterOpts (a failure is a usageError); then it calls runF,
// or runPeerster when runF is nil.
func newPeersterCmd(streams *ioStreams, runF func(context.Context, *peersterOpts) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "peerster [client] -flag=value…",
		Short: "Run a Peerster gossiper (or its client) that speaks the course's protocol",
		Long: `peerster runs a gossiper of Peerster, the course protocol hearsay learned its
gossip from (Homework 1: simple broadcast, rumor mongering, anti-entropy, and
the part 3 web GUI on the UIPort), interoperating with other implementations.
Flags follow the course's syntax, one dash:

  hearsay peerster -UIPort=10000 -gossipAddr=127.0.0.1:5000 -name=nodeA -peers=127.0.0.1:5001 [-simple]
  hearsay peerster client -UIPort=10000 -msg=Hello

Standard output carries exactly the handout's lines; diagnostics go to
standard error. See peerster/README.md.`,
		DisableFlagParsing: true,
		SilenceUsage:       true,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := parsePeersterArgs(args, streams.ErrOut)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			if err != nil {
				return &usageError{err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			if o.client {
				return runPeersterClient(o)
			}
			return runPeerster(cmd.Context(), streams, o)
		},
	}
	return cmd
}

// parsePeersterArgs parses the gossiper's or, after the word client, the
// client's flags; usage goes to usageOut.
func parsePeersterArgs(args []string, usageOut io.Writer) (*peersterOpts, error) {
	o := &peersterOpts{}
	name := "hearsay peerster"
	if len(args) > 0 && args[0] == "client" {
		o.client, args, name = true, args[1:], "hearsay peerster client"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usageOut)
	var peers string
	fs.StringVar(&o.uiPort, "UIPort", "8080", "port for the UI client")
	if o.client {
		fs.StringVar(&o.msg, "msg", "", "message to be sent")
	} else {
		fs.StringVar(&o.gossipAddr, "gossipAddr", "127.0.0.1:5000", "ip:port for the gossiper")
		fs.StringVar(&o.name, "name", "", "name of the gossiper")
		fs.StringVar(&peers, "peers", "", "comma separated list of peers of the form ip:port")
		fs.BoolVar(&o.simple, "simple", false, "run gossiper in simple broadcast mode")
		fs.Float64Var(&o.dropRate, "dropRate", 0, "")
	}
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "Usage of %s:\n", name)
		fs.VisitAll(func(f *flag.Flag) {
			if f.Usage == "" { // -dropRate: a fault-injection hook for tests
				return
			}
			fmt.Fprintf(usageOut, "  -%s\n    \t%s", f.Name, f.Usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(usageOut, " (default %q)", f.DefValue)
			}
			fmt.Fprintln(usageOut)
		})
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags are -flag=value)", fs.Arg(0))
	}
	if p, err := strconv.Atoi(o.uiPort); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("-UIPort %q: want a port number", o.uiPort)
	}
	if o.client {
		if o.msg == "" {
			return nil, errors.New("-msg: the message is empty")
		}
		return o, nil
	}
	if o.name == "" {
		return nil, errors.New("-name: the gossiper needs a name")
	}
	if _, _, err := net.SplitHostPort(o.gossipAddr); err != nil {
		return nil, fmt.Errorf("-gossipAddr %q: %w", o.gossipAddr, err)
	}
	for _, p := range strings.Split(peers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.peers = append(o.peers, p)
		}
	}
	if o.dropRate < 0 || o.dropRate > 1 {
		return nil, fmt.Errorf("-dropRate %v: want 0 to 1", o.dropRate)
	}
	return o, nil
}

// runPeerster runs the gossiper until ctx ends.
func runPeerster(ctx context.Context, streams *ioStreams, o *peersterOpts) error {
	cfg := peerster.DefaultConfig()
	cfg.Name = o.name
	cfg.GossipAddr = o.gossipAddr
	cfg.UIAddr = net.JoinHostPort("127.0.0.1", o.uiPort)
	cfg.GUI = true
	cfg.Peers = o.peers
	cfg.Simple = o.simple
	cfg.DropRate = o.dropRate
	cfg.Output = streams.Out
	cfg.Logf = func(format string, args ...any) { fmt.Fprintf(streams.ErrOut, format+"\n", args...) }
	g, err := peerster.New(cfg)
	if guiErr := err; errors.Is(err, peerster.ErrGUIUnavailable) {
		// Port 8080, the handout's default, is also where hearsay's
		// embedded bootstrap service listens (TCP): gossip and client
		// messages (UDP) do not need the GUI.
		cfg.GUI = false
		if g, err = peerster.New(cfg); err == nil {
			fmt.Fprintf(streams.ErrOut, "peerster: %v; running without the GUI (client messages still arrive over UDP)\n", guiErr)
		}
	}
	if err != nil {
		return fmt.Errorf("peerster: %w", err)
	}
	<-ctx.Done()
	g.Close()
	// What was dropped, for whoever reads the logs (and the lossy ring
	// test, which checks that datagrams were in fact dropped).
	s := g.Stats()
	fmt.Fprintf(streams.ErrOut, "peerster stats: packets=%d dropped=%d malformed=%d oversized=%d wrongtype=%d unexpected=%d peersrefused=%d rumorsrefused=%d clientbad=%d sendlimited=%d\n",
		s.Packets, s.Dropped, s.Malformed, s.Oversized, s.WrongType, s.Unexpected, s.PeersRefused, s.RumorsRefused, s.ClientBad, s.SendLimited)
	return nil
}

// runPeersterClient sends one client message to the gossiper's UIPort on
// 127.0.0.1.
func runPeersterClient(o *peersterOpts) error {
	conn, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", o.uiPort))
	if err != nil {
		return fmt.Errorf("peerster client: %w", err)
	}
	defer conn.Close()
	m := peerster.Message{Text: o.msg}
	if _, err := conn.Write(m.Marshal()); err != nil {
		return fmt.Errorf("peerster client: send: %w", err)
	}
	return nil
}
