package status

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Summary is the overview of the fleet without the units themselves: what
// /api/v1/summary serves and the dashboard's overview draws. Its heatmap has a
// row per tenant and a cell per region, so that a fleet of a thousand tenants
// is a few tens of kilobytes, not every unit's detail.
type Summary struct {
	GeneratedAt   time.Time      `json:"generatedAt"`
	Revision      *Commit        `json:"revision"`
	Refused       *Refusal       `json:"refused"`
	LastPass      *Pass          `json:"lastPass"`
	Waves         []Wave         `json:"waves"`
	Regions       []Region       `json:"regions"`
	Errors        []ErrorEntry   `json:"errors"`
	Fetch         Fetch          `json:"fetch"`
	States        []State        `json:"states"`
	Route53Quotas []Route53Quota `json:"route53Quotas,omitempty"`
	// Counts counts every unit; Matched the units the request's filters match.
	Counts  Counts `json:"counts"`
	Matched Counts `json:"matched"`
	// Columns are the regions of the heatmap, in rollout order.
	Columns []string `json:"columns"`
	// Tenants lists every tenant (and AddonsRow when there are addons), Apps
	// every app and addon: the choices of the filters.
	Tenants []string `json:"tenants"`
	Apps    []string `json:"apps"`
	// Rows are the heatmap's rows: one per tenant with a unit the filters
	// match, in name order, AddonsRow first.
	Rows []HeatRow `json:"rows"`
}

// HeatRow is one tenant's row of the heatmap.
type HeatRow struct {
	Tenant string `json:"tenant"`
	// Cells are the tenant's units in each region of Summary.Columns, in order.
	Cells []HeatCell `json:"cells"`
}

// HeatCell is one tenant's units in one region that the filters match. Its
// JSON keys are short: a thousand tenants make thousands of cells.
type HeatCell struct {
	// State is the worst state of the units (see Worse); empty when there is none.
	State State `json:"s,omitempty"`
	// Units counts the units; NotReady those that are not Ready.
	Units    int `json:"n,omitempty"`
	NotReady int `json:"x,omitempty"`
}

// severity orders the states from best to worst, for Worse.
var severity = map[State]int{Ready: 0, Unknown: 1, Progressing: 2, Held: 3, RenderFailed: 4, Failed: 5}

// Worse returns the worse of two states: Failed, then RenderFailed, Held,
// Progressing, Unknown and Ready. The empty state is better than any.
func Worse(a, b State) State {
	if a == "" {
		return b
	}
	if b == "" || severity[a] >= severity[b] {
		return a
	}
	return b
}

// Summary returns the overview of the units f matches.
func (s *Store) Summary(f Filter) Summary {
	st := s.StatusOf(Filter{})
	out := Summary{
		GeneratedAt: st.GeneratedAt, Revision: st.Revision, Refused: st.Refused, LastPass: st.LastPass,
		Waves: st.Waves, Regions: st.Regions, Errors: st.Errors, Fetch: st.Fetch, States: st.States,
		Route53Quotas: st.Route53Quotas, Counts: st.Counts,
		Matched: Counts{PlacementStates: map[State]int{}, UnitStates: map[State]int{}},
		Tenants: []string{}, Apps: []string{}, Rows: []HeatRow{},
	}
	for _, w := range st.Waves {
		for _, r := range w.Regions {
			if !slices.Contains(out.Columns, r) {
				out.Columns = append(out.Columns, r)
			}
		}
	}
	for _, r := range st.Regions {
		if !slices.Contains(out.Columns, r.Name) {
			out.Columns = append(out.Columns, r.Name)
		}
	}
	column := map[string]int{}
	for i, r := range out.Columns {
		column[r] = i
	}
	tenants, apps := map[string]bool{}, map[string]bool{}
	rows := map[string][]HeatCell{}
	for _, p := range st.Placements {
		row := rowOf(p.Unit)
		tenants[row] = true
		if name := p.Unit.Name(); name != "" {
			apps[name] = true
		}
		if !f.matches(p.Unit, p.State) {
			continue
		}
		out.Matched.add(p.Kind, p.State)
		cells, ok := rows[row]
		if !ok {
			cells = make([]HeatCell, len(out.Columns))
			rows[row] = cells
		}
		c := &cells[column[p.Region]]
		c.State = Worse(c.State, p.State)
		c.Units++
		if p.State != Ready {
			c.NotReady++
		}
	}
	byRow := func(a, b string) int {
		return cmp.Or(cmp.Compare(boolInt(a != AddonsRow), boolInt(b != AddonsRow)), cmp.Compare(a, b))
	}
	out.Tenants = slices.SortedFunc(maps.Keys(tenants), byRow)
	out.Apps = slices.Sorted(maps.Keys(apps))
	for _, t := range slices.SortedFunc(maps.Keys(rows), byRow) {
		out.Rows = append(out.Rows, HeatRow{Tenant: t, Cells: rows[t]})
	}
	if out.Columns == nil {
		out.Columns = []string{}
	}
	return out
}

