// Package progress tells people that a long step is still running: builds of
// Kubernetes components and upstream tools take minutes on two cores, and a
// screen that stays silent that long looks hung.
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultInterval is how often Every writes while a step runs.
const DefaultInterval = 30 * time.Second

// Every writes a line to w every interval until the returned stop is called:
// "<what>: still running, <elapsed> so far (<estimate>)", the estimate left out
// when empty. stop waits for the writer to end, so nothing is written after it
// returns; calling it more than once is harmless.
func Every(w io.Writer, interval time.Duration, what, estimate string) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, Line(what, estimate, time.Since(start)))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); wg.Wait() })
	}
}

// Line is what Every writes after elapsed.
func Line(what, estimate string, elapsed time.Duration) string {
	s := fmt.Sprintf("%s: still running, %s so far", what, elapsed.Round(time.Second))
	if estimate != "" {
		s += " (" + estimate + ")"
	}
	return s
}
