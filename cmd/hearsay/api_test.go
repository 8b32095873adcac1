package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hearsay-chat/hearsay/api"
	"github.com/hearsay-chat/hearsay/chat"
)

// TestAPIFlags: --api and --web are parsed and validated by the peer's
// parse step.
func TestAPIFlags(t *testing.T) {
	for _, tt := range []struct {
		name  string
		args  []string
		env   map[string]string
		addr  string
		web   bool
		usage string
	}{
		{name: "default", args: []string{"--nick", "n"}, addr: "127.0.0.1:0"},
		{name: "chosen", args: []string{"--nick", "n", "--api", "127.0.0.1:8080", "--web"}, addr: "127.0.0.1:8080", web: true},
		{name: "ipv6 and localhost", args: []string{"--nick", "n", "--api", "[::1]:0"}, addr: "[::1]:0"},
		{name: "localhost", args: []string{"--nick", "n", "--api", "localhost:9000"}, addr: "localhost:9000"},
		{name: "off", args: []string{"--nick", "n", "--api", "off"}, addr: "off"},
		{name: "from the environment", args: []string{"--nick", "n"}, env: map[string]string{"HEARSAY_API": "off"}, addr: "off"},
		{name: "web without the API", args: []string{"--nick", "n", "--api", "off", "--web"}, usage: "--web"},
		{name: "not loopback", args: []string{"--nick", "n", "--api", "0.0.0.0:8080"}, usage: "loopback"},
		{name: "no port", args: []string{"--nick", "n", "--api", "127.0.0.1"}, usage: "--api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := parsePeerOpts(t, tt.env, tt.args, tt.usage)
			if got == nil {
				return
			}
			if got.api.addr != tt.addr || got.api.web != tt.web {
				t.Errorf("api %+v, want addr %q web %v", got.api, tt.addr, tt.web)
			}
		})
	}
}

// TestNewCmdSendAndTail: the profile resolves to the peer's data
// directory as the peer resolves it; the text comes from the arguments
// or stdin; bad combinations are usage errors.
func TestNewCmdSendAndTail(t *testing.T) {
	xdg := t.TempDir()
	env := map[string]string{"USER": "al ice!", "XDG_DATA_HOME": xdg}
	for _, tt := range []struct {
		name  string
		args  []string
		stdin string
		want  sendOpts
		usage string
	}{
		{name: "defaults", args: []string{"hello", "world"},
			want: sendOpts{profileOpts: profileOpts{nick: "alice", dataDir: filepath.Join(xdg, "hearsay", "alice")}, text: "hello world"}},
		{name: "room and profile", args: []string{"--nick", "bob", "--room", "#Dev", "hi"},
			want: sendOpts{profileOpts: profileOpts{nick: "bob", dataDir: filepath.Join(xdg, "hearsay", "bob")}, room: "dev", text: "hi"}},
		{name: "data dir", args: []string{"--data-dir", "/d", "--to", "carol", "psst"},
			want: sendOpts{profileOpts: profileOpts{dataDir: "/d"}, to: "carol", text: "psst"}},
		{name: "stdin", stdin: "line 1\nline 2\n",
			want: sendOpts{profileOpts: profileOpts{nick: "alice", dataDir: filepath.Join(xdg, "hearsay", "alice")}, text: "line 1\nline 2"}},
		{name: "stdin too long", stdin: strings.Repeat("x", 64<<10+1), usage: "over the message limit"},
		{name: "nothing", stdin: "\n", usage: "nothing to send"},
		{name: "room and to", args: []string{"--room", "a", "--to", "b", "x"}, usage: "give one"},
		{name: "bad room", args: []string{"--room", "no spaces", "x"}, usage: "bad room name"},
		{name: "bad nick", args: []string{"--nick", "bad nick!", "x"}, usage: "--nick"},
	} {
		t.Run("send "+tt.name, func(t *testing.T) {
			streams := testStreams(env)
			streams.In = strings.NewReader(tt.stdin)
			var got *sendOpts
			cmd := newSendCmd(streams, func(_ context.Context, o *sendOpts) error { got = o; return nil })
			err := execute(cmd, tt.args...)
			if tt.usage != "" {
				if !isUsage(err) || !strings.Contains(err.Error(), tt.usage) || got != nil {
					t.Fatalf("got %v (ran: %v), want a usage error naming %s", err, got != nil, tt.usage)
				}
				return
			}
			if err != nil || got == nil {
				t.Fatalf("got %v, ran %v", err, got != nil)
			}
			if *got != tt.want {
				t.Errorf("parsed %+v, want %+v", *got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		name  string
		args  []string
		want  tailOpts
		usage string
	}{
		{name: "defaults", want: tailOpts{profileOpts: profileOpts{nick: "alice", dataDir: filepath.Join(xdg, "hearsay", "alice")}}},
		{name: "room json", args: []string{"--nick", "bob", "--room", "#Ops", "--json"},
			want: tailOpts{profileOpts: profileOpts{nick: "bob", dataDir: filepath.Join(xdg, "hearsay", "bob")}, room: "ops", json: true}},
		{name: "bad room", args: []string{"--room", "#a b"}, usage: "bad room name"},
		{name: "stray argument", args: []string{"x"}, usage: "unknown command"},
	} {
		t.Run("tail "+tt.name, func(t *testing.T) {
			var got *tailOpts
			cmd := newTailCmd(testStreams(env), func(_ context.Context, o *tailOpts) error { got = o; return nil })
			err := execute(cmd, tt.args...)
			if tt.usage != "" {
				if !isUsage(err) || !strings.Contains(err.Error(), tt.usage) || got != nil {
					t.Fatalf("got %v (ran: %v), want a usage error naming %s", err, got != nil, tt.usage)
				}
				return
			}
			if err != nil || got == nil {
				t.Fatalf("got %v, ran %v", err, got != nil)
			}
			if *got != tt.want {
				t.Errorf("parsed %+v, want %+v", *got, tt.want)
			}
		})
	}
}

// TestAPIErrorCode: the chat node's errors get the API's codes.
func TestAPIErrorCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("send to #x: %w", chat.ErrNotJoined), api.ECodeNotFound},
		{fmt.Errorf("join: %w", chat.ErrModeConflict), api.ECodeConflict},
		{chat.ErrTooLarge, api.ECodeTooLarge},
		{chat.ErrNotStarted, api.ECodeUnavailable},
		{chat.ErrLeft, api.ECodeUnavailable},
		{chat.ErrRestoring, api.ECodeUnavailable},
		{chat.ErrUnknownPeer, api.ECodeNotFound},
		{errors.New("something else"), ""},
	} {
		if got := apiErrorCode(tc.err); got != tc.want {
			t.Errorf("apiErrorCode(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
