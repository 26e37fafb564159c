package status

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
)

// AddonsRow is the name the API and the dashboard give the addons where a tenant
// is expected (a filter, a row of the heatmap): addons belong to no tenant.
const AddonsRow = "(addons)"

// Filter selects units, as the query of /api/v1/status, /api/v1/summary, the
// dashboard's address and `meridian status`'s flags say it: a unit must match
// every list that is not empty (one of its names) and the search.
type Filter struct {
	// Tenants are tenants' names, or AddonsRow for the addons.
	Tenants []string
	// Regions are regions' names.
	Regions []string
	// Apps are apps' or addons' names.
	Apps []string
	// States are States.
	States []State
	// Kinds are KindPlacement, KindNamespace or KindAddon.
	Kinds []string
	// Search is a text the unit's name (tenant/region/app) contains.
	Search string
}

// FilterOf reads a Filter from a query: tenant, region, app, state and kind,
// each repeatable and each a comma-separated list ("tenant=a,b&tenant=c"), and
// q.
func FilterOf(q url.Values) Filter {
	var states []State
	for _, v := range listOf(q["state"]) {
		states = append(states, State(v))
	}
	return Filter{
		Tenants: listOf(q["tenant"]), Regions: listOf(q["region"]), Apps: listOf(q["app"]),
		States: states, Kinds: listOf(q["kind"]), Search: q.Get("q"),
	}
}

// Query is the query FilterOf reads f from.
func (f Filter) Query() url.Values {
	q := url.Values{}
	set := func(key string, list []string) {
		if len(list) > 0 {
			q.Set(key, strings.Join(list, ","))
		}
	}
	set("tenant", f.Tenants)
	set("region", f.Regions)
	set("app", f.Apps)
	states := make([]string, len(f.States))
	for i, st := range f.States {
		states[i] = string(st)
	}
	set("state", states)
	set("kind", f.Kinds)
	if f.Search != "" {
		q.Set("q", f.Search)
	}
	return q
}

// listOf splits comma-separated values, trims blanks and drops empty items.
func listOf(values []string) []string {
	var out []string
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}

// matches reports whether the unit, in state st, passes the filter.
func (f Filter) matches(u fleet.UnitID, st State) bool {
	in := func(list []string, name string) bool { return len(list) == 0 || slices.Contains(list, name) }
	return in(f.Tenants, rowOf(u)) && in(f.Regions, u.Region) && in(f.Apps, u.Name()) && in(f.Kinds, kindOf(u)) &&
		(len(f.States) == 0 || slices.Contains(f.States, st)) &&
		(f.Search == "" || strings.Contains(strings.ToLower(u.String()), strings.ToLower(f.Search)))
}

// rowOf is the tenant a unit is shown under: its tenant, or AddonsRow.
func rowOf(u fleet.UnitID) string {
	if u.IsAddon() {
		return AddonsRow
	}
	return u.Tenant
}

// UnitDetail is everything the Store knows of one unit: what /api/v1/units/<unit>
// serves and the dashboard's unit page shows.
type UnitDetail struct {
	Placement
	// LastApply is what the last pass that planned the unit did to it; nil before.
	LastApply *UnitApply `json:"lastApply"`
	// Revisions are the last revisions passes took the unit to, newest first,
	// with each one's outcome. They are kept in memory: a restart forgets them.
	Revisions []UnitRevision `json:"revisions"`
	// Commit is the commit of Revision, when the Store knows it.
	Commit *Commit `json:"commit,omitempty"`
}

