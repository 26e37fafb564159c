package status

import (
	"maps"
	"slices"
	"time"

	"meridian.dev/meridian/fleet"
)

// Status is the whole status document: what /api/v1/status serves and the
// dashboard shows. Every string in it has been through the Store's Redactor.
type Status struct {
	// GeneratedAt is when the document was taken.
	GeneratedAt time.Time `json:"generatedAt"`
	// Revision is the revision in use: the last one accepted. Nil before the first.
	Revision *Commit `json:"revision"`
	// Refused is the last revision refused (its fleet files were not valid), when
	// it came after the revision in use; nil otherwise.
	Refused *Refusal `json:"refused"`
	// LastPass is the last reconcile pass; nil before the first.
	LastPass *Pass `json:"lastPass"`
	// Waves are the rollout waves of the last pass, in order.
	Waves []Wave `json:"waves"`
	// Regions are every region the Store knows, by name.
	Regions []Region `json:"regions"`
	// Placements are every unit the Store knows, by tenant, region and app:
	// despite the field's name (kept for the clients that read it), it lists the
	// tenants' namespace units and the addons too; Kind tells them apart, and
	// Counts counts each kind. A request with filters (see Filter) lists only
	// the units that match.
	Placements []Placement `json:"placements"`
	// Counts counts the units the Store knows by kind and state, whatever the
	// request's filters.
	Counts Counts `json:"counts"`
	// Errors are the recent errors, oldest first.
	Errors []ErrorEntry `json:"errors"`
	// Fetch is how fetching the fleet repository goes.
	Fetch Fetch `json:"fetch"`
	// States lists every state, in the order the dashboard shows them.
	States []State `json:"states"`
	// Route53Quotas are what the fleet needs of Route53's limits (health checks
	// of the account, record sets of the zone) against what they allow, as the
	// last publish read them; nil without Route53 or before it.
	Route53Quotas []Route53Quota `json:"route53Quotas,omitempty"`
}

// Route53Quota is one Route53 limit against the fleet's need of it.
type Route53Quota struct {
	// Name is "health checks" or "record sets".
	Name string `json:"name"`
	// Limit is the account's or zone's limit; zero when it could not be read.
	Limit int64 `json:"limit"`
	// Others counts what uses it and is not the fleet's.
	Others int64 `json:"others"`
	// Needed is what the fleet needs with every exposed placement published.
	Needed int64 `json:"needed"`
	// Fits is false when the fleet does not fit: placements beyond are not published.
	Fits bool `json:"fits"`
	// Summary says so in a sentence, with what to do.
	Summary string `json:"summary"`
}

// Refusal is a revision that was not applied because its fleet is not valid.
type Refusal struct {
	// Commit is the refused revision.
	Commit Commit `json:"commit"`
	// Errors are why, each naming a file and line.
	Errors []string `json:"errors"`
	// At is when it was refused.
	At time.Time `json:"at"`
}

// Pass is the outcome of one reconcile pass.
type Pass struct {
	// Revision is the revision the pass applied.
	Revision string `json:"revision"`
	// At is when the pass finished.
	At time.Time `json:"at"`
	// DurationSeconds is how long it took.
	DurationSeconds float64 `json:"durationSeconds"`
	// Converged is true when every region reached the revision healthy, with
	// nothing held.
	Converged bool `json:"converged"`
	// Problems summarises what did not converge; empty when Converged.
	Problems string `json:"problems,omitempty"`
}

// Wave is one rollout wave of the last pass.
type Wave struct {
	// Name is the wave's name from fleet.yaml ("all" without waves).
	Name string `json:"name"`
	// Regions are the wave's regions.
	Regions []string `json:"regions"`
	// State is "healthy" (every region applied and healthy), "failed" (a region
	// failed or is not healthy: later waves wait) or "skipped" (an earlier wave
	// stopped the revision).
	State string `json:"state"`
}

// Region is one region's outcome of the last pass that reached it.
type Region struct {
	// Name is the region's name.
	Name string `json:"name"`
	// Wave is the wave the region belongs to.
	Wave string `json:"wave,omitempty"`
	// State is "converged", "failed" (the region or some of its units failed),
	// "held" (deletions held), "waiting" (its wave was skipped) or "unknown".
	State string `json:"state"`
	// Revision is the revision the last pass that planned the region applied.
	Revision string `json:"revision,omitempty"`
	// Changes summarises the region's plan, as the logs show it.
	Changes string `json:"changes,omitempty"`
	// Error is why the region did not converge, or empty.
	Error string `json:"error,omitempty"`
	// Held explains why the region's deletions are held, or is empty.
	Held string `json:"held,omitempty"`
	// HeldDeletions counts the objects whose deletion is held.
	HeldDeletions int `json:"heldDeletions"`
	// DriftedObjects counts the drifted objects found by the last drift check.
	DriftedObjects int `json:"driftedObjects"`
	// DriftError is why the last drift check could not check every unit, or empty.
	DriftError string `json:"driftError,omitempty"`
	// DNS counts the region's DNS endpoints and the healthy ones.
	DNS DNSHealth `json:"dns"`
}

