package status

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// Revisions and commits the tests feed, as a day of commits to the fleet
// repository would.
var (
	rev1    = "3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e"
	rev2    = "9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
	commit1 = Commit{Revision: rev1, Subject: "trucking: three portal replicas in every region", Author: "Ana Lima", Time: time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)}
	commit2 = Commit{Revision: rev2, Subject: "worker: queue URL from values", Author: "Jon Park", Time: time.Date(2026, 11, 20, 14, 5, 0, 0, time.UTC)}
)

// exampleFleet is fleet-example as a pass sees it: its waves, and every unit
// (tenant namespaces and placements) of each region.
type exampleFleet struct {
	waves []reconciler.WaveReport
	units map[string][]fleet.UnitID // by region, sorted
}

// unit reads a unit's text form ("tenant/region/app" or "tenant/region"); it
// panics on a malformed one, which is a mistake in the test.
func unit(s string) fleet.UnitID {
	u, err := fleet.ParseUnitID(s)
	if err != nil {
		panic(err)
	}
	return u
}

// loadExampleFleet loads fleet-example and lists its units.
func loadExampleFleet(t *testing.T) exampleFleet {
	t.Helper()
	m, err := fleet.LoadDir("../../fleet-example")
	if err != nil {
		t.Fatalf("load fleet-example: %v", err)
	}
	f := exampleFleet{units: map[string][]fleet.UnitID{}}
	for _, w := range m.Fleet.Spec.Waves {
		f.waves = append(f.waves, reconciler.WaveReport{Name: w.Name, Regions: slices.Clone(w.Regions), Healthy: true})
	}
	for _, tenant := range m.Tenants {
		for _, region := range tenant.Spec.Regions {
			f.units[region] = append(f.units[region], fleet.NamespaceUnit(tenant.Metadata.Name, region))
		}
	}
	for _, p := range m.Placements() {
		region := p.Region.Metadata.Name
		f.units[region] = append(f.units[region], p.ID())
	}
	for _, p := range m.AddonPlacements() {
		region := p.Region.Metadata.Name
		f.units[region] = append(f.units[region], p.ID())
	}
	for _, units := range f.units {
		slices.SortFunc(units, fleet.UnitID.Compare)
	}
	if len(f.waves) < 2 || len(f.units) != 3 {
		t.Fatalf("fleet-example changed: %d waves, %d regions; the status tests expect its two waves and three regions", len(f.waves), len(f.units))
	}
	return f
}

// allUnits lists every unit of the fleet, sorted.
func (f exampleFleet) allUnits() []fleet.UnitID {
	var out []fleet.UnitID
	for _, units := range f.units {
		out = append(out, units...)
	}
	slices.SortFunc(out, fleet.UnitID.Compare)
	return out
}

// readyReport is a pass that brought every unit of every region to rev, healthy.
func (f exampleFleet) readyReport(rev string) *reconciler.Report {
	r := &reconciler.Report{Revision: rev, Regions: map[string]*reconciler.RegionReport{}}
	for _, w := range f.waves {
		r.Waves = append(r.Waves, reconciler.WaveReport{Name: w.Name, Regions: slices.Clone(w.Regions), Healthy: true})
	}
	for region, units := range f.units {
		rr := &reconciler.RegionReport{Changes: plan.ChangeSet{Region: region}, Units: map[fleet.UnitID]*reconciler.UnitResult{}}
		for _, u := range units {
			rr.Changes.Changes = append(rr.Changes.Changes, plan.Change{Unit: u, Action: plan.Unchanged})
			rr.Units[u] = &reconciler.UnitResult{Action: plan.Unchanged, Health: reconciler.Healthy}
		}
		r.Regions[region] = rr
	}
	return r
}

