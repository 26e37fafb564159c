package dns

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"meridian.dev/meridian/fleet"
)

// testModel is a small fleet: app portal (HTTPS) exposed, tenants in two regions,
// one reached through a load balancer alias and one through a CNAME.
func testModel(tenants ...string) *fleet.Model {
	region := func(name string, ep fleet.Endpoint) *fleet.Region {
		r := &fleet.Region{Metadata: fleet.ObjectMeta{Name: name}}
		r.Spec.AWSRegion, r.Spec.Endpoint = name, ep
		return r
	}
	portal := &fleet.App{Metadata: fleet.ObjectMeta{Name: "portal"}}
	portal.Spec.Expose = &fleet.Expose{Subdomain: "portal", Port: 443, Protocol: "HTTPS",
		HealthCheck: fleet.HealthCheck{Path: "/healthz", IntervalSeconds: 30, FailureThreshold: 3}}
	worker := &fleet.App{Metadata: fleet.ObjectMeta{Name: "worker"}}
	m := &fleet.Model{
		Fleet: &fleet.Fleet{Metadata: fleet.ObjectMeta{Name: "acme"}},
		Regions: []*fleet.Region{
			region("eu-west-2", fleet.Endpoint{Type: "CNAME", Target: "ingress.eu-west-2.edge.example.net"}),
			region("us-east-1", fleet.Endpoint{Type: "Alias", Target: "lb-use1.elb.us-east-1.amazonaws.com", HostedZoneID: "Z26RNL4JYFTOTI"}),
		},
		Apps: []*fleet.App{portal, worker},
	}
	m.Fleet.Spec.DNS = fleet.DNS{Zone: "fleet.example.com", HostedZoneID: "ZTEST"}
	for _, name := range tenants {
		t := &fleet.Tenant{Metadata: fleet.ObjectMeta{Name: name}}
		t.Spec.Regions = []string{"eu-west-2", "us-east-1"}
		t.Spec.Apps = []fleet.TenantApp{{Name: "portal"}, {Name: "worker"}}
		m.Tenants = append(m.Tenants, t)
	}
	return m
}

func allHealthy(fleet.UnitID) bool { return true }

// simulate applies a plan to a state the way Route53 would, giving new health checks
// the id hc-<tenant>-<region>-<app>-<n>. It stands in for Route53 only in these
// pure planner tests; the applier's tests use the Route53 test server.
func simulate(t *testing.T, s State, ch Changes) State {
	t.Helper()
	s.Records = slices.Clone(s.Records)
	s.HealthChecks = slices.Clone(s.HealthChecks)
	ids := map[fleet.UnitID]string{}
	for _, h := range ch.HealthChecks {
		switch h.Action {
		case CreateCheck:
			id := fmt.Sprintf("hc-%s-%s-%s-%d", h.Tenant, h.Region, h.App, len(s.HealthChecks))
			ids[h.Unit()] = id
			s.HealthChecks = append(s.HealthChecks, HealthCheck{ID: id, Version: 1, Tenant: h.Tenant, App: h.App, Region: h.Region, Spec: h.Spec})
		case UpdateCheck:
			i := slices.IndexFunc(s.HealthChecks, func(c HealthCheck) bool { return c.ID == h.ID })
			s.HealthChecks[i].Spec, s.HealthChecks[i].Version = h.Spec, h.Version+1
		}
	}
	for _, g := range ch.Records {
		for _, c := range g.Changes {
			r := c.Record
			if !c.HealthCheck.IsZero() {
				r.HealthCheckID = ids[c.HealthCheck]
			}
			i := slices.IndexFunc(s.Records, func(o Record) bool {
				return o.Name == r.Name && o.Type == r.Type && o.SetIdentifier == r.SetIdentifier
			})
			switch {
			case c.Action == Delete && i < 0:
				t.Fatalf("plan deletes %s, which does not exist", r.ID())
			case c.Action == Delete:
				s.Records = slices.Delete(s.Records, i, i+1)
			case c.Action == Create && i >= 0:
				t.Fatalf("plan creates %s, which exists", r.ID())
			case i >= 0:
				s.Records[i] = r
			default:
				s.Records = append(s.Records, r)
			}
		}
	}
	for _, h := range ch.DeleteHealthChecks {
		s.HealthChecks = slices.DeleteFunc(s.HealthChecks, func(c HealthCheck) bool { return c.ID == h.ID })
	}
	return s
}

