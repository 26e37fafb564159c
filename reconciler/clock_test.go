package reconciler_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	testingclock "k8s.io/utils/clock/testing"

	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/sources"
)

// TestRunRetriesOnItsClock runs the daemon on a fake clock: a pass that does not
// converge (fleet-example's secrets cannot be decrypted without keys, so units
// fail to render) is retried with backoff: the n-th wait is between half and all
// of RetryMin doubled n-1 times (equal jitter), never sooner and never later. No
// region is started: the regions are in-memory clusters (fakes_test.go).
func TestRunRetriesOnItsClock(t *testing.T) {
	dir, err := filepath.Abs("../fleet-example")
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := testingclock.NewFakeClock(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	passes := make(chan *reconciler.Report, 10)
	events := &eventLog{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- reconciler.Run(ctx, reconciler.RunOptions{
			Poller:     &sources.Poller{Source: snapshotOf{dir}, Interval: time.Hour},
			Renderer:   render.New(render.Options{Helm: charts}),
			Kubeconfig: kubeconfig,
			NewCluster: func(region string, _ *rest.Config) (reconciler.Cluster, error) {
				return newFakeCluster(region, events), nil
			},
			RetryMin:      10 * time.Second,
			RetryMax:      time.Minute,
			DriftInterval: -1,
			Clock:         clock,
			Passed:        func(r *reconciler.Report) { passes <- r },
		})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	next := func() *reconciler.Report {
		t.Helper()
		select {
		case r := <-passes:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("no pass")
			return nil
		}
	}
	// waitTimer waits until the daemon has set its retry timer on the fake clock.
	waitTimer := func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !clock.HasWaiters(); {
			if time.Now().After(deadline) {
				t.Fatal("the daemon set no timer")
			}
			time.Sleep(time.Millisecond)
		}
	}
	noPass := func(why string) {
		t.Helper()
		select {
		case <-passes:
			t.Fatalf("a pass ran %s", why)
		case <-time.After(50 * time.Millisecond):
		}
	}

	if r := next(); len(r.RenderErrors) == 0 {
		t.Fatal("the first pass rendered every unit; the test needs one that does not converge")
	}
	for _, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		waitTimer()
		clock.Step(wait/2 - time.Millisecond)
		noPass("before half its backoff of " + wait.String())
		clock.Step(wait/2 + time.Millisecond)
		next()
	}
	if len(events.lines(func(e event) bool { return e.verb == "inventories" })) == 0 {
		t.Error("the passes never read the regions")
	}
}

// snapshotOf fetches a directory as the fleet repository's head.
type snapshotOf struct{ dir string }

func (s snapshotOf) Fetch(context.Context) (*sources.Snapshot, error) {
	return &sources.Snapshot{Dir: s.dir, Revision: "0123456789abcdef0123456789abcdef01234567", Commit: sources.Commit{Subject: "fleet-example"}}, nil
}

// threeContexts is a kubeconfig with a context for each region of fleet-example;
// the server is never contacted.
const threeContexts = `apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: nobody
  user: {token: none}
contexts:
- name: us-east-1
  context: {cluster: nowhere, user: nobody}
- name: eu-west-2
  context: {cluster: nowhere, user: nobody}
- name: ap-northeast-2
  context: {cluster: nowhere, user: nobody}
`
