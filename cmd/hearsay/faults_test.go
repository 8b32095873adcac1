package main

import (
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay"
	"github.com/hearsay-chat/hearsay/chat"
	"github.com/hearsay-chat/hearsay/repl"
)

func TestFaultFlags(t *testing.T) {
	tests := []struct {
		name string
		o    faultOpts
		on   bool
		want repl.FaultSettings
		err  string
	}{
		{name: "off by default", o: faultOpts{}},
		{name: "--faults alone", o: faultOpts{on: true}, on: true},
		{name: "drop ratio", o: faultOpts{drop: "0.2"}, on: true, want: repl.FaultSettings{DropRatio: 0.2}},
		{name: "drop percentage", o: faultOpts{drop: "35%"}, on: true, want: repl.FaultSettings{DropRatio: 0.35}},
		{name: "delay and jitter", o: faultOpts{delay: "40ms", jitter: "1s"}, on: true,
			want: repl.FaultSettings{Delay: 40 * time.Millisecond, Jitter: time.Second}},
		{name: "seed", o: faultOpts{seed: 7}, on: true},
		{name: "drop above 1", o: faultOpts{drop: "1.5"}, err: "--fault-drop"},
		{name: "drop not a number", o: faultOpts{drop: "some"}, err: "--fault-drop"},
		{name: "negative delay", o: faultOpts{delay: "-5ms"}, err: "--fault-delay"},
		{name: "jitter too long", o: faultOpts{jitter: "2m"}, err: "--fault-jitter"},
		{name: "delay without unit", o: faultOpts{delay: "50"}, err: "--fault-delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			err := o.complete()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("complete() = %v, want an error naming %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("complete() = %v", err)
			}
			if o.on != tt.on || o.settings != tt.want {
				t.Errorf("got on=%v %+v, want on=%v %+v", o.on, o.settings, tt.on, tt.want)
			}
			cf := o.chatFaults()
			if (cf != nil) != tt.on {
				t.Fatalf("chatFaults() = %+v with on=%v", cf, tt.on)
			}
			if cf != nil && (cf.DropRatio != tt.want.DropRatio || time.Duration(cf.Delay) != tt.want.Delay ||
				time.Duration(cf.Jitter) != tt.want.Jitter || cf.Seed != o.seed) {
				t.Errorf("chatFaults() = %+v, want %+v seed %d", cf, tt.want, o.seed)
			}
		})
	}
}

func TestFaultFlagErrorsExitWithUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--fault-drop", "2"},
		{"--fault-delay", "soon"},
		{"--fault-jitter", "-1s"},
	} {
		code, _, errOut := runCLI(t, nil, append([]string{"--nick", "x", "--data-dir", t.TempDir()}, args...)...)
		if code != 2 || !strings.Contains(errOut, args[0]) {
			t.Errorf("%v: code %d, stderr %q; want 2 naming %s", args, code, errOut, args[0])
		}
	}
}

// TestFaultCommands runs whole peers: one with fault injection, which
// warns at start and partitions and heals by command, and one without,
// where /fault says how to switch it on.
func TestFaultCommands(t *testing.T) {
	srv := startServer(t, "")
	alice := spawnPeer(t, srv.URL(), "alice", "--fault-drop", "10%", "--fault-jitter", "5ms")
	alice.waitEvent("the fault warning", isSystem("warning: fault injection is ON (drop 10% of outgoing chat frames, delay 0s, jitter 5ms)"))
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob")
	bob.waitEvent("joined", isSystem("joined the group through"))
	alice.waitEvent("bob joined", func(ev hearsay.Event) bool { return ev.Type == "join" && ev.From == "bob" })

	alice.send("/fault partition bob")
	alice.waitEvent("partition confirmed", isSystem("partitioned from bob"))
	alice.send("/fault show")
	alice.waitEvent("partition shown", isSystem("partitioned from: bob"))
	alice.send("/fault heal")
	alice.waitEvent("healed", isSystem("healed: no longer partitioned from 1 peer"))
	alice.send("/fault drop 0")
	alice.waitEvent("drop changed", isSystem("fault injection: drop 0% of outgoing chat frames, delay 0s, jitter 5ms"))
	alice.send("/fault partition nobody-here")
	alice.waitEvent("unknown peer error", func(ev hearsay.Event) bool {
		return ev.Type == "error" && strings.Contains(ev.Text, "partition") && strings.Contains(ev.Text, "nobody-here")
	})

	if _, warned := bob.find(isSystem("fault injection is ON")); warned {
		t.Error("bob, started without fault flags, warns about fault injection")
	}
	bob.send("/fault show")
	bob.waitEvent("faults off", isSystem("fault injection is off"))
	bob.send("/fault partition alice")
	bob.waitEvent("how to switch faults on", func(ev hearsay.Event) bool {
		return ev.Type == "error" && strings.Contains(ev.Text, "start hearsay with --faults")
	})
}

