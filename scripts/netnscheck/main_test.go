package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func msg(room, id, text string) event {
	origin, _, _ := strings.Cut(id, "/")
	return event{Type: "message", Room: room, FromID: origin, ID: id, Text: text}
}

func lateMsg(room, id, text string) event {
	ev := msg(room, id, text)
	ev.Late = true
	return ev
}

func TestCheck(t *testing.T) {
	sent := []sentMsg{{"lobby", "a1"}, {"lobby", "a2"}, {"lobby", "b1"}}
	good := []event{msg("lobby", "a/1", "a1"), {Type: "join", From: "b"}, msg("lobby", "b/1", "b1"), msg("lobby", "a/2", "a2")}
	tests := []struct {
		name  string
		peers []peerOutput
		total []string
		want  []string // substrings of problems; nil = no problem
	}{
		{name: "all good", peers: []peerOutput{{Name: "p1", Events: good}, {Name: "p2", Events: good}}},
		{name: "missing", peers: []peerOutput{{Name: "p1", Events: good[:3]}}, want: []string{`p1: never showed "a2" in #lobby`}},
		{name: "duplicate", peers: []peerOutput{{Name: "p1", Events: append(append([]event{}, good...), msg("lobby", "a/2", "a2"))}},
			want: []string{"p1: message a/2 (\"a2\") in #lobby shown more than once", `showed "a2" in #lobby 2 times`}},
		{name: "out of origin order", peers: []peerOutput{{Name: "p1", Events: []event{msg("lobby", "a/2", "a2"), msg("lobby", "a/1", "a1"), msg("lobby", "b/1", "b1")}}},
			want: []string{"a/1 (\"a1\") shown after a/2"}},
		{name: "wrong room", peers: []peerOutput{{Name: "p1", Events: []event{msg("lobby", "a/1", "a1"), msg("dev", "a/2", "a2"), msg("lobby", "b/1", "b1")}}},
			want: []string{`never showed "a2" in #lobby`}},
		{name: "reused seq", peers: []peerOutput{{Name: "p1", Events: good}, {Name: "p2", Events: []event{msg("lobby", "b/1", "b1"), msg("lobby", "a/1", "a2")}}},
			want: []string{`p2: message a/1 in #lobby is "a2", but p1 showed "a1"`}},
		{name: "id not naming origin", peers: []peerOutput{{Name: "p1", Events: []event{{Type: "message", Room: "lobby", FromID: "x", ID: "a/1", Text: "a1"}}}},
			want: []string{"does not name its origin"}},
		{name: "total order same", total: []string{"lobby"},
			peers: []peerOutput{{Name: "p1", Events: good}, {Name: "p2", Events: good}}},
		{name: "total order differs", total: []string{"lobby"},
			peers: []peerOutput{{Name: "p1", Events: good}, {Name: "p2", Events: []event{msg("lobby", "b/1", "b1"), msg("lobby", "a/1", "a1"), msg("lobby", "a/2", "a2")}}},
			want:  []string{"total-order room #lobby: p1 shows a/1 at position 1 of the common sequence, p2 shows b/1"}},
		// b/1 was ordered on its own side of a partition: p1 shows it
		// flagged late, out of the common sequence, which is allowed.
		{name: "total order, a late message elsewhere", total: []string{"lobby"},
			peers: []peerOutput{{Name: "p1", Events: []event{msg("lobby", "a/1", "a1"), msg("lobby", "a/2", "a2"), lateMsg("lobby", "b/1", "b1")}},
				{Name: "p2", Events: []event{msg("lobby", "b/1", "b1"), msg("lobby", "a/1", "a1"), msg("lobby", "a/2", "a2")}}}},
		{name: "total order differs besides a late message", total: []string{"lobby"},
			peers: []peerOutput{{Name: "p1", Events: []event{msg("lobby", "a/1", "a1"), msg("lobby", "a/2", "a2"), lateMsg("lobby", "b/1", "b1")}},
				{Name: "p2", Events: []event{msg("lobby", "b/1", "b1"), msg("lobby", "a/2", "a2"), msg("lobby", "a/1", "a1")}}},
			want: []string{"p1 shows a/1 at position 1 of the common sequence, p2 shows a/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := check(sent, tt.peers, tt.total)
			if len(tt.want) == 0 && len(rep.Problems) > 0 {
				t.Fatalf("problems %q, want none", rep.Problems)
			}
			all := strings.Join(rep.Problems, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems lack %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sent := write("sent.tsv", "lobby\thello\nlobby\tagain\n")
	run1 := write("p2.1.jsonl", `{"type":"system","time":"2026-11-21T10:00:00Z","text":"peer started"}`+"\n"+
		`{"type":"message","time":"2026-11-21T10:00:00Z","room":"lobby","from":"p1","from_id":"a","id":"a/1","text":"hello"}`+"\n")
	run2 := write("p2.2.jsonl", `{"type":"message","time":"2026-11-21T10:00:01Z","room":"lobby","from":"p1","from_id":"a","id":"a/2","text":"again"}`+"\n")
	var out strings.Builder
	if err := run([]string{"-sent", sent, "-peer", "p2=" + run1 + "," + run2}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "p2 (3 events, 2 runs)") || !strings.Contains(out.String(), "OK:") {
		t.Errorf("output %q", out.String())
	}
	out.Reset()
	if err := run([]string{"-sent", sent, "-peer", "p2=" + run2}, &out); err == nil || !strings.Contains(out.String(), `never showed "hello"`) {
		t.Errorf("missing message: err %v, output %q", err, out.String())
	}
	junk := write("junk.jsonl", "hearsay: something on stdout\n")
	if err := run([]string{"-sent", sent, "-peer", "p3=" + junk}, &out); err == nil || !strings.Contains(err.Error(), "not a JSON event") {
		t.Errorf("junk output: %v", err)
	}
	bad := write("bad.tsv", "no tab here\n")
	if err := run([]string{"-sent", bad, "-peer", "p2=" + run1}, &out); err == nil || !strings.Contains(err.Error(), "ROOM<TAB>TEXT") {
		t.Errorf("bad sent list: %v", err)
	}
	for _, args := range [][]string{{}, {"-sent", sent}, {"-sent", sent, "-peer", "nofile"}} {
		if err := run(args, &out); err == nil {
			t.Errorf("run(%q) accepted bad arguments", args)
		}
	}
}
