package main

// The peer: `hearsay` with no subcommand starts one chat peer with its REPL.
// This file wires chat (the node), discovery (the agent: bootstrap service,
// contact cache, rejoin) and repl (the command loop), and owns the order of
// start and stop:
// start node → find bootstrap → join group → register → REPL; on /quit,
// end of input or a signal: leave group → leave bootstrap → shut down.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/hearsay-chat/hearsay"
	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/chat/msglog"
	"github.com/hearsay-chat/hearsay/discovery"
	"github.com/hearsay-chat/hearsay/repl"
)

// peerOpts are the flags of `hearsay`, and what complete derives from
// them.
type peerOpts struct {
	nick           string
	bootstrap      string
	bootstrapURLs  []string // parsed from bootstrap by complete; empty: the local default
	bind           string
	advertise      string
	dataDir        string
	json           bool
	script         string
	keepGoing      bool
	clusterKey     string
	clusterKeyFile string
	manual         bool
	profile        string
	logFile        string
	color          string
	faults         faultOpts
	log            logOpts
	api            apiOpts
	bridge         bridgeOpts
	noReadReceipts bool
	dmHolders      int
}

// newPeerCmd returns the root command, which runs a peer. Its parse step
// fills and validates peerOpts (a failure is a usageError); then it calls
// runF, or runPeer when runF is nil. Tests pass a runF that captures the
// options, so flags are tested without starting a peer (cli/cli's
// NewCmdX(f, runF)).
func newPeerCmd(streams *ioStreams, runF func(context.Context, *peerOpts) error) *cobra.Command {
	o := &peerOpts{}
	root := &cobra.Command{
		Use:   "hearsay",
		Short: "A peer-to-peer chat for the terminal",
		Long: `hearsay is a peer-to-peer chat for the terminal. A peer asks a bootstrap
data service for first contacts, joins a memberlist group with them, and from
then on needs no server.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd, streams.Getenv); err != nil {
				return &usageError{err: err}
			}
			return nil
		},
	}
	// Flag errors of every command (cobra asks the nearest parent that
	// sets this function) are usage errors.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	root.Example = `  hearsay --nick alice                 # first terminal
  hearsay --nick bob                   # second terminal: finds alice, chat
  hearsay --nick carol --bootstrap http://10.0.0.5:8080 --bind 10.0.0.7:7946
  hearsay --nick bot --json --script scripts/demo.txt < /dev/null
  hearsay --manual                     # drive memberlist step by step`
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := o.complete(streams); err != nil {
			return &usageError{err: err}
		}
		if runF != nil {
			return runF(cmd.Context(), o)
		}
		return runPeer(cmd.Context(), streams, o)
	}
	f := root.Flags()
	f.StringVar(&o.nick, "nick", "", "display name (default: $USER); also selects the profile")
	f.StringVar(&o.bootstrap, "bootstrap", "", "bootstrap service URL(s), comma-separated (env BOOTSTRAP_DATA_SERVER; default: "+bootstrapapi.DefaultLocalURL+", served in-process if nothing answers)")
	f.StringVar(&o.bind, "bind", "127.0.0.1:0", "memberlist address HOST:PORT (port 0 picks a free one); the chat listener binds the same host")
	f.StringVar(&o.advertise, "advertise", "", "host to advertise to other peers (when binding 0.0.0.0)")
	f.StringVar(&o.dataDir, "data-dir", "", "data directory (default $XDG_DATA_HOME/hearsay/<nick>)")
	f.BoolVar(&o.json, "json", false, "print every event as one JSON object per line")
	f.StringVar(&o.script, "script", "", "run the REPL commands in FILE first")
	f.BoolVar(&o.keepGoing, "keep-going", false, "run the rest of --script and of piped input after a command fails (the exit status is still 1)")
	f.StringVar(&o.clusterKey, "cluster-key", "", "passphrase of the group: encrypts memberlist gossip and admits chat connections; peers need the same one (visible in ps: prefer --cluster-key-file or $"+clusterKeyEnv+")")
	f.StringVar(&o.clusterKeyFile, "cluster-key-file", "", "read the cluster passphrase from FILE (its first line)")
	f.BoolVar(&o.manual, "manual", false, "start only the REPL: create, start and join memberlist and the bootstrap service by commands")
	f.StringVar(&o.profile, "profile", chat.ProfileLAN, "memberlist timers: lan, local (fast, one machine) or wan")
	f.StringVar(&o.logFile, "log-file", "", "write memberlist and chat logs to FILE (default: data-dir/peer.log)")
	f.StringVar(&o.color, "color", "auto", "nick colours: auto, always or never")
	f.BoolVar(&o.noReadReceipts, "no-read-receipts", false, "do not tell senders of direct messages that you read them (delivery receipts are still sent)")
	f.IntVar(&o.dmHolders, "dm-holders", 3, "how many peers hold a direct message for an offline recipient")
	addFaultFlags(f, &o.faults)
	addLogFlags(f, &o.log)
	addAPIFlags(f, &o.api)
	addBridgeFlags(f, &o.bridge)
	return root
}

