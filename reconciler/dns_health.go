package reconciler

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

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
	// found). Until the check was read: true, since the pass published the
	// endpoint because it found the placement healthy.
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
	// SharedDNSHealth returns what the writer shared last; nil when nothing.
	SharedDNSHealth(ctx context.Context) (map[fleet.UnitID]bool, error)
}

// dnsLive is the DNS health the daemon reports between passes: the endpoints
// the last publish left in the zone, with the health of their checks as the
// follower reads them on the replica that writes Route53.
type dnsLive struct {
	observe  func([]DNSEndpointHealth)
	follower *dns.Follower
	// board, with several replicas, shares the writer's reading with the
	// others; ctx bounds its writes.
	board DNSHealthBoard
	ctx   context.Context
	log   *slog.Logger

	// applier is the Route53 applier of the fleet's zone; writing whether this
	// replica writes Route53 now (always without Ownership).
	applier atomic.Pointer[dns.Applier]
	writing atomic.Bool

	mu        sync.Mutex
	endpoints []dns.Endpoint
	// shared is what was shared or read from the board last.
	shared map[fleet.UnitID]bool
}

// start follows Route53's health checks until ctx is done (with polls
// GetHealthCheckStatus requests a second at most; negative: not at all),
// reading the checks of the placements pokes names first. It returns a
// function that waits for it to stop.
func (v *dnsLive) start(ctx context.Context, polls float64, pokes <-chan fleet.UnitID) (wait func()) {
	if polls < 0 {
		return func() {}
	}
	v.ctx = ctx
	v.follower = dns.NewFollower(dns.FollowerOptions{PollsPerSecond: polls, Changed: v.emit})
	var wg sync.WaitGroup
	wg.Go(func() { v.follower.Run(ctx, v.writer) })
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

// emit reports every endpoint with the health of its check.
func (v *dnsLive) emit() {
	if v.observe == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var ids map[fleet.UnitID]string
	if a := v.applier.Load(); a != nil {
		ids = a.HealthCheckIDs()
	}
	out := make([]DNSEndpointHealth, len(v.endpoints))
	for i, e := range v.endpoints {
		h := DNSEndpointHealth{Endpoint: e, HealthCheckID: ids[e.Unit()], Healthy: true}
		if v.follower != nil && h.HealthCheckID != "" {
			if st, ok := v.follower.Status(h.HealthCheckID); ok {
				h.Healthy, h.Report = st.Healthy, st.Report
			}
		}
		out[i] = h
	}
	v.observe(out)
	if v.board == nil || v.ctx == nil || !v.writing.Load() {
		return
	}
	healthy := make(map[fleet.UnitID]bool, len(out))
	for _, h := range out {
		healthy[h.Unit()] = h.Healthy
	}
	if maps.Equal(healthy, v.shared) {
		return
	}
	ctx, cancel := context.WithTimeout(v.ctx, 10*time.Second)
	defer cancel()
	if err := v.board.ShareDNSHealth(ctx, healthy); err != nil {
		v.log.Warn("DNS health not shared with the other replicas; their dashboards show it later", "error", err)
		return
	}
	v.shared = healthy
}

// follow is a replica that does not write Route53 taking the writer's shared
// reading of the health checks: it reports the endpoints of model the writer
// shared, with their health, when that changed.
func (v *dnsLive) follow(ctx context.Context, model *fleet.Model) {
	if v.board == nil || v.observe == nil {
		return
	}
	healthy, err := v.board.SharedDNSHealth(ctx)
	if err != nil {
		v.log.Warn("the Route53 writer's DNS health not read", "error", err)
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if healthy == nil || maps.Equal(healthy, v.shared) {
		return
	}
	v.shared = healthy
	var out []DNSEndpointHealth
	for _, e := range dns.Desired(model, func(id fleet.UnitID) bool { _, ok := healthy[id]; return ok }) {
		out = append(out, DNSEndpointHealth{Endpoint: e, Healthy: healthy[e.Unit()]})
	}
	v.observe(out)
}
