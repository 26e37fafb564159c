package syncbuf

import (
	"strings"
	"sync"
	"testing"
)

func TestBufferConcurrentWritesAndTake(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x\n"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := strings.Count(b.Take(), "x\n"); got != 800 {
		t.Errorf("took %d lines, want 800", got)
	}
	if got := b.String(); got != "" {
		t.Errorf("after Take the buffer holds %q", got)
	}
}
