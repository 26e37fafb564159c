package dns

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"meridian.dev/meridian/fleet"
)

// CheckAction is what a plan does to one health check.
type CheckAction int

// The health-check actions.
const (
	// CreateCheck creates a health check with an idempotent CallerReference.
	CreateCheck CheckAction = iota
	// UpdateCheck changes port, path, threshold or target of a check in place.
	UpdateCheck
	// DeleteCheck deletes a check no record uses any more.
	DeleteCheck
)

// String is the action's name in logs and plans.
func (a CheckAction) String() string {
	switch a {
	case CreateCheck:
		return "create"
	case UpdateCheck:
		return "update"
	case DeleteCheck:
		return "delete"
	}
	return fmt.Sprintf("CheckAction(%d)", int(a))
}

// HealthCheckChange is one health-check call of a plan.
type HealthCheckChange struct {
	// Action is what happens to the check.
	Action CheckAction
	// Fleet, Tenant, App and Region are the check's tags.
	Fleet, Tenant, App, Region string
	// ID is the existing check (UpdateCheck, DeleteCheck).
	ID string
	// Version is the existing check's HealthCheckVersion (UpdateCheck).
	Version int64
	// CallerReference makes CreateCheck idempotent.
	CallerReference string
	// Spec is the configuration to create or update to.
	Spec HealthCheckSpec
	// Reason says why, for logs and reviewers.
	Reason string
}

// Unit is the placement the check belongs to.
func (c HealthCheckChange) Unit() fleet.UnitID {
	return fleet.UnitID{Tenant: c.Tenant, Region: c.Region, App: c.App}
}

// String describes the change in one line.
func (c HealthCheckChange) String() string {
	s := fmt.Sprintf("%s health check %s", c.Action, c.Unit())
	if c.ID != "" {
		s += " (" + c.ID + ")"
	}
	if c.Action != DeleteCheck {
		s += ": " + c.Spec.String()
	}
	if c.Reason != "" {
		s += "; " + c.Reason
	}
	return s
}

// String describes the spec in one line.
func (s HealthCheckSpec) String() string {
	target := s.FQDN
	if s.IPAddress != "" {
		target = s.IPAddress + " host " + s.FQDN
	}
	return fmt.Sprintf("%s %s:%d%s every %ds, threshold %d", s.Protocol, target, s.Port, s.Path, s.IntervalSeconds, s.FailureThreshold)
}

// RecordAction is Route53's change action.
type RecordAction string

// Route53's change actions.
const (
	Create RecordAction = "CREATE"
	Upsert RecordAction = "UPSERT"
	Delete RecordAction = "DELETE"
)

// RecordChange is one change of a ChangeResourceRecordSets batch.
type RecordChange struct {
	// Action is CREATE, UPSERT or DELETE.
	Action RecordAction
	// Record is the record set to write, or exactly the one to delete.
	Record Record
	// HealthCheck is set when Record must use a check this plan creates: the
	// placement whose new check's id fills Record.HealthCheckID.
	HealthCheck fleet.UnitID
}

// String describes the change in one line.
func (c RecordChange) String() string {
	s := string(c.Action) + " " + c.Record.String()
	if !c.HealthCheck.IsZero() {
		s += " health check of " + c.HealthCheck.String()
	}
	return s
}

// RecordGroup is the record changes of one placement at one name: a record and its
// registry entry. A group is never split across batches, so a record and its
// ownership change together.
type RecordGroup struct {
	// Unit is the placement.
	Unit fleet.UnitID
	// Changes are applied atomically, in order.
	Changes []RecordChange
}

// Clash is a desired name held by record sets Meridian does not own. Nothing is
// written there; the clash is reported until someone resolves it.
type Clash struct {
	// Unit is the placement that wants the name.
	Unit fleet.UnitID
	// Name is the record name.
	Name string
	// Existing are the unowned record sets at Name.
	Existing []string
}