var nickClean = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// defaultNick is the nick (and profile) without --nick: $USER in the
// characters every nick rule accepts, cut to the nick limit, or "anon".
// The peer and the commands that find a running peer (send, tail) must
// agree on it.
func defaultNick(getenv func(string) string) string {
	nick := nickClean.ReplaceAllString(getenv("USER"), "")
	if nick == "" {
		return "anon"
	}
	if len(nick) > chat.MaxNickBytes {
		nick = nick[:chat.MaxNickBytes]
	}
	return nick
}

// complete fills defaults and validates the flags.
func (o *peerOpts) complete(streams *ioStreams) error {
	if o.nick == "" {
		o.nick = defaultNick(streams.Getenv)
	}
	if err := chat.ValidateNick(o.nick); err != nil {
		return fmt.Errorf("--nick: %w", err)
	}
	if o.dataDir == "" {
		o.dataDir = filepath.Join(defaultDataDir(streams.Getenv), o.nick)
	}
	if o.bootstrap != "" {
		urls, err := bootstrapapi.ParseURLs(o.bootstrap)
		if err != nil {
			return fmt.Errorf("--bootstrap: %w", err)
		}
		o.bootstrapURLs = urls
	}
	if o.dmHolders < 1 || o.dmHolders > 16 {
		return fmt.Errorf("--dm-holders %d: want 1 to 16", o.dmHolders)
	}
	switch o.profile {
	case chat.ProfileLAN, chat.ProfileLocal, chat.ProfileWAN:
	default:
		return fmt.Errorf("--profile %q: want lan, local or wan", o.profile)
	}
	switch o.color {
	case "auto", "always", "never":
	default:
		return fmt.Errorf("--color %q: want auto, always or never", o.color)
	}
	if o.script != "" {
		if _, err := os.Stat(o.script); err != nil {
			return fmt.Errorf("--script: %w", err)
		}
	}
	if err := o.completeClusterKey(streams); err != nil {
		return err
	}
	if err := o.log.complete(); err != nil {
		return err
	}
	if err := o.api.complete(); err != nil {
		return err
	}
	if err := o.bridge.complete(o.nick); err != nil {
		return err
	}
	return o.faults.complete()
}

// clusterKeyEnv names the environment variable that may hold the cluster
// passphrase (a flag's value is visible to every user in ps).
const clusterKeyEnv = "HEARSAY_CLUSTER_KEY"

// maxPassphraseBytes bounds a passphrase read from a file.
const maxPassphraseBytes = 4096

