package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	bootstrapapi "github.com/hearsay-chat/hearsay/bootstrap-api"
	bootstrapserver "github.com/hearsay-chat/hearsay/bootstrap-server"
)

// runCLI runs the command tree in-process with the given environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut,
		Getenv: func(k string) string { return env[k] }}
	code = run(args, streams)
	return code, out.String(), errOut.String()
}

func startServer(t *testing.T, token string) *bootstrapserver.Server {
	t.Helper()
	srv, err := bootstrapserver.Start(bootstrapserver.Config{Listen: "127.0.0.1:0",
		DBPath: filepath.Join(t.TempDir(), "b.db"), AdminToken: token})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(t, nil, args...)
		if code != 0 || out != "hearsay "+version+"\n" {
			t.Errorf("%v: code %d out %q", args, code, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runCLI(t, nil, "completion", sh)
		if code != 0 || !strings.Contains(out, "hearsay") {
			t.Errorf("completion %s: code %d, %d bytes, stderr %q", sh, code, len(out), errOut)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bootstrap", "join", "only-one-arg"}, "accepts 2 arg"},
		{[]string{"bootstrap", "list", "--no-such-flag"}, "unknown flag"},
		{[]string{"bootstrap", "frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(t, nil, tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: code %d stderr %q, want 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestBootstrapCommands(t *testing.T) {
	srv := startServer(t, "tok")
	env := map[string]string{"BOOTSTRAP_DATA_SERVER": srv.URL()}
	steps := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bootstrap", "ping"}, 0, "ok: bootstrap service answered"},
		{[]string{"bootstrap", "join", "peer-1", "127.0.0.1:7946", "--nick", "alice"}, 0, "stored peer-1"},
		{[]string{"bootstrap", "join", "peer-1", "127.0.0.1:7946"}, 0, "renewed peer-1"},
		{[]string{"bootstrap", "refill", "peer-2", "127.0.0.1:7947"}, 0, "stored peer-2"},
		{[]string{"bootstrap", "list"}, 0, "2 live contacts"},
		{[]string{"bootstrap", "leave", "peer-2"}, 0, "removed peer-2"},
		{[]string{"bootstrap", "leave", "peer-2"}, 0, "was not stored"},
		{[]string{"bootstrap", "config"}, 0, "max peers 3"},
		{[]string{"bootstrap", "config", "--max-peers", "9"}, 1, "admin token"},
		{[]string{"bootstrap", "config", "--max-peers", "9", "--admin-token", "tok"}, 0, "max peers 9"},
		{[]string{"bootstrap", "config", "--lease-ttl", "1500ms", "--admin-token", "tok"}, 2, "whole seconds"},
		{[]string{"bootstrap", "join", "bad id", "127.0.0.1:1"}, 1, "only letters"},
		{[]string{"bootstrap", "join", "x", "127.0.0.1:0"}, 1, "port"},
		{[]string{"bootstrap", "reset"}, 1, "unauthorized"},
		{[]string{"bootstrap", "reset", "--admin-token", "tok"}, 0, "removed 1 contact\n"},
	}
	for _, s := range steps {
		code, out, errOut := runCLI(t, env, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Errorf("%v: code %d, out %q, err %q; want code %d containing %q", s.args, code, out, errOut, s.code, s.want)
		}
	}
}

func TestBootstrapJSONAndEnvFlags(t *testing.T) {
	srv := startServer(t, "")
	// HEARSAY_BOOTSTRAP wins over BOOTSTRAP_DATA_SERVER; HEARSAY_JSON sets --json.
	env := map[string]string{"HEARSAY_BOOTSTRAP": srv.URL(), "BOOTSTRAP_DATA_SERVER": "http://127.0.0.1:1", "HEARSAY_JSON": "true"}
	if code, _, errOut := runCLI(t, env, "bootstrap", "join", "p", "127.0.0.1:5"); code != 0 {
		t.Fatalf("join: %s", errOut)
	}
	code, out, errOut := runCLI(t, env, "bootstrap", "list")
	if code != 0 {
		t.Fatalf("list: %s", errOut)
	}
	var l bootstrapapi.ListResponse
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.NumPeers != 1 || l.Peers[0].Addr != "127.0.0.1:5" {
		t.Fatalf("list --json = %q (%v)", out, err)
	}
	// A flag on the command line beats the environment.
	code, _, errOut = runCLI(t, env, "bootstrap", "ping", "--bootstrap", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errOut, "bootstrap http://127.0.0.1:1") {
		t.Errorf("ping of a dead flag URL: code %d err %q", code, errOut)
	}
	// A bad environment value is a clear error.
	code, _, errOut = runCLI(t, map[string]string{"HEARSAY_TIMEOUT": "soon"}, "bootstrap", "ping")
	if code == 0 || !strings.Contains(errOut, "HEARSAY_TIMEOUT") {
		t.Errorf("bad env: code %d err %q", code, errOut)
	}
}

func TestBootstrapFailoverAcrossURLs(t *testing.T) {
	srv := startServer(t, "")
	env := map[string]string{"BOOTSTRAP_DATA_SERVER": "http://127.0.0.1:1," + srv.URL()}
	if code, out, errOut := runCLI(t, env, "bootstrap", "ping"); code != 0 {
		t.Errorf("ping with a dead first URL: %q %q", out, errOut)
	}
}
