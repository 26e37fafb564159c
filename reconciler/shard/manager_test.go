package shard

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/internal/testenv/testbed"
)

// cuttable fails every request while cut is set: a replica cut off from the
// management cluster.
type cuttable struct {
	next http.RoundTripper
	cut  *atomic.Bool
}

func (c cuttable) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.cut.Load() {
		return nil, errors.New("cut off from the management cluster")
	}
	return c.next.RoundTrip(r)
}

// startManager runs a Manager until the test ends or stop is called.
func startManager(t *testing.T, cfg *rest.Config, identity string, logs *syncbuf.Buffer) (m *Manager, stop func()) {
	t.Helper()
	return runManager(t, cfg, identity, logs, false)
}

// runManager runs a Manager, with the Route53 writer's Lease when dns is set,
// until the test ends or stop is called.
func runManager(t *testing.T, cfg *rest.Config, identity string, logs *syncbuf.Buffer, dns bool) (m *Manager, stop func()) {
	t.Helper()
	m, err := New(Options{Client: kubernetes.NewForConfigOrDie(cfg), Namespace: testNamespace, Identity: identity, Shards: 8,
		LeaseDuration: 3 * time.Second, DNS: dns, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("%s: %v", identity, err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return m, stop
}

// TestFencedBeforeTakeover cuts a replica off from the management cluster while
// a pass holds its shards: its fenced context must end before the other replica
// takes any of those shards over, although the pass never released them.
func TestFencedBeforeTakeover(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	cfg := tb.Regions[0].Config
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("managers' log:\n%s", logs.String())
		}
	})
	var cut atomic.Bool
	cutCfg := rest.CopyConfig(cfg)
	cutCfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return cuttable{next: rt, cut: &cut} }
	a, _ := startManager(t, cutCfg, "replica-a", logs)
	waitOneLeader(t, 10*time.Second, a) // a leads, so that the cut takes leadership from it
	b, stopB := startManager(t, cfg, "replica-b", logs)
	waitBalanced(t, 30*time.Second, a, b)

	owns, fenced, release := a.Hold(t.Context())
	defer release()
	pinned := a.Owned()
	if len(pinned) == 0 {
		t.Fatal("replica a owns no shard")
	}
	tenant := ""
	for i := 0; tenant == ""; i++ {
		if name := "tenant-" + string(rune('a'+i%26)) + string(rune('a'+i/26)); slices.Contains(pinned, Of(name, 8)) {
			tenant = name
		}
	}
	if !owns(tenant) {
		t.Fatalf("a's hold does not own %s, of its shard %d", tenant, Of(tenant, 8))
	}

	cutAt := time.Now()
	cut.Store(true)
	var fencedAt, takenAt time.Time
	deadline := time.Now().Add(20 * time.Second)
	for (fencedAt.IsZero() || takenAt.IsZero()) && time.Now().Before(deadline) {
		if fencedAt.IsZero() && fenced.Err() != nil {
			fencedAt = time.Now()
		}
		if takenAt.IsZero() && slices.ContainsFunc(b.Owned(), func(s int) bool { return slices.Contains(pinned, s) }) {
			takenAt = time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	if fencedAt.IsZero() || takenAt.IsZero() {
		t.Fatalf("after 20s: fenced at %v, taken over at %v", fencedAt, takenAt)
	}
	t.Logf("cut off: a's pass fenced after %s (%v), b took a's shards over after %s; lease duration 3s",
		fencedAt.Sub(cutAt).Round(time.Millisecond), context.Cause(fenced), takenAt.Sub(cutAt).Round(time.Millisecond))
	if !fencedAt.Before(takenAt) {
		t.Errorf("b took a shard over %s before a stopped writing", fencedAt.Sub(takenAt))
	}
	// Two thirds of the lease duration after the last renewal, which came before
	// the cut; the slack is for a loaded machine's timers.
	if fencedAt.Sub(cutAt) > 2*time.Second+500*time.Millisecond {
		t.Errorf("a stopped writing %s after it was cut off, want at most two thirds of the lease duration", fencedAt.Sub(cutAt))
	}

	// Back in touch, a finds its Leases taken, then rejoins and gets its share.
	cut.Store(false)
	release()
	waitBalanced(t, 30*time.Second, a, b)
	waitOneLeader(t, 10*time.Second, a, b)

	// a lost leadership while cut off; with b gone it must stand again and win.
	stopB()
	waitOneLeader(t, 10*time.Second, a)
}

// TestShardCountsMustAgree starts a replica hashing into another number of
// shards next to one that owns every shard: the newcomer acquires nothing while
// the other lives, so no tenant is in two replicas' shards at once.
func TestShardCountsMustAgree(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	cfg := tb.Regions[0].Config
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	a, _ := startManager(t, cfg, "replica-a", logs)
	waitBalanced(t, 30*time.Second, a)
	m, err := New(Options{Client: kubernetes.NewForConfigOrDie(cfg), Namespace: testNamespace, Identity: "replica-b", Shards: 16,
		LeaseDuration: 3 * time.Second, Log: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	go func() { _ = m.Run(ctx) }()
	<-ctx.Done()
	if got := m.Owned(); len(got) > 0 {
		t.Errorf("a replica with 16 shards next to one with 8 owns %v, want nothing", got)
	}
	if got := a.Owned(); len(got) != 8 {
		t.Errorf("the replica with 8 shards owns %v, want all 8 kept", got)
	}
}