// String is the clash as an actionable message.
func (c Clash) String() string {
	return fmt.Sprintf("%s: wanted by %s but held by record sets Meridian does not own (%s); delete them, or give them a registry record %s%s if Meridian should take them over",
		c.Name, c.Unit, strings.Join(c.Existing, ", "), RegistryPrefix, c.Name)
}

// Changes is a plan: what Apply does, in order — health checks created and updated,
// record groups written in batches and waited INSYNC, then unused checks deleted.
type Changes struct {
	// HealthChecks are created or updated before any record refers to them.
	HealthChecks []HealthCheckChange
	// Records are the record changes, grouped by placement and name.
	Records []RecordGroup
	// DeleteHealthChecks are checks no current record uses; deleted last.
	DeleteHealthChecks []HealthCheckChange
	// Clashes are reported, never acted on.
	Clashes []Clash
	// Quotas are what the fleet needs of Route53's limits against what they
	// allow.
	Quotas Quotas
	// OverQuota are the endpoints left unpublished because they would go over a
	// limit.
	OverQuota []OverQuota
}

// Empty reports that the plan makes no Route53 change; clashes alone change nothing.
func (c Changes) Empty() bool {
	return len(c.HealthChecks) == 0 && len(c.Records) == 0 && len(c.DeleteHealthChecks) == 0
}

// Lines lists every change and clash, one per line, in the order Apply runs them.
func (c Changes) Lines() []string {
	var out []string
	for _, h := range c.HealthChecks {
		out = append(out, h.String())
	}
	for _, g := range c.Records {
		for _, r := range g.Changes {
			out = append(out, r.String())
		}
	}
	for _, h := range c.DeleteHealthChecks {
		out = append(out, h.String())
	}
	for _, cl := range c.Clashes {
		out = append(out, "clash "+cl.String())
	}
	for _, o := range c.OverQuota {
		out = append(out, o.String())
	}
	return out
}

// String summarises the plan in one line for logs.
func (c Changes) String() string {
	n := 0
	for _, g := range c.Records {
		n += len(g.Changes)
	}
	return fmt.Sprintf("dns: %d health checks to create or update, %d record changes, %d health checks to delete, %d clashes",
		len(c.HealthChecks), n, len(c.DeleteHealthChecks), len(c.Clashes))
}

// setKey identifies a record set slot: name and SetIdentifier, whatever the type.
func setKey(name, setID string) string { return canonical(name) + "|" + setID }

type owner struct {
	key fleet.UnitID
	txt Record
}

// Plan computes what Route53 must change so that it holds exactly the records and
// health checks of desired, touching only what current shows Meridian owns. With
// nothing to change it returns an empty plan. Its steps: index what the zone
// holds, plan each desired endpoint (its health check, then its latency and
// regional records), withdraw the owned record sets no endpoint wants, and delete
// the checks nothing uses.
func Plan(desired []Endpoint, current State) Changes {
	return PlanKeeping(desired, nil, current)
}

// Withdrawal is the part of a plan that may run before anything is rolled out:
// the owned record sets of every placement that is not among staying (it left the
// fleet, is no longer exposed, or its region is drained), with their registry
// records, and the health checks of such placements that no record uses any more.
// staying is Desired of every placement the fleet still publishes, whatever its
// health. Nothing is created, updated or upserted here, not even for a placement
// that stays: that waits until its wave found it healthy (Plan, after the waves).
// A check whose record is withdrawn now is deleted by the next plan, once Route53
// shows no record using it.
func Withdrawal(staying []Endpoint, current State) Changes {
	stays := map[fleet.UnitID]bool{}
	for _, e := range staying {
		stays[e.Unit()], stays[e.CheckUnit()] = true, true
	}
	return PlanKeeping(nil, func(id fleet.UnitID) bool { return stays[id] }, current)
}

