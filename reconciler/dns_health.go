package reconciler

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/dns"
)

// DNSEndpointHealth is a published endpoint with what Route53's health check
// says of it.
type DNSEndpointHealth struct {
	dns.Endpoint
	// HealthCheckID is the check its latency record uses; empty when not known.
	HealthCheckID string
	// Healthy is Route53's view of the check as last read between passes (a
	// placement Route53 sees failing is failed over, whatever the last pass
	// found). Until this replica read the check: what the previous Route53
	// writer shared of it, else true, since the pass published the endpoint
	// because it found the placement healthy.
	Healthy bool
	// Report is the checkers' report behind Healthy, when the check was read.
	Report string
}

// DNSHealthBoard shares the Route53 writer's reading of its endpoints' health
// checks with the other replicas, so that Route53 is read by one replica and
// every dashboard shows it; *shard.Manager is one. Run uses it when the
// RunOptions.Health board is one too.
type DNSHealthBoard interface {
	// ShareDNSHealth replaces the shared health: each published endpoint's
	// placement, and whether its check passes.
	ShareDNSHealth(ctx context.Context, healthy map[fleet.UnitID]bool) error
	// SharedDNSHealth returns what the writer shared last, and when by the
	// writer's clock (it changes with every share, healthy or not); nil
	// when nothing was shared.
	SharedDNSHealth(ctx context.Context) (healthy map[fleet.UnitID]bool, at time.Time, err error)
}

// dnsShareStale is how many DNSRefresh periods a share may go unrenewed before
// the other replicas stop showing it: the writer renews it every period.
const dnsShareStale = 3

// dnsLive is the DNS health the daemon reports between passes: the endpoints
// the last publish left in the zone, with the health of their checks as the
// follower reads them on the replica that writes Route53.
type dnsLive struct {
	observe  func([]DNSEndpointHealth)
	follower *dns.Follower
	// board, with several replicas, shares the writer's reading with the
	// others, at least every refresh (DNSRefresh); clock times the shares.
	board   DNSHealthBoard
	refresh time.Duration
	clock   clock.WithTicker
	log     *slog.Logger

	// applier is the Route53 applier of the fleet's zone; writing whether this
	// replica writes Route53 now (always without Ownership).
	applier atomic.Pointer[dns.Applier]
	writing atomic.Bool

	// shows orders the reports: observe sees them in the order they were
	// built. It is held while observe runs, never while the board is written.
	shows sync.Mutex
	// share wakes the writer's sharing loop when there is a new reading.
	share chan struct{}

	mu        sync.Mutex
	endpoints []dns.Endpoint
	// reading is the writer's last reading, to be shared.
	reading map[fleet.UnitID]bool
	// shared is what was shared or read from the board last; sharedAt when this
	// replica wrote it (by its clock).
	shared   map[fleet.UnitID]bool
	sharedAt time.Time
	// followedAt is the time of the share last read from the board, by the
	// writer's clock, and followedSince when this replica first read it, by its
	// own; showing says whether the dashboard shows that share now.
	followedAt, followedSince time.Time
	showing                   bool
}

// start follows Route53's health checks until ctx is done (with polls
// GetHealthCheckStatus requests a second at most; negative: not at all),
// reading the checks of the placements pokes names first, and shares what it
// read with the other replicas while this replica writes Route53. It returns a
// function that waits for it to stop.
func (v *dnsLive) start(ctx context.Context, polls float64, pokes <-chan fleet.UnitID) (wait func()) {
	if polls < 0 {
		return func() {}
	}
	v.follower = dns.NewFollower(dns.FollowerOptions{PollsPerSecond: polls, Changed: v.emit})
	var wg sync.WaitGroup
	wg.Go(func() { v.follower.Run(ctx, v.writer) })
	if v.board != nil {
		v.mu.Lock()
		v.share = make(chan struct{}, 1)
		v.mu.Unlock()
		wg.Go(func() { v.sharing(ctx) })
	}
	if pokes != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case u := <-pokes:
					v.follower.Poke(u)
				}
			}
		})
	}
	return wg.Wait
}

// writer returns the applier while this replica writes Route53, else nil.
func (v *dnsLive) writer() *dns.Applier {
	if !v.writing.Load() {
		return nil
	}
	return v.applier.Load()
}

// published records the endpoints a publish left in the zone, and reports them.
func (v *dnsLive) published(eps []dns.Endpoint) {
	v.mu.Lock()
	v.endpoints = eps
	v.mu.Unlock()
	v.emit()
}

