package main

// The commands' parse steps, tested apart from running (cli/cli's
// NewCmdX(f, runF)): each test builds a command with a runF that captures
// the options, so no peer, server or deployment starts.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/hearsay-chat/hearsay/bench"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
	"github.com/hearsay-chat/hearsay/chat/chattest"
)

// waitFor polls cond until it holds or 15 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !chattest.Poll(15*time.Second, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func testStreams(env map[string]string) *ioStreams {
	return &ioStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{},
		Getenv: func(k string) string { return env[k] }}
}

// execute runs cmd with args and returns its error.
func execute(cmd *cobra.Command, args ...string) error {
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	return cmd.ExecuteContext(context.Background())
}

func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

func TestNewCmdPeer(t *testing.T) {
	xdg := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "key")
	writeFile(t, keyFile, "from a file\nsecond line ignored\n")
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, o *peerOpts)
		usage string // a usage error naming this, instead of running
	}{
		{name: "defaults from the environment", env: map[string]string{"USER": "al ice!", "XDG_DATA_HOME": xdg},
			check: func(t *testing.T, o *peerOpts) {
				if o.nick != "alice" || o.dataDir != filepath.Join(xdg, "hearsay", "alice") {
					t.Errorf("nick %q data dir %q; want alice under %s", o.nick, o.dataDir, xdg)
				}
				if o.bind != "127.0.0.1:0" || o.profile != "lan" || o.color != "auto" || o.bootstrapURLs != nil || o.manual || o.json {
					t.Errorf("defaults: %+v", o)
				}
			}},
		{name: "flags", args: []string{"--nick", "bob", "--data-dir", "/d", "--bind", "0.0.0.0:7946", "--advertise", "10.0.0.7",
			"--bootstrap", "http://a:1, https://b/x/", "--profile", "local", "--json", "--manual", "--color", "never"},
			check: func(t *testing.T, o *peerOpts) {
				if o.nick != "bob" || o.dataDir != "/d" || o.bind != "0.0.0.0:7946" || o.advertise != "10.0.0.7" ||
					o.profile != "local" || !o.json || !o.manual || o.color != "never" {
					t.Errorf("parsed %+v", o)
				}
				if want := []string{"http://a:1", "https://b/x"}; !slices.Equal(o.bootstrapURLs, want) {
					t.Errorf("bootstrap URLs %v, want %v", o.bootstrapURLs, want)
				}
			}},
		{name: "environment sets flags", args: []string{"--nick", "n"},
			env: map[string]string{"BOOTSTRAP_DATA_SERVER": "http://env:9", "HEARSAY_PROFILE": "wan", "HEARSAY_CLUSTER_KEY": "env secret"},
			check: func(t *testing.T, o *peerOpts) {
				if !slices.Equal(o.bootstrapURLs, []string{"http://env:9"}) || o.profile != "wan" || o.clusterKey != "env secret" {
					t.Errorf("from the environment: %+v", o)
				}
			}},
		{name: "cluster key file", args: []string{"--nick", "n", "--cluster-key-file", keyFile},
			check: func(t *testing.T, o *peerOpts) {
				if o.clusterKey != "from a file" {
					t.Errorf("cluster key %q, want the file's first line", o.clusterKey)
				}
			}},
		{name: "bad nick", args: []string{"--nick", "bad nick!"}, usage: "--nick"},
		{name: "bad bootstrap", args: []string{"--nick", "n", "--bootstrap", "ftp://x"}, usage: "--bootstrap"},
		{name: "both key flags", args: []string{"--nick", "n", "--cluster-key", "a", "--cluster-key-file", keyFile}, usage: "--cluster-key"},
		{name: "bad env value", args: []string{"--nick", "n"}, env: map[string]string{"HEARSAY_JSON": "perhaps"}, usage: "HEARSAY_JSON"},
		{name: "unknown flag", args: []string{"--colour", "never"}, usage: "unknown flag"},
		{name: "stray argument", args: []string{"chat"}, usage: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePeerOpts(t, tt.env, tt.args, tt.usage)
			if got == nil {
				return
			}
			tt.check(t, got)
		})
	}
}

// parsePeerOpts parses args with the peer command without running a peer.
// With usage set it expects a usage error naming it and returns nil;
// otherwise it expects the command to run and returns the options.
func parsePeerOpts(t *testing.T, env map[string]string, args []string, usage string) *peerOpts {
	t.Helper()
	var got *peerOpts
	cmd := newPeerCmd(testStreams(env), func(_ context.Context, o *peerOpts) error { got = o; return nil })
	err := execute(cmd, args...)
	if usage != "" {
		if !isUsage(err) || !strings.Contains(err.Error(), usage) || got != nil {
			t.Fatalf("got %v (ran: %v), want a usage error naming %s", err, got != nil, usage)
		}
		return nil
	}
	if err != nil || got == nil {
		t.Fatalf("got %v, ran %v", err, got != nil)
	}
	return got
}

func TestNewCmdBench(t *testing.T) {
	var o *benchOptions
	var plan *bench.Plan
	runF := func(_ context.Context, bo *benchOptions, p *bench.Plan) error { o, plan = bo, p; return nil }
	err := execute(newBenchCmd(testStreams(nil), runF), "--peers", "10,50", "--baseline", "naive,naive",
		"--workload", "latency,throughput", "--duration", "3s", "--order", "total", "--in-process")
	if err != nil {
		t.Fatal(err)
	}
	if !o.inProcess || !slices.Equal(plan.Peers, []int{10, 50}) || !slices.Equal(plan.Systems, []string{"hearsay", "naive"}) ||
		!slices.Equal(plan.Workloads, []string{"latency", "throughput"}) || time.Duration(plan.Spec.Duration) != 3*time.Second ||
		plan.Spec.Order != "total" || plan.CostStep != 5 {
		t.Errorf("plan %+v from options %+v", plan, o)
	}
	for _, args := range [][]string{{"--peers", "1"}, {"--workload", "chaos"}, {"--baseline", "raft"}, {"--cost-step", "0"}, {"extra"}} {
		ran := false
		err := execute(newBenchCmd(testStreams(nil), func(context.Context, *benchOptions, *bench.Plan) error { ran = true; return nil }), args...)
		if !isUsage(err) || ran {
			t.Errorf("%v: %v (ran %v), want a usage error", args, err, ran)
		}
	}
}