// PlanKeeping is Plan for desired, except that the placements keep reports (and
// desired does not hold) keep exactly the records and health checks they have in
// Route53: nothing of theirs is created, updated, upserted or deleted. It is how a
// placement whose health a pass could not read stays as it was, even when its
// configuration changed in git.
func PlanKeeping(desired []Endpoint, keep func(fleet.UnitID) bool, current State) Changes {
	p := newPlanner(current)
	if keep != nil {
		for sk, o := range p.owners {
			if keep(o.key) {
				p.wanted[sk] = true
			}
		}
		for _, h := range current.HealthChecks {
			if keep(h.Unit()) {
				p.keptChecks[h.ID] = true
			}
		}
	}
	for _, e := range desired {
		p.endpoint(e)
	}
	p.withdrawUnwanted()
	p.deleteUnusedChecks()
	p.ch.Quotas = Needs(desired, current)
	p.withinQuotas(p.ch.Quotas)
	return p.ch
}

// planner is the state of one Plan: the zone indexed, and the plan so far.
type planner struct {
	current State
	// owners are the zone's registry records of this fleet, by record set slot.
	owners map[string]owner
	// used are the health checks some record uses, by ID.
	used map[string]bool
	// atName are the zone's record sets other than registry records, by name.
	atName map[string][]Record
	// checks are the fleet's health checks, by placement.
	checks map[fleet.UnitID][]HealthCheck
	// keptChecks are the checks a desired endpoint keeps, by ID; wanted the record
	// set slots a desired endpoint writes.
	keptChecks, wanted map[string]bool
	// shared are the shared health checks planned so far, by check unit.
	shared map[fleet.UnitID]sharedCheck
	ch     Changes
}

// sharedCheck is a shared health check as planned: the existing check the
// records can use, or the unit of the check the plan creates.
type sharedCheck struct {
	id      string
	created fleet.UnitID
}

// newPlanner indexes what the zone holds.
func newPlanner(current State) *planner {
	p := &planner{
		current: current, owners: map[string]owner{}, used: map[string]bool{}, atName: map[string][]Record{},
		checks: map[fleet.UnitID][]HealthCheck{}, keptChecks: map[string]bool{}, wanted: map[string]bool{},
		shared: map[fleet.UnitID]sharedCheck{},
	}
	for _, r := range current.Records {
		if r.HealthCheckID != "" {
			p.used[r.HealthCheckID] = true
		}
		if !isRegistry(r) {
			p.atName[canonical(r.Name)] = append(p.atName[canonical(r.Name)], r)
			continue
		}
		if f, key, ok := parseRegistry(r.Values); ok && f == current.Fleet {
			p.owners[setKey(strings.TrimPrefix(r.Name, RegistryPrefix), r.SetIdentifier)] = owner{key: key, txt: r}
		}
	}
	for _, h := range current.HealthChecks {
		p.checks[h.Unit()] = append(p.checks[h.Unit()], h)
	}
	return p
}

// isRegistry reports whether r is a registry record.
func isRegistry(r Record) bool { return r.Type == "TXT" && strings.HasPrefix(r.Name, RegistryPrefix) }

// clash returns the unowned record sets at name.
func (p *planner) clash(name string) []string {
	var out []string
	for _, r := range p.atName[canonical(name)] {
		if _, ok := p.owners[setKey(r.Name, r.SetIdentifier)]; !ok {
			out = append(out, r.ID())
		}
	}
	return out
}

// endpoint plans one desired endpoint: its health check (unless its name is held
// by records Meridian does not own), its latency record and its regional record.
func (p *planner) endpoint(e Endpoint) {
	key := e.Unit()
	global, regional := records(e)
	var checkKey fleet.UnitID
	if len(p.clash(global.Name)) == 0 {
		ck := e.CheckUnit()
		if sc, ok := p.shared[ck]; ok {
			global.HealthCheckID, checkKey = sc.id, sc.created
		} else {
			hc, change := planCheck(e, p.checks[ck], currentCheckID(p.atName[canonical(global.Name)], e.Region))
			if hc != nil {
				p.keptChecks[hc.ID] = true
				global.HealthCheckID = hc.ID
			}
			if change != nil {
				p.ch.HealthChecks = append(p.ch.HealthChecks, *change)
				if change.Action == CreateCheck {
					checkKey = ck
				}
			}
			if e.SharedCheck {
				p.shared[ck] = sharedCheck{id: global.HealthCheckID, created: checkKey}
			}
		}
	}
	p.write(key, global, checkKey)
	p.write(key, regional, fleet.UnitID{})
}

