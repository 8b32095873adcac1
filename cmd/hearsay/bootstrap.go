package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

// bootstrapOpts are the flags every bootstrap client command shares.
type bootstrapOpts struct {
	urls       string
	adminToken string
	timeout    time.Duration
	json       bool
	getenv     func(string) string
}

func (o *bootstrapOpts) client() (*bootstrapapi.Client, error) {
	list := o.urls
	if list == "" {
		list = bootstrapapi.DefaultLocalURL
	}
	urls, err := bootstrapapi.ParseURLs(list)
	if err != nil {
		return nil, err
	}
	token := o.adminToken
	if token == "" && allLoopback(urls) {
		// The local service (a peer's embedded one, or serve without
		// --admin-token) keeps its generated token in the data
		// directory. It is sent to loopback URLs only: a remote service
		// has a token of its own and must not learn this one.
		token, err = bootstrapserver.ReadAdminToken(localAdminTokenFile(o.getenv))
		if errors.Is(err, fs.ErrNotExist) {
			token, err = "", nil
		}
		if err != nil {
			return nil, err
		}
	}
	return bootstrapapi.NewClient(urls,
		bootstrapapi.WithHTTPClient(&http.Client{Timeout: o.timeout}),
		bootstrapapi.WithAdminToken(token))
}

// localAdminTokenFile is where the local bootstrap service's generated
// admin token lives: the data root ($XDG_DATA_HOME/hearsay), shared by
// every local peer and by the bootstrap commands.
func localAdminTokenFile(getenv func(string) string) string {
	return filepath.Join(defaultDataDir(getenv), bootstrapserver.AdminTokenFile)
}

// allLoopback reports whether every URL names a loopback host.
func allLoopback(urls []string) bool {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return false
		}
		h := u.Hostname()
		if a, err := netip.ParseAddr(h); (err != nil || !a.IsLoopback()) && h != "localhost" {
			return false
		}
	}
	return len(urls) > 0
}

func newBootstrapCmd(streams *ioStreams) *cobra.Command {
	o := &bootstrapOpts{getenv: streams.Getenv}
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Serve or query the bootstrap data service",
		Long: `The bootstrap data service tells a new peer whom to contact first.

"hearsay bootstrap serve" runs the local backend on bbolt; the other
subcommands are clients of API v1. The service address comes from
--bootstrap, HEARSAY_BOOTSTRAP or BOOTSTRAP_DATA_SERVER (one URL or a
comma-separated list, tried in order), and defaults to ` + bootstrapapi.DefaultLocalURL + `.`,
		Args: noArgs, // an unknown subcommand is a usage error, not help
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.urls, "bootstrap", "", "bootstrap service URL(s), comma-separated (env BOOTSTRAP_DATA_SERVER)")
	pf.StringVar(&o.adminToken, "admin-token", "", "admin bearer token for reset and config changes (default for a local service: the one in $XDG_DATA_HOME/hearsay/"+bootstrapserver.AdminTokenFile+")")
	pf.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout of each HTTP request")
	pf.BoolVar(&o.json, "json", false, "print the service's JSON answer")

	cmd.AddCommand(
		newBootstrapServeCmd(streams, nil),
		newBootstrapPingCmd(streams, o),
		newBootstrapListCmd(streams, o),
		newBootstrapJoinCmd(streams, o, "join"),
		newBootstrapJoinCmd(streams, o, "refill"),
		newBootstrapLeaveCmd(streams, o),
		newBootstrapResetCmd(streams, o),
		newBootstrapConfigCmd(streams, o, nil),
	)
	addCloudCommands(cmd, streams)
	return cmd
}

// defaultDataDir is $XDG_DATA_HOME/hearsay, or ~/.local/share/hearsay.
func defaultDataDir(getenv func(string) string) string {
	if d := getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "hearsay")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "hearsay")
	}
	return filepath.Join(".", "hearsay-data")
}

type serveOpts struct {
	listen     string
	db         string
	adminToken string
	tokenFile  string // where the generated token is, when not given
}

