package reconciler_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// The orchestration tests run RunOnce against the fakes of fakes_test.go: the
// rules of a pass (waves, the order of applies and prunes, what holds deletions,
// when DNS changes) without starting a region.

// testRevision is the revision every pass applies; the reports quote its first 12
// characters.
const testRevision = "4b825dc642cb6eb9a060e54bf8d69288fee49040"

// testRegions are the regions of the test fleet, sorted; its waves roll out
// eu-west-2, then us-east-1, then ap-northeast-2.
var testRegions = []string{"ap-northeast-2", "eu-west-2", "us-east-1"}

// testFleet is a fleet of three regions in three waves, the exposed app portal
// and the internal app worker, and the tenants given.
func testFleet(tenants ...*fleet.Tenant) *fleet.Model {
	m := &fleet.Model{Fleet: &fleet.Fleet{Metadata: fleet.ObjectMeta{Name: "acme"}}}
	m.Fleet.Spec.DNS = fleet.DNS{Zone: "fleet.example.com", HostedZoneID: "ZTEST"}
	m.Fleet.Spec.Waves = []fleet.Wave{
		{Name: "canary", Regions: []string{"eu-west-2"}},
		{Name: "americas", Regions: []string{"us-east-1"}},
		{Name: "asia", Regions: []string{"ap-northeast-2"}},
	}
	for _, name := range testRegions {
		r := &fleet.Region{Metadata: fleet.ObjectMeta{Name: name}}
		r.Spec.AWSRegion = name
		r.Spec.Endpoint = fleet.Endpoint{Type: fleet.EndpointCNAME, Target: "ingress." + name + ".edge.example.net"}
		m.Regions = append(m.Regions, r)
	}
	portal := &fleet.App{Metadata: fleet.ObjectMeta{Name: "portal"}}
	portal.Spec.Expose = &fleet.Expose{Subdomain: "portal", Port: 443, Protocol: fleet.ProtocolHTTPS, HealthCheck: fleet.HealthCheck{Path: "/healthz"}}
	worker := &fleet.App{Metadata: fleet.ObjectMeta{Name: "worker"}}
	m.Apps = []*fleet.App{portal, worker}
	m.Tenants = tenants
	slices.SortFunc(m.Tenants, func(a, b *fleet.Tenant) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return m
}

// tenant is a tenant running apps in every one of regions.
func tenant(name string, regions []string, apps ...string) *fleet.Tenant {
	t := &fleet.Tenant{Metadata: fleet.ObjectMeta{Name: name}}
	t.Spec.Regions = regions
	for _, a := range apps {
		t.Spec.Apps = append(t.Spec.Apps, fleet.TenantApp{Name: a})
	}
	return t
}

// standardFleet is testFleet with charging in eu-west-2 and us-east-1 and
// trucking in every region, both running portal and worker: 10 objects in each of
// eu-west-2 and us-east-1, 5 in ap-northeast-2.
func standardFleet() *fleet.Model {
	return testFleet(
		tenant("charging", []string{"eu-west-2", "us-east-1"}, "portal", "worker"),
		tenant("trucking", testRegions, "portal", "worker"),
	)
}

// revision is a fleet and what its units render to.
type revision struct {
	model  *fleet.Model
	units  map[fleet.UnitID]string // objects of every unit that renders; see renderUnit
	failed []fleet.UnitID
}

// revisionOf renders every unit of m: a namespace unit holds its Namespace, a
// placement a ConfigMap and a Deployment named after its app.
func revisionOf(m *fleet.Model) revision {
	rev := revision{model: m, units: map[fleet.UnitID]string{}}
	for _, t := range m.Tenants {
		for _, region := range t.Spec.Regions {
			rev.units[fleet.NamespaceUnit(t.Metadata.Name, region)] = "Namespace/" + t.Metadata.Name
		}
	}
	for _, p := range m.Placements() {
		rev.units[p.ID()] = "ConfigMap/" + p.App.Metadata.Name + " Deployment/" + p.App.Metadata.Name
	}
	return rev
}

// set makes unit render to objects.
func (r revision) set(unit, objects string) revision {
	r.units = maps.Clone(r.units)
	r.units[mustUnit(unit)] = objects
	return r
}

// app makes every placement of app render to objects.
func (r revision) app(app, objects string) revision {
	r.units = maps.Clone(r.units)
	for id := range r.units {
		if id.App == app {
			r.units[id] = objects
		}
	}
	return r
}

// failing makes units fail to render.
func (r revision) failing(units ...string) revision {
	r.units = maps.Clone(r.units)
	r.failed = slices.Clone(r.failed)
	for _, u := range units {
		delete(r.units, mustUnit(u))
		r.failed = append(r.failed, mustUnit(u))
	}
	return r
}

// world is the fakes of one test: a cluster per region and a zone, logging into
// one event log.
type world struct {
	log      *eventLog
	clusters map[string]*fakeCluster
	dns      *fakeDNS
}

// emptyWorld is a fleet's first pass: empty regions and an empty zone.
func emptyWorld() *world {
	w := &world{log: &eventLog{}, clusters: map[string]*fakeCluster{}}
	for _, r := range testRegions {
		w.clusters[r] = newFakeCluster(r, w.log)
	}
	w.dns = newFakeDNS("acme", w.log)
	return w
}

// lastPass is the world as a pass that applied rev left it: every unit of rev in
// its region, every exposed placement published.
func lastPass(t *testing.T, rev revision) *world {
	t.Helper()
	w := emptyWorld()
	for id, objects := range rev.units {
		w.clusters[id.Region].hold(inventoryOf(id, objects))
	}
	if err := w.dns.publish(rev.model); err != nil {
		t.Fatal(err)
	}
	return w
}

// run runs one pass of rev.
func (w *world) run(t *testing.T, rev revision, allowMassDeletion bool) *reconciler.Report {
	t.Helper()
	return w.runWith(t, rev, allowMassDeletion, func(*reconciler.Options) {})
}

// runWith runs one pass of rev with options changed by opts.
func (w *world) runWith(t *testing.T, rev revision, allowMassDeletion bool, opts func(*reconciler.Options)) *reconciler.Report {
	t.Helper()
	clusters := map[string]reconciler.Cluster{}
	for name, c := range w.clusters {
		clusters[name] = c
	}
	o := reconciler.Options{
		Renderer:      &fakeRenderer{res: renderResult(testRevision, rev.units, rev.failed)},
		Clusters:      clusters,
		HealthTimeout: time.Second,
		DNS:           w.dns,
	}
	opts(&o)
	r := reconciler.New(o)
	report, err := r.RunOnce(t.Context(), render.Snapshot{Dir: "/snapshots/" + testRevision, Revision: testRevision, Model: rev.model}, allowMassDeletion)
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// verbs returns, for each region that was called, the kinds of its calls in the
// order they first came.
func (w *world) verbs() map[string][]string {
	out := map[string][]string{}
	for _, e := range w.log.all() {
		if e.who != "dns" && !slices.Contains(out[e.who], e.verb) {
			out[e.who] = append(out[e.who], e.verb)
		}
	}
	return out
}

// calls returns the units a region's calls of verb were for, sorted.
func (w *world) calls(region, verb string) []string {
	var out []string
	for _, e := range w.log.all() {
		if e.who == region && e.verb == verb {
			out = append(out, e.what)
		}
	}
	slices.Sort(out)
	return out
}

// holds returns what each region holds after the pass.
func (w *world) holds() map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, c := range w.clusters {
		out[name] = c.holds()
	}
	return out
}

// isPrune and isDNSApply select events of the log.
func isPrune(e event) bool    { return e.verb == "prune" }
func isDNSApply(e event) bool { return e.who == "dns" && e.verb == "apply" }

// held returns each region's held deletions, for the regions that hold some.
func held(r *reconciler.Report) map[string]string {
	out := map[string]string{}
	for name, rr := range r.Regions {
		if rr.Changes.Held != "" {
			out[name] = rr.Changes.Held
		}
	}
	return out
}

// outcome is a UnitResult as text.
type outcome struct {
	Action, Err       string
	Pruned            bool
	Health, HealthErr string
}

// outcomes returns the outcome of each unit of a region.
func outcomes(rr *reconciler.RegionReport) map[string]outcome {
	out := map[string]outcome{}
	for id, u := range rr.Units {
		out[id.String()] = outcome{Action: u.Action.String(), Err: errText(u.Err), Pruned: u.Pruned, Health: u.Health.String(), HealthErr: errText(u.HealthErr)}
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// errProtected is how a region refuses to delete object.
func errProtected(object string) error {
	parts := strings.Split(object, "/")
	resource := schema.GroupResource{Resource: strings.ToLower(parts[0]) + "s"}
	return &apply.Error{Object: object, Op: "delete failed",
		Err: apierrors.NewForbidden(resource, parts[len(parts)-1], errors.New("protected by policy"))}
}

// Errors the fake regions return.
var (
	errUnreachable = errors.New(`Get "https://eu-west-2.k8s.example.net/api": dial tcp 10.0.0.1:443: connect: connection refused`)
	errDenied      = &apply.Error{Object: "Deployment/trucking/portal", Op: "apply failed",
		Err: errors.New(`admission webhook "policy.example.com" denied the request: image is not signed`)}
	errNotReady = errors.New("Deployment/trucking/portal: InProgress: Deployment does not have minimum availability.")
	errCrashing = errors.New("Deployment/trucking/portal: Failed: Deployment exceeded its progress deadline")
	errNoHealth = &apply.Error{Object: "Deployment/trucking/portal", Op: "read health",
		Err: apierrors.NewServiceUnavailable("the server is currently unable to handle the request")}
)

func TestRunOnceWaves(t *testing.T) {
	stopped := func(wave string) string {
		return "wave " + wave + " is not healthy, so revision 4b825dc642cb does not go on to later waves"
	}
	waves := func(healthy ...bool) []reconciler.WaveReport {
		all := []reconciler.WaveReport{
			{Name: "canary", Regions: []string{"eu-west-2"}},
			{Name: "americas", Regions: []string{"us-east-1"}},
			{Name: "asia", Regions: []string{"ap-northeast-2"}},
		}
		for i := range all {
			if i < len(healthy) {
				all[i].Healthy = healthy[i]
			} else {
				all[i].Skipped = true
			}
		}
		return all
	}
	full := []string{"inventories", "apply", "wait"}

	tests := []struct {
		name    string
		fault   func(w *world)
		waves   []reconciler.WaveReport
		stopped string
		// verbs are the calls each region saw; a region of a skipped wave sees none.
		verbs map[string][]string
	}{{
		name:  "a healthy wave lets the next one run",
		waves: waves(true, true, true),
		verbs: map[string][]string{"eu-west-2": full, "us-east-1": full, "ap-northeast-2": full},
	}, {
		name:    "an apply failure in the first wave stops the revision",
		fault:   func(w *world) { w.clusters["eu-west-2"].failApply("trucking/eu-west-2/portal", errDenied) },
		waves:   waves(false),
		stopped: stopped("canary"),
		verbs:   map[string][]string{"eu-west-2": {"inventories", "apply"}},
	}, {
		// An object the API server refuses to delete, for good, must not wedge the
		// fleet: its unit fails and is retried, the revision goes on.
		name: "a prune refused in the first wave does not stop the revision",
		fault: func(w *world) {
			w.clusters["eu-west-2"].leave("trucking/eu-west-2/portal", "ConfigMap/portal-old")
			w.clusters["eu-west-2"].failPrune("trucking/eu-west-2/portal", errProtected("ConfigMap/trucking/portal-old"))
		},
		waves: waves(true, true, true),
		verbs: map[string][]string{"eu-west-2": {"inventories", "apply", "prune", "wait"}, "us-east-1": full, "ap-northeast-2": full},
	}, {
		name: "a unit of the first wave still progressing at the health timeout stops the revision",
		fault: func(w *world) {
			w.clusters["eu-west-2"].reportHealth("charging/eu-west-2/portal", apply.Progressing, errNotReady)
		},
		waves:   waves(false),
		stopped: stopped("canary"),
		verbs:   map[string][]string{"eu-west-2": full},
	}, {
		name: "a failed unit of the first wave stops the revision",
		fault: func(w *world) {
			w.clusters["eu-west-2"].reportHealth("trucking/eu-west-2/portal", apply.Failed, errCrashing)
		},
		waves:   waves(false),
		stopped: stopped("canary"),
		verbs:   map[string][]string{"eu-west-2": full},
	}, {
		name: "a unit of the first wave whose health cannot be read stops the revision",
		fault: func(w *world) {
			w.clusters["eu-west-2"].reportHealth("trucking/eu-west-2/portal", apply.Progressing, errNoHealth)
		},
		waves:   waves(false),
		stopped: stopped("canary"),
		verbs:   map[string][]string{"eu-west-2": full},
	}, {
		name:    "an unreachable region in the first wave stops the revision",
		fault:   func(w *world) { w.clusters["eu-west-2"].failInventories(errUnreachable) },
		waves:   waves(false),
		stopped: stopped("canary"),
		verbs:   map[string][]string{"eu-west-2": {"inventories"}},
	}, {
		name:    "a region of the first wave without a cluster stops the revision",
		fault:   func(w *world) { delete(w.clusters, "eu-west-2") },
		waves:   waves(false),
		stopped: stopped("canary"),
		verbs:   map[string][]string{},
	}, {
		name: "an unhealthy second wave stops the third",
		fault: func(w *world) {
			w.clusters["us-east-1"].reportHealth("trucking/us-east-1/worker", apply.Failed, errCrashing)
		},
		waves:   waves(true, false),
		stopped: stopped("americas"),
		verbs:   map[string][]string{"eu-west-2": full, "us-east-1": full},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := lastPass(t, revisionOf(standardFleet()))
			if tt.fault != nil {
				tt.fault(w)
			}
			report := w.run(t, revisionOf(standardFleet()).app("portal", "ConfigMap/portal=v2 Deployment/portal"), false)
			if diff := cmp.Diff(tt.waves, report.Waves); diff != "" {
				t.Errorf("waves (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stopped, report.Stopped); diff != "" {
				t.Errorf("stopped (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.verbs, w.verbs()); diff != "" {
				t.Errorf("calls to each region (-want +got):\n%s", diff)
			}
			var reached []string
			for _, wave := range tt.waves {
				if !wave.Skipped {
					reached = append(reached, wave.Regions...)
				}
			}
			slices.Sort(reached)
			if diff := cmp.Diff(reached, slices.Sorted(maps.Keys(report.Regions))); diff != "" {
				t.Errorf("regions reported (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunOnceAppliesNamespacesBeforePlacements(t *testing.T) {
	withFreight := standardFleet()
	withFreight.Tenants = append(withFreight.Tenants, tenant("freight", []string{"ap-northeast-2", "eu-west-2"}, "portal", "worker"))

	tests := []struct {
		name   string
		world  func(t *testing.T) *world
		rev    revision
		phases map[string][]string // the kinds of units applied in each region, in runs
	}{{
		name:   "a fleet's first pass applies every namespace of a region before any placement",
		world:  func(*testing.T) *world { return emptyWorld() },
		rev:    revisionOf(standardFleet()),
		phases: map[string][]string{"eu-west-2": {"namespaces", "placements"}, "us-east-1": {"namespaces", "placements"}, "ap-northeast-2": {"namespaces", "placements"}},
	}, {
		name:   "a new tenant's namespace is applied before its placements and the placements updated beside them",
		world:  func(t *testing.T) *world { return lastPass(t, revisionOf(standardFleet())) },
		rev:    revisionOf(withFreight).app("portal", "ConfigMap/portal=v2 Deployment/portal"),
		phases: map[string][]string{"eu-west-2": {"namespaces", "placements"}, "us-east-1": {"placements"}, "ap-northeast-2": {"namespaces", "placements"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.world(t)
			for _, c := range w.clusters {
				// Long enough that a placement applied beside its namespace finds
				// no namespace and fails, as it would against an API server.
				c.namespaceDelay = 5 * time.Millisecond
			}
			report := w.run(t, tt.rev, false)
			if err := report.Err(); err != nil {
				t.Errorf("pass: %v", err)
			}
			phases := map[string][]string{}
			for _, e := range w.log.all() {
				if e.verb != "apply" || e.who == "dns" {
					continue
				}
				phase := "placements"
				if mustUnit(e.what).IsNamespace() {
					phase = "namespaces"
				}
				if p := phases[e.who]; len(p) == 0 || p[len(p)-1] != phase {
					phases[e.who] = append(p, phase)
				}
			}
			if diff := cmp.Diff(tt.phases, phases); diff != "" {
				t.Errorf("applies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunOncePruneGating(t *testing.T) {
	standard := revisionOf(standardFleet())
	withLeftover := standard.set("trucking/eu-west-2/portal", "ConfigMap/portal ConfigMap/portal-old Deployment/portal")
	withoutCharging := revisionOf(testFleet(tenant("trucking", testRegions, "portal", "worker")))

	tests := []struct {
		name          string
		before, after revision
		fault         func(w *world)
		allow         bool
		// held are the regions' held deletions, prunes the prune calls in order.
		held   map[string]string
		prunes []string
		// bug, when set, skips a case that fails because of a known bug.
		bug string
	}{{
		name:   "an update's objects no longer rendered are pruned",
		before: withLeftover,
		after:  standard,
		held:   map[string]string{},
		prunes: []string{"eu-west-2 prune trucking/eu-west-2/portal: ConfigMap/trucking/portal-old"},
	}, {
		name:   "objects an earlier pass left behind are pruned from an unchanged unit",
		before: standard,
		after:  standard,
		fault:  func(w *world) { w.clusters["us-east-1"].leave("charging/us-east-1/worker", "ConfigMap/worker-old") },
		held:   map[string]string{},
		prunes: []string{"us-east-1 prune charging/us-east-1/worker: ConfigMap/charging/worker-old"},
	}, {
		name:   "a tenant's placements are pruned before its namespace",
		before: standard,
		after:  withoutCharging,
		allow:  true,
		held:   map[string]string{},
		prunes: []string{
			"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"eu-west-2 prune charging/eu-west-2/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
			"eu-west-2 prune charging/eu-west-2 (gone): Namespace/charging",
			"us-east-1 prune charging/us-east-1/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"us-east-1 prune charging/us-east-1/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
			"us-east-1 prune charging/us-east-1 (gone): Namespace/charging",
		},
	}, {
		// Not held by the plan: the region stops before its prune step.
		name:   "a failed apply in the region holds its deletions",
		before: withLeftover,
		after:  standard.set("charging/eu-west-2/portal", "ConfigMap/portal=v2 Deployment/portal"),
		fault:  func(w *world) { w.clusters["eu-west-2"].failApply("charging/eu-west-2/portal", errDenied) },
		held:   map[string]string{},
	}, {
		name:   "a unit that failed to render, in any region, holds every deletion",
		before: withLeftover,
		after:  standard.failing("trucking/us-east-1/worker"),
		held:   map[string]string{"eu-west-2": "an earlier step failed, and nothing is deleted because something failed"},
	}, {
		// The failed prune does not stop the revision at the canary wave: the
		// next wave's deletions go ahead.
		name:   "a namespace stays while a placement in it failed to prune, and later waves go on",
		before: standard,
		after:  withoutCharging,
		allow:  true,
		fault: func(w *world) {
			w.clusters["eu-west-2"].failPrune("charging/eu-west-2/portal", errProtected("Deployment/charging/portal"))
		},
		held: map[string]string{},
		prunes: []string{
			"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"eu-west-2 prune charging/eu-west-2/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
			"us-east-1 prune charging/us-east-1/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"us-east-1 prune charging/us-east-1/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
			"us-east-1 prune charging/us-east-1 (gone): Namespace/charging",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip(tt.bug)
			}
			w := lastPass(t, tt.before)
			if tt.fault != nil {
				tt.fault(w)
			}
			before := w.holds()
			report := w.run(t, tt.after, tt.allow)
			if diff := cmp.Diff(tt.held, held(report)); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.prunes, w.log.lines(isPrune)); diff != "" {
				t.Errorf("prunes (-want +got):\n%s", diff)
			}
			if len(tt.prunes) == 0 {
				if diff := cmp.Diff(before, w.holds()); diff != "" {
					t.Errorf("inventories changed though nothing was pruned (-before +after):\n%s", diff)
				}
			}
		})
	}
}

func TestRunOnceMassDeletionHold(t *testing.T) {
	standard := revisionOf(standardFleet())
	withoutCharging := revisionOf(testFleet(tenant("trucking", testRegions, "portal", "worker")))
	// workers restricts each tenant's worker to some of its regions (nil: all).
	workers := func(charging, trucking []string) *fleet.Model {
		m := standardFleet()
		m.Tenants[0].Spec.Apps[1].Regions = charging
		m.Tenants[1].Spec.Apps[1].Regions = trucking
		return m
	}
	limit := func(m *fleet.Model, percent int) *fleet.Model {
		m.Fleet.Spec.Safety.MaxDeletePercent = &percent
		return m
	}
	notEU := []string{"us-east-1", "ap-northeast-2"}
	// 4 of eu-west-2's 10 objects deleted.
	noWorkersInEU := workers([]string{"us-east-1"}, notEU)
	// In the reverse of the plan's order.
	pruneNoWorkers := []string{
		"eu-west-2 prune trucking/eu-west-2/worker (gone): ConfigMap/trucking/worker Deployment/trucking/worker",
		"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
	}
	pruneCharging := []string{
		"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
		"eu-west-2 prune charging/eu-west-2/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
		"eu-west-2 prune charging/eu-west-2 (gone): Namespace/charging",
		"us-east-1 prune charging/us-east-1/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
		"us-east-1 prune charging/us-east-1/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
		"us-east-1 prune charging/us-east-1 (gone): Namespace/charging",
	}
	// 1 of ap-northeast-2's 5 objects deleted.
	oneOfFive := "ap-northeast-2 prune trucking/ap-northeast-2/portal: Deployment/trucking/portal"

	tests := []struct {
		name   string
		after  revision
		allow  bool
		held   map[string]string
		prunes []string
	}{{
		name:  "deleting a tenant's namespaces is held",
		after: withoutCharging,
		held: map[string]string{
			"eu-west-2": "the revision deletes tenant namespace charging/eu-west-2; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"",
			"us-east-1": "the revision deletes tenant namespace charging/us-east-1; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"",
		},
	}, {
		name:   "deleting a tenant's namespaces goes ahead when allowed",
		after:  withoutCharging,
		allow:  true,
		held:   map[string]string{},
		prunes: pruneCharging,
	}, {
		name:  "deleting more than MaxDeletePercent of a region's objects is held",
		after: revisionOf(noWorkersInEU),
		held:  map[string]string{"eu-west-2": "the revision deletes 4 of 10 objects (40%), more than the limit of 30%; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\""},
	}, {
		name:   "deleting more than MaxDeletePercent goes ahead when allowed",
		after:  revisionOf(noWorkersInEU),
		allow:  true,
		held:   map[string]string{},
		prunes: pruneNoWorkers,
	}, {
		name:  "deleting exactly MaxDeletePercent goes ahead",
		after: revisionOf(workers(nil, notEU)).set("charging/eu-west-2/portal", "ConfigMap/portal"),
		held:  map[string]string{},
		prunes: []string{
			"eu-west-2 prune trucking/eu-west-2/worker (gone): ConfigMap/trucking/worker Deployment/trucking/worker",
			"eu-west-2 prune charging/eu-west-2/portal: Deployment/charging/portal",
		},
	}, {
		name:   "the fleet's MaxDeletePercent replaces the default",
		after:  revisionOf(limit(workers([]string{"us-east-1"}, notEU), 40)),
		held:   map[string]string{},
		prunes: pruneNoWorkers,
	}, {
		name:   "one deletion of five is under the default limit",
		after:  standard.set("trucking/ap-northeast-2/portal", "ConfigMap/portal"),
		held:   map[string]string{},
		prunes: []string{oneOfFive},
	}, {
		name:  "a MaxDeletePercent of 0 holds a single deletion",
		after: revisionOf(limit(standardFleet(), 0)).set("trucking/ap-northeast-2/portal", "ConfigMap/portal"),
		held:  map[string]string{"ap-northeast-2": "the revision deletes 1 of 5 objects (20%), more than the limit of 0%; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\""},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := lastPass(t, standard)
			before := w.holds()
			report := w.run(t, tt.after, tt.allow)
			if diff := cmp.Diff(tt.held, held(report)); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.prunes, w.log.lines(isPrune)); diff != "" {
				t.Errorf("prunes (-want +got):\n%s", diff)
			}
			if len(tt.held) > 0 {
				if diff := cmp.Diff(before, w.holds()); diff != "" {
					t.Errorf("a held pass changed the regions' inventories (-before +after):\n%s", diff)
				}
				// Held deletions are not a failure: the revision goes on.
				if report.Stopped != "" {
					t.Errorf("stopped: %s", report.Stopped)
				}
			}
		})
	}
}

func TestRunOnceDNS(t *testing.T) {
	standard := revisionOf(standardFleet())
	withoutCharging := revisionOf(testFleet(tenant("trucking", testRegions, "portal", "worker")))
	drained := revisionOf(standardFleet())
	drained.model.Fleet.Spec.DNS.Drain = []string{"us-east-1"}
	withFreight := standardFleet()
	withFreight.Tenants = append(withFreight.Tenants, tenant("freight", []string{"ap-northeast-2"}, "portal"))
	newPath := revisionOf(standardFleet())
	for _, a := range newPath.model.Apps {
		if a.Spec.Expose != nil {
			a.Spec.Expose.HealthCheck.Path = "/ready"
		}
	}
	all := []string{"charging/eu-west-2/portal", "charging/us-east-1/portal", "trucking/ap-northeast-2/portal", "trucking/eu-west-2/portal", "trucking/us-east-1/portal"}
	except := func(units ...string) []string {
		return slices.DeleteFunc(slices.Clone(all), func(u string) bool { return slices.Contains(units, u) })
	}
	const withdrawFailed = "DNS records could not be withdrawn, and nothing is deleted because something failed"
	accessDenied := errors.New("AccessDenied: User: arn:aws:iam::123456789012:user/meridian is not authorized to perform: route53:ChangeResourceRecordSets")

	tests := []struct {
		name   string
		before *revision // nil: an empty fleet and zone
		after  revision
		allow  bool
		fault  func(w *world)
		// events are the prunes and DNS changes, in order.
		events    []string
		published []string
		held      map[string]string
		dnsErr    string
		// bug, when set, skips a case that fails because of a known bug.
		bug string
	}{{
		name:   "a removed tenant's records leave DNS before any of its workloads is pruned",
		before: &standard,
		after:  withoutCharging,
		allow:  true,
		// Each region's, once its guard let its deletions through.
		events: []string{
			"dns apply -charging/eu-west-2/portal",
			"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"eu-west-2 prune charging/eu-west-2/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
			"eu-west-2 prune charging/eu-west-2 (gone): Namespace/charging",
			"dns apply -charging/us-east-1/portal",
			"us-east-1 prune charging/us-east-1/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"us-east-1 prune charging/us-east-1/portal (gone): ConfigMap/charging/portal Deployment/charging/portal",
			"us-east-1 prune charging/us-east-1 (gone): Namespace/charging",
			// Their health checks go once no record uses them.
			"dns apply -check charging/eu-west-2/portal -check charging/us-east-1/portal",
		},
		published: except("charging/eu-west-2/portal", "charging/us-east-1/portal"),
		held:      map[string]string{},
	}, {
		name:   "a drained region's records are withdrawn and its workloads kept",
		before: &standard,
		after:  drained,
		events: []string{
			"dns apply -charging/us-east-1/portal -trucking/us-east-1/portal",
			"dns apply -check charging/us-east-1/portal -check trucking/us-east-1/portal",
		},
		published: except("charging/us-east-1/portal", "trucking/us-east-1/portal"),
		held:      map[string]string{},
	}, {
		name:   "when Route53 refuses the withdrawal nothing is pruned in any region",
		before: &standard,
		after:  withoutCharging,
		allow:  true,
		fault:  func(w *world) { w.dns.applyErr = accessDenied },
		// The first wave's withdrawal failed: no later region tries.
		events:    []string{"dns apply -charging/eu-west-2/portal: " + accessDenied.Error()},
		published: all,
		held:      map[string]string{"eu-west-2": withdrawFailed, "us-east-1": withdrawFailed},
		dnsErr:    "withdraw: " + accessDenied.Error(),
	}, {
		name:      "when the zone cannot be read nothing is pruned in any region",
		before:    &standard,
		after:     withoutCharging,
		allow:     true,
		fault:     func(w *world) { w.dns.currentErr = accessDenied },
		published: all,
		held:      map[string]string{"eu-west-2": withdrawFailed, "us-east-1": withdrawFailed},
		dnsErr:    accessDenied.Error(),
	}, {
		name:   "a removal held by the mass-deletion guard keeps its records",
		before: &standard,
		after:  withoutCharging,
		held: map[string]string{
			"eu-west-2": "the revision deletes tenant namespace charging/eu-west-2; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"",
			"us-east-1": "the revision deletes tenant namespace charging/us-east-1; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"",
		},
		published: all,
	}, {
		name:   "when Route53 refuses to publish the pass says so",
		before: &standard,
		after:  standard,
		fault: func(w *world) {
			w.clusters["ap-northeast-2"].reportHealth("trucking/ap-northeast-2/portal", apply.Failed, errCrashing)
			w.dns.applyErr = accessDenied
		},
		events:    []string{"dns apply -trucking/ap-northeast-2/portal: " + accessDenied.Error()},
		published: all,
		held:      map[string]string{},
		dnsErr:    "publish: " + accessDenied.Error(),
	}, {
		name:   "a changed health path is published after the waves found each placement healthy, never before",
		before: &standard,
		after:  newPath,
		fault: func(w *world) {
			w.clusters["ap-northeast-2"].reportHealth("trucking/ap-northeast-2/portal", apply.Progressing, errNoHealth)
		},
		// trucking/ap-northeast-2/portal's health is not known: its check keeps the old path.
		events:    []string{"dns apply ~check charging/eu-west-2/portal ~check charging/us-east-1/portal ~check trucking/eu-west-2/portal ~check trucking/us-east-1/portal"},
		published: all,
		held:      map[string]string{},
	}, {
		name:  "a first pass publishes the placements found healthy, after the last wave",
		after: standard,
		fault: func(w *world) {
			w.clusters["ap-northeast-2"].reportHealth("trucking/ap-northeast-2/portal", apply.Progressing, errNotReady)
		},
		events:    []string{"dns apply +charging/eu-west-2/portal +charging/us-east-1/portal +trucking/eu-west-2/portal +trucking/us-east-1/portal"},
		published: except("trucking/ap-northeast-2/portal"),
		held:      map[string]string{},
	}, {
		name:   "a placement found failed loses its records",
		before: &standard,
		after:  standard,
		fault: func(w *world) {
			w.clusters["ap-northeast-2"].reportHealth("trucking/ap-northeast-2/portal", apply.Failed, errCrashing)
		},
		events:    []string{"dns apply -trucking/ap-northeast-2/portal"},
		published: except("trucking/ap-northeast-2/portal"),
		held:      map[string]string{},
	}, {
		name:   "a placement still progressing at the health timeout loses its records",
		before: &standard,
		after:  standard,
		fault: func(w *world) {
			w.clusters["ap-northeast-2"].reportHealth("trucking/ap-northeast-2/portal", apply.Progressing, errNotReady)
		},
		events:    []string{"dns apply -trucking/ap-northeast-2/portal"},
		published: except("trucking/ap-northeast-2/portal"),
		held:      map[string]string{},
	}, {
		name:   "a placement whose health cannot be read keeps its records",
		before: &standard,
		after:  standard,
		fault: func(w *world) {
			w.clusters["ap-northeast-2"].reportHealth("trucking/ap-northeast-2/portal", apply.Progressing, errNoHealth)
		},
		published: all,
		held:      map[string]string{},
	}, {
		name:      "a placement in an unreachable region keeps its records",
		before:    &standard,
		after:     standard,
		fault:     func(w *world) { w.clusters["ap-northeast-2"].failInventories(errUnreachable) },
		published: all,
		held:      map[string]string{},
	}, {
		name:   "the placements of waves not reached keep their records, and new ones there are not published",
		before: &standard,
		after:  revisionOf(withFreight),
		fault: func(w *world) {
			w.clusters["eu-west-2"].reportHealth("trucking/eu-west-2/portal", apply.Failed, errCrashing)
		},
		events: []string{"dns apply -trucking/eu-west-2/portal"},
		// freight/ap-northeast-2/portal is not published: its wave was not reached.
		published: except("trucking/eu-west-2/portal"),
		held:      map[string]string{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bug != "" {
				t.Skip(tt.bug)
			}
			w := emptyWorld()
			if tt.before != nil {
				w = lastPass(t, *tt.before)
			}
			// Route53 takes a while to be INSYNC: long enough that a prune not
			// waiting for the withdrawal would come first.
			w.dns.latency = 5 * time.Millisecond
			if tt.fault != nil {
				tt.fault(w)
			}
			report := w.run(t, tt.after, tt.allow)
			if diff := cmp.Diff(tt.events, w.log.lines(func(e event) bool { return isPrune(e) || isDNSApply(e) })); diff != "" {
				t.Errorf("prunes and DNS changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.published, w.dns.published()); diff != "" {
				t.Errorf("published (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.held, held(report)); diff != "" {
				t.Errorf("held (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.dnsErr, errText(report.DNS.Err)); diff != "" {
				t.Errorf("DNS error (-want +got):\n%s", diff)
			}
			// DNS gains or changes something only once every region's work is done:
			// no region is called after a publishing apply.
			events := w.log.all()
			reads, published := 0, -1
			for i, e := range events {
				if e.who == "dns" && e.verb == "current" {
					reads++
				}
				if e.who == "dns" && e.verb == "apply" && strings.ContainsAny(e.what, "+~") {
					published = i
				}
			}
			if published >= 0 {
				var late []string
				for _, e := range events[published+1:] {
					if e.who != "dns" {
						late = append(late, e.String())
					}
				}
				if len(late) > 0 {
					t.Errorf("regions called after DNS published:\n%s", strings.Join(late, "\n"))
				}
			}
			// The zone is read once a pass.
			if reads != 1 {
				t.Errorf("the zone was read %d times, want once", reads)
			}
		})
	}
}

func TestRunOnceUnitResults(t *testing.T) {
	standard := revisionOf(standardFleet())
	portalV2 := standard.app("portal", "ConfigMap/portal=v2 Deployment/portal")
	withLeftover := standard.set("trucking/eu-west-2/portal", "ConfigMap/portal ConfigMap/portal-old Deployment/portal")
	refused := errProtected("ConfigMap/trucking/portal-old")
	// failedInEU is the outcome of eu-west-2's units when a unit failed there:
	// the units in changed as given, the others unchanged, none waited for.
	failedInEU := func(changed map[string]outcome) map[string]outcome {
		out := map[string]outcome{}
		for id := range standard.units {
			if id.Region == "eu-west-2" {
				out[id.String()] = outcome{Action: "unchanged", Health: "unknown"}
			}
		}
		maps.Copy(out, changed)
		return out
	}

	tests := []struct {
		name        string
		before      revision
		after       revision
		fault       func(w *world)
		regionErr   string
		outcomes    map[string]outcome // of eu-west-2's units
		applied     []string           // eu-west-2's units applied
		failed      string             // the unit whose Err is checked
		step        reconciler.Step
		cause       error
		regionCalls []string
	}{{
		name:   "an apply failure is that unit's error, and the region's other units are applied",
		before: standard,
		after:  portalV2,
		fault:  func(w *world) { w.clusters["eu-west-2"].failApply("trucking/eu-west-2/portal", errDenied) },
		outcomes: failedInEU(map[string]outcome{
			"charging/eu-west-2/portal": {Action: "update", Health: "unknown"},
			"trucking/eu-west-2/portal": {Action: "update", Health: "unknown", Err: "trucking/eu-west-2/portal: " + errDenied.Error()},
		}),
		applied: []string{"charging/eu-west-2/portal", "trucking/eu-west-2/portal"},
		failed:  "trucking/eu-west-2/portal",
		step:    reconciler.StepApply,
		cause:   errDenied,
	}, {
		// A prune takes nothing away from what runs: the region still waits for
		// health, so the revision can go on to the next wave.
		name:   "a prune failure is that unit's error, and the region's other deletions and health wait are carried out",
		before: withLeftover.set("charging/eu-west-2/worker", "ConfigMap/worker ConfigMap/worker-old Deployment/worker"),
		after:  standard,
		fault:  func(w *world) { w.clusters["eu-west-2"].failPrune("trucking/eu-west-2/portal", refused) },
		outcomes: map[string]outcome{
			"charging/eu-west-2":        {Action: "unchanged", Health: "healthy"},
			"charging/eu-west-2/portal": {Action: "unchanged", Health: "healthy"},
			"charging/eu-west-2/worker": {Action: "update", Pruned: true, Health: "healthy"},
			"trucking/eu-west-2":        {Action: "unchanged", Health: "healthy"},
			"trucking/eu-west-2/portal": {Action: "update", Health: "healthy", Err: "trucking/eu-west-2/portal: prune: " + refused.Error()},
			"trucking/eu-west-2/worker": {Action: "unchanged", Health: "healthy"},
		},
		applied: []string{"charging/eu-west-2/worker", "trucking/eu-west-2/portal"},
		failed:  "trucking/eu-west-2/portal",
		step:    reconciler.StepPrune,
		cause:   refused,
	}, {
		name:   "a placement whose namespace unit failed is not applied",
		before: standard,
		after:  portalV2.set("trucking/eu-west-2", "Namespace/trucking=v2"),
		fault:  func(w *world) { w.clusters["eu-west-2"].failApply("trucking/eu-west-2", errDenied) },
		outcomes: failedInEU(map[string]outcome{
			"charging/eu-west-2/portal": {Action: "update", Health: "unknown"},
			"trucking/eu-west-2":        {Action: "update", Health: "unknown", Err: "trucking/eu-west-2: " + errDenied.Error()},
			"trucking/eu-west-2/portal": {Action: "update", Health: "unknown", Err: "trucking/eu-west-2/portal: not applied: its namespace unit trucking/eu-west-2 failed; it is applied once that unit is"},
		}),
		applied: []string{"charging/eu-west-2/portal", "trucking/eu-west-2"},
		failed:  "trucking/eu-west-2",
		step:    reconciler.StepApply,
		cause:   errDenied,
	}, {
		name:   "each unit waited for says how healthy it is and why",
		before: standard,
		after:  portalV2,
		fault: func(w *world) {
			w.clusters["eu-west-2"].reportHealth("trucking/eu-west-2/portal", apply.Progressing, errNotReady)
			w.clusters["eu-west-2"].reportHealth("trucking/eu-west-2/worker", apply.Failed, errCrashing)
			w.clusters["eu-west-2"].reportHealth("charging/eu-west-2/portal", apply.Progressing, errNoHealth)
		},
		outcomes: map[string]outcome{
			"charging/eu-west-2":        {Action: "unchanged", Health: "healthy"},
			"charging/eu-west-2/portal": {Action: "update", Health: "unknown", HealthErr: errNoHealth.Error()},
			"charging/eu-west-2/worker": {Action: "unchanged", Health: "healthy"},
			"trucking/eu-west-2":        {Action: "unchanged", Health: "healthy"},
			"trucking/eu-west-2/portal": {Action: "update", Health: "progressing", HealthErr: errNotReady.Error()},
			"trucking/eu-west-2/worker": {Action: "unchanged", Health: "unhealthy", HealthErr: errCrashing.Error()},
		},
		applied: []string{"charging/eu-west-2/portal", "trucking/eu-west-2/portal"},
	}, {
		name:        "an unreachable region has an error and no units",
		before:      standard,
		after:       portalV2,
		fault:       func(w *world) { w.clusters["eu-west-2"].failInventories(errUnreachable) },
		regionErr:   "read inventory: " + errUnreachable.Error(),
		outcomes:    map[string]outcome{},
		cause:       errUnreachable,
		regionCalls: []string{"eu-west-2 inventories"},
	}, {
		name:      "a region without a cluster has an error and no units",
		before:    standard,
		after:     portalV2,
		fault:     func(w *world) { delete(w.clusters, "eu-west-2") },
		regionErr: "region eu-west-2 has no cluster configured; add it to Meridian's configuration",
		outcomes:  map[string]outcome{},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := lastPass(t, tt.before)
			tt.fault(w)
			report := w.run(t, tt.after, false)
			rr := report.Regions["eu-west-2"]
			if diff := cmp.Diff(tt.regionErr, errText(rr.Err)); diff != "" {
				t.Errorf("region error (-want +got):\n%s", diff)
			}
			if tt.regionErr != "" && tt.cause != nil && !errors.Is(rr.Err, tt.cause) {
				t.Errorf("the region's error %v does not wrap the cluster's", rr.Err)
			}
			if diff := cmp.Diff(tt.outcomes, outcomes(rr)); diff != "" {
				t.Errorf("eu-west-2's units (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.applied, w.calls("eu-west-2", "apply")); diff != "" {
				t.Errorf("eu-west-2's units applied (-want +got):\n%s", diff)
			}
			if tt.regionCalls != nil {
				if diff := cmp.Diff(tt.regionCalls, w.log.lines(func(e event) bool { return e.who == "eu-west-2" })); diff != "" {
					t.Errorf("calls to eu-west-2 (-want +got):\n%s", diff)
				}
			}
			if tt.failed == "" {
				return
			}
			err := rr.Units[mustUnit(tt.failed)].Err
			var ue *reconciler.UnitError
			if !errors.As(err, &ue) {
				t.Fatalf("%s's error %T is not a *reconciler.UnitError", tt.failed, err)
			}
			if ue.Unit != mustUnit(tt.failed) || ue.Step != tt.step {
				t.Errorf("UnitError{Unit: %s, Step: %s}, want %s, %s", ue.Unit, ue.Step, tt.failed, tt.step)
			}
			var ae *apply.Error
			if !errors.Is(err, tt.cause) || !errors.As(err, &ae) || ae != tt.cause {
				t.Errorf("%s's error %v does not unwrap to the cluster's %v", tt.failed, err, tt.cause)
			}
			if !slices.ContainsFunc(rr.Problem().(interface{ Unwrap() []error }).Unwrap(), func(e error) bool { return e == err }) {
				t.Errorf("the region's problem %v does not hold the unit's error", rr.Problem())
			}
		})
	}
}

func TestRunOnceRedactsSecretValues(t *testing.T) {
	const secret = "hunter2-database-password"
	quoting := func(what string) error {
		return errors.New(what + `: Secret "db" is invalid: stringData.value: Invalid value: "` + secret + `": must not contain "hunter"`)
	}
	redacted := `Secret "db" is invalid: stringData.value: Invalid value: "` + secrets.Redacted + `": must not contain "hunter"`
	standard := revisionOf(standardFleet())
	withSecret := standard.set("trucking/eu-west-2/portal", "Secret/db="+secret+" ConfigMap/portal Deployment/portal")
	applyRefused := &apply.Error{Object: "Secret/trucking/db", Op: "apply failed", Err: quoting("admission webhook")}
	pruneRefused := &apply.Error{Object: "ConfigMap/trucking/portal-old", Op: "delete failed", Err: quoting("finalizer")}
	healthErr := quoting("Deployment/trucking/portal: Failed")
	unreachable := quoting("list inventories")

	tests := []struct {
		name   string
		before revision
		fault  func(c *fakeCluster)
		got    func(rr *reconciler.RegionReport) error
		cause  error
		want   string
	}{{
		name:   "in an apply error",
		before: standard,
		fault:  func(c *fakeCluster) { c.failApply("trucking/eu-west-2/portal", applyRefused) },
		got:    func(rr *reconciler.RegionReport) error { return rr.Units[mustUnit("trucking/eu-west-2/portal")].Err },
		cause:  applyRefused,
		want:   "trucking/eu-west-2/portal: Secret/trucking/db: apply failed: admission webhook: " + redacted,
	}, {
		name:   "in a prune error",
		before: standard.set("trucking/eu-west-2/portal", "ConfigMap/portal ConfigMap/portal-old Deployment/portal"),
		fault:  func(c *fakeCluster) { c.failPrune("trucking/eu-west-2/portal", pruneRefused) },
		got:    func(rr *reconciler.RegionReport) error { return rr.Units[mustUnit("trucking/eu-west-2/portal")].Err },
		cause:  pruneRefused,
		want:   "trucking/eu-west-2/portal: prune: ConfigMap/trucking/portal-old: delete failed: finalizer: " + redacted,
	}, {
		name:   "in a health error",
		before: standard,
		fault:  func(c *fakeCluster) { c.reportHealth("trucking/eu-west-2/portal", apply.Failed, healthErr) },
		got: func(rr *reconciler.RegionReport) error {
			return rr.Units[mustUnit("trucking/eu-west-2/portal")].HealthErr
		},
		cause: healthErr,
		want:  "Deployment/trucking/portal: Failed: " + redacted,
	}, {
		name:   "in an unreachable region's error",
		before: standard,
		fault:  func(c *fakeCluster) { c.failInventories(unreachable) },
		got:    func(rr *reconciler.RegionReport) error { return rr.Err },
		cause:  unreachable,
		want:   "read inventory: list inventories: " + redacted,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := lastPass(t, tt.before)
			tt.fault(w.clusters["eu-west-2"])
			report := w.run(t, withSecret, false)
			err := tt.got(report.Regions["eu-west-2"])
			if diff := cmp.Diff(tt.want, errText(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.cause) {
				t.Errorf("%v does not wrap the cluster's error", err)
			}
			if ae := (*apply.Error)(nil); errors.As(tt.cause, &ae) && (!errors.As(err, &ae) || ae != tt.cause) {
				t.Errorf("%v: errors.As does not reach the cluster's *apply.Error", err)
			}
			if s := errText(report.Err()); strings.Contains(s, secret) {
				t.Errorf("the report's error shows the secret: %s", s)
			}
		})
	}
}

// TestRunOnceDNSReadOnly is a replica that does not write Route53 (another holds
// the writer's Lease): it writes nothing there, and holds its deletions until the
// writer has withdrawn the records of what they remove.
func TestRunOnceDNSReadOnly(t *testing.T) {
	standard := revisionOf(standardFleet())
	withoutCharging := revisionOf(testFleet(tenant("trucking", testRegions, "portal", "worker")))
	w := lastPass(t, standard)
	readOnly := func(o *reconciler.Options) { o.DNSReadOnly = true }

	// A pass that deletes nothing does not read the zone: only the writer needs to.
	before := len(w.log.all())
	w.runWith(t, standard, false, readOnly)
	for _, e := range w.log.all()[before:] {
		if e.who == "dns" {
			t.Errorf("a replica that does not write Route53 called it in a pass that deletes nothing: %s", e)
		}
	}

	report := w.runWith(t, withoutCharging, true, readOnly)
	if got := w.log.lines(func(e event) bool { return isPrune(e) || isDNSApply(e) }); len(got) > 0 {
		t.Errorf("a replica that does not write Route53 pruned or wrote DNS while the records were there:\n%s", strings.Join(got, "\n"))
	}
	var waiting *reconciler.AwaitingWithdrawalError
	if !errors.As(report.DNS.Err, &waiting) || len(waiting.Units) != 2 {
		t.Fatalf("DNS error %v, want the two charging placements awaiting withdrawal", report.DNS.Err)
	}
	if diff := cmp.Diff(map[string]string{"eu-west-2": "DNS records could not be withdrawn, and nothing is deleted because something failed",
		"us-east-1": "DNS records could not be withdrawn, and nothing is deleted because something failed"}, held(report)); diff != "" {
		t.Errorf("held (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff([]fleet.UnitID{mustUnit("charging/eu-west-2/portal"), mustUnit("charging/us-east-1/portal")}, report.DNS.Going); diff != "" {
		t.Errorf("placements reported going (-want +got):\n%s", diff)
	}

	// The writer (its pass plans over every tenant, charging's not among its own)
	// keeps the records of a removal not reported going: the guard of the
	// replica that removes it may have held it.
	writer := func(reported map[fleet.UnitID]bool) func(o *reconciler.Options) {
		return func(o *reconciler.Options) {
			o.Clusters = map[string]reconciler.Cluster{} // the writer's own tenants are elsewhere
			o.DNSFleet = withoutCharging.model
			o.DNSTenants = func(tenant string) bool { return tenant != "charging" }
			o.DNSHealth = func(id fleet.UnitID) (bool, bool) { h, ok := reported[id]; return h, ok }
		}
	}
	w.runWith(t, withoutCharging, true, writer(nil))
	if got := w.dns.published(); !slices.Contains(got, "charging/eu-west-2/portal") || !slices.Contains(got, "charging/us-east-1/portal") {
		t.Errorf("the writer withdrew a removal nobody reported let through; published: %v", got)
	}
	// Reported going, they are withdrawn; the next pass of this replica deletes.
	going := map[fleet.UnitID]bool{}
	for _, id := range report.DNS.Going {
		going[id] = false
	}
	w.runWith(t, withoutCharging, true, writer(going))
	if got := w.dns.published(); slices.Contains(got, "charging/eu-west-2/portal") || slices.Contains(got, "charging/us-east-1/portal") {
		t.Errorf("the writer kept the records of removals reported going; published: %v", got)
	}
	before = len(w.log.all())
	report = w.runWith(t, withoutCharging, true, readOnly)
	if report.DNS.Err != nil {
		t.Fatalf("DNS error %v after the writer withdrew", report.DNS.Err)
	}
	var prunes, writes []string
	for _, e := range w.log.all()[before:] {
		switch {
		case isPrune(e):
			prunes = append(prunes, e.String())
		case isDNSApply(e):
			writes = append(writes, e.String())
		}
	}
	if len(prunes) != 6 {
		t.Errorf("%d prunes after the withdrawal, want charging's 6:\n%s", len(prunes), strings.Join(prunes, "\n"))
	}
	if len(writes) > 0 {
		t.Errorf("a replica that does not write Route53 wrote: %v", writes)
	}
}
