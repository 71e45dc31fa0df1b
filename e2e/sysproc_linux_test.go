package e2e

import "syscall"

// sysProcAttr has the kernel kill a started program when the test binary
// dies without running its cleanups (go test's -timeout panics, say), so
// no Alertmanager or Prometheus outlives the tests.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
