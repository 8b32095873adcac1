package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func init() {
	// Run every persistent pre-run hook on the path, so the environment
	// is applied even under a subcommand that has hooks of its own.
	cobra.EnableTraverseRunHooks = true
}

// exitError carries a specific exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run builds the command tree, runs it with args, and maps the outcome to
// an exit code: 0 ok, 1 error, 2 usage error, 130 interrupted.
func run(args []string, streams *ioStreams) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(streams)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(streams.ErrOut, "hearsay:", err)
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, context.Canceled):
		return 130
	case isUsageError(err):
		return 2
	}
	return 1
}

// isUsageError recognises cobra's flag and argument errors.
func isUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "invalid argument",
		"flag needs an argument", "accepts ", "requires at least", "requires at most", "required flag"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRootCmd(streams *ioStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "hearsay",
		Short: "A peer-to-peer chat for the terminal",
		Long: `hearsay is a peer-to-peer chat for the terminal. A peer asks a bootstrap
data service for first contacts, joins a memberlist group with them, and from
then on needs no server.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd, streams.Getenv)
		},
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetVersionTemplate("hearsay {{.Version}}\n")
	root.AddCommand(newVersionCmd(streams), newBootstrapCmd(streams))
	root.AddCommand(newBenchCmd(streams))
	addPeerCommand(root, streams)
	return root
}

func newVersionCmd(streams *ioStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(streams.Out, "hearsay %s\n", version)
			return nil
		},
	}
}

// envName is the environment variable that sets a flag: HEARSAY_<FLAG>,
// upper case, dashes as underscores.
func envName(flag string) string {
	return "HEARSAY_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag of cmd that is not on the command line from
// its HEARSAY_<FLAG> variable. The --bootstrap flag also reads
// BOOTSTRAP_DATA_SERVER, cli-chat's variable, after HEARSAY_BOOTSTRAP.
func applyEnv(cmd *cobra.Command, getenv func(string) string) error {
	var errs []error
	visit := func(f *pflag.Flag) {
		if f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		names := []string{envName(f.Name)}
		if f.Name == "bootstrap" {
			names = append(names, "BOOTSTRAP_DATA_SERVER")
		}
		for _, n := range names {
			if v, ok := lookup(getenv, n); ok {
				if err := f.Value.Set(v); err != nil {
					errs = append(errs, fmt.Errorf("environment %s=%q: %w", n, v, err))
				}
				f.Changed = true
				return
			}
		}
	}
	cmd.Flags().VisitAll(visit)
	cmd.InheritedFlags().VisitAll(visit)
	return errors.Join(errs...)
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}
