//go:build !unix

package chat

import (
	"testing"
	"time"
)

func processCPU(testing.TB) time.Duration { return 0 }

// reportCPU reports nothing where getrusage is missing.
func reportCPU(*testing.B, time.Duration, int) {}