// UnitApply is what one pass did to a unit, by object. Each list names objects
// (Kind/namespace/name, never a value) and holds at most maxApplyObjects.
type UnitApply struct {
	// Revision is the pass's revision; At when the pass finished.
	Revision string    `json:"revision"`
	At       time.Time `json:"at"`
	// Action is what the plan said: create, update, unchanged, prune or keep
	// (the unit failed to render and was left as it is).
	Action string `json:"action"`
	// Created are the objects applied that the unit did not have; Applied the
	// objects it had, applied again because the unit's render changed (update);
	// Deleted those deleted, Released the adopted ones let go; HeldDeletions
	// those whose deletion waits (held, or the apply failed).
	Created       []string `json:"created,omitempty"`
	Applied       []string `json:"applied,omitempty"`
	Deleted       []string `json:"deleted,omitempty"`
	Released      []string `json:"released,omitempty"`
	HeldDeletions []string `json:"heldDeletions,omitempty"`
	// Objects counts the unit's rendered objects.
	Objects int `json:"objects"`
	// Health is what the pass read of the unit's health: healthy, progressing,
	// unhealthy or unknown.
	Health string `json:"health"`
	// Error is why the apply, the prune or the health failed, redacted.
	Error string `json:"error,omitempty"`
}

// UnitRevision is one revision a pass took a unit to.
type UnitRevision struct {
	// Revision, Subject and Author are the commit's.
	Revision string `json:"revision"`
	Subject  string `json:"subject,omitempty"`
	Author   string `json:"author,omitempty"`
	// First is when a pass first took the unit to it, Last when one last did.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// State is the unit's state after the last pass of the revision.
	State State `json:"state"`
	// Changed reports that a pass of the revision changed the unit (created it
	// or applied a new render of it); false when the revision left it as it was.
	Changed bool `json:"changed"`
}

// KubeEvent is a Kubernetes event of one of a unit's objects.
type KubeEvent struct {
	// Type is Normal or Warning.
	Type string `json:"type"`
	// Reason is the event's reason (BackOff, ScalingReplicaSet, ...).
	Reason string `json:"reason"`
	// Object is the object it concerns: Kind/namespace/name.
	Object string `json:"object"`
	// Message is the event's message, redacted.
	Message string `json:"message"`
	// Count is how many times it happened; Last when it last did.
	Count int32     `json:"count"`
	Last  time.Time `json:"last"`
}

// EventReader reads the Kubernetes events of a unit's objects on demand (the
// dashboard's unit page asks for them), from the unit's region. objects are the
// unit's objects as the Store knows them (its last apply, its watch); others the
// objects of the other units of the region in the same namespaces, so that the
// Pods of a workload "portal-admin" are not taken for those of "portal". It
// returns an error when the region cannot be read; the Store redacts what it
// returns, and reads each unit's at most once every few seconds.
type EventReader func(ctx context.Context, unit fleet.UnitID, objects, others []plan.ObjectRef) ([]KubeEvent, error)

const (
	// maxApplyObjects bounds each list of objects of a UnitApply.
	maxApplyObjects = 100
	// maxUnitRevisions is how many revisions a unit keeps.
	maxUnitRevisions = 10
)

// refNames returns the names of refs, at most maxApplyObjects of them.
func refNames(refs []plan.ObjectRef) []string {
	var out []string
	for i, r := range refs {
		if i == maxApplyObjects {
			break
		}
		out = append(out, r.String())
	}
	return out
}