// applied is the state after the plan for model's endpoints ran against an empty zone.
func applied(t *testing.T, model *fleet.Model) State {
	t.Helper()
	empty := State{Fleet: "acme"}
	return simulate(t, empty, Plan(Desired(model, allHealthy), empty))
}

func TestPlan(t *testing.T) {
	changedPath := testModel("trucking")
	changedPath.Apps[0].Spec.Expose.HealthCheck.Path = "/ready"
	changedProtocol := testModel("trucking")
	changedProtocol.Apps[0].Spec.Expose.Protocol = "HTTP"
	changedProtocol.Apps[0].Spec.Expose.Port = 80
	drained := testModel("trucking")
	drained.Fleet.Spec.DNS.Drain = []string{"eu-west-2"}
	unowned := applied(t, testModel())
	unowned.Records = append(unowned.Records, Record{Name: "portal.trucking.fleet.example.com", Type: "CNAME", TTL: 300, Values: []string{"legacy.example.net"}})
	otherFleet := State{Fleet: "acme", Records: []Record{
		{Name: "portal.trucking.eu-west-2.fleet.example.com", Type: "CNAME", TTL: 60, Values: []string{"x.example.net"}},
		{Name: "_meridian.portal.trucking.eu-west-2.fleet.example.com", Type: "TXT", TTL: 300, Values: []string{registryValue("other", fleet.UnitID{Tenant: "trucking", Region: "eu-west-2", App: "portal"})}},
	}}

	tests := []struct {
		name    string
		model   *fleet.Model
		healthy func(fleet.UnitID) bool
		current State
		want    []string
	}{{
		name:    "a new endpoint gets a health check, a latency record, a regional record and their registry records",
		model:   testModel("trucking"),
		current: State{Fleet: "acme"},
		want: []string{
			"create health check trucking/eu-west-2/portal: HTTPS portal.trucking.eu-west-2.fleet.example.com:443/healthz every 30s, threshold 3; new endpoint",
			"create health check trucking/us-east-1/portal: HTTPS portal.trucking.us-east-1.fleet.example.com:443/healthz every 30s, threshold 3; new endpoint",
			"CREATE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check of trucking/eu-west-2/portal",
			`CREATE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			"CREATE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`CREATE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			"CREATE portal.trucking.fleet.example.com CNAME [us-east-1] latency us-east-1 ttl 60 portal.trucking.us-east-1.fleet.example.com health check of trucking/us-east-1/portal",
			`CREATE _meridian.portal.trucking.fleet.example.com TXT [us-east-1] latency us-east-1 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/us-east-1/portal"`,
			"CREATE portal.trucking.us-east-1.fleet.example.com A alias lb-use1.elb.us-east-1.amazonaws.com (zone Z26RNL4JYFTOTI, evaluate target health true)",
			`CREATE _meridian.portal.trucking.us-east-1.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/us-east-1/portal"`,
		},
	}, {
		name:    "an unchanged fleet yields an empty plan",
		model:   testModel("trucking"),
		current: applied(t, testModel("trucking")),
	}, {
		name:    "a changed health path updates the check in place and leaves the records",
		model:   changedPath,
		current: applied(t, testModel("trucking")),
		want: []string{
			"update health check trucking/eu-west-2/portal (hc-trucking-eu-west-2-portal-0): HTTPS portal.trucking.eu-west-2.fleet.example.com:443/ready every 30s, threshold 3; was HTTPS portal.trucking.eu-west-2.fleet.example.com:443/healthz every 30s, threshold 3",
			"update health check trucking/us-east-1/portal (hc-trucking-us-east-1-portal-1): HTTPS portal.trucking.us-east-1.fleet.example.com:443/ready every 30s, threshold 3; was HTTPS portal.trucking.us-east-1.fleet.example.com:443/healthz every 30s, threshold 3",
		},
	}, {
		name:    "a changed protocol replaces the check: a new one, the record moved to it, the old one kept while in use",
		model:   changedProtocol,
		current: applied(t, testModel("trucking")),
		healthy: func(id fleet.UnitID) bool { return id.String() == "trucking/us-east-1/portal" },
		want: []string{
			"create health check trucking/us-east-1/portal: HTTP portal.trucking.us-east-1.fleet.example.com:80/healthz every 30s, threshold 3; replaces hc-trucking-us-east-1-portal-1: Route53 cannot change protocol or interval in place (HTTPS every 30s); the old check is deleted once no record uses it",
			"UPSERT portal.trucking.fleet.example.com CNAME [us-east-1] latency us-east-1 ttl 60 portal.trucking.us-east-1.fleet.example.com health check of trucking/us-east-1/portal",
			"DELETE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check hc-trucking-eu-west-2-portal-0",
			"DELETE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`DELETE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			`DELETE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
		},
	}, {
		name:    "a drained region's records are withdrawn and its check kept while a record uses it",
		model:   drained,
		current: applied(t, testModel("trucking")),
		want: []string{
			"DELETE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check hc-trucking-eu-west-2-portal-0",
			"DELETE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`DELETE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			`DELETE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
		},
	}, {
		name:    "a drained region's check is deleted in the next step, once no record uses it",
		model:   drained,
		current: simulate(t, applied(t, testModel("trucking")), Plan(Desired(drained, allHealthy), applied(t, testModel("trucking")))),
		want:    []string{"delete health check trucking/eu-west-2/portal (hc-trucking-eu-west-2-portal-0); no record uses it"},
	}, {
		name:    "an unowned record at the global name is a clash: no check or latency record, the regional records still written",
		model:   testModel("trucking"),
		healthy: func(id fleet.UnitID) bool { return id.String() == "trucking/eu-west-2/portal" },
		current: unowned,
		want: []string{
			"CREATE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`CREATE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			"clash portal.trucking.fleet.example.com: wanted by trucking/eu-west-2/portal but held by record sets Meridian does not own (portal.trucking.fleet.example.com CNAME); delete them, or give them a registry record _meridian.portal.trucking.fleet.example.com if Meridian should take them over",
		},
	}, {
		name:    "a record another fleet owns is a clash, and never withdrawn",
		model:   testModel("trucking"),
		healthy: func(id fleet.UnitID) bool { return id.String() == "trucking/eu-west-2/portal" },
		current: otherFleet,
		want: []string{
			"create health check trucking/eu-west-2/portal: HTTPS portal.trucking.eu-west-2.fleet.example.com:443/healthz every 30s, threshold 3; new endpoint",
			"CREATE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check of trucking/eu-west-2/portal",
			`CREATE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			"clash portal.trucking.eu-west-2.fleet.example.com: wanted by trucking/eu-west-2/portal but held by record sets Meridian does not own (portal.trucking.eu-west-2.fleet.example.com CNAME); delete them, or give them a registry record _meridian.portal.trucking.eu-west-2.fleet.example.com if Meridian should take them over",
		},
	}, {
		name:    "a removed tenant's records are withdrawn, the other tenant's untouched",
		model:   testModel("trucking"),
		healthy: func(id fleet.UnitID) bool { return id.String() != "trucking/eu-west-2/portal" },
		current: applied(t, testModel("charging", "trucking")),
		want: []string{
			"DELETE portal.charging.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.charging.eu-west-2.fleet.example.com health check hc-charging-eu-west-2-portal-0",
			"DELETE portal.charging.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`DELETE _meridian.portal.charging.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=charging/eu-west-2/portal"`,
			`DELETE _meridian.portal.charging.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=charging/eu-west-2/portal"`,
			"DELETE portal.charging.fleet.example.com CNAME [us-east-1] latency us-east-1 ttl 60 portal.charging.us-east-1.fleet.example.com health check hc-charging-us-east-1-portal-1",
			"DELETE portal.charging.us-east-1.fleet.example.com A alias lb-use1.elb.us-east-1.amazonaws.com (zone Z26RNL4JYFTOTI, evaluate target health true)",
			`DELETE _meridian.portal.charging.fleet.example.com TXT [us-east-1] latency us-east-1 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=charging/us-east-1/portal"`,
			`DELETE _meridian.portal.charging.us-east-1.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=charging/us-east-1/portal"`,
			"DELETE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check hc-trucking-eu-west-2-portal-2",
			"DELETE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`DELETE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			`DELETE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healthy := tt.healthy
			if healthy == nil {
				healthy = allHealthy
			}
			got := Plan(Desired(tt.model, healthy), tt.current)
			if diff := cmp.Diff(tt.want, got.Lines()); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if got.Empty() != (len(got.HealthChecks)+len(got.Records)+len(got.DeleteHealthChecks) == 0) {
				t.Errorf("Empty() = %t for %s", got.Empty(), got)
			}
			// Applying the plan converges: the next plan has no record changes.
			next := Plan(Desired(tt.model, healthy), simulate(t, tt.current, got))
			if len(next.Records) > 0 || len(next.HealthChecks) > 0 {
				t.Errorf("the plan does not converge; the next one is:\n%v", next.Lines())
			}
		})
	}
}

