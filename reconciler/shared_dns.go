package reconciler

import (
	"context"
	"maps"

	"meridian.dev/meridian/fleet"
)

// Route53 among several replicas: every replica reads the zone, one writes it.
// The writer is the replica whose Hold owns DNSWriter (a Lease fenced like a
// shard's); it plans over the whole fleet, from its own pass's health and the
// health the others reported (HealthBoard). The others hold their deletions
// until the writer withdrew the records of what they remove, and report their
// placements' health after each pass.

// sharedDNS sets a pass's DNS options when several replicas share the fleet, and
// returns the health board to report to after the pass (nil when there is none).
func (d *daemon) sharedDNS(ctx context.Context, opts *Options, owns func(string) bool) HealthBoard {
	if d.opts.Ownership == nil || opts.DNS == nil || d.opts.Health == nil {
		return nil
	}
	opts.DNSFleet = d.current.model
	opts.DNSReadOnly = !owns(DNSWriter)
	opts.DNSTenants = owns
	d.live.writing.Store(!opts.DNSReadOnly)
	if opts.DNSReadOnly {
		return d.opts.Health
	}
	reported, err := d.opts.Health.Health(ctx, d.current.snap.Revision)
	if err != nil {
		// Unknown health keeps what Route53 has: nothing is withdrawn for it.
		d.log.Warn("the other replicas' placement health could not be read; their placements keep their DNS records", "error", err)
	}
	opts.DNSHealth = lookup(reported)
	d.dnsHealth = reported
	return d.opts.Health
}

// lookup answers DNSHealth from a health report.
func lookup(reported map[fleet.UnitID]bool) func(fleet.UnitID) (bool, bool) {
	return func(id fleet.UnitID) (bool, bool) {
		h, ok := reported[id]
		return h, ok
	}
}

// reportHealth reports what the pass found of its placements' health, so that
// the replica writing Route53 can publish them.
func (d *daemon) reportHealth(ctx context.Context, report *Report, board HealthBoard) {
	if board == nil {
		return
	}
	healthy := map[fleet.UnitID]bool{}
	for _, rr := range report.Regions {
		for id, u := range rr.Units {
			if id.IsNamespace() || u.Health == HealthUnknown {
				continue
			}
			healthy[id] = u.Health == Healthy
		}
	}
	if report.DNS != nil {
		// Placements leaving the fleet whose deletion this pass let through:
		// the writer withdraws their records, and this replica then deletes them.
		for _, id := range report.DNS.Going {
			healthy[id] = false
		}
	}
	if err := board.ReportHealth(ctx, report.Revision, healthy); err != nil {
		d.log.Warn("placement health not reported; the Route53 writer keeps their records as they are", "error", err)
		return
	}
	if d.dnsHealth != nil {
		maps.Copy(d.dnsHealth, healthy)
	}
}

// refreshDNS is the Route53 writer's look at the others' health reports between
// passes: when they changed since its last publish, it publishes again, under the
// writer's Lease. It runs only with Ownership set, every DNSRefresh on every
// replica, so it asks the Lease and nothing else: no region is reached.
func (d *daemon) refreshDNS(ctx context.Context) {
	passCtx, done := d.passContext(ctx)
	defer done()
	owns, passCtx, release := d.opts.Ownership.Hold(passCtx)
	defer release()
	if !owns(DNSWriter) {
		d.dnsHealth = nil
		d.live.writing.Store(false)
		// The writer's reading of Route53's health checks, for this
		// replica's dashboard.
		d.live.follow(passCtx, d.current.model)
		return
	}
	d.live.writing.Store(true)
	if d.opts.DNSRefreshed != nil {
		defer d.opts.DNSRefreshed()
	}
	cur := d.current
	reported, err := d.opts.Health.Health(passCtx, cur.snap.Revision)
	if err != nil {
		d.log.Warn("the replicas' placement health could not be read", "error", err)
		return
	}
	if d.dnsHealth != nil && maps.Equal(reported, d.dnsHealth) {
		return
	}
	r := New(Options{DNS: d.dnsApplier(cur.model), Log: d.log, DNSHealth: lookup(reported)})
	report, err := r.PublishDNS(passCtx, cur.model)
	if err != nil {
		d.log.Error("DNS records could not be published", "error", err)
		return
	}
	d.dnsHealth = reported
	d.live.published(report.Endpoints)
}
