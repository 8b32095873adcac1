package main

import "github.com/spf13/cobra"

// addPeerCommand makes the root command start a peer. Filled in by the
// peer (chat + REPL) wiring.
func addPeerCommand(_ *cobra.Command, _ *ioStreams) {}
