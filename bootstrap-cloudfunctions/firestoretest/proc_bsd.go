//go:build unix && !linux

package firestoretest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the JVM in its own process group, so Stop reaches
// every process it forks.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
