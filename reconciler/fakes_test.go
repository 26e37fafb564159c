package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// The fakes stand in for the regions, the renderer and Route53 in the
// orchestration tests, so that a pass runs in milliseconds. They keep state the
// way the real ones do (inventories, the zone's records and health checks), refuse
// what the real ones refuse (a placement applied before its namespace exists, an
// object pruned that the inventory does not hold, a DELETE that does not repeat a
// record exactly, a health check deleted while a record uses it), and log every
// call into one ordered eventLog, so that tests see the order of steps across
// regions and DNS.

var (
	_ reconciler.Cluster  = (*fakeCluster)(nil)
	_ reconciler.Renderer = (*fakeRenderer)(nil)
	_ reconciler.DNS      = (*fakeDNS)(nil)
)

// event is one call to a fake: who is a region's name or "dns".
type event struct {
	who, verb, what string
}

func (e event) String() string {
	if e.what == "" {
		return e.who + " " + e.verb
	}
	return e.who + " " + e.verb + " " + e.what
}

// eventLog is the ordered log of every call to the fakes of one test.
type eventLog struct {
	mu     sync.Mutex
	events []event
}

func (l *eventLog) add(who, verb, what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event{who: who, verb: verb, what: what})
}

// all returns the events so far, in order.
func (l *eventLog) all() []event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// lines returns the events keep selects, in order, as text.
func (l *eventLog) lines(keep func(event) bool) []string {
	var out []string
	for _, e := range l.all() {
		if keep(e) {
			out = append(out, e.String())
		}
	}
	return out
}

// unitHealth is what a fake cluster's Wait returns for a unit.
type unitHealth struct {
	state apply.State
	err   error
}

// fakeCluster is one region in memory: the inventory of every unit Meridian
// applied there, and faults to inject.
type fakeCluster struct {
	region string
	log    *eventLog

	mu   sync.Mutex
	held map[fleet.UnitID]plan.Inventory
	// inventoriesErr fails Inventories: the region is unreachable.
	inventoriesErr error
	// applyErr and pruneErr fail Apply and Prune of a unit.
	applyErr, pruneErr map[fleet.UnitID]error
	// health is what Wait reports for a unit; Ready when absent.
	health map[fleet.UnitID]unitHealth
	// namespaceDelay is how long applying a namespace unit takes before the
	// namespace exists.
	namespaceDelay time.Duration
}

func newFakeCluster(region string, log *eventLog) *fakeCluster {
	return &fakeCluster{
		region:   region,
		log:      log,
		held:     map[fleet.UnitID]plan.Inventory{},
		applyErr: map[fleet.UnitID]error{},
		pruneErr: map[fleet.UnitID]error{},
		health:   map[fleet.UnitID]unitHealth{},
	}
}

// hold records inv as applied by an earlier pass, without logging.
func (c *fakeCluster) hold(inv plan.Inventory) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held[inv.Unit] = inv
}

// leave adds objects to a unit's inventory without changing its digest: objects
// of an earlier revision that a held or interrupted prune left behind.
func (c *fakeCluster) leave(unit string, objects ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := mustUnit(unit)
	inv := c.held[id]
	for _, o := range objects {
		inv.Objects = append(inv.Objects, plan.RefOf(newObject(id.Tenant, o)))
	}
	c.held[id] = inv
}

// failInventories makes the region unreachable.
func (c *fakeCluster) failInventories(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inventoriesErr = err
}

// failApply makes applying unit fail with err.
func (c *fakeCluster) failApply(unit string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applyErr[mustUnit(unit)] = err
}

// failPrune makes pruning unit fail with err.
func (c *fakeCluster) failPrune(unit string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pruneErr[mustUnit(unit)] = err
}

// reportHealth makes Wait return state and err for unit.
func (c *fakeCluster) reportHealth(unit string, state apply.State, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.health[mustUnit(unit)] = unitHealth{state: state, err: err}
}

// holds returns what the region holds: each unit's objects, sorted.
func (c *fakeCluster) holds() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for id, inv := range c.held {
		refs := make([]string, len(inv.Objects))
		for i, r := range inv.Objects {
			refs[i] = r.String()
		}
		slices.Sort(refs)
		out[id.String()] = strings.Join(refs, " ")
	}
	return out
}

