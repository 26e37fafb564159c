//go:build unix && !linux

package testbed

import "syscall"

// childAttr puts a child in its own process group, so Stop can kill it with
// everything it started. Only Linux has a parent-death signal; elsewhere an
// attached child outlives a test process that is killed with SIGKILL.
func childAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true}
}