// DNSHealth counts DNS endpoints.
type DNSHealth struct {
	// Healthy counts the endpoints whose health check passes.
	Healthy int `json:"healthy"`
	// Total counts every endpoint.
	Total int `json:"total"`
}

// Placement is one unit: a tenant's app in a region ("trucking/eu-west-2/portal"),
// a tenant's namespace in a region ("trucking/eu-west-2", App empty), or a
// platform addon in a region ("addon:eu-west-2/platform", no Tenant nor App).
type Placement struct {
	// Unit is the unit; in JSON tenant/region/app, tenant/region or
	// addon:region/name.
	Unit fleet.UnitID `json:"unit"`
	// Kind is what the unit is: KindPlacement (a tenant's app in a region, what
	// `meridian validate` counts as a placement), KindNamespace (a tenant's
	// namespace in a region) or KindAddon (a platform addon in a region).
	Kind string `json:"kind"`
	// Source is the chart (with its version) or Kustomize directory the unit's
	// objects come from, as the last pass that rendered it said; empty for a
	// namespace unit and before the first pass.
	Source string `json:"source,omitempty"`
	// Tenant, Region and App name the unit; App is empty for a namespace unit.
	Tenant string `json:"tenant"`
	Region string `json:"region"`
	App    string `json:"app"`
	// Addon names an addon unit's addon; empty for a tenant's units.
	Addon string `json:"addon,omitempty"`
	// State is the unit's sync state.
	State State `json:"state"`
	// Reason says why the state is not Ready.
	Reason string `json:"reason,omitempty"`
	// Revision is the revision the unit runs, as far as Meridian applied it.
	Revision string `json:"revision,omitempty"`
	// CommitSubject is the subject of Revision's commit, when the Store saw it.
	CommitSubject string `json:"commitSubject,omitempty"`
	// Changed is the last revision whose pass changed the unit (created it or
	// applied a new render of it), with its commit's subject and author and when;
	// nil when no pass since the daemon started did. Revision says the unit
	// runs the revision; Changed says which commit last did something to it.
	Changed *Change `json:"changed,omitempty"`
	// Wave is the rollout wave of the unit's region.
	Wave string `json:"wave,omitempty"`
	// LastError is the unit's most recent error, kept after it recovers.
	LastError string `json:"lastError,omitempty"`
	// LastErrorAt is when LastError was seen.
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
	// LastSyncAt is when a pass last found the unit Ready.
	LastSyncAt *time.Time `json:"lastSyncAt,omitempty"`
	// Drift is what the last drift check found.
	Drift Drift `json:"drift"`
	// DNS are the unit's Route53 endpoints and their health.
	DNS []DNSEndpoint `json:"dns"`
	// Objects are the unit's objects with their kstatus, as a watch last saw
	// them (see Store.ObserveHealth); HealthAt is when.
	Objects  []ObjectStatus `json:"objects,omitempty"`
	HealthAt *time.Time     `json:"healthAt,omitempty"`
}

// Change is a revision that changed a unit.
type Change struct {
	Revision string    `json:"revision"`
	Subject  string    `json:"subject,omitempty"`
	Author   string    `json:"author,omitempty"`
	At       time.Time `json:"at"`
}

// The kinds of unit a Placement can be.
const (
	KindPlacement = "placement"
	KindNamespace = "namespace"
	KindAddon     = "addon"
)

// kindOf returns the kind of a unit.
func kindOf(u fleet.UnitID) string {
	switch {
	case u.IsAddon():
		return KindAddon
	case u.IsNamespace():
		return KindNamespace
	}
	return KindPlacement
}

// Counts counts units by kind and state. A placement is a tenant's app in a
// region (tenant × region × app): the number `meridian validate` gives.
type Counts struct {
	// Placements, Namespaces and Addons count the units of each kind; Units
	// counts them all.
	Placements int `json:"placements"`
	Namespaces int `json:"namespaces"`
	Addons     int `json:"addons"`
	Units      int `json:"units"`
	// PlacementStates counts the placements in each state, UnitStates every unit.
	PlacementStates map[State]int `json:"placementStates"`
	UnitStates      map[State]int `json:"unitStates"`
}

// add counts one unit.
func (c *Counts) add(kind string, st State) {
	if c.PlacementStates == nil {
		c.PlacementStates, c.UnitStates = map[State]int{}, map[State]int{}
	}
	c.Units++
	c.UnitStates[st]++
	switch kind {
	case KindPlacement:
		c.Placements++
		c.PlacementStates[st]++
	case KindNamespace:
		c.Namespaces++
	case KindAddon:
		c.Addons++
	}
}

// Drift is what a drift check found in one unit.
type Drift struct {
	// Objects counts the drifted objects.
	Objects int `json:"objects"`
	// Details names each drifted object and field path (never a value), at most
	// maxDriftDetails of them.
	Details []string `json:"details,omitempty"`
	// Action is "corrected" (applied again) or "reported" (driftPolicy: report),
	// when Objects > 0.
	Action string `json:"action,omitempty"`
	// CheckedAt is when the unit was last checked; nil before the first check.
	CheckedAt *time.Time `json:"checkedAt,omitempty"`
}