// newBootstrapServeCmd returns `hearsay bootstrap serve`; it calls runF,
// or runServe when runF is nil, with the database path filled in and,
// without --admin-token, the file of the generated token.
func newBootstrapServeCmd(streams *ioStreams, runF func(context.Context, *serveOpts) error) *cobra.Command {
	o := &serveOpts{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the local bootstrap service (bbolt)",
		Example: `  hearsay bootstrap serve --listen 127.0.0.1:8080 --db /tmp/bootstrap.db
  HEARSAY_ADMIN_TOKEN=secret hearsay bootstrap serve`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.db == "" {
				dir := defaultDataDir(streams.Getenv)
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return fmt.Errorf("create data dir: %w", err)
				}
				o.db = filepath.Join(dir, "bootstrap.db")
			}
			if o.adminToken == "" {
				// runServe loads or generates the token there.
				o.tokenFile = localAdminTokenFile(streams.Getenv)
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runServe(cmd.Context(), streams, o)
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", bootstrapapi.DefaultListen, "address to listen on")
	cmd.Flags().StringVar(&o.db, "db", "", "bbolt database file (default $XDG_DATA_HOME/hearsay/bootstrap.db)")
	cmd.Flags().StringVar(&o.adminToken, "admin-token", "", "require this bearer token for reset and config changes (default: generated into $XDG_DATA_HOME/hearsay/"+bootstrapserver.AdminTokenFile+")")
	return cmd
}

func runServe(ctx context.Context, streams *ioStreams, o *serveOpts) error {
	if o.tokenFile != "" {
		tok, err := bootstrapserver.LoadOrCreateAdminToken(o.tokenFile)
		if err != nil {
			return fmt.Errorf("bootstrap admin token: %w", err)
		}
		o.adminToken = tok
	}
	srv, err := bootstrapserver.Start(bootstrapserver.Config{
		Listen: o.listen, DBPath: o.db, AdminToken: o.adminToken,
		Logf: func(f string, a ...any) { fmt.Fprintf(streams.ErrOut, f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	auth := "admin token required for reset/config"
	if o.tokenFile != "" {
		auth = "admin token in " + o.tokenFile
	}
	fmt.Fprintf(streams.Out, "bootstrap service on %s (db %s, %s)\n", srv.URL(), o.db, auth)
	select {
	case <-ctx.Done():
	case <-srv.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(sctx); err != nil {
		return fmt.Errorf("stop bootstrap service: %w", err)
	}
	fmt.Fprintln(streams.Out, "bootstrap service stopped")
	return nil
}

// printJSON writes v indented.
func printJSON(streams *ioStreams, v any) error {
	enc := json.NewEncoder(streams.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newBootstrapPingCmd(streams *ioStreams, o *bootstrapOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "ping",
		Short:   "Check that the bootstrap service answers",
		Example: "  hearsay bootstrap ping --bootstrap http://127.0.0.1:8080",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			start := time.Now()
			r, err := c.Ping(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(streams, r)
			}
			fmt.Fprintf(streams.Out, "ok: bootstrap service answered in %s\n", time.Since(start).Round(time.Microsecond))
			return nil
		},
	}
}

func newBootstrapListCmd(streams *ioStreams, o *bootstrapOpts) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List live contacts",
		Example: "  hearsay bootstrap list\n  hearsay bootstrap list -n 2 --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			r, err := c.List(cmd.Context(), n)
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(streams, r)
			}
			fmt.Fprintf(streams.Out, "%d live contacts (max %d, lease %ds)\n", r.NumPeers, r.Config.MaxPeers, r.Config.LeaseTTLSeconds)
			tw := tabwriter.NewWriter(streams.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNICK\tADDR\tPROTOCOL\tEXPIRES")
			for _, p := range r.Peers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Nick, p.Addr, p.Protocol,
					time.Until(p.Expires).Round(time.Second))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVarP(&n, "n", "n", 0, "at most this many contacts, chosen at random (0: all)")
	return cmd
}

func newBootstrapJoinCmd(streams *ioStreams, o *bootstrapOpts, op string) *cobra.Command {
	var req bootstrapapi.JoinRequest
	short := "Register or renew a contact"
	if op == "refill" {
		short = "Register a contact with the refill rule (keep the oldest contacts)"
	}
	cmd := &cobra.Command{
		Use:     op + " ID HOST:PORT",
		Short:   short,
		Example: fmt.Sprintf("  hearsay bootstrap %s peer-1 127.0.0.1:7946 --nick alice", op),
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.ID, req.Addr = args[0], args[1]
			c, err := o.client()
			if err != nil {
				return err
			}
			call := c.Join
			if op == "refill" {
				call = c.Refill
			}
			r, err := call(cmd.Context(), req)
			if err != nil {
				return err
			}
			// Not stored is not a service error, but the contact was not
			// registered: scripts must see a failure (exit status 1).
			var notStored error
			if !r.Stored {
				if op == "refill" {
					notStored = fmt.Errorf("%s not stored: the service keeps its %d current contacts (none is newer)", req.ID, r.NumPeers)
				} else {
					notStored = fmt.Errorf("%s not stored: the service holds its maximum of %d contacts", req.ID, r.Config.MaxPeers)
				}
			}
			if o.json {
				if err := printJSON(streams, r); err != nil {
					return err
				}
				return notStored
			}
			switch {
			case r.Replaced != "":
				fmt.Fprintf(streams.Out, "stored %s, replacing %s (%d/%d contacts)\n", req.ID, r.Replaced, r.NumPeers, r.Config.MaxPeers)
			case r.Renewed:
				fmt.Fprintf(streams.Out, "renewed %s until %s (%d/%d contacts)\n", req.ID, r.Contact.Expires.Local().Format(time.TimeOnly), r.NumPeers, r.Config.MaxPeers)
			case r.Stored:
				fmt.Fprintf(streams.Out, "stored %s until %s (%d/%d contacts)\n", req.ID, r.Contact.Expires.Local().Format(time.TimeOnly), r.NumPeers, r.Config.MaxPeers)
			default:
				return notStored
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Nick, "nick", "", "display name")
	cmd.Flags().StringVar(&req.Protocol, "protocol", "hearsay/1", "protocol the contact speaks")
	return cmd
}

func newBootstrapLeaveCmd(streams *ioStreams, o *bootstrapOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "leave ID",
		Short:   "Remove a contact",
		Example: "  hearsay bootstrap leave peer-1",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			r, err := c.Leave(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(streams, r)
			}
			if !r.Removed {
				fmt.Fprintf(streams.Out, "%s was not stored (%s)\n", args[0], countContacts(r.NumPeers))
				return nil
			}
			fmt.Fprintf(streams.Out, "removed %s (%s left)\n", args[0], countContacts(r.NumPeers))
			return nil
		},
	}
}

func newBootstrapResetCmd(streams *ioStreams, o *bootstrapOpts) *cobra.Command {
	return &cobra.Command{
		Use:     "reset",
		Short:   "Remove every contact, keep the configuration (admin)",
		Example: "  hearsay bootstrap reset --admin-token secret",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			r, err := c.Reset(cmd.Context())
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(streams, r)
			}
			fmt.Fprintf(streams.Out, "removed %s\n", countContacts(r.Removed))
			return nil
		},
	}
}

// configOpts are the flags of `hearsay bootstrap config`: update holds
// the changed settings; none changed means show the configuration.
type configOpts struct {
	client  *bootstrapOpts
	update  bootstrapapi.ConfigUpdate
	changed bool
}

// newBootstrapConfigCmd returns `hearsay bootstrap config`. Its parse step
// turns the flags that were given into a ConfigUpdate (a bad value is a
// usageError); then it calls runF, or runConfig when runF is nil.
func newBootstrapConfigCmd(streams *ioStreams, o *bootstrapOpts, runF func(context.Context, *configOpts) error) *cobra.Command {
	var (
		maxPeers, minRefill int
		ttl                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change the service configuration (changes are admin)",
		Example: `  hearsay bootstrap config
  hearsay bootstrap config --max-peers 10 --lease-ttl 2m --admin-token secret`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			co := &configOpts{client: o}
			if cmd.Flags().Changed("max-peers") {
				co.update.MaxPeers, co.changed = &maxPeers, true
			}
			if cmd.Flags().Changed("min-refill") {
				co.update.MinRefillCandidates, co.changed = &minRefill, true
			}
			if cmd.Flags().Changed("lease-ttl") {
				if ttl%time.Second != 0 {
					return &usageError{err: errors.New("--lease-ttl must be whole seconds")}
				}
				secs := int64(ttl / time.Second)
				co.update.LeaseTTLSeconds, co.changed = &secs, true
			}
			if runF != nil {
				return runF(cmd.Context(), co)
			}
			return runConfig(cmd.Context(), streams, co)
		},
	}
	cmd.Flags().IntVar(&maxPeers, "max-peers", 0, "most contacts the service stores")
	cmd.Flags().IntVar(&minRefill, "min-refill", 0, "min refill candidates (cli-chat setting)")
	cmd.Flags().DurationVar(&ttl, "lease-ttl", 0, "how long a contact lives without renewal")
	return cmd
}

func runConfig(ctx context.Context, streams *ioStreams, o *configOpts) error {
	c, err := o.client.client()
	if err != nil {
		return err
	}
	var cfg bootstrapapi.Config
	if o.changed {
		cfg, err = c.SetConfig(ctx, o.update)
	} else {
		cfg, err = c.Config(ctx)
	}
	if err != nil {
		return err
	}
	if o.client.json {
		return printJSON(streams, cfg)
	}
	fmt.Fprintf(streams.Out, "max peers %d, min refill candidates %d, lease TTL %s\n",
		cfg.MaxPeers, cfg.MinRefillCandidates, cfg.LeaseTTL())
	return nil
}

// countContacts returns "1 contact", "3 contacts".
func countContacts(n int) string {
	if n == 1 {
		return "1 contact"
	}
	return strconv.Itoa(n) + " contacts"
}