// boolInt is 1 for true.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// AppView is where one app (or addon) runs: what /api/v1/apps serves.
type AppView struct {
	// Name is the app's or addon's name; Addon is true for an addon.
	Name  string `json:"name"`
	Addon bool   `json:"addon,omitempty"`
	// Regions are the regions it runs in, by name.
	Regions []AppRegion `json:"regions"`
}

// AppRegion is an app in one region.
type AppRegion struct {
	Region string `json:"region"`
	// Units counts its placements (or addon units) there, States them by state.
	Units  int           `json:"units"`
	States map[State]int `json:"states"`
	// Sources are the charts (with their versions) or Kustomize directories
	// the units come from, and Revisions the revisions they run, each with how
	// many units: more than one of either means a rollout is under way or stuck.
	Sources   []Count `json:"sources"`
	Revisions []Count `json:"revisions"`
}

// Count is how many units share a value.
type Count struct {
	Value string `json:"value"`
	// Subject is a revision's commit subject, when the Store knows it.
	Subject string `json:"subject,omitempty"`
	Units   int    `json:"units"`
}

// Apps returns where every app and addon runs, by name, with its sources and
// revisions per region.
func (s *Store) Apps() []AppView {
	st := s.StatusOf(Filter{})
	type key struct{ app, region string }
	type acc struct {
		units     int
		states    map[State]int
		sources   map[string]int
		revisions map[string]int
		subjects  map[string]string
	}
	byKey := map[key]*acc{}
	addon := map[string]bool{}
	for _, p := range st.Placements {
		if p.Kind == KindNamespace {
			continue
		}
		k := key{p.Unit.Name(), p.Region}
		addon[k.app] = p.Kind == KindAddon
		a, ok := byKey[k]
		if !ok {
			a = &acc{states: map[State]int{}, sources: map[string]int{}, revisions: map[string]int{}, subjects: map[string]string{}}
			byKey[k] = a
		}
		a.units++
		a.states[p.State]++
		a.sources[p.Source]++
		a.revisions[p.Revision]++
		if p.CommitSubject != "" {
			a.subjects[p.Revision] = p.CommitSubject
		}
	}
	counts := func(m map[string]int, subjects map[string]string) []Count {
		out := []Count{}
		for _, v := range slices.Sorted(maps.Keys(m)) {
			out = append(out, Count{Value: v, Subject: subjects[v], Units: m[v]})
		}
		slices.SortStableFunc(out, func(a, b Count) int { return cmp.Compare(b.Units, a.Units) })
		return out
	}
	views := map[string]*AppView{}
	keys := slices.SortedFunc(maps.Keys(byKey), func(a, b key) int { return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(a.region, b.region)) })
	for _, k := range keys {
		v, ok := views[k.app]
		if !ok {
			v = &AppView{Name: k.app, Addon: addon[k.app]}
			views[k.app] = v
		}
		a := byKey[k]
		v.Regions = append(v.Regions, AppRegion{Region: k.region, Units: a.units, States: a.states, Sources: counts(a.sources, nil), Revisions: counts(a.revisions, a.subjects)})
	}
	out := []AppView{}
	for _, name := range slices.Sorted(maps.Keys(views)) {
		out = append(out, *views[name])
	}
	return out
}
