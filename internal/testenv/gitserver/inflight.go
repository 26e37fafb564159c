package gitserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// errClosed is the error of work asked of a Server that is closing.
var errClosed = errors.New("gitserver: the server is closed")

// inflight is the work a Server is doing: HTTP requests being answered, SSH
// sessions running a git service, git commands run for its methods. Close
// refuses new work, waits for this to drain and, when it waits too long, names
// what was still running.
type inflight struct {
	mu      sync.Mutex
	closed  bool
	next    uint64
	running map[uint64]string // what each piece of work is, for the error of wait
	drained chan struct{}     // closed when running becomes empty; nil while it is
}

// begin records work described by what and returns the function that ends it,
// or ok false once close was called.
func (f *inflight) begin(what string) (end func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	if f.running == nil {
		f.running = map[uint64]string{}
	}
	if len(f.running) == 0 {
		f.drained = make(chan struct{})
	}
	f.next++
	id := f.next
	f.running[id] = what
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.running, id)
			if len(f.running) == 0 {
				close(f.drained)
				f.drained = nil
			}
		})
	}, true
}

// close makes begin refuse new work.
func (f *inflight) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

// wait returns when no work is running, or, when ctx is done first, an error
// naming the work still running.
func (f *inflight) wait(ctx context.Context) error {
	for {
		f.mu.Lock()
		drained := f.drained
		f.mu.Unlock()
		if drained == nil {
			return nil
		}
		select {
		case <-drained:
		case <-ctx.Done():
			f.mu.Lock()
			defer f.mu.Unlock()
			what := make([]string, 0, len(f.running))
			for _, w := range f.running {
				what = append(what, w)
			}
			if len(what) == 0 {
				return nil
			}
			slices.Sort(what)
			return fmt.Errorf("%d still running: %s", len(what), strings.Join(what, "; "))
		}
	}
}