func TestNewCmdBootstrapServe(t *testing.T) {
	xdg := t.TempDir()
	var got *serveOpts
	runF := func(_ context.Context, o *serveOpts) error { got = o; return nil }
	if err := execute(newBootstrapServeCmd(testStreams(map[string]string{"XDG_DATA_HOME": xdg}), runF), "--listen", "127.0.0.1:9"); err != nil {
		t.Fatal(err)
	}
	if got.listen != "127.0.0.1:9" || got.db != filepath.Join(xdg, "hearsay", "bootstrap.db") || got.adminToken != "" ||
		got.tokenFile != filepath.Join(xdg, "hearsay", bootstrapserver.AdminTokenFile) {
		t.Errorf("serve options %+v", got)
	}
	// The parse step only names the generated token's file; runServe
	// creates it.
	if _, err := os.Stat(got.tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("token file after parsing: %v, want none yet", err)
	}
	if err := execute(newBootstrapServeCmd(testStreams(map[string]string{"XDG_DATA_HOME": xdg}), runF), "--admin-token", "secret"); err != nil {
		t.Fatal(err)
	}
	if got.adminToken != "secret" || got.tokenFile != "" {
		t.Errorf("serve options with --admin-token %+v", got)
	}
}

func TestNewCmdBootstrapConfig(t *testing.T) {
	run := func(args ...string) (*configOpts, error) {
		var got *configOpts
		err := execute(newBootstrapConfigCmd(testStreams(nil), &bootstrapOpts{}, func(_ context.Context, o *configOpts) error { got = o; return nil }), args...)
		return got, err
	}
	o, err := run()
	if err != nil || o.changed {
		t.Fatalf("no flags: %+v, %v; want a show", o, err)
	}
	o, err = run("--max-peers", "10", "--lease-ttl", "2m")
	if err != nil || !o.changed || o.update.MaxPeers == nil || *o.update.MaxPeers != 10 ||
		o.update.LeaseTTLSeconds == nil || *o.update.LeaseTTLSeconds != 120 || o.update.MinRefillCandidates != nil {
		t.Fatalf("update: %+v, %v", o, err)
	}
	if o, err = run("--lease-ttl", "1500ms"); !isUsage(err) || o != nil {
		t.Errorf("fractional TTL: %v, want a usage error", err)
	}
}

func TestNewCmdBootstrapDeployAndStatus(t *testing.T) {
	parent := func(child *cobra.Command) *cobra.Command {
		p := &cobra.Command{Use: "bootstrap"}
		p.PersistentFlags().String("admin-token", "", "")
		p.PersistentFlags().Duration("timeout", 10*time.Second, "")
		p.PersistentFlags().Bool("json", false, "")
		p.AddCommand(child)
		return p
	}
	env := map[string]string{"GOOGLE_CLOUD_PROJECT": "proj-env", "CLOUDSDK_FUNCTIONS_REGION": "europe-west1"}
	var d *deployOpts
	err := execute(parent(newBootstrapDeployCmd(testStreams(env), func(_ context.Context, o *deployOpts) error { d = o; return nil })),
		"deploy", "--project", "proj", "--name", "fn", "--admin-token", "tok", "--max-instances", "2")
	if err != nil {
		t.Fatal(err)
	}
	if d.target != (cloudTarget{project: "proj", region: "europe-west1", name: "fn"}) || d.adminToken != "tok" || d.maxInstances != 2 {
		t.Errorf("deploy options %+v", d)
	}
	var s *statusOpts
	err = execute(parent(newBootstrapStatusCmd(testStreams(env), func(_ context.Context, o *statusOpts) error { s = o; return nil })),
		"status", "--json", "--timeout", "3s", "--ping=false")
	if err != nil {
		t.Fatal(err)
	}
	if s.target.project != "proj-env" || !s.json || s.timeout != 3*time.Second || s.ping {
		t.Errorf("status options %+v", s)
	}
	ran := false
	err = execute(parent(newBootstrapDeployCmd(testStreams(nil), func(context.Context, *deployOpts) error { ran = true; return nil })), "deploy")
	if !isUsage(err) || ran || !strings.Contains(err.Error(), "--project, --region") {
		t.Errorf("deploy without a target: %v (ran %v), want a usage error naming both flags", err, ran)
	}
}

// run maps a usage error, wherever it comes from, to exit code 2, and
// other failures to 1.
func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"version"}, 0},
		{[]string{"version", "extra"}, 2},
		{[]string{"--no-such-flag"}, 2},
		{[]string{"bootstrap", "no-such-command"}, 2},
		{[]string{"bootstrap", "leave"}, 2},
		{[]string{"bootstrap", "list", "-n", "many"}, 2},
		{[]string{"bench", "--peers", "0"}, 2},
		{[]string{"bootstrap", "ping", "--bootstrap", "http://127.0.0.1:1", "--timeout", "1s"}, 1},
	}
	for _, tt := range tests {
		if code, _, errOut := runCLI(t, nil, tt.args...); code != tt.want {
			t.Errorf("%v: exit code %d, want %d; stderr %q", tt.args, code, tt.want, errOut)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