// setAction gives a unit of the region's plan the action, adding it to the plan
// (kept in unit order) when it is not there, and gives its result the same action.
// A unit applied or unchanged was waited for and is healthy; the others were not.
func setAction(rr *reconciler.RegionReport, ch plan.Change) {
	cs := &rr.Changes
	i := slices.IndexFunc(cs.Changes, func(c plan.Change) bool { return c.Unit == ch.Unit })
	if i < 0 {
		cs.Changes = append(cs.Changes, ch)
		slices.SortFunc(cs.Changes, func(a, b plan.Change) int { return a.Unit.Compare(b.Unit) })
	} else {
		cs.Changes[i].Action = ch.Action
		if ch.Applied != nil {
			cs.Changes[i].Applied = ch.Applied
		}
		if ch.Delete != nil {
			cs.Changes[i].Delete = ch.Delete
		}
		if ch.Desired != nil {
			cs.Changes[i].Desired = ch.Desired
		}
	}
	res := &reconciler.UnitResult{Action: ch.Action}
	switch ch.Action {
	case plan.Create, plan.Update, plan.Unchanged:
		res.Health = reconciler.Healthy
	}
	rr.Units[ch.Unit] = res
}

// setHealth records that a unit of the region did not become healthy: health is
// reconciler.Progressing or reconciler.Unhealthy, and reason says why.
func setHealth(rr *reconciler.RegionReport, u fleet.UnitID, health reconciler.Health, reason string) {
	res := rr.Units[u]
	if res == nil {
		panic("setHealth: " + u.String() + " is not in the region's plan")
	}
	res.Health, res.HealthErr = health, errors.New(reason)
}

// appendHealthReason adds more to the reason a unit of the region did not become
// healthy.
func appendHealthReason(rr *reconciler.RegionReport, u fleet.UnitID, more string) {
	res := rr.Units[u]
	if res == nil || res.HealthErr == nil {
		panic("appendHealthReason: " + u.String() + " is not unhealthy")
	}
	res.HealthErr = errors.New(res.HealthErr.Error() + more)
}

// setApplyError records that applying a unit of the region failed (the region's
// pass then stops: nothing is pruned or waited for).
func setApplyError(rr *reconciler.RegionReport, u fleet.UnitID, cause string) {
	res := rr.Units[u]
	if res == nil {
		panic("setApplyError: " + u.String() + " is not in the region's plan")
	}
	res.Err = &reconciler.UnitError{Unit: u, Step: reconciler.StepApply, Err: errors.New(cause)}
}

// troubledReport is rev2 going wrong in most of the ways it can, every wave
// reached: in us-east-1 a worker fails to render (so deletions are held, and a unit
// that left the fleet stays) and an API is still progressing; in ap-northeast-2
// the portal's rollout failed.
func (f exampleFleet) troubledReport() *reconciler.Report {
	r := f.readyReport(rev2)
	for _, region := range []string{"eu-west-2", "us-east-1", "ap-northeast-2"} {
		setAction(r.Regions[region], plan.Change{Unit: fleet.UnitID{Tenant: "trucking", Region: region, App: "worker"}, Action: plan.Update})
	}

	renderErr := &render.UnitError{Unit: unit("charging-stations-ca/us-east-1/worker"), Err: errors.New(`apps/worker/chart/templates/deployment.yaml:21: executing "deployment.yaml": map has no entry for key "queue"`)}
	r.RenderErrors = []*render.UnitError{renderErr}
	us := r.Regions["us-east-1"]
	setAction(us, plan.Change{Unit: renderErr.Unit, Action: plan.Keep})
	reports := unit("logistics-eu/us-east-1/reports")
	setAction(us, plan.Change{Unit: reports, Action: plan.Prune,
		Applied: &plan.Inventory{Unit: reports, Revision: rev1},
		Delete:  []plan.ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "logistics-eu", Name: "reports"}, {Version: "v1", Kind: "Service", Namespace: "logistics-eu", Name: "reports"}}})
	us.Changes.Held = "an earlier step failed, and nothing is deleted because something failed"
	setHealth(us, unit("trucking/us-east-1/api"), reconciler.Progressing, "Deployment/trucking/api: not ready after 5m0s: InProgress: Available: 1/2 replicas")

	setHealth(r.Regions["ap-northeast-2"], unit("trucking/ap-northeast-2/portal"), reconciler.Unhealthy,
		"Deployment/trucking/portal: failed: Failed: ProgressDeadlineExceeded: ReplicaSet \"portal-5d8f\" has timed out progressing")
	for i := range r.Waves {
		if slices.Contains(r.Waves[i].Regions, "ap-northeast-2") || slices.Contains(r.Waves[i].Regions, "us-east-1") {
			r.Waves[i].Healthy = false
		}
	}
	r.Stopped = fmt.Sprintf("wave %s is not healthy, so revision %s does not go on to later waves", r.Waves[len(r.Waves)-1].Name, rev2[:12])
	return r
}

