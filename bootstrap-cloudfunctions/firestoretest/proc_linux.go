//go:build linux

package firestoretest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the JVM in its own process group, so Stop reaches
// every process it forks, and asks the kernel to kill it if the test
// binary dies first (a test timeout panics past RunMain's Stop).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