// ErrorEntry is one recent error. The same error seen again (a retried pass)
// updates Last and Count instead of taking another entry.
type ErrorEntry struct {
	// Kind is where it comes from: "render", "apply", "health", "region", "held",
	// "rollout", "drift", "fetch" or "refused".
	Kind string `json:"kind"`
	// Subject is the unit, region or revision concerned.
	Subject string `json:"subject,omitempty"`
	// Revision is the revision concerned, if any.
	Revision string `json:"revision,omitempty"`
	// Message is the error, redacted.
	Message string `json:"message"`
	// First and Last are when it was first and last seen; Count how many times.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	Count int       `json:"count"`
}

// Fetch is how fetching the fleet repository goes.
type Fetch struct {
	// Failures counts the failed fetches since the daemon started.
	Failures int `json:"failures"`
	// LastError is the last fetch error, redacted, or empty.
	LastError string `json:"lastError,omitempty"`
	// LastErrorAt is when it happened.
	LastErrorAt *time.Time `json:"lastErrorAt,omitempty"`
}

// maxDriftDetails bounds the drifted objects a unit lists.
const maxDriftDetails = 20

// Status returns a copy of the whole status, safe to keep and to encode.
func (s *Store) Status() Status {
	return s.StatusOf(Filter{})
}

// StatusOf returns a copy of the status whose Placements are only the units f
// matches; everything else is as Status returns it.
func (s *Store) StatusOf(f Filter) Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.statusHead()
	for _, unit := range s.sortedUnits() {
		p := s.placements[unit]
		st.Counts.add(kindOf(unit), p.state)
		if !f.matches(unit, p.state) {
			continue
		}
		st.Placements = append(st.Placements, s.placementView(unit, p))
	}
	return st
}

// statusHead returns a copy of everything of the status but its units and their
// counts; the caller holds s.mu.
func (s *Store) statusHead() Status {
	st := Status{
		GeneratedAt: s.now(),
		Waves:       []Wave{},
		Regions:     []Region{},
		Placements:  []Placement{},
		Errors:      slices.Clone(s.recent),
		Fetch:       s.fetch,
		States:      slices.Clone(States),
		Counts:      Counts{PlacementStates: map[State]int{}, UnitStates: map[State]int{}},
	}
	st.Route53Quotas = slices.Clone(s.quotas)
	if st.Errors == nil {
		st.Errors = []ErrorEntry{}
	}
	if s.current != nil {
		c := *s.current
		st.Revision = &c
	}
	if s.refused != nil {
		r := *s.refused
		r.Errors = slices.Clone(r.Errors)
		st.Refused = &r
	}
	if s.lastPass != nil {
		p := *s.lastPass
		st.LastPass = &p
	}
	for _, w := range s.waves {
		w.Regions = slices.Clone(w.Regions)
		st.Waves = append(st.Waves, w)
	}
	dnsByRegion := map[string]DNSHealth{}
	for _, eps := range s.dns {
		for _, e := range eps {
			h := dnsByRegion[e.Region]
			h.Total++
			if e.Healthy {
				h.Healthy++
			}
			dnsByRegion[e.Region] = h
		}
	}
	regions := map[string]Region{}
	for name, r := range s.regions {
		regions[name] = *r
	}
	for _, p := range s.placements {
		if _, ok := regions[p.region]; !ok {
			regions[p.region] = Region{Name: p.region, Wave: p.wave, State: "unknown"}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(regions)) {
		r := regions[name]
		r.DNS = dnsByRegion[name]
		st.Regions = append(st.Regions, r)
	}
	return st
}

// placementView returns the API's copy of a unit; the caller holds s.mu.
func (s *Store) placementView(unit fleet.UnitID, p *placement) Placement {
	out := Placement{
		Unit: unit, Kind: kindOf(unit), Source: p.source, Tenant: p.tenant, Region: p.region, App: p.app, Addon: p.addon,
		State: p.state, Reason: p.reason, Revision: p.revision, Wave: p.wave,
		LastError: p.lastError, Drift: p.drift, DNS: slices.Clone(s.dns[unit]),
	}
	out.Drift.Details = slices.Clone(p.drift.Details)
	out.Objects = slices.Clone(p.objects)
	if !p.healthAt.IsZero() {
		t := p.healthAt
		out.HealthAt = &t
	}
	if c, ok := s.commits[p.revision]; ok {
		out.CommitSubject = c.Subject
	}
	if !p.lastErrorAt.IsZero() {
		t := p.lastErrorAt
		out.LastErrorAt = &t
	}
	if !p.lastSync.IsZero() {
		t := p.lastSync
		out.LastSyncAt = &t
	}
	if out.DNS == nil {
		out.DNS = []DNSEndpoint{}
	}
	if p.changed != nil {
		c := *p.changed
		out.Changed = &c
	}
	return out
}
