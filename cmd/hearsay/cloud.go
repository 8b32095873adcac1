package main

import "github.com/spf13/cobra"

// addCloudCommands adds the Cloud Functions operator commands (deploy,
// status) to the bootstrap command. Filled in by the cloud backend.
func addCloudCommands(_ *cobra.Command, _ *ioStreams) {}
