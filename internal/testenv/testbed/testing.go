package testbed

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// New starts a testbed for a test and stops it when the test ends. Progress
// goes to the test log unless opts.Progress is set. It skips the test only
// when MERIDIAN_SKIP_TESTBED=1; anything else that keeps the regions from
// starting, a missing toolchain or a failed build included, fails the test.
// If the components still have to be built and the test's deadline is too
// close for that, it fails at once and says how to build them beforehand.
func New(t testing.TB, opts Options) *Testbed {
	t.Helper()
	if os.Getenv(EnvSkip) == "1" {
		t.Skipf("testbed: %s=1", EnvSkip)
	}
	if opts.Detached {
		t.Fatal("testbed: New does not start detached testbeds")
	}
	var logw *lineLogger
	if opts.Progress == nil {
		logw = &lineLogger{t: t}
		opts.Progress = logw
	}
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			comps := []Component{Etcd, KubeAPIServer}
			if opts.Workloads {
				comps = AllComponents
			}
			need, err := BuildEstimate(ctx, comps...)
			if err != nil {
				t.Fatal(err)
			}
			if left := time.Until(deadline); need > 0 && left < need+2*time.Minute {
				t.Fatalf("testbed: the components are not built yet (about %s on two cores) and the test deadline is in %s: "+
					"build them once with `make testbed` (`go run ./cmd/meridian-dev build`) or run go test with -timeout 60m",
					need, left.Round(time.Second))
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline.Add(-10*time.Second))
			defer cancel()
		}
	}
	tb, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range tb.Regions {
				for _, p := range r.procs {
					t.Logf("region %s: %s log:%s", r.Name, p.comp, logTail(p.log))
				}
			}
		}
		if err := tb.Stop(); err != nil {
			t.Error(err)
		}
		if logw != nil {
			logw.close()
		}
	})
	return tb
}

// lineLogger turns progress writes into t.Log lines until the test ends.
type lineLogger struct {
	mu     sync.Mutex
	t      testing.TB
	buf    bytes.Buffer
	closed bool
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return len(p), nil
	}
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			l.buf.WriteString(line)
			break
		}
		l.t.Log(line[:len(line)-1])
	}
	return len(p), nil
}

func (l *lineLogger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.t.Log(l.buf.String())
	}
	l.closed = true
}