// completeClusterKey takes the passphrase from --cluster-key,
// --cluster-key-file or $HEARSAY_CLUSTER_KEY, in that order; the two
// flags together are an error.
func (o *peerOpts) completeClusterKey(streams *ioStreams) error {
	switch {
	case o.clusterKey != "" && o.clusterKeyFile != "":
		return errors.New("--cluster-key and --cluster-key-file: give one")
	case o.clusterKeyFile != "":
		f, err := os.Open(o.clusterKeyFile)
		if err != nil {
			return fmt.Errorf("--cluster-key-file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxPassphraseBytes+1))
		if err != nil {
			return fmt.Errorf("--cluster-key-file: %w", err)
		}
		if len(b) > maxPassphraseBytes {
			return fmt.Errorf("--cluster-key-file %s: longer than %d bytes; it holds a passphrase", o.clusterKeyFile, maxPassphraseBytes)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		o.clusterKey = strings.TrimSuffix(line, "\r")
		if o.clusterKey == "" {
			return fmt.Errorf("--cluster-key-file %s: the first line is empty", o.clusterKeyFile)
		}
	case o.clusterKey == "":
		o.clusterKey = streams.Getenv(clusterKeyEnv)
	}
	return nil
}

func (o *peerOpts) chatConfig(logOut io.Writer) chat.Config {
	cfg := chat.DefaultConfig()
	cfg.Nick = o.nick
	cfg.DataDir = o.dataDir
	cfg.BindAddr = o.bind
	cfg.AdvertiseHost = o.advertise
	cfg.MemberlistProfile = o.profile
	cfg.LogOutput = logOut
	if o.clusterKey != "" {
		cfg.ClusterKey = chat.ClusterKeyFromPassphrase(o.clusterKey)
	}
	cfg.Faults = o.faults.chatFaults()
	cfg.Direct.NoReadReceipts = o.noReadReceipts
	cfg.Direct.Holders = o.dmHolders
	o.log.apply(&cfg)
	return cfg
}

func runPeer(ctx context.Context, streams *ioStreams, o *peerOpts) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	logPath := o.logFile
	if logPath == "" {
		logPath = filepath.Join(o.dataDir, "peer.log")
	}
	logOut, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logOut.Close()
	useGRPCLog(logOut)
	defer releaseGRPCLog(logOut)

	lapi := newLocalAPI(o)
	ccfg := o.chatConfig(logOut)
	lapi.configure(&ccfg)
	node, err := chat.New(ccfg)
	if errors.Is(err, msglog.ErrLocked) {
		// Most often a second terminal started with the same --nick,
		// hence the same default data directory.
		return fmt.Errorf("create peer: %w (another hearsay runs with data directory %s: "+
			"pick another --nick, or give this one its own --data-dir)", err, o.dataDir)
	}
	if err != nil {
		return fmt.Errorf("create peer: %w", err)
	}
	pst := newPeersterHost(node, logOut)
	defer pst.Close()
	if err := pst.startFlags(&o.bridge); err != nil {
		node.Shutdown()
		return err
	}

	dcfg := discovery.DefaultConfig()
	dcfg.DataDir = o.dataDir
	dcfg.URLs = o.bootstrapURLs
	dcfg.Logf = func(f string, a ...any) { fmt.Fprintf(logOut, f+"\n", a...) }
	// The peer signs its join, renewals and leave with its identity, so
	// nobody else can change or remove its entry; the embedded service's
	// admin token is shared with `hearsay bootstrap` through the data root.
	dcfg.Signer = identitySigner{node.Identity()}
	dcfg.AdminTokenFile = localAdminTokenFile(streams.Getenv)
	// Every local peer serves the embedded default from the data root's
	// database (the one `hearsay bootstrap serve` uses), so a peer that
	// takes the service over keeps its configuration and contacts; the
	// takeover is said on the terminal, not only in peer.log.
	dcfg.EmbeddedDB = filepath.Join(defaultDataDir(streams.Getenv), "bootstrap.db")
	notices := &replNotices{}
	dcfg.Notify = notices.say
	// The agent is nil when no service can be found or served; only
	// --manual goes on without one.
	disc, bootErr := discovery.Open(ctx, dcfg)
	if bootErr != nil && !o.manual {
		node.Shutdown()
		return bootErr
	}

	rcfg := repl.DefaultConfig()
	peer := agentPeer{Node: node, agent: disc}
	// Events pass the Peerster bridge's tap, then the local API's ring,
	// then reach the REPL: each reader sees every event once.
	rcfg.Peer = lapi.wrap(tappedPeer{agentPeer: peer, events: pst.tap()})
	rcfg.Lifecycle = node
	rcfg.Rooms = node
	rcfg.Direct = node
	rcfg.Faults = newFaultControl(node, &o.faults)
	rcfg.Manual = o.manual
	rcfg.JSON = o.json
	rcfg.Color = o.color
	rcfg.HistoryFile = filepath.Join(o.dataDir, "history")
	rcfg.ScriptFile = o.script
	rcfg.KeepGoing = o.keepGoing
	rstreams := repl.IOStreams{In: streams.In, Out: streams.Out, ErrOut: streams.ErrOut}

	// cleanup runs exactly once, from the normal exit path or from
	// go-prompt's signal hook (go-prompt calls os.Exit after it, so
	// deferred functions would not run).
	cleanedUp := make(chan struct{})
	cleanup := func() {
		select {
		case <-cleanedUp:
			return
		default:
			close(cleanedUp)
		}
		cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if node.Started() {
			if err := node.Leave(cctx); err != nil && !errors.Is(err, chat.ErrNotStarted) {
				fmt.Fprintf(logOut, "leave group: %v\n", err)
			}
		}
		if disc != nil {
			if err := disc.Close(cctx); err != nil {
				fmt.Fprintf(logOut, "%v\n", err)
			}
		}
		node.Shutdown() // closes the node's events: the chain to the REPL drains
		lapi.close()
	}
	rcfg.OnSignal = func(os.Signal) { cleanup() }
	// The node counts a message shown when it delivers it: the REPL prints
	// the events still on their way after Run, until Shutdown closes them.
	rcfg.DrainEvents = true

	if disc != nil {
		rcfg.Bootstrap = bootstrapAdapter{c: disc.Client()}
	}
	r, err := repl.New(rcfg, rstreams)
	if err != nil {
		cleanup()
		return err
	}
	defer r.Close()
	notices.set(r)
	defer cleanup()
	r.Register(pst.commands()...)
	if o.faults.on {
		r.Notify(hearsay.Event{Type: hearsay.EventSystem, Time: time.Now(), Text: o.faults.warning()})
	}
	if bootErr != nil {
		r.Notify(hearsay.Event{Type: hearsay.EventError, Time: time.Now(), Text: "bootstrap unavailable: " + bootErr.Error()})
	} else {
		r.Printf("%s", disc.Describe())
	}

	if !o.manual {
		if err := startPeer(ctx, node, disc, r); err != nil {
			return err
		}
		pst.joinFlagRoom(ctx, r)
	} else {
		r.Printf("%s", manualBanner)
	}

	if err := lapi.start(peer, r, streams, logOut); err != nil {
		return err
	}
	err = r.Run(ctx)
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, repl.ErrInterrupted):
		return nil
	}
	return err
}