func TestDesired(t *testing.T) {
	m := testModel("trucking")
	m.Fleet.Spec.DNS.Drain = []string{"us-east-1"}
	var asked []string
	got := Desired(m, func(id fleet.UnitID) bool { asked = append(asked, id.String()); return true })
	var keys []string
	for _, e := range got {
		keys = append(keys, e.Unit().String()+" "+e.Global+" "+e.Regional)
	}
	want := []string{"trucking/eu-west-2/portal portal.trucking.fleet.example.com portal.trucking.eu-west-2.fleet.example.com"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"trucking/eu-west-2/portal"}, asked); diff != "" {
		t.Errorf("health asked for (-want +got); drained, unexposed placements are not asked:\n%s", diff)
	}
}

func TestWithdrawal(t *testing.T) {
	changedPath := testModel("trucking")
	changedPath.Apps[0].Spec.Expose.HealthCheck.Path = "/ready"
	changedProtocol := testModel("trucking")
	changedProtocol.Apps[0].Spec.Expose.Protocol = "HTTP"
	drained := testModel("trucking")
	drained.Fleet.Spec.DNS.Drain = []string{"eu-west-2"}
	movedTarget := testModel("trucking")
	movedTarget.Regions[0].Spec.Endpoint.Target = "ingress2.eu-west-2.edge.example.net"
	unexposed := testModel("trucking")
	unexposed.Apps[0].Spec.Expose = nil
	// A withdrawn record's check outlives it by one plan: here the records are gone
	// and the check is left.
	orphanCheck := applied(t, testModel("charging", "trucking"))
	orphanCheck.Records = slices.DeleteFunc(orphanCheck.Records, func(r Record) bool { return strings.Contains(r.Name, "charging") })
	withUnowned := applied(t, testModel("trucking"))
	withUnowned.Records = append(withUnowned.Records, Record{Name: "portal.charging.fleet.example.com", Type: "CNAME", TTL: 300, Values: []string{"legacy.example.net"}})

	tests := []struct {
		name    string
		model   *fleet.Model
		current State
		want    []string
	}{{
		name:    "a new endpoint is not published before its wave",
		model:   testModel("trucking"),
		current: State{Fleet: "acme"},
	}, {
		name:    "a changed health path of a placement that stays waits for its wave",
		model:   changedPath,
		current: applied(t, testModel("trucking")),
	}, {
		name:    "a changed protocol of a placement that stays creates no check and moves no record",
		model:   changedProtocol,
		current: applied(t, testModel("trucking")),
	}, {
		name:    "a changed region endpoint of a placement that stays upserts nothing",
		model:   movedTarget,
		current: applied(t, testModel("trucking")),
	}, {
		name:    "a placement that stays keeps its records and its check even when it is not published",
		model:   testModel("trucking"),
		current: applied(t, testModel("trucking")),
	}, {
		name:    "a drained region's records are withdrawn, its check kept while a record uses it",
		model:   drained,
		current: applied(t, testModel("trucking")),
		want: []string{
			"DELETE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check hc-trucking-eu-west-2-portal-0",
			"DELETE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`DELETE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			`DELETE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
		},
	}, {
		name:    "an app no longer exposed is withdrawn everywhere",
		model:   unexposed,
		current: applied(t, testModel("trucking")),
		want: []string{
			"DELETE portal.trucking.fleet.example.com CNAME [eu-west-2] latency eu-west-2 ttl 60 portal.trucking.eu-west-2.fleet.example.com health check hc-trucking-eu-west-2-portal-0",
			"DELETE portal.trucking.eu-west-2.fleet.example.com CNAME ttl 60 ingress.eu-west-2.edge.example.net",
			`DELETE _meridian.portal.trucking.eu-west-2.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			`DELETE _meridian.portal.trucking.fleet.example.com TXT [eu-west-2] latency eu-west-2 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/eu-west-2/portal"`,
			"DELETE portal.trucking.fleet.example.com CNAME [us-east-1] latency us-east-1 ttl 60 portal.trucking.us-east-1.fleet.example.com health check hc-trucking-us-east-1-portal-1",
			"DELETE portal.trucking.us-east-1.fleet.example.com A alias lb-use1.elb.us-east-1.amazonaws.com (zone Z26RNL4JYFTOTI, evaluate target health true)",
			`DELETE _meridian.portal.trucking.fleet.example.com TXT [us-east-1] latency us-east-1 ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/us-east-1/portal"`,
			`DELETE _meridian.portal.trucking.us-east-1.fleet.example.com TXT ttl 300 "heritage=meridian,meridian.dev/fleet=acme,meridian.dev/placement=trucking/us-east-1/portal"`,
		},
	}, {
		name:    "a removed tenant's checks that no record uses are deleted; the staying tenant's are not",
		model:   testModel("trucking"),
		current: orphanCheck,
		want: []string{
			"delete health check charging/eu-west-2/portal (hc-charging-eu-west-2-portal-0); no record uses it",
			"delete health check charging/us-east-1/portal (hc-charging-us-east-1-portal-1); no record uses it",
		},
	}, {
		name:    "a record Meridian does not own is never withdrawn and reports no clash here",
		model:   testModel("trucking"),
		current: withUnowned,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Withdrawal(Desired(tt.model, allHealthy), tt.current)
			if diff := cmp.Diff(tt.want, got.Lines()); diff != "" {
				t.Errorf("withdrawal (-want +got):\n%s", diff)
			}
			if len(got.HealthChecks) > 0 {
				t.Errorf("the withdrawal creates or updates health checks: %v", got.HealthChecks)
			}
			for _, g := range got.Records {
				for _, c := range g.Changes {
					if c.Action != Delete {
						t.Errorf("the withdrawal writes a record: %s", c)
					}
				}
			}
			// What the withdrawal deletes is what the full plan deletes for those
			// placements: running it first changes nothing the publish step wants.
			after := simulate(t, tt.current, got)
			if next := Withdrawal(Desired(tt.model, allHealthy), after); len(next.Records) > 0 {
				t.Errorf("the withdrawal does not converge; the next one is:\n%v", next.Lines())
			}
		})
	}
}