// observeApplies records, for every unit a pass planned, what it did to its
// objects and the revision it took the unit to; the caller holds s.mu for
// writing, after observeUnits.
func (s *Store) observeApplies(r *reconciler.Report, outcome PassOutcome, now time.Time) {
	commit := s.commits[r.Revision]
	for _, rr := range r.Regions {
		if rr == nil {
			continue
		}
		for _, ch := range rr.Changes.Changes {
			p, ok := s.placements[ch.Unit]
			if !ok {
				continue
			}
			res := rr.Units[ch.Unit]
			if res == nil {
				res = &reconciler.UnitResult{Action: ch.Action}
			}
			a := &UnitApply{Revision: r.Revision, At: now, Action: ch.Action.String(), Health: res.Health.String()}
			if ch.Desired != nil {
				a.Objects = len(ch.Desired.Objects)
				// Most passes render most units as the last did: their
				// references are kept, not made again.
				if ch.Desired.Digest == "" || ch.Desired.Digest != p.desiredDigest || len(p.desired) != len(ch.Desired.Objects) {
					p.desired = make([]plan.ObjectRef, len(ch.Desired.Objects))
					for i, o := range ch.Desired.Objects {
						p.desired[i] = plan.RefOf(o)
					}
					p.desiredDigest = ch.Desired.Digest
				}
				if ch.Desired.Source != "" {
					p.source = s.clean(ch.Desired.Source)
				}
			}
			if res.Err == nil && ch.Desired != nil && (ch.Action == plan.Create || ch.Action == plan.Update) {
				had := map[string]bool{}
				if ch.Applied != nil {
					for _, o := range ch.Applied.Objects {
						had[o.Key()] = true
					}
				}
				var created, applied []plan.ObjectRef
				for _, ref := range p.desired {
					if had[ref.Key()] {
						applied = append(applied, ref)
					} else {
						created = append(created, ref)
					}
				}
				a.Created, a.Applied = refNames(created), refNames(applied)
			}
			if res.Pruned {
				a.Deleted, a.Released = refNames(ch.Delete), refNames(ch.Release)
			} else {
				a.HeldDeletions = refNames(ch.Delete)
			}
			switch {
			case res.Err != nil:
				a.Error = s.clean(res.Err.Error())
			case res.HealthErr != nil:
				a.Error = s.clean(res.HealthErr.Error())
			}
			p.lastApply = a
			o := outcome.Units[ch.Unit]
			if ch.Action == plan.Keep || (!o.Applied && o.State != Failed) {
				continue // the pass did not try the revision on the unit
			}
			changed := res.Err == nil && (ch.Action == plan.Create || ch.Action == plan.Update)
			if changed {
				p.changed = &Change{Revision: r.Revision, Subject: commit.Subject, Author: commit.Author, At: now}
			}
			s.observeUnitRevision(p, commit, r.Revision, changed, now)
		}
	}
}

// observeUnitRevision records that a pass took the unit to revision; the caller
// holds s.mu for writing.
func (s *Store) observeUnitRevision(p *placement, c Commit, revision string, changed bool, now time.Time) {
	if n := len(p.revisions); n > 0 && p.revisions[n-1].Revision == revision {
		last := &p.revisions[n-1]
		last.Last, last.State = now, p.state
		last.Changed = last.Changed || changed
		return
	}
	p.revisions = append(p.revisions, UnitRevision{Revision: revision, Subject: c.Subject, Author: c.Author, First: now, Last: now, State: p.state, Changed: changed})
	if over := len(p.revisions) - maxUnitRevisions; over > 0 {
		p.revisions = slices.Delete(p.revisions, 0, over)
	}
}

// Unit returns everything the Store knows of a unit, and false when it knows
// nothing of it.
func (s *Store) Unit(unit fleet.UnitID) (UnitDetail, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.placements[unit]
	if !ok {
		return UnitDetail{}, false
	}
	d := UnitDetail{Placement: s.placementView(unit, p), Revisions: []UnitRevision{}}
	if p.lastApply != nil {
		a := *p.lastApply
		d.LastApply = &a
	}
	for i := len(p.revisions) - 1; i >= 0; i-- {
		d.Revisions = append(d.Revisions, p.revisions[i])
	}
	if c, ok := s.commits[p.revision]; ok {
		d.Commit = &c
	} else if n := len(p.revisions); n > 0 && p.revisions[n-1].Revision == p.revision {
		r := p.revisions[n-1]
		d.Commit = &Commit{Revision: r.Revision, Subject: r.Subject, Author: r.Author}
	}
	return d, true
}

// errorString is an error that is only its (redacted) message.
type errorString string

func (e errorString) Error() string { return string(e) }

// The errors of UnitEvents.
var (
	ErrNoEvents    error = errorString("this daemon cannot read Kubernetes events")
	ErrUnknownUnit error = errorString("no such unit")
	ErrNoRedactor  error = errorString("events are shown once a pass has decrypted the revision's secrets, to redact them")
	ErrBusy        error = errorString("too many reads of events from this region at once; try again in a moment")
)
