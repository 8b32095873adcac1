package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNetnsE2E runs scripts/netns-e2e.sh: hearsay peers as separate
// processes in their own network namespaces, with a cut link, a killed and
// restarted peer (the sequencer of a sequencer room), and the outputs
// checked by this command. It needs root and iproute2 and skips with the
// reason otherwise; -short or HEARSAY_NETNS_E2E=0 skips it too. The
// "lossy" run repeats the scenario over chat links that drop 20 % of the
// frames and reorder them with 30 ms of jitter (HEARSAY_NETNS_LOSSY=0
// skips it). E2E_DIR keeps the outputs there.
func TestNetnsE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("netns end-to-end run skipped in -short mode")
	}
	if os.Getenv("HEARSAY_NETNS_E2E") == "0" {
		t.Skip("HEARSAY_NETNS_E2E=0")
	}
	if os.Geteuid() != 0 {
		t.Skip("netns end-to-end run needs root (network namespaces, veth, bridge)")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("netns end-to-end run needs ip (iproute2): not on PATH")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("netns end-to-end run builds hearsay with go: not on PATH")
	}
	// A container without CAP_SYS_ADMIN cannot create namespaces: probe.
	probe := fmt.Sprintf("hse2e-%d-probe", os.Getpid())
	if out, err := exec.Command(ip, "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.Command(ip, "netns", "del", probe).CombinedOutput(); err != nil {
		t.Fatalf("remove probe namespace %s: %v: %s", probe, err, out)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("clean", func(t *testing.T) { runNetnsE2E(t, root, "") })
	t.Run("lossy", func(t *testing.T) {
		if os.Getenv("HEARSAY_NETNS_LOSSY") == "0" {
			t.Skip("HEARSAY_NETNS_LOSSY=0")
		}
		runNetnsE2E(t, root, "--fault-drop 20% --fault-jitter 30ms")
	})
}

// runNetnsE2E runs the script from the module root with extra peer flags.
func runNetnsE2E(t *testing.T, root, peerFlags string) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "netns-e2e.sh"))
	cmd.Dir = root
	// The outputs go to a temporary directory unless E2E_DIR names one to
	// keep for inspection.
	env := append(os.Environ(), "E2E_PEER_FLAGS="+peerFlags)
	if d := os.Getenv("E2E_DIR"); d != "" {
		env = append(env, "E2E_DIR="+filepath.Join(d, t.Name()))
	} else {
		env = append(env, "E2E_DIR="+t.TempDir())
	}
	cmd.Env = env
	// On a timeout, SIGINT lets the script's trap remove its namespaces.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	// One writer for both streams: os/exec then calls Write from one
	// goroutine at a time.
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		t.Fatalf("scripts/netns-e2e.sh failed after %s: %v\n%s", time.Since(start).Round(time.Second), err, out.String())
	}
	if !strings.Contains(out.String(), "netns-e2e: PASS") {
		t.Fatalf("scripts/netns-e2e.sh exited 0 without PASS:\n%s", out.String())
	}
	t.Logf("netns end-to-end run passed in %s", time.Since(start).Round(time.Second))
}
