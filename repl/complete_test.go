package repl_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hearsay-chat/hearsay/repl"
)

func TestComplete(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"demo.txt", "deploy.sh", ".hidden", "with space.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "scripts"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		manual bool
		before string
		want   []string // suggestion texts; nil = none
	}{
		{name: "empty line", before: "", want: nil},
		{name: "plain text", before: "hello b", want: nil},
		{name: "nick after @", before: "hi @b", want: []string{"@bob", "@bobby"}},
		{name: "all nicks after @", before: "@", want: []string{"@bob", "@bobby"}},
		{name: "commands", before: "/he", want: []string{"/health", "/help"}},
		{name: "command case", before: "/QU", want: []string{"/quit"}},
		{name: "double slash is a message", before: "//he", want: nil},
		{name: "unknown command args", before: "/nope x", want: nil},
		{name: "subcommands", before: "/kv ", want: []string{"set", "del", "list"}},
		{name: "subcommand prefix", before: "/kv d", want: []string{"del"}},
		{name: "subcommand of alias", before: "/bs re", want: []string{"refill", "reset"}},
		{name: "kv del keys", before: "/kv del ", want: []string{"color"}},
		{name: "nick argument", before: "/ping b", want: []string{"bob", "bobby"}},
		{name: "nick excludes self and dead", before: "/ping ", want: []string{"bob", "bobby"}},
		{name: "no second argument", before: "/ping bob ", want: nil},
		{name: "help topics", before: "/help k", want: []string{"kv"}},
		{name: "files", before: "/exec " + dir + "/de", want: []string{dir + "/demo.txt", dir + "/deploy.sh"}},
		{name: "directories get a slash", before: "/exec " + dir + "/sc", want: []string{dir + "/scripts/"}},
		{name: "hidden files on request", before: "/exec " + dir + "/.h", want: []string{dir + "/.hidden"}},
		{name: "config save file", before: "/config save " + dir + "/dep", want: []string{dir + "/deploy.sh"}},
		{name: "log on file", before: "/log on " + dir + "/dem", want: []string{dir + "/demo.txt"}},
		{name: "bootstrap config keys", before: "/bootstrap config max_peers=3 ", want: []string{"min_refill_candidates=", "lease_ttl="}},
		{name: "sleep durations", before: "/sleep 5", want: []string{"500ms", "5s"}},
		{name: "ml hidden", before: "/ml ", want: nil},
		{name: "ml in manual mode", manual: true, before: "/ml s", want: []string{"start", "shutdown"}},
		{name: "ml command listed", manual: true, before: "/m", want: []string{"/me", "/members", "/ml"}},
		{name: "ml not listed", before: "/m", want: []string{"/me", "/members"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *repl.Config) { c.Manual = tc.manual })
			if err := f.peer.KVSet("color", "blue"); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range f.r.Complete(tc.before) {
				got = append(got, s.Text)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Complete(%q) = %q, want %q", tc.before, got, tc.want)
			}
		})
	}
}

func TestCompleteAllCommandsHaveHelp(t *testing.T) {
	f := newFixture(t, func(c *repl.Config) { c.Manual = true })
	for _, s := range f.r.Complete("/") {
		if s.Description == "" {
			t.Errorf("%s has no summary", s.Text)
		}
		if err := f.r.Exec(t.Context(), "/help "+s.Text); err != nil {
			t.Errorf("/help %s: %v", s.Text, err)
		}
	}
	if n := len(f.r.Complete("/")); n < 16 {
		t.Errorf("only %d commands", n)
	}
}