func (c *fakeCluster) Inventories(ctx context.Context) ([]plan.Inventory, error) {
	c.log.add(c.region, "inventories", "")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inventoriesErr != nil {
		return nil, c.inventoriesErr
	}
	out := make([]plan.Inventory, 0, len(c.held))
	for _, id := range slices.SortedFunc(maps.Keys(c.held), fleet.UnitID.Compare) {
		inv := c.held[id]
		inv.Objects = slices.Clone(inv.Objects)
		out = append(out, inv)
	}
	return out, nil
}

func (c *fakeCluster) Apply(ctx context.Context, unit *render.Unit, prev *plan.Inventory) error {
	id := unit.ID()
	c.log.add(c.region, "apply", id.String())
	if id.IsNamespace() && c.namespaceDelay > 0 {
		time.Sleep(c.namespaceDelay)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.applyErr[id]; err != nil {
		return err
	}
	if id.Region != c.region {
		return fmt.Errorf("%s: applied to region %s", id, c.region)
	}
	if held, ok := c.held[id]; ok != (prev != nil) || ok && held.Digest != prev.Digest {
		return fmt.Errorf("%s: prev is not the unit's inventory in %s", id, c.region)
	}
	if _, ok := c.held[id.Namespace()]; !ok && !id.IsNamespace() && !id.IsAddon() {
		// The API server refuses objects in a namespace that does not exist.
		return &apply.Error{Object: plan.RefOf(unit.Objects[0]).String(), Op: "apply failed",
			Err: apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, id.Tenant)}
	}
	inv := plan.Inventory{Unit: id, Digest: unit.Digest, Revision: "applied"}
	if prev != nil {
		inv.Objects = slices.Clone(prev.Objects)
	}
	for _, o := range unit.Objects {
		if ref := plan.RefOf(o); !slices.Contains(inv.Objects, ref) {
			inv.Objects = append(inv.Objects, ref)
		}
	}
	c.held[id] = inv
	return nil
}

func (c *fakeCluster) Prune(ctx context.Context, ch plan.Change) error {
	unit, objects, gone := ch.Unit, slices.Concat(ch.Delete, ch.Release), ch.Action == plan.Prune
	refs := make([]string, len(objects))
	for i, r := range objects {
		refs[i] = r.String()
	}
	what := unit.String() + ": " + strings.Join(refs, " ")
	if gone {
		what = unit.String() + " (gone): " + strings.Join(refs, " ")
	}
	c.log.add(c.region, "prune", what)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.pruneErr[unit]; err != nil {
		return err
	}
	inv, ok := c.held[unit]
	if !ok {
		return fmt.Errorf("%s: no inventory in %s", unit, c.region)
	}
	for _, r := range objects {
		i := slices.Index(inv.Objects, r)
		if i < 0 {
			return fmt.Errorf("%s: %s is not in the unit's inventory; Meridian did not create it", unit, r)
		}
		inv.Objects = slices.Delete(inv.Objects, i, i+1)
	}
	switch {
	case gone && len(inv.Objects) > 0:
		return fmt.Errorf("%s: gone, but %d objects of its inventory were not pruned", unit, len(inv.Objects))
	case gone:
		delete(c.held, unit)
	default:
		c.held[unit] = inv
	}
	return nil
}

func (c *fakeCluster) Wait(ctx context.Context, unit *render.Unit, timeout time.Duration) (apply.State, error) {
	c.log.add(c.region, "wait", unit.ID().String())
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.health[unit.ID()]; ok {
		return h.state, h.err
	}
	return apply.Ready, nil
}

func (c *fakeCluster) Drift(ctx context.Context, unit *render.Unit) ([]apply.Drift, error) {
	c.log.add(c.region, "drift", unit.ID().String())
	return nil, nil
}

// Claim finds nothing to take over: in this world, only Meridian makes objects.
func (c *fakeCluster) Claim(ctx context.Context, unit *render.Unit, prev *plan.Inventory) ([]plan.ObjectRef, error) {
	c.log.add(c.region, "claim", unit.ID().String())
	return nil, nil
}

// fakeRenderer returns a fixed result.
type fakeRenderer struct {
	res *render.Result
}

func (r *fakeRenderer) Render(ctx context.Context, snap render.Snapshot, filter render.Filter) (*render.Result, error) {
	return r.res, nil
}

