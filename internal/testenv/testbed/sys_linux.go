package testbed

import "syscall"

// childAttr puts a child in its own process group, so Stop can kill it with
// everything it started. An attached child also gets SIGKILL when the thread
// that started it exits, which happens when this process dies in any way; a
// detached one starts its own session and outlives this process.
func childAttr(detached bool) *syscall.SysProcAttr {
	if detached {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