// write plans one desired record set of placement key, with its registry record;
// checkKey names the placement whose new check the record uses, if any.
func (p *planner) write(key fleet.UnitID, d Record, checkKey fleet.UnitID) {
	p.wanted[setKey(d.Name, d.SetIdentifier)] = true
	if existing := p.clash(d.Name); len(existing) > 0 {
		p.ch.Clashes = append(p.ch.Clashes, Clash{Unit: key, Name: d.Name, Existing: existing})
		return
	}
	g := RecordGroup{Unit: key}
	var same *Record
	for _, r := range p.atName[canonical(d.Name)] {
		if r.SetIdentifier != d.SetIdentifier {
			continue
		}
		if r.Type == d.Type {
			same = &r
			continue
		}
		g.Changes = append(g.Changes, RecordChange{Action: Delete, Record: r})
	}
	switch {
	case same == nil:
		g.Changes = append(g.Changes, RecordChange{Action: Create, Record: d, HealthCheck: checkKey})
	case !checkKey.IsZero() || !same.equal(d):
		g.Changes = append(g.Changes, RecordChange{Action: Upsert, Record: d, HealthCheck: checkKey})
	}
	reg := registryFor(d, p.current.Fleet, key)
	o, owned := p.owners[setKey(d.Name, d.SetIdentifier)]
	switch {
	case !owned:
		g.Changes = append(g.Changes, RecordChange{Action: Create, Record: reg})
	case !o.txt.equal(reg):
		g.Changes = append(g.Changes, RecordChange{Action: Upsert, Record: reg})
	}
	if len(g.Changes) > 0 {
		p.ch.Records = append(p.ch.Records, g)
	}
}

// withdrawUnwanted deletes the owned record sets no endpoint wants, with their
// registry records, grouped by placement.
func (p *planner) withdrawUnwanted() {
	withdrawn := map[fleet.UnitID]*RecordGroup{}
	var order []fleet.UnitID
	group := func(key fleet.UnitID) *RecordGroup {
		if g, ok := withdrawn[key]; ok {
			return g
		}
		withdrawn[key] = &RecordGroup{Unit: key}
		order = append(order, key)
		return withdrawn[key]
	}
	for _, r := range p.current.Records {
		if isRegistry(r) {
			continue
		}
		sk := setKey(r.Name, r.SetIdentifier)
		o, owned := p.owners[sk]
		if !owned || p.wanted[sk] {
			continue
		}
		g := group(o.key)
		g.Changes = append(g.Changes, RecordChange{Action: Delete, Record: r})
	}
	for sk, o := range sortedOwners(p.owners) {
		if p.wanted[sk] {
			continue
		}
		g := group(o.key)
		g.Changes = append(g.Changes, RecordChange{Action: Delete, Record: o.txt})
	}
	slices.SortFunc(order, fleet.UnitID.Compare)
	for _, k := range order {
		p.ch.Records = append(p.ch.Records, *withdrawn[k])
	}
}

// deleteUnusedChecks deletes the checks that no desired endpoint keeps and no
// record uses any more.
func (p *planner) deleteUnusedChecks() {
	for _, h := range p.current.HealthChecks {
		if p.keptChecks[h.ID] || p.used[h.ID] {
			continue
		}
		p.ch.DeleteHealthChecks = append(p.ch.DeleteHealthChecks, HealthCheckChange{
			Action: DeleteCheck, Fleet: p.current.Fleet, Tenant: h.Tenant, App: h.App, Region: h.Region, ID: h.ID,
			Reason: "no record uses it",
		})
	}
	slices.SortFunc(p.ch.DeleteHealthChecks, func(a, b HealthCheckChange) int {
		return cmp.Or(a.Unit().Compare(b.Unit()), cmp.Compare(a.ID, b.ID))
	})
}