// manualBanner is the first line of --manual mode: the steps, named as
// /help ml lists them.
const manualBanner = "manual mode: /ml start, /ml join [ADDR…], /bootstrap join, then chat (see /help ml)"

// startPeer starts the node, joins the group through the bootstrap
// service and registers the node's own contact.
func startPeer(ctx context.Context, node *chat.Node, disc *discovery.Agent, r *repl.REPL) error {
	if err := node.Start(ctx); err != nil {
		return fmt.Errorf("start peer: %w", err)
	}
	r.Printf("peer %s (%s) listening on %s, chat on %s", node.ID(), node.Nick(), node.AdvertiseAddr(), node.ChatAddr())
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	msg, err := disc.JoinGroup(jctx, node)
	if err != nil {
		if errors.Is(err, chat.ErrClusterKey) {
			return err
		}
		r.Notify(hearsay.Event{Type: hearsay.EventError, Time: time.Now(), Text: err.Error() + " — starting alone; the peer rejoins when contacts appear"})
	} else {
		r.Printf("%s", msg)
	}
	res, err := disc.Register(jctx, node)
	switch {
	case err != nil:
		r.Notify(hearsay.Event{Type: hearsay.EventError, Time: time.Now(), Text: err.Error()})
	case res.Stored:
		r.Printf("registered as a first contact (%d/%d), lease renewed every %s", res.NumPeers, res.Config.MaxPeers, res.Config.LeaseTTL()/3)
	default:
		r.Printf("bootstrap holds its maximum of %d contacts; this peer registers when a slot frees", res.Config.MaxPeers)
	}
	return nil
}

// replNotices forwards the discovery agent's notices to the REPL once it
// exists (the agent is opened first); earlier ones are in peer.log only.
type replNotices struct{ r atomic.Pointer[repl.REPL] }

func (n *replNotices) set(r *repl.REPL) { n.r.Store(r) }

func (n *replNotices) say(text string) {
	if r := n.r.Load(); r != nil {
		r.Notify(hearsay.Event{Type: hearsay.EventSystem, Time: time.Now(), Text: text})
	}
}
