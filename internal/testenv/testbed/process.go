package testbed

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
)

// spawner starts children from one goroutine locked to its OS thread for the
// life of the testbed. Linux's parent-death signal fires when the *thread*
// that forked a child exits, not the process; the Go runtime may retire other
// threads at any time, but it ends this one only when the goroutine returns,
// after Stop has killed the children, or when the whole process dies, which is
// when the children must die too.
type spawner struct {
	reqs chan spawnRequest
	stop chan struct{}
	done chan struct{}
}

type spawnRequest struct {
	cmd  *exec.Cmd
	errc chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnRequest), stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *spawner) loop() {
	// Never unlocked on purpose: when this goroutine returns, the runtime
	// ends the thread, and any child still running gets its SIGKILL.
	runtime.LockOSThread()
	defer close(s.done)
	for {
		select {
		case r := <-s.reqs:
			r.errc <- r.cmd.Start()
		case <-s.stop:
			return
		}
	}
}

// start starts cmd on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- spawnRequest{cmd, errc}:
		return <-errc
	case <-s.done:
		return fmt.Errorf("testbed is stopped")
	}
}

// close ends the spawner's thread; call it after the children are killed.
func (s *spawner) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// runLocked runs a short-lived command (go build) in its own process group,
// killed with its group on context cancellation and by the parent-death signal
// if this process dies, from a goroutine that holds its thread until the
// command ends.
func runLocked(cmd *exec.Cmd) error {
	cmd.SysProcAttr = childAttr(false)
	if cmd.Cancel != nil {
		cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- cmd.Run()
	}()
	return <-errc
}

// process is one running component of a region.
type process struct {
	comp    Component
	region  string
	cmd     *exec.Cmd
	log     string
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
	killed  atomic.Bool   // set by Stop, so an exit is not reported as a crash
}

// pid is the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError says how the process ended, with the tail of its log.
func (p *process) exitError() error {
	return fmt.Errorf("region %s: %s exited: %v%s", p.region, p.comp, p.waitErr, logTail(p.log))
}

// logTail is the end of a component's log, formatted to be appended to an error.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, tail(data, 25))
}

// tail returns the last n lines of data.
func tail(data []byte, n int) string {
	data = bytes.TrimRight(data, "\n")
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var b strings.Builder
	for _, l := range lines {
		if len(l) > 600 {
			l = append(l[:600:600], "..."...)
		}
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.String()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b
}