// emit reports every endpoint with the health of its check, and hands the
// reading to the sharing loop. It writes nothing itself: a slow management
// cluster never holds up a pass that publishes.
func (v *dnsLive) emit() {
	if v.observe == nil {
		return
	}
	v.shows.Lock()
	defer v.shows.Unlock()
	var ids map[fleet.UnitID]string
	if a := v.applier.Load(); a != nil {
		ids = a.HealthCheckIDs()
	}
	v.mu.Lock()
	out := make([]DNSEndpointHealth, len(v.endpoints))
	reading := make(map[fleet.UnitID]bool, len(out))
	for i, e := range v.endpoints {
		h := DNSEndpointHealth{Endpoint: e, HealthCheckID: ids[e.Unit()], Healthy: true}
		read := false
		if v.follower != nil && h.HealthCheckID != "" {
			if st, ok := v.follower.Status(h.HealthCheckID); ok {
				h.Healthy, h.Report, read = st.Healthy, st.Report, true
			}
		}
		if prev, ok := v.shared[e.Unit()]; ok && !read {
			// Not read yet by this replica, which may just have become the
			// writer: the previous writer's reading stands until it is.
			h.Healthy = prev
		}
		out[i] = h
		reading[e.Unit()] = h.Healthy
	}
	v.reading = reading
	v.showing = false
	share := v.share
	v.mu.Unlock()

	v.observe(out)
	if share != nil && v.writing.Load() {
		select {
		case share <- struct{}{}:
		default:
		}
	}
}

// sharing writes the writer's reading to the board when it changed, and at
// least every refresh so that the others can tell a live writer's reading from
// a dead one's, until ctx is done.
func (v *dnsLive) sharing(ctx context.Context) {
	tick := v.clock.NewTicker(v.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-v.share:
		case <-tick.C():
		}
		if !v.writing.Load() {
			continue
		}
		v.mu.Lock()
		reading := v.reading
		due := reading != nil && (!maps.Equal(reading, v.shared) || v.clock.Since(v.sharedAt) >= v.refresh/2)
		v.mu.Unlock()
		if !due {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := v.board.ShareDNSHealth(wctx, reading)
		cancel()
		if err != nil {
			v.log.Warn("DNS health not shared with the other replicas; their dashboards show it later", "error", err)
			continue
		}
		v.mu.Lock()
		if v.writing.Load() {
			v.shared, v.sharedAt = reading, v.clock.Now()
		}
		v.mu.Unlock()
	}
}

// follow is a replica that does not write Route53 taking the writer's shared
// reading of the health checks: it reports the endpoints of model the writer
// shared, with their health, when that changed or was not shown yet. A share
// not renewed for dnsShareStale refreshes by this replica's clock is a dead
// writer's: it reports no endpoint then, rather than an old reading as live.
func (v *dnsLive) follow(ctx context.Context, model *fleet.Model) {
	if v.board == nil || v.observe == nil {
		return
	}
	healthy, at, err := v.board.SharedDNSHealth(ctx)
	if err != nil {
		v.log.Warn("the Route53 writer's DNS health not read", "error", err)
		return
	}
	if healthy == nil {
		return
	}
	v.shows.Lock()
	defer v.shows.Unlock()
	v.mu.Lock()
	now := v.clock.Now()
	if !at.Equal(v.followedAt) || v.followedSince.IsZero() {
		v.followedAt, v.followedSince = at, now
	}
	stale := now.Sub(v.followedSince) >= dnsShareStale*v.refresh
	same := v.showing && maps.Equal(healthy, v.shared)
	wasShowing := v.showing
	v.shared, v.showing = healthy, !stale
	v.mu.Unlock()
	if stale {
		if wasShowing {
			v.log.Warn("the Route53 writer's DNS health was not renewed; its endpoints are not shown until a writer shares again",
				"sharedAt", at, "unchangedFor", now.Sub(v.followedSince).Round(time.Second))
			v.observe(nil)
		}
		return
	}
	if same {
		return
	}
	out := []DNSEndpointHealth{}
	for _, e := range dns.Desired(model, func(id fleet.UnitID) bool { _, ok := healthy[id]; return ok }) {
		out = append(out, DNSEndpointHealth{Endpoint: e, Healthy: healthy[e.Unit()]})
	}
	v.observe(out)
}
