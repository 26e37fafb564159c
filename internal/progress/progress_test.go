package progress

import (
	"strings"
	"sync"
	"testing"
	"time"
)

type buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestLine(t *testing.T) {
	tests := []struct {
		estimate string
		elapsed  time.Duration
		want     string
	}{
		{"usually ~8 min on two cores", 90*time.Second + 400*time.Millisecond, "building kube-apiserver: still running, 1m30s so far (usually ~8 min on two cores)"},
		{"", 30 * time.Second, "building kube-apiserver: still running, 30s so far"},
	}
	for _, tt := range tests {
		if got := Line("building kube-apiserver", tt.estimate, tt.elapsed); got != tt.want {
			t.Errorf("Line(%q, %s) = %q, want %q", tt.estimate, tt.elapsed, got, tt.want)
		}
	}
}

// Every writes while the step runs and nothing once stopped.
func TestEvery(t *testing.T) {
	var out buffer
	stop := Every(&out, 10*time.Millisecond, "building etcd", "~1 min")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no two lines in 10 s: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	stop()
	written := out.String()
	time.Sleep(50 * time.Millisecond)
	if out.String() != written {
		t.Errorf("written after stop: %q", strings.TrimPrefix(out.String(), written))
	}
	for _, l := range strings.Split(strings.TrimSpace(written), "\n") {
		if !strings.HasPrefix(l, "building etcd: still running, ") || !strings.HasSuffix(l, " so far (~1 min)") {
			t.Errorf("line %q", l)
		}
	}
}
