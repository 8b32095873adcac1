// Command serfbench is the serf baseline of `hearsay bench`: a worker that
// reads one request on stdin and runs it on a group of hashicorp/serf
// agents in this process, with the measurement code of package bench (see
// bench/worker.go for the protocol). It lives in its own Go module so that
// serf never enters hearsay's dependencies.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hearsay-chat/hearsay/bench"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	newSystem := func(name string) (bench.System, error) {
		if name != "serf" {
			return nil, fmt.Errorf("system %q: this worker runs serf only", name)
		}
		return newSerfSystem(), nil
	}
	if err := bench.ServeWorker(ctx, os.Stdin, os.Stdout, newSystem); err != nil {
		fmt.Fprintln(os.Stderr, "serfbench:", err)
		return 1
	}
	return 0
}
