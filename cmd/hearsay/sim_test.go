package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hearsay-chat/hearsay/chat/overlay/overlaysim"
)

func TestNewSimCmdFlags(t *testing.T) {
	var got []overlaysim.Config
	streams := &ioStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	cmd := newSimCmd(streams, func(_ context.Context, _ *simOptions, cfgs []overlaysim.Config) error {
		got = cfgs
		return nil
	})
	cmd.SetArgs([]string{"--peers", "100,2000", "--seeds", "3", "--seed", "7", "--churn", "0.05", "--loss", "0.01",
		"--speakers", "0", "--latency-min", "1ms", "--latency-max", "2ms", "--active", "6", "--optimize", "0"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("got %d configs, want 2 sizes × 3 seeds", len(got))
	}
	c := got[4]
	if c.Peers != 2000 || c.Seed != 8 || c.ChurnPerMinute != 0.05 || c.Loss != 0.01 || c.Speakers != 0 ||
		c.LatencyMin != time.Millisecond || c.LatencyMax != 2*time.Millisecond {
		t.Errorf("config %+v does not follow the flags", c)
	}
	if oc := c.Overlay("x", 1); oc.ActiveSize != 6 || oc.OptimizeThreshold != 0 {
		t.Errorf("overlay config active %d optimize %d, want 6 and 0", oc.ActiveSize, oc.OptimizeThreshold)
	}
}

func TestSimCommandBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--peers", "1"},
		{"sim", "--loss", "1"},
		{"sim", "--seeds", "0"},
		{"sim", "--active", "99"},
		{"sim", "--latency-min", "50ms", "--latency-max", "10ms"},
		{"sim", "extra"},
	} {
		var out, errOut bytes.Buffer
		streams := &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
		if code := run(args, streams); code != 2 {
			t.Errorf("%v: exit code %d, want 2 (usage); stderr %q", args, code, errOut.String())
		}
	}
}

func TestSimCommandRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	streams := &ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut, Getenv: func(string) string { return "" }}
	if code := run([]string{"sim", "--peers", "60", "--messages", "20", "--json"}, streams); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errOut.String())
	}
	var r simLine
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if r.Peers != 60 || r.Messages != 20 || r.Delivered != 1 {
		t.Errorf("result %+v: want 20 messages to all 60 peers", r)
	}
	out.Reset()
	if code := run([]string{"sim", "--peers", "40", "--messages", "5"}, streams); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, errOut.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "copies") {
		t.Errorf("table output:\n%s", out.String())
	}
}
