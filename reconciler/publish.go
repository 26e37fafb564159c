package reconciler

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/dns"
)

// DNSReport is what a pass did in Route53. A pass touches DNS twice: before a
// region deletes anything, the records of its placements that left the fleet are
// withdrawn and waited INSYNC, once the mass-deletion guard let that region's
// deletions through (and, before the waves, those of drained regions, of regions
// gone from the fleet and of placements no longer exposed); after the waves, the
// records of placements that became healthy are published and those of
// placements found unhealthy withdrawn.
type DNSReport struct {
	// Withdrawn is what was withdrawn before the waves and at each region's
	// deletions, in the order it was carried out.
	Withdrawn dns.Changes
	// Published is the plan carried out after the waves.
	Published dns.Changes
	// Endpoints are the endpoints the zone should hold after the pass.
	Endpoints []dns.Endpoint
	// Quotas are what the fleet needs, every exposed placement published, of
	// Route53's limits against what they allow; zero until the publish step.
	Quotas dns.Quotas
	// Going are the placements leaving the fleet whose deletion this pass let
	// through, so their records had to leave first: a replica that does not
	// write Route53 reports them to the one that does (as not healthy).
	Going []fleet.UnitID
	// Err is why Route53 could not be read or changed, or nil. When a withdrawal
	// failed, no region deleted anything after it.
	Err error
}

// fate is when the records of a placement the fleet no longer publishes leave.
type fate int

const (
	// goNow: before the waves. The placement stays in the fleet unexposed or
	// drained, its region left the fleet, or the replica that removes it
	// reported its deletion let through.
	goNow fate = iota
	// goWithRegion: once its region's mass-deletion guard let the region's
	// deletions through, before they run.
	goWithRegion
	// stay: its removal is another replica's, which has not let it through.
	stay
)

// dnsPass is the DNS side of one pass: the zone read once, at its start; the
// withdrawals, before the waves for what no region's guard decides and at each
// region's deletions for that region's placements leaving the fleet; the
// publish after the waves. Its methods are safe for the regions of a wave side
// by side.
type dnsPass struct {
	r      *Reconciler
	model  *fleet.Model // the fleet DNS is planned over
	report *DNSReport
	// placed are the placements of model; inFleet its regions; guarded the
	// regions this pass runs, whose guards decide their placements' removals.
	placed           map[fleet.UnitID]bool
	inFleet, guarded map[string]bool
	mine             func(tenant string) bool
	staying          []dns.Endpoint

	// load reads the zone and, by the writer, withdraws what no region's guard
	// decides on; read is closed once it did.
	load func()
	read chan struct{}
	mu   sync.Mutex
	cur  dns.State
	err  error // the first failure: no region deletes after it
	// decided are the regions whose deletions their guard let through.
	decided  map[string]bool
	awaiting []fleet.UnitID
}

// startDNS starts the DNS side of a pass (nil without DNS). The writer reads the
// zone at once (which takes seconds at Route53's request rate, so it runs while
// the regions apply) and withdraws the records no region's guard decides on. A
// replica that does not write Route53 reads it only when a region is about to
// delete something: most of its passes read nothing there.
func (r *Reconciler) startDNS(ctx context.Context, model *fleet.Model, regions []string, report *Report) *dnsPass {
	if r.opts.DNS == nil {
		return nil
	}
	report.DNS = &DNSReport{}
	d := r.newDNSPass(model, regions, report.DNS)
	d.load = sync.OnceFunc(func() {
		defer close(d.read)
		cur, err := r.opts.DNS.Current(ctx)
		d.mu.Lock()
		defer d.mu.Unlock()
		if err != nil {
			d.fail(err)
			return
		}
		d.cur = cur
		if !r.opts.DNSReadOnly {
			d.withdrawLocked(ctx, func(id fleet.UnitID) bool { return d.fate(id) == goNow })
		}
	})
	if !r.opts.DNSReadOnly {
		go d.load()
	}
	return d
}

// newDNSPass indexes the fleet DNS is planned over; regions are those whose
// guards decide their placements' removals.
func (r *Reconciler) newDNSPass(model *fleet.Model, regions []string, report *DNSReport) *dnsPass {
	d := &dnsPass{
		r: r, model: model, report: report, placed: map[fleet.UnitID]bool{}, inFleet: map[string]bool{}, guarded: map[string]bool{},
		mine: r.opts.DNSTenants, read: make(chan struct{}), decided: map[string]bool{},
		staying: dns.Desired(model, func(fleet.UnitID) bool { return true }),
	}
	if d.mine == nil {
		d.mine = func(string) bool { return true }
	}
	for _, p := range model.Placements() {
		d.placed[p.ID()] = true
	}
	for _, name := range regionNames(model) {
		d.inFleet[name] = true
	}
	for _, name := range regions {
		d.guarded[name] = true
	}
	return d
}

// fate says when the records of a placement the fleet no longer publishes
// leave the zone.
func (d *dnsPass) fate(id fleet.UnitID) fate {
	switch {
	case d.placed[id] || !d.inFleet[id.Region] || id.Tenant == dns.SharedTenant:
		// Unexposed or drained, its region gone, or a shared health check
		// (deleted only once no record uses it).
		return goNow
	case d.mine(id.Tenant) && d.guarded[id.Region]:
		return goWithRegion
	}
	if d.r.opts.DNSHealth != nil {
		if healthy, known := d.r.opts.DNSHealth(id); known && !healthy {
			return goNow
		}
	}
	return stay
}

// kept reports whether a placement the fleet no longer publishes keeps its
// records after the pass: its removal was held, or not decided.
func (d *dnsPass) kept(id fleet.UnitID) bool {
	switch d.fate(id) {
	case goWithRegion:
		return !d.decided[id.Region]
	case stay:
		return true
	}
	return false
}

