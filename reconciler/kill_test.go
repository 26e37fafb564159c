package reconciler_test

import (
	"context"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledDaemonConverges runs the meridian binary against the testbed, kills it
// with SIGKILL at random points of its first sync, then runs `run --once` to
// completion: every desired object exists, the inventories are exactly the desired
// units, and no object Meridian manages is missing from them.
func TestKilledDaemonConverges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the meridian binary")
	}
	f := newFixture(t)
	dir := t.TempDir()
	bin := buildMeridian(t)
	cfg, _ := f.writeDaemonConfig(t, dir, "127.0.0.1:0", "")

	// Each daemon is killed a random 100-1500ms after it took the revision in, that
	// is while it renders, applies or waits for health.
	const kills = 10
	daemonLog := &logBuffer{}
	progress := make([]int, 0, kills)
	for i := range kills {
		start := len(daemonLog.String())
		cmd := exec.Command(bin, "run", "--config", cfg)
		cmd.Stdout, cmd.Stderr = daemonLog, daemonLog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(daemonLog.String()[start:], "new revision") {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("daemon %d took no revision in a minute:\n%s", i, daemonLog.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		wait := time.Duration(100+rand.IntN(1400)) * time.Millisecond
		time.Sleep(wait)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", i, err)
		}
		_ = cmd.Wait()
		n := 0
		for _, m := range f.inventories(t) {
			n += len(m)
		}
		progress = append(progress, n)
		t.Logf("killed daemon %d %v after it took the revision in; %d units recorded by then", i, wait, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	once := exec.CommandContext(ctx, bin, "run", "--config", cfg, "--once")
	once.Stdout, once.Stderr = daemonLog, daemonLog
	if err := once.Run(); err != nil {
		t.Fatalf("run --once after %d kills: %v\n%s", kills, err, daemonLog.String())
	}

	checked := f.checkConverged(t)
	t.Logf("%d kills (units recorded at each: %v); %d live objects checked against the inventories", kills, progress, checked)
}