// renderResult builds a render result: units maps each unit that rendered to its
// objects, failed are the units that did not render.
func renderResult(revision string, units map[fleet.UnitID]string, failed []fleet.UnitID) *render.Result {
	res := &render.Result{Revision: revision}
	for _, id := range slices.SortedFunc(maps.Keys(units), fleet.UnitID.Compare) {
		res.Units = append(res.Units, renderUnit(id, units[id]))
	}
	for _, id := range failed {
		res.Errors = append(res.Errors, &render.UnitError{Unit: id, Err: errors.New("apps/" + id.App + "/app.yaml: chart: template: deployment.yaml:12: unexpected EOF")})
	}
	return res
}

// renderUnit renders a unit from its objects' description: Kind/name tokens
// separated by spaces, each optionally with =value (a ConfigMap's data.value, a
// Secret's stringData.value). The description is the unit's digest.
func renderUnit(id fleet.UnitID, objects string) *render.Unit {
	u := &render.Unit{Tenant: id.Tenant, Region: id.Region, App: id.App, Addon: id.Addon, Digest: objects}
	for _, o := range strings.Fields(objects) {
		u.Objects = append(u.Objects, newObject(id.Tenant, o))
	}
	return u
}

// inventoryOf is what applying the unit described by objects records.
func inventoryOf(id fleet.UnitID, objects string) plan.Inventory {
	inv := plan.Inventory{Unit: id, Digest: objects, Revision: "previous"}
	for _, o := range renderUnit(id, objects).Objects {
		inv.Objects = append(inv.Objects, plan.RefOf(o))
	}
	return inv
}

// newObject builds one object of a tenant from Kind/name[=value].
func newObject(tenant, desc string) *unstructured.Unstructured {
	kindName, value, _ := strings.Cut(desc, "=")
	kind, name, ok := strings.Cut(kindName, "/")
	if !ok {
		panic("object " + desc + ": want Kind/name[=value]")
	}
	o := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": kind}}
	o.SetName(name)
	switch kind {
	case "Namespace":
	case "ConfigMap":
		o.SetNamespace(tenant)
		o.Object["data"] = map[string]any{"value": value}
	case "Secret":
		o.SetNamespace(tenant)
		o.Object["stringData"] = map[string]any{"value": value}
	case "Deployment":
		o.SetAPIVersion("apps/v1")
		o.SetNamespace(tenant)
		o.Object["spec"] = map[string]any{"replicas": int64(1)}
	default:
		panic("object " + desc + ": unknown kind")
	}
	return o
}

func mustUnit(s string) fleet.UnitID {
	id, err := fleet.ParseUnitID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// fakeDNS is a hosted zone in memory that applies plans the way Route53 does.
type fakeDNS struct {
	log *eventLog
	// latency is how long an Apply takes to be INSYNC.
	latency time.Duration

	mu     sync.Mutex
	state  dns.State
	checks int // health checks created, for their ids
	// currentErr and applyErr fail Current and Apply.
	currentErr, applyErr error
}

func newFakeDNS(fleetName string, log *eventLog) *fakeDNS {
	return &fakeDNS{log: log, state: dns.State{Fleet: fleetName}}
}

// publish puts the records and health checks of every exposed placement of m in
// the zone, as an earlier pass that found them healthy did, without logging.
func (d *fakeDNS) publish(m *fleet.Model) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyLocked(dns.Plan(dns.Desired(m, func(fleet.UnitID) bool { return true }), d.state))
}

// published returns the placements with records in the zone, sorted.
func (d *fakeDNS) published() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id := range d.state.Published() {
		out = append(out, id.String())
	}
	slices.Sort(out)
	return out
}

func (d *fakeDNS) Current(ctx context.Context) (dns.State, error) {
	d.log.add("dns", "current", "")
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.currentErr != nil {
		return dns.State{}, d.currentErr
	}
	return dns.State{Fleet: d.state.Fleet, Records: slices.Clone(d.state.Records), HealthChecks: slices.Clone(d.state.HealthChecks)}, nil
}