func TestPlanWithinQuotas(t *testing.T) {
	model := testModel("charging", "trucking") // 4 endpoints: 4 checks, 16 record sets
	tests := []struct {
		name    string
		current State
		// published are the placements whose records the plan writes.
		published []string
		over      []string
		quotas    Quotas
	}{{
		name:      "a fleet within its limits is published whole",
		current:   State{Fleet: "acme", AccountHealthChecks: 1, HealthCheckLimit: 200, RecordSetLimit: 10000, Records: make([]Record, 2)},
		published: []string{"charging/eu-west-2/portal", "charging/us-east-1/portal", "trucking/eu-west-2/portal", "trucking/us-east-1/portal"},
		quotas: Quotas{HealthChecks: Quota{Name: QuotaHealthChecks, Limit: 200, Others: 1, Needed: 4},
			RecordSets: Quota{Name: QuotaRecordSets, Limit: 10000, Others: 2, Needed: 16}},
	}, {
		name:      "health checks beyond the account's limit are not created, nor their records written",
		current:   State{Fleet: "acme", AccountHealthChecks: 1, HealthCheckLimit: 3},
		published: []string{"charging/eu-west-2/portal", "charging/us-east-1/portal"},
		over:      []string{"trucking/eu-west-2/portal", "trucking/us-east-1/portal"},
		quotas: Quotas{HealthChecks: Quota{Name: QuotaHealthChecks, Limit: 3, Others: 1, Needed: 4},
			RecordSets: Quota{Name: QuotaRecordSets, Needed: 16}},
	}, {
		name:      "record sets beyond the zone's limit are not written",
		current:   State{Fleet: "acme", RecordSetLimit: 2 + 12, Records: make([]Record, 2)},
		published: []string{"charging/eu-west-2/portal", "charging/us-east-1/portal", "trucking/eu-west-2/portal"},
		over:      []string{"trucking/us-east-1/portal"},
		quotas: Quotas{HealthChecks: Quota{Name: QuotaHealthChecks, Needed: 4},
			RecordSets: Quota{Name: QuotaRecordSets, Limit: 14, Others: 2, Needed: 16}},
	}, {
		name:      "unknown limits plan everything",
		current:   State{Fleet: "acme"},
		published: []string{"charging/eu-west-2/portal", "charging/us-east-1/portal", "trucking/eu-west-2/portal", "trucking/us-east-1/portal"},
		quotas:    Quotas{HealthChecks: Quota{Name: QuotaHealthChecks, Needed: 4}, RecordSets: Quota{Name: QuotaRecordSets, Needed: 16}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.current.Records {
				tt.current.Records[i] = Record{Name: fmt.Sprintf("r%d.fleet.example.com", i), Type: "NS"}
			}
			ch := Plan(Desired(model, allHealthy), tt.current)
			var published, over []string
			for _, g := range ch.Records {
				if !slices.Contains(published, g.Unit.String()) && g.Unit.App == "portal" {
					published = append(published, g.Unit.String())
				}
			}
			for _, o := range ch.OverQuota {
				over = append(over, o.Unit.String())
			}
			if diff := cmp.Diff(tt.published, published); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.over, over); diff != "" {
				t.Errorf("over quota (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.quotas, ch.Quotas); diff != "" {
				t.Errorf("quotas (-want +got):\n%s", diff)
			}
			creates := 0
			for _, h := range ch.HealthChecks {
				if h.Action == CreateCheck {
					creates++
				}
			}
			if l := tt.current.HealthCheckLimit; l > 0 && int64(tt.current.AccountHealthChecks+creates) > l {
				t.Errorf("the plan creates %d checks in an account with %d of %d", creates, tt.current.AccountHealthChecks, l)
			}
			if len(tt.over) > 0 && !strings.Contains(ch.OverQuota[0].String(), "over;") {
				t.Errorf("over-quota line says nothing of what to do: %s", ch.OverQuota[0])
			}
		})
	}
}

