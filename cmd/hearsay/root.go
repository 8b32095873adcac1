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

// usageError is a command line a command cannot run: a flag or argument
// cobra refused, or a flag value the command's parse step rejected. run
// maps it to exit code 2.
type usageError struct {
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// noArgs and exactArgs are cobra's argument checks with their errors as
// usage errors.
func noArgs(cmd *cobra.Command, args []string) error {
	if err := cobra.NoArgs(cmd, args); err != nil {
		return &usageError{err: err}
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return &usageError{err: err}
		}
		return nil
	}
}

// run builds the command tree, runs it with args, and maps the outcome to
// an exit code, in this one place: 0 ok; 1 a command failed (an error of
// the command, a failed REPL command of --script or piped input, a
// bootstrap contact not stored); 2 usage error; 130 interrupted.
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
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, context.Canceled):
		return 130
	}
	return 1
}

// newRootCmd returns the whole command tree: the peer (the root command
// itself) and its subcommands.
func newRootCmd(streams *ioStreams) *cobra.Command {
	root := newPeerCmd(streams, nil)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetVersionTemplate("hearsay {{.Version}}\n")
	root.AddCommand(newVersionCmd(streams), newBootstrapCmd(streams))
	root.AddCommand(newBenchCmd(streams, nil))
	root.AddCommand(newSimCmd(streams, nil))
	root.AddCommand(newSendCmd(streams, nil), newTailCmd(streams, nil))
	root.AddCommand(newPeersterCmd(streams, nil))
	return root
}

func newVersionCmd(streams *ioStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
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