// TestFaultPartitionHeals splits two whole peers with /fault partition on
// both sides until each declares the other failed, sends on both sides,
// heals, and expects each to show the other's message from the partition
// exactly once (rejoin plus anti-entropy).
func TestFaultPartitionHeals(t *testing.T) {
	srv := startServer(t, "")
	alice := spawnPeer(t, srv.URL(), "alice", "--faults")
	alice.waitEvent("registered", isSystem("registered as a first contact"))
	bob := spawnPeer(t, srv.URL(), "bob", "--faults")
	bob.waitEvent("joined", isSystem("joined the group through"))
	alice.waitEvent("bob joined", func(ev hearsay.Event) bool { return ev.Type == "join" && ev.From == "bob" })
	bob.waitEvent("alice joined", func(ev hearsay.Event) bool { return ev.Type == "join" && ev.From == "alice" })

	alice.send("/fault partition bob")
	bob.send("/fault partition alice")
	alice.waitEvent("bob declared failed", func(ev hearsay.Event) bool { return ev.Type == "failed" && ev.From == "bob" })
	bob.waitEvent("alice declared failed", func(ev hearsay.Event) bool { return ev.Type == "failed" && ev.From == "alice" })
	alice.send("from alice during the partition")
	bob.send("from bob during the partition")
	alice.waitEvent("own message", isMessage("from alice during the partition"))
	if _, ok := bob.find(isMessage("from alice during the partition")); ok {
		t.Fatal("bob got alice's message through the partition")
	}

	alice.send("/fault heal")
	bob.send("/fault heal")
	alice.waitEvent("bob's partition message", isMessage("from bob during the partition"))
	bob.waitEvent("alice's partition message", isMessage("from alice during the partition"))
	for _, p := range []*testPeer{alice, bob} {
		for _, text := range []string{"from alice during the partition", "from bob during the partition"} {
			if n := p.count(isMessage(text)); n != 1 {
				t.Errorf("%s showed %q %d times, want once", p.nick, text, n)
			}
		}
	}
}

func TestLogFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--retention-age", "-1h"}, "--retention-age"},
		{[]string{"--retention-count", "-5"}, "--retention-count"},
		{[]string{"--anti-entropy-interval", "1ns"}, "--anti-entropy-interval"},
		{[]string{"--fanout-threshold", "-1"}, "--fanout-threshold"},
		{[]string{"--fanout", "0"}, "--fanout"},
		{[]string{"--tree-threshold", "-2"}, "--tree-threshold"},
		{[]string{"--tree-threshold", "0"}, "--tree-threshold"},
		{[]string{"--anti-entropy-interval", "often"}, "anti-entropy-interval"},
	} {
		code, _, errOut := runCLI(t, nil, append([]string{"--nick", "x", "--data-dir", t.TempDir()}, tt.args...)...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: code %d, stderr %q; want 2 naming %s", tt.args, code, errOut, tt.want)
		}
	}
	o := logOpts{retentionAge: time.Hour, retentionCount: 10, antiEntropy: 200 * time.Millisecond, fanoutThreshold: 4, fanout: 2, treeThreshold: 100}
	if err := o.complete(); err != nil {
		t.Fatal(err)
	}
	cfg := chat.DefaultConfig()
	o.apply(&cfg)
	if cfg.RetentionMaxAge != time.Hour || cfg.RetentionMaxCount != 10 || cfg.AntiEntropyInterval != 200*time.Millisecond ||
		cfg.FanoutThreshold != 4 || cfg.Fanout != 2 || cfg.TreeThreshold != 100 {
		t.Errorf("apply: %+v", cfg)
	}
}
