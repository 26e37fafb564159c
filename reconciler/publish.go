package reconciler

import (
	"context"
	"fmt"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/dns"
)

// DNSReport is what a pass did in Route53. A pass touches DNS twice: before any
// workload is deleted, the records of placements that left the fleet (or whose
// region is drained) are withdrawn and waited INSYNC; after the waves, the records
// of placements that became healthy are published and those of placements found
// unhealthy withdrawn.
type DNSReport struct {
	// Withdrawn is the plan carried out before the waves.
	Withdrawn dns.Changes
	// Published is the plan carried out after the waves.
	Published dns.Changes
	// Endpoints are the endpoints the zone should hold after the pass.
	Endpoints []dns.Endpoint
	// Err is why Route53 could not be read or changed, or nil. When the withdrawal
	// failed, the pass deleted nothing.
	Err error
}

// withdraw is the first DNS step of a pass: every record of a placement that is
// no longer in the fleet, or whose region is drained, leaves the zone, and Apply
// waits for Route53 to be INSYNC. Nothing is published here: a placement keeps
// exactly the records it has until the waves say whether it is healthy.
func (r *Reconciler) withdraw(ctx context.Context, model *fleet.Model, report *DNSReport) error {
	cur, err := r.opts.DNS.Current(ctx)
	if err != nil {
		return err
	}
	published := cur.Published()
	report.Withdrawn = dns.Plan(dns.Desired(model, func(id fleet.UnitID) bool { return published[id] }), cur)
	return r.applyDNS(ctx, "withdraw", report.Withdrawn)
}

// publish is the second DNS step of a pass: a placement the waves found healthy
// gets its records, one found unhealthy loses them, and one whose health is not
// known (its region was unreachable, its wave not reached, its unit not applied)
// keeps what it has.
func (r *Reconciler) publish(ctx context.Context, model *fleet.Model, regions map[string]*RegionReport, report *DNSReport) error {
	cur, err := r.opts.DNS.Current(ctx)
	if err != nil {
		return err
	}
	published := cur.Published()
	healthy := func(id fleet.UnitID) bool {
		if rr := regions[id.Region]; rr != nil {
			if u := rr.Units[id]; u != nil && u.Health != HealthUnknown {
				return u.Health == Healthy
			}
		}
		return published[id]
	}
	report.Endpoints = dns.Desired(model, healthy)
	report.Published = dns.Plan(report.Endpoints, cur)
	return r.applyDNS(ctx, "publish", report.Published)
}

// applyDNS carries out a plan, logging it first; clashes are logged on every pass.
func (r *Reconciler) applyDNS(ctx context.Context, step string, ch dns.Changes) error {
	for _, c := range ch.Clashes {
		r.opts.Log.Warn("DNS name held by a record Meridian does not own; left alone", "step", step, "clash", c.String())
	}
	if ch.Empty() {
		return nil
	}
	r.opts.Log.Info("DNS plan", "step", step, "changes", ch.String())
	if err := r.opts.DNS.Apply(ctx, ch); err != nil {
		return fmt.Errorf("%s: %w", step, err)
	}
	return nil
}
