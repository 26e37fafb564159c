package reconciler

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/dns"
)

// slowBoard is a DNSHealthBoard whose shares wait until release is closed,
// as on a slow management cluster.
type slowBoard struct {
	release chan struct{}
	mu      sync.Mutex
	shares  []map[fleet.UnitID]bool
	healthy map[fleet.UnitID]bool
	at      time.Time
	started chan struct{}
}

func (b *slowBoard) ShareDNSHealth(ctx context.Context, healthy map[fleet.UnitID]bool) error {
	select {
	case b.started <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.shares = append(b.shares, healthy)
	return nil
}

func (b *slowBoard) SharedDNSHealth(context.Context) (map[fleet.UnitID]bool, time.Time, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.healthy, b.at, nil
}

// observed records what a dnsLive reports.
type observed struct {
	mu    sync.Mutex
	calls [][]DNSEndpointHealth
	seen  chan struct{}
}

func newObserved() *observed { return &observed{seen: make(chan struct{}, 100)} }

func (o *observed) observe(eps []DNSEndpointHealth) {
	o.mu.Lock()
	o.calls = append(o.calls, eps)
	o.mu.Unlock()
	o.seen <- struct{}{}
}

func (o *observed) last(t *testing.T) (eps []DNSEndpointHealth, calls int) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.calls) == 0 {
		return nil, 0
	}
	return o.calls[len(o.calls)-1], len(o.calls)
}

func endpointOf(tenant, region string) dns.Endpoint {
	return dns.Endpoint{Fleet: "f", Tenant: tenant, App: "portal", Region: region, Global: "portal." + tenant + ".example.com"}
}

// A publish on the pass goroutine is never held up by the share of the DNS
// health on a slow management cluster.
func TestDNSLivePublishDoesNotWaitForTheShare(t *testing.T) {
	board := &slowBoard{release: make(chan struct{}), started: make(chan struct{}, 1)}
	defer close(board.release)
	o := newObserved()
	v := &dnsLive{observe: o.observe, board: board, refresh: time.Hour, clock: clocktesting.NewFakeClock(time.Now()), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	v.writing.Store(true)
	v.share = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { v.sharing(ctx) })
	defer wg.Wait()
	defer cancel()
	publish := func(eps ...dns.Endpoint) {
		t.Helper()
		done := make(chan struct{})
		start := time.Now()
		go func() {
			v.published(eps)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a publish waited 30s for the share of the DNS health")
		}
		t.Logf("a publish of %d endpoints returned in %s", len(eps), time.Since(start).Round(time.Microsecond))
	}

	publish(endpointOf("trucking", "eu"))
	select {
	case <-board.started:
	case <-time.After(30 * time.Second):
		t.Fatal("the DNS health was not shared within 30s")
	}
	// The share is in progress, and waits.
	publish(endpointOf("trucking", "eu"), endpointOf("trucking", "us"))
	if eps, _ := o.last(t); len(eps) != 2 {
		t.Errorf("reported %d endpoints, want 2", len(eps))
	}
}

// A replica that just became the writer, before its follower read a check,
// reports and shares the previous writer's reading of it, not "healthy".
func TestDNSLiveNewWriterKeepsThePreviousReading(t *testing.T) {
	eu, us := endpointOf("trucking", "eu"), endpointOf("trucking", "us")
	o := newObserved()
	v := &dnsLive{observe: o.observe, refresh: time.Hour, clock: clocktesting.NewFakeClock(time.Now()), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	v.shared = map[fleet.UnitID]bool{eu.Unit(): false}
	v.writing.Store(true)
	v.published([]dns.Endpoint{eu, us})
	eps, _ := o.last(t)
	got := map[fleet.UnitID]bool{}
	for _, e := range eps {
		got[e.Unit()] = e.Healthy
	}
	want := map[fleet.UnitID]bool{eu.Unit(): false, us.Unit(): true}
	for u, h := range want {
		if got[u] != h {
			t.Errorf("%s reported healthy=%v, want %v (the previous writer's reading, else healthy)", u, got[u], h)
		}
	}
	if v.reading[eu.Unit()] {
		t.Errorf("the reading to share says %s healthy, the previous writer read it unhealthy", eu.Unit())
	}
}

// A replica that does not write Route53 shows the writer's share, even an
// empty one, and stops showing it once it was not renewed for dnsShareStale
// refreshes.
func TestDNSLiveFollowShowsOnlyALiveWritersShare(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	board := &slowBoard{healthy: map[fleet.UnitID]bool{}, at: time.Now()}
	o := newObserved()
	v := &dnsLive{observe: o.observe, board: board, refresh: 10 * time.Second, clock: clk, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	model, err := fleet.LoadDir("../fleet-example")
	if err != nil {
		t.Fatal(err)
	}

	v.follow(t.Context(), model)
	eps, calls := o.last(t)
	if calls != 1 || eps == nil {
		t.Fatalf("after an empty share: %d reports, last %v; want one, empty", calls, eps)
	}
	clk.Step(20 * time.Second)
	v.follow(t.Context(), model)
	if _, calls := o.last(t); calls != 1 {
		t.Errorf("an unchanged share 20s old was reported again (%d reports)", calls)
	}
	clk.Step(10 * time.Second)
	v.follow(t.Context(), model)
	eps, calls = o.last(t)
	if calls != 2 || eps != nil {
		t.Errorf("a share unrenewed for 30s: %d reports, last %v; want a second, with no endpoint", calls, eps)
	}
	board.mu.Lock()
	board.at = board.at.Add(time.Minute)
	board.mu.Unlock()
	v.follow(t.Context(), model)
	if eps, calls := o.last(t); calls != 3 || eps == nil {
		t.Errorf("a renewed share: %d reports, last %v; want a third, shown", calls, eps)
	}
}
