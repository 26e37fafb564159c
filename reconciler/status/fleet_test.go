package status

import (
	"errors"
	"fmt"
	"slices"
	"strings"
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
	units map[string][]string // by region, sorted
}

// loadExampleFleet loads fleet-example and lists its units.
func loadExampleFleet(t *testing.T) exampleFleet {
	t.Helper()
	m, err := fleet.LoadDir("../../fleet-example")
	if err != nil {
		t.Fatalf("load fleet-example: %v", err)
	}
	f := exampleFleet{units: map[string][]string{}}
	for _, w := range m.Fleet.Spec.Waves {
		f.waves = append(f.waves, reconciler.WaveReport{Name: w.Name, Regions: slices.Clone(w.Regions), Healthy: true})
	}
	for _, tenant := range m.Tenants {
		for _, region := range tenant.Spec.Regions {
			f.units[region] = append(f.units[region], tenant.Metadata.Name+"/"+region)
		}
	}
	for _, p := range m.Placements() {
		region := p.Region.Metadata.Name
		f.units[region] = append(f.units[region], p.Tenant.Metadata.Name+"/"+region+"/"+p.App.Metadata.Name)
	}
	for _, units := range f.units {
		slices.Sort(units)
	}
	if len(f.waves) < 2 || len(f.units) != 3 {
		t.Fatalf("fleet-example changed: %d waves, %d regions; the status tests expect its two waves and three regions", len(f.waves), len(f.units))
	}
	return f
}

// allUnits lists every unit of the fleet, sorted.
func (f exampleFleet) allUnits() []string {
	var out []string
	for _, units := range f.units {
		out = append(out, units...)
	}
	slices.Sort(out)
	return out
}

// readyReport is a pass that brought every unit of every region to rev, healthy.
func (f exampleFleet) readyReport(rev string) *reconciler.Report {
	r := &reconciler.Report{Revision: rev, Regions: map[string]*reconciler.RegionReport{}}
	for _, w := range f.waves {
		r.Waves = append(r.Waves, reconciler.WaveReport{Name: w.Name, Regions: slices.Clone(w.Regions), Healthy: true})
	}
	for region, units := range f.units {
		rr := &reconciler.RegionReport{Changes: plan.ChangeSet{Region: region}, Unhealthy: map[string]string{}}
		for _, u := range units {
			rr.Changes.Changes = append(rr.Changes.Changes, plan.Change{Unit: u, Action: plan.Unchanged})
		}
		r.Regions[region] = rr
	}
	return r
}

// troubledReport is rev2 going wrong in most of the ways it can, every wave
// reached: in us-east-1 a worker fails to render (so deletions are held, and a unit
// that left the fleet stays) and an API is still progressing; in ap-northeast-2
// the portal's rollout failed.
func (f exampleFleet) troubledReport() *reconciler.Report {
	r := f.readyReport(rev2)
	set := func(region, unit string, a plan.Action) {
		cs := &r.Regions[region].Changes
		for i := range cs.Changes {
			if cs.Changes[i].Unit == unit {
				cs.Changes[i].Action = a
				return
			}
		}
		cs.Changes = append(cs.Changes, plan.Change{Unit: unit, Action: a})
		slices.SortFunc(cs.Changes, func(a, b plan.Change) int { return strings.Compare(a.Unit, b.Unit) })
	}
	set("eu-west-2", "trucking/eu-west-2/worker", plan.Update)
	set("us-east-1", "trucking/us-east-1/worker", plan.Update)
	set("ap-northeast-2", "trucking/ap-northeast-2/worker", plan.Update)

	renderErr := &render.UnitError{Unit: "charging-stations-ca/us-east-1/worker", Err: errors.New(`apps/worker/chart/templates/deployment.yaml:21: executing "deployment.yaml": map has no entry for key "queue"`)}
	r.RenderErrors = []*render.UnitError{renderErr}
	set("us-east-1", "charging-stations-ca/us-east-1/worker", plan.Keep)
	us := r.Regions["us-east-1"]
	us.Changes.Changes = append(us.Changes.Changes, plan.Change{Unit: "logistics-eu/us-east-1/reports", Action: plan.Prune,
		Applied: &plan.Inventory{Unit: "logistics-eu/us-east-1/reports", Revision: rev1},
		Delete:  []plan.ObjectRef{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "logistics-eu", Name: "reports"}, {Version: "v1", Kind: "Service", Namespace: "logistics-eu", Name: "reports"}}})
	slices.SortFunc(us.Changes.Changes, func(a, b plan.Change) int { return strings.Compare(a.Unit, b.Unit) })
	us.Changes.Held = "an earlier step failed, and nothing is deleted because something failed"
	us.Unhealthy["trucking/us-east-1/api"] = "Deployment/trucking/api: not ready after 5m0s: InProgress: Available: 1/2 replicas"

	ap := r.Regions["ap-northeast-2"]
	ap.Unhealthy["trucking/ap-northeast-2/portal"] = "Deployment/trucking/portal: failed: Failed: ProgressDeadlineExceeded: ReplicaSet \"portal-5d8f\" has timed out progressing"
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
		d.Regions[region] = &reconciler.RegionDrift{Drifted: map[string][]apply.Drift{}}
	}
	eu := d.Regions["eu-west-2"]
	eu.Drifted["trucking/eu-west-2/portal"] = []apply.Drift{{Object: plan.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "trucking", Name: "portal"}, Fields: []string{"replace /spec/replicas"}}}
	eu.Objects, eu.Corrected = 1, []string{"trucking/eu-west-2/portal"}
	us := d.Regions["us-east-1"]
	us.Drifted["logistics-eu/us-east-1/portal"] = []apply.Drift{
		{Object: plan.ObjectRef{Version: "v1", Kind: "Service", Namespace: "logistics-eu", Name: "portal"}, Fields: []string{"replace /spec/ports/0/port"}},
		{Object: plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "logistics-eu", Name: "portal"}, Missing: true},
	}
	us.Objects, us.Reported = 2, []string{"logistics-eu/us-east-1/portal"}
	return d
}

// dnsEndpoints are the portals' latency records in every region, the one in
// ap-northeast-2 failing its health check.
func (f exampleFleet) dnsEndpoints() []DNSEndpoint {
	var out []DNSEndpoint
	for _, unit := range f.allUnits() {
		parts := strings.Split(unit, "/")
		if len(parts) != 3 || parts[2] != "portal" {
			continue
		}
		tenant, region, app := parts[0], parts[1], parts[2]
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