// fail records the pass's first DNS failure; d.mu is held.
func (d *dnsPass) fail(err error) {
	if d.err != nil {
		return
	}
	d.err = err
	d.report.Err = err
	d.r.opts.Log.Error("DNS records could not be withdrawn; nothing more is deleted in this pass", "error", err)
}

// withdrawLocked withdraws the records (and unused health checks) of the
// placements going that the fleet no longer publishes, and waits for Route53 to
// be INSYNC; d.mu is held. Nothing is created, updated or upserted here, not
// even a changed health check of a placement that stays.
func (d *dnsPass) withdrawLocked(ctx context.Context, going func(fleet.UnitID) bool) {
	ch := only(dns.Withdrawal(d.staying, d.cur), going)
	if err := d.r.applyDNS(ctx, "withdraw", ch); err != nil {
		d.fail(err)
		return
	}
	d.report.Withdrawn = appendChanges(d.report.Withdrawn, ch)
	// The publish step plans from what the zone holds now, without reading it
	// again: only Meridian writes its records, one writer at a time.
	if next, ok := d.cur.Withdrawn(ch); ok {
		d.cur = next
	}
}

// proceed is a region's gate before its deletions, once its mass-deletion guard
// let them through: the records of its placements leaving the fleet are
// withdrawn (by a replica that writes Route53) or must be gone (by one that
// does not, which then holds its deletions for the writer to withdraw them).
// With no deletions it only records the guard's decision, for the publish step.
// An error holds the region's deletions.
func (d *dnsPass) proceed(ctx context.Context, region string, deletes bool) error {
	if d == nil {
		return nil
	}
	if !deletes {
		d.mu.Lock()
		d.decided[region] = true
		d.mu.Unlock()
		return nil
	}
	d.load()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	going := func(id fleet.UnitID) bool { return id.Region == region && d.fate(id) == goWithRegion }
	left := only(dns.Withdrawal(d.staying, d.cur), going)
	var waiting []fleet.UnitID // the placements whose records are still there
	for _, g := range left.Records {
		if !slices.Contains(waiting, g.Unit) {
			waiting = append(waiting, g.Unit)
		}
		if !slices.Contains(d.report.Going, g.Unit) {
			d.report.Going = append(d.report.Going, g.Unit)
		}
	}
	if d.r.opts.DNSReadOnly {
		if len(waiting) > 0 {
			d.awaiting = append(d.awaiting, waiting...)
			d.report.Err = &AwaitingWithdrawalError{Units: slices.Clone(d.awaiting)}
			return &AwaitingWithdrawalError{Units: waiting}
		}
		d.decided[region] = true
		return nil
	}
	d.withdrawLocked(ctx, going)
	if d.err != nil {
		return d.err
	}
	d.decided[region] = true
	return nil
}

// wait returns once the zone was read and the first withdrawal done (at once on
// a replica that does not write Route53, which reads it only in proceed), and
// says whether every DNS step so far succeeded.
func (d *dnsPass) wait() error {
	if !d.r.opts.DNSReadOnly {
		<-d.read
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// only is the part of a withdrawal that concerns the placements going accepts.
func only(ch dns.Changes, going func(fleet.UnitID) bool) dns.Changes {
	out := dns.Changes{Quotas: ch.Quotas}
	for _, g := range ch.Records {
		if going(g.Unit) {
			out.Records = append(out.Records, g)
		}
	}
	for _, h := range ch.DeleteHealthChecks {
		if going(h.Unit()) {
			out.DeleteHealthChecks = append(out.DeleteHealthChecks, h)
		}
	}
	return out
}

// appendChanges adds what b did to a.
func appendChanges(a, b dns.Changes) dns.Changes {
	a.HealthChecks = append(a.HealthChecks, b.HealthChecks...)
	a.Records = append(a.Records, b.Records...)
	a.DeleteHealthChecks = append(a.DeleteHealthChecks, b.DeleteHealthChecks...)
	a.Clashes = append(a.Clashes, b.Clashes...)
	return a
}

// publish is the second DNS step of a pass: a placement the waves found healthy
// gets its records, one found unhealthy loses them, and one whose health is not
// known (its region was unreachable, its wave not reached, its unit not applied)
// keeps what it has; so does a placement leaving the fleet whose removal was
// held (by its region's mass-deletion guard, a failure before its deletions, or
// the replica that removes it).
func (d *dnsPass) publish(ctx context.Context, regions map[string]*RegionReport) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, cur, report := d.r, d.cur, d.report
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
	all := d.staying
	published := cur.Published()
	report.Endpoints = dns.Only(all, func(id fleet.UnitID) bool { return healthy(id) || (unknown(id) && published[id]) })
	stays := map[fleet.UnitID]bool{}
	for _, e := range dns.Only(all, unknown) {
		stays[e.Unit()], stays[e.CheckUnit()] = true, true
	}
	for id := range published {
		if !d.placed[id] && d.kept(id) {
			stays[id] = true
		}
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
// publishes model's placements as Options.DNSHealth says (not reported: kept as
// they are), withdrawing those found unhealthy, those no longer published and
// those leaving the fleet whose replica reported their deletion let through
// (reported not healthy); a removal not reported keeps its records.
func (r *Reconciler) PublishDNS(ctx context.Context, model *fleet.Model) (*DNSReport, error) {
	if r.opts.DNS == nil {
		return nil, nil
	}
	report := &DNSReport{}
	d := r.newDNSPass(model, nil, report)
	d.mine = func(string) bool { return false } // no region's guard decides here
	close(d.read)
	cur, err := r.opts.DNS.Current(ctx)
	if err == nil {
		d.cur = cur
		err = d.publish(ctx, nil)
	}
	report.Err = err
	return report, err
}