// driftReport finds the trucking portal's replicas changed by hand in eu-west-2
// (corrected) and logistics-eu's portal Service in us-east-1 (reported).
func (f exampleFleet) driftReport(rev string) *reconciler.DriftReport {
	d := &reconciler.DriftReport{Revision: rev, Regions: map[string]*reconciler.RegionDrift{}}
	for region := range f.units {
		d.Regions[region] = &reconciler.RegionDrift{Drifted: map[fleet.UnitID][]apply.Drift{}}
	}
	eu := d.Regions["eu-west-2"]
	truckingPortal := unit("trucking/eu-west-2/portal")
	eu.Drifted[truckingPortal] = []apply.Drift{{Object: plan.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "trucking", Name: "portal"}, Fields: []string{"replace /spec/replicas"}}}
	eu.Objects, eu.Corrected = 1, []fleet.UnitID{truckingPortal}
	us := d.Regions["us-east-1"]
	logisticsPortal := unit("logistics-eu/us-east-1/portal")
	us.Drifted[logisticsPortal] = []apply.Drift{
		{Object: plan.ObjectRef{Version: "v1", Kind: "Service", Namespace: "logistics-eu", Name: "portal"}, Fields: []string{"replace /spec/ports/0/port"}},
		{Object: plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "logistics-eu", Name: "portal"}, Missing: true},
	}
	us.Objects, us.Reported = 2, []fleet.UnitID{logisticsPortal}
	return d
}

// dnsEndpoints are the portals' latency records in every region, the one in
// ap-northeast-2 failing its health check.
func (f exampleFleet) dnsEndpoints() []DNSEndpoint {
	var out []DNSEndpoint
	for _, u := range f.allUnits() {
		if u.App != "portal" {
			continue
		}
		tenant, region, app := u.Tenant, u.Region, u.App
		out = append(out, DNSEndpoint{Tenant: tenant, Region: region, App: app,
			Name:    "portal." + tenant + ".fleet.example.com",
			Healthy: region != "ap-northeast-2", HealthCheckID: "hc-" + tenant + "-" + region})
	}
	return out
}

// feedExample gives s the day the tests tell: rev1 everywhere, then rev2 in
// trouble, a drift check, the DNS endpoints, some Route53 calls and a failed fetch.
func feedExample(s *Store, f exampleFleet) {
	s.ObserveRevision(commit1)
	s.ObserveRender(1200*time.Millisecond, 14)
	s.ObservePass(f.readyReport(rev1), 42*time.Second)
	s.ObserveRevision(commit2)
	s.ObserveRender(300*time.Millisecond, 2)
	s.ObservePass(f.troubledReport(), 5*time.Minute+3*time.Second)
	s.ObserveDrift(f.driftReport(rev2))
	s.ObserveDNS(f.dnsEndpoints())
	s.Route53Request("ListResourceRecordSets", false)
	s.Route53Request("ChangeResourceRecordSets", false)
	s.Route53Request("ChangeResourceRecordSets", true)
	s.Route53Request("GetChange", false)
	s.ObserveFetchFailure(errors.New("fetch https://git.example.com/platform/fleet.git: connection reset by peer"))
}