// sortedOwners iterates the registry in name order, so plans are deterministic.
func sortedOwners(owners map[string]owner) func(yield func(string, owner) bool) {
	return func(yield func(string, owner) bool) {
		keys := make([]string, 0, len(owners))
		for k := range owners {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !yield(k, owners[k]) {
				return
			}
		}
	}
}

// currentCheckID is the check the current latency record of region uses, if any.
func currentCheckID(atGlobal []Record, region string) string {
	for _, r := range atGlobal {
		if r.SetIdentifier == region && r.HealthCheckID != "" {
			return r.HealthCheckID
		}
	}
	return ""
}

// planCheck picks the endpoint's current check among the owned ones for its
// placement (the one its record uses, else one of the same type and interval) and
// says how to bring it to the desired spec. It returns the check the record can use
// now (nil when a new one is created) and the change, if any.
func planCheck(e Endpoint, owned []HealthCheck, inUse string) (*HealthCheck, *HealthCheckChange) {
	want := e.HealthCheck
	var cur *HealthCheck
	for i := range owned {
		if owned[i].ID == inUse {
			cur = &owned[i]
		}
	}
	if cur == nil {
		for i := range owned {
			if immutable(owned[i].Spec) == immutable(want) {
				cur = &owned[i]
				break
			}
		}
	}
	cu := e.CheckUnit()
	base := HealthCheckChange{Fleet: e.Fleet, Tenant: cu.Tenant, App: cu.App, Region: cu.Region, Spec: want}
	switch {
	case cur == nil:
		base.Action, base.CallerReference, base.Reason = CreateCheck, CallerReference(e), "new endpoint"
		return nil, &base
	case immutable(cur.Spec) != immutable(want):
		base.Action, base.CallerReference = CreateCheck, CallerReference(e)
		base.Reason = fmt.Sprintf("replaces %s: Route53 cannot change protocol or interval in place (%s); the old check is deleted once no record uses it", cur.ID, immutable(cur.Spec))
		return nil, &base
	case cur.Spec != want:
		base.Action, base.ID, base.Version = UpdateCheck, cur.ID, cur.Version
		base.Reason = "was " + cur.Spec.String()
		return cur, &base
	}
	return cur, nil
}

// immutable is what Route53 cannot change on an existing check.
func immutable(s HealthCheckSpec) string {
	return fmt.Sprintf("%s every %ds", s.Protocol, s.IntervalSeconds)
}

// CallerReference is the idempotency key of the endpoint's health check: derived
// from fleet, placement and configuration, so a retried create never makes a second
// check. Apply appends -1, -2... when Route53 refuses it because a check with it was
// deleted before.
func CallerReference(e Endpoint) string {
	sum := sha256.Sum256([]byte(e.Fleet + "/" + e.CheckUnit().String() + "\n" + e.HealthCheck.String()))
	return "meridian-" + hex.EncodeToString(sum[:20])
}

// records returns the endpoint's latency record at the global name and its simple
// record at the regional name. The global record's health check is filled in by Plan.
//
// The regional record points at the region's endpoint as its region file says: an
// alias to the load balancer (evaluating target health), or a CNAME or A record with
// TTL 60. The global latency record is always a CNAME (TTL 60) to the regional name:
// a name cannot hold a CNAME beside other types, so latency records of one name must
// share a type, and regions of one fleet may reach their ingress differently.
func records(e Endpoint) (global, regional Record) {
	t := e.Target
	regional = Record{Name: canonical(e.Regional)}
	switch t.Type {
	case fleet.EndpointAlias:
		regional.Type = "A"
		regional.Alias = &Alias{HostedZoneID: t.HostedZoneID, DNSName: canonical(t.Target), EvaluateTargetHealth: true}
	case fleet.EndpointCNAME:
		regional.Type, regional.TTL, regional.Values = "CNAME", 60, []string{canonical(t.Target)}
	default:
		regional.Type, regional.TTL, regional.Values = "A", 60, []string{t.Target}
	}
	global = Record{Name: canonical(e.Global), Type: "CNAME", SetIdentifier: e.Region, Region: e.AWSRegion, TTL: 60, Values: []string{regional.Name}}
	return global, regional
}