func TestPlanSharedHealthChecks(t *testing.T) {
	shared := testModel("charging", "trucking")
	shared.Fleet.Spec.DNS.HealthChecks = fleet.HealthChecksPerAppRegion

	t.Run("one check per app and region, probing the region's endpoint, used by every tenant there", func(t *testing.T) {
		ch := Plan(Desired(shared, allHealthy), State{Fleet: "acme"})
		var checks []string
		for _, h := range ch.HealthChecks {
			checks = append(checks, h.String())
		}
		want := []string{
			"create health check _shared/eu-west-2/portal: HTTPS ingress.eu-west-2.edge.example.net:443/healthz every 30s, threshold 3; new endpoint",
			"create health check _shared/us-east-1/portal: HTTPS lb-use1.elb.us-east-1.amazonaws.com:443/healthz every 30s, threshold 3; new endpoint",
		}
		if diff := cmp.Diff(want, checks); diff != "" {
			t.Errorf("health checks (-want +got):\n%s", diff)
		}
		var latency []string
		for _, g := range ch.Records {
			for _, c := range g.Changes {
				if c.Record.Type == "CNAME" && c.Record.SetIdentifier != "" {
					latency = append(latency, g.Unit.String()+" "+c.HealthCheck.String())
				}
			}
		}
		wantLatency := []string{
			"charging/eu-west-2/portal _shared/eu-west-2/portal", "charging/us-east-1/portal _shared/us-east-1/portal",
			"trucking/eu-west-2/portal _shared/eu-west-2/portal", "trucking/us-east-1/portal _shared/us-east-1/portal",
		}
		if diff := cmp.Diff(wantLatency, latency); diff != "" {
			t.Errorf("latency records and their checks (-want +got):\n%s", diff)
		}
		if got := ch.Quotas.HealthChecks.Needed; got != 2 {
			t.Errorf("health checks needed: %d, want 2", got)
		}
		after := simulate(t, State{Fleet: "acme"}, ch)
		if next := Plan(Desired(shared, allHealthy), after); !next.Empty() {
			t.Errorf("does not converge:\n%s", strings.Join(next.Lines(), "\n"))
		}
		// A tenant removed keeps the check its app and region still use; the last
		// one removed lets it go once no record uses it.
		oneLeft := testModel("trucking")
		oneLeft.Fleet.Spec.DNS.HealthChecks = fleet.HealthChecksPerAppRegion
		if w := Withdrawal(Desired(oneLeft, allHealthy), after); len(w.DeleteHealthChecks) != 0 {
			t.Errorf("withdrawing a tenant deletes a shared check: %v", w.Lines())
		}
		none := testModel()
		none.Fleet.Spec.DNS.HealthChecks = fleet.HealthChecksPerAppRegion
		gone := simulate(t, after, Withdrawal(Desired(none, allHealthy), after))
		if w := Withdrawal(Desired(none, allHealthy), gone); len(w.DeleteHealthChecks) != 2 {
			t.Errorf("the shared checks of an app no tenant uses are not deleted: %v", w.Lines())
		}
	})

	t.Run("moving a fleet to shared checks moves the records, then deletes the per-placement checks", func(t *testing.T) {
		cur := applied(t, testModel("charging", "trucking"))
		ch := Plan(Desired(shared, allHealthy), cur)
		creates, upserts := 0, 0
		for _, h := range ch.HealthChecks {
			if h.Action == CreateCheck {
				creates++
			}
		}
		for _, g := range ch.Records {
			for _, c := range g.Changes {
				if c.Action == Upsert && c.Record.Type == "CNAME" {
					upserts++
				}
			}
		}
		if creates != 2 || upserts != 4 || len(ch.DeleteHealthChecks) != 0 {
			t.Errorf("%d checks created, %d latency records moved, %d checks deleted; want 2, 4, 0 (deleted once unused):\n%s",
				creates, upserts, len(ch.DeleteHealthChecks), strings.Join(ch.Lines(), "\n"))
		}
		next := Plan(Desired(shared, allHealthy), simulate(t, cur, ch))
		if len(next.DeleteHealthChecks) != 4 || len(next.HealthChecks)+len(next.Records) != 0 {
			t.Errorf("the next plan: %s", strings.Join(next.Lines(), "\n"))
		}
	})
}

// Only keeps the endpoints of the placements it is asked for, as Desired would
// have placed them.
func TestOnlyIsDesiredFiltered(t *testing.T) {
	m, err := fleet.LoadDir(filepath.Join("..", "..", "fleet-example"))
	if err != nil {
		t.Fatal(err)
	}
	all := Desired(m, func(fleet.UnitID) bool { return true })
	for _, keep := range []func(fleet.UnitID) bool{
		func(id fleet.UnitID) bool { return id.Tenant == "trucking" },
		func(id fleet.UnitID) bool { return id.Region == "eu-west-2" },
		func(fleet.UnitID) bool { return false },
	} {
		if diff := cmp.Diff(Desired(m, keep), Only(all, keep)); diff != "" {
			t.Errorf("Only differs from Desired (-Desired +Only):\n%s", diff)
		}
	}
	if len(all) == 0 {
		t.Fatal("fleet-example exposes nothing; the test checks nothing")
	}
}