// Apply carries out a plan and logs it once INSYNC, as +unit for a placement
// whose records are written, -unit for one whose records are deleted, and
// ~check unit, -check unit for health checks changed or deleted alone.
func (d *fakeDNS) Apply(ctx context.Context, ch dns.Changes) error {
	select {
	case <-time.After(d.latency):
	case <-ctx.Done():
		return ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.applyErr
	if err == nil {
		err = d.applyLocked(ch)
	}
	if err != nil {
		d.log.add("dns", "apply", describe(ch)+": "+err.Error())
		return err
	}
	d.log.add("dns", "apply", describe(ch))
	return nil
}

// applyLocked applies a plan to the zone, or changes nothing and says why Route53
// would refuse it.
func (d *fakeDNS) applyLocked(ch dns.Changes) error {
	s := dns.State{Fleet: d.state.Fleet, Records: slices.Clone(d.state.Records), HealthChecks: slices.Clone(d.state.HealthChecks)}
	created := map[fleet.UnitID]string{}
	checkIndex := func(id string) int {
		return slices.IndexFunc(s.HealthChecks, func(h dns.HealthCheck) bool { return h.ID == id })
	}
	for _, h := range ch.HealthChecks {
		switch h.Action {
		case dns.CreateCheck:
			d.checks++
			id := fmt.Sprintf("hc-%d", d.checks)
			created[h.Unit()] = id
			s.HealthChecks = append(s.HealthChecks, dns.HealthCheck{ID: id, CallerReference: h.CallerReference, Version: 1,
				Tenant: h.Tenant, App: h.App, Region: h.Region, Spec: h.Spec})
		case dns.UpdateCheck:
			i := checkIndex(h.ID)
			switch {
			case i < 0:
				return fmt.Errorf("NoSuchHealthCheck: %s", h.ID)
			case s.HealthChecks[i].Version != h.Version:
				return fmt.Errorf("HealthCheckVersionMismatch: %s", h.ID)
			}
			s.HealthChecks[i].Spec = h.Spec
			s.HealthChecks[i].Version++
		default:
			return fmt.Errorf("unexpected %s among the checks to create or update", h)
		}
	}
	for _, g := range ch.Records {
		for _, c := range g.Changes {
			r := c.Record
			if !c.HealthCheck.IsZero() {
				if r.HealthCheckID = created[c.HealthCheck]; r.HealthCheckID == "" {
					return fmt.Errorf("InvalidChangeBatch: %s: the plan created no health check for %s", r.ID(), c.HealthCheck)
				}
			}
			i := slices.IndexFunc(s.Records, func(o dns.Record) bool {
				return o.Name == r.Name && o.Type == r.Type && o.SetIdentifier == r.SetIdentifier
			})
			switch {
			case c.Action == dns.Delete && i < 0:
				return fmt.Errorf("InvalidChangeBatch: tried to delete %s, but it was not found", r.ID())
			case c.Action == dns.Delete && !cmp.Equal(s.Records[i], r):
				return fmt.Errorf("InvalidChangeBatch: tried to delete %s, but the values provided do not match the current values", r.ID())
			case c.Action == dns.Delete:
				s.Records = slices.Delete(s.Records, i, i+1)
			case c.Action == dns.Create && i >= 0:
				return fmt.Errorf("InvalidChangeBatch: tried to create %s, but it already exists", r.ID())
			case i >= 0:
				s.Records[i] = r
			default:
				s.Records = append(s.Records, r)
			}
		}
	}
	for _, h := range ch.DeleteHealthChecks {
		i := checkIndex(h.ID)
		if i < 0 {
			return fmt.Errorf("NoSuchHealthCheck: %s", h.ID)
		}
		for _, r := range s.Records {
			if r.HealthCheckID == h.ID {
				return fmt.Errorf("HealthCheckInUse: %s is used by %s", h.ID, r.ID())
			}
		}
		s.HealthChecks = slices.Delete(s.HealthChecks, i, i+1)
	}
	d.state = s
	return nil
}

// describe sums a plan up by placement: +unit, -unit, ~check unit, -check unit.
func describe(ch dns.Changes) string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, g := range ch.Records {
		sign := "-"
		for _, c := range g.Changes {
			if c.Action != dns.Delete {
				sign = "+"
			}
		}
		add(sign + g.Unit.String())
	}
	for _, h := range ch.HealthChecks {
		if h.Action == dns.UpdateCheck {
			add("~check " + h.Unit().String())
		}
	}
	for _, h := range ch.DeleteHealthChecks {
		add("-check " + h.Unit().String())
	}
	return strings.Join(out, " ")
}
