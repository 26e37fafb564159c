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
	// Quotas are what the fleet needs, every exposed placement published, of
	// Route53's limits against what they allow; zero until the publish step.
	Quotas dns.Quotas
	// Err is why Route53 could not be read or changed, or nil. When the withdrawal
	// failed, the pass deleted nothing.
	Err error
	// state is what the zone holds after the withdrawal, read once per pass.
	state *dns.State
}

// withdraw is the first DNS step of a pass: every record of a placement that is
// no longer in the fleet, or whose region is drained, leaves the zone, and Apply
// waits for Route53 to be INSYNC. Nothing is published, updated or created here,
// not even a changed health check of a placement that stays: a placement keeps
// exactly the records and checks it has until the waves say whether it is healthy.
func (r *Reconciler) withdraw(ctx context.Context, model *fleet.Model, report *DNSReport) error {
	cur, err := r.opts.DNS.Current(ctx)
	if err != nil {
		return err
	}
	staying := dns.Desired(model, func(fleet.UnitID) bool { return true })
	report.Withdrawn = dns.Withdrawal(staying, cur)
	if err := r.applyDNS(ctx, "withdraw", report.Withdrawn); err != nil {
		return err
	}
	// The publish step plans from what the zone holds now, without reading it
	// again: only Meridian writes its records, one writer at a time.
	if next, ok := cur.Withdrawn(report.Withdrawn); ok {
		report.state = &next
	}
	return nil
}

// publish is the second DNS step of a pass: a placement the waves found healthy
// gets its records, one found unhealthy loses them, and one whose health is not
// known (its region was unreachable, its wave not reached, its unit not applied)
// keeps what it has.
func (r *Reconciler) publish(ctx context.Context, model *fleet.Model, regions map[string]*RegionReport, report *DNSReport) error {
	var cur dns.State
	if report.state != nil {
		cur = *report.state
	} else {
		var err error
		if cur, err = r.opts.DNS.Current(ctx); err != nil {
			return err
		}
	}
	known := func(id fleet.UnitID) (Health, bool) {
		if rr := regions[id.Region]; rr != nil {
			if u := rr.Units[id]; u != nil && u.Health != HealthUnknown {
				return u.Health, true
			}
		}
		if r.opts.DNSHealth != nil {
			if healthy, ok := r.opts.DNSHealth(id); ok {
				if healthy {
					return Healthy, true
				}
				return Unhealthy, true
			}
		}
		return HealthUnknown, false
	}
	healthy := func(id fleet.UnitID) bool { h, _ := known(id); return h == Healthy }
	unknown := func(id fleet.UnitID) bool { _, ok := known(id); return !ok }
	// A placement whose health is unknown keeps what it has; Endpoints still lists
	// it when it is published, as the zone goes on holding it.
	// The fleet is placed once; each list below is a part of every endpoint.
	all := dns.Desired(model, func(fleet.UnitID) bool { return true })
	published := cur.Published()
	report.Endpoints = dns.Only(all, func(id fleet.UnitID) bool { return healthy(id) || (unknown(id) && published[id]) })
	stays := map[fleet.UnitID]bool{}
	for _, e := range dns.Only(all, unknown) {
		stays[e.Unit()], stays[e.CheckUnit()] = true, true
	}
	report.Published = dns.PlanKeeping(dns.Only(all, healthy), func(id fleet.UnitID) bool { return stays[id] }, cur)
	// What the whole fleet needs, every exposed placement published, against
	// what the account and zone allow: known before anything is refused.
	report.Quotas = dns.Needs(all, cur)
	for _, q := range []dns.Quota{report.Quotas.HealthChecks, report.Quotas.RecordSets} {
		if !q.Fits() {
			r.opts.Log.Warn("the fleet does not fit in a Route53 limit", "quota", q.String())
		}
	}
	for _, o := range report.Published.OverQuota {
		r.opts.Log.Warn("DNS endpoint not published", "placement", o.Unit, "reason", o.String())
	}
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

// awaitWithdrawal is the first DNS step of a replica that does not write Route53:
// it reads the zone and fails, holding the pass's deletions, while a record of a
// placement of this pass's tenants (DNSTenants) that is going away is still
// there. The writer withdraws it (its pass plans over every tenant); this pass is
// retried with backoff and deletes once the record is gone.
func (r *Reconciler) awaitWithdrawal(ctx context.Context, model *fleet.Model) error {
	cur, err := r.opts.DNS.Current(ctx)
	if err != nil {
		return err
	}
	// A tenant removed from the fleet is in no model: which replica prunes it
	// is the ownership's say.
	mine := r.opts.DNSTenants
	if mine == nil {
		mine = func(string) bool { return true }
	}
	staying := dns.Desired(model, func(fleet.UnitID) bool { return true })
	var waiting []fleet.UnitID
	for _, g := range dns.Withdrawal(staying, cur).Records {
		if mine(g.Unit.Tenant) {
			waiting = append(waiting, g.Unit)
		}
	}
	if len(waiting) > 0 {
		return &AwaitingWithdrawalError{Units: waiting}
	}
	return nil
}

// AwaitingWithdrawalError holds a replica's deletions while the Route53 writer
// has not withdrawn the records of the placements they remove yet.
type AwaitingWithdrawalError struct {
	// Units are the placements whose records are still in the zone.
	Units []fleet.UnitID
}

func (e *AwaitingWithdrawalError) Error() string {
	return fmt.Sprintf("withdraw: %d placements going away (%s first) still have DNS records; the replica holding the Route53 writer's Lease withdraws them, and this replica deletes their workloads on a later pass",
		len(e.Units), e.Units[0])
}

// PublishDNS is a publish step outside a pass, for the replica that writes
// Route53 when other replicas reported new health: it reads the zone and
// publishes model's placements as Options.DNSHealth says (known false: kept as
// they are), withdrawing those found unhealthy and those that left the fleet.
func (r *Reconciler) PublishDNS(ctx context.Context, model *fleet.Model) (*DNSReport, error) {
	if r.opts.DNS == nil {
		return nil, nil
	}
	report := &DNSReport{}
	err := r.publish(ctx, model, nil, report)
	report.Err = err
	return report, err
}
