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
	return s.summary(f, true)
}

// summary returns the overview of the units f matches, with the heatmap's rows
// when rows is true. It reads the units in place: the dashboard asks every
// few seconds, and copying every unit's detail for counts would be waste.
func (s *Store) summary(f Filter, rows bool) Summary {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.statusHead()
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
	cellsOf := map[string][]HeatCell{}
	for unit, p := range s.placements {
		kind := kindOf(unit)
		out.Counts.add(kind, p.state)
		row := rowOf(unit)
		tenants[row] = true
		if name := unit.Name(); name != "" {
			apps[name] = true
		}
		if !f.matches(unit, p.state) {
			continue
		}
		out.Matched.add(kind, p.state)
		if !rows {
			continue
		}
		cells, ok := cellsOf[row]
		if !ok {
			cells = make([]HeatCell, len(out.Columns))
			cellsOf[row] = cells
		}
		c := &cells[column[p.region]]
		c.State = Worse(c.State, p.state)
		c.Units++
		if p.state != Ready {
			c.NotReady++
		}
	}
	byRow := func(a, b string) int {
		return cmp.Or(cmp.Compare(boolInt(a != AddonsRow), boolInt(b != AddonsRow)), cmp.Compare(a, b))
	}
	out.Tenants = append(out.Tenants, slices.SortedFunc(maps.Keys(tenants), byRow)...)
	out.Apps = append(out.Apps, slices.Sorted(maps.Keys(apps))...)
	for _, t := range slices.SortedFunc(maps.Keys(cellsOf), byRow) {
		out.Rows = append(out.Rows, HeatRow{Tenant: t, Cells: cellsOf[t]})
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

// Apps returns where every app and addon runs, by name (an app before an
// addon of the same name), with its sources and revisions per region.
func (s *Store) Apps() []AppView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	type key struct {
		app    string
		addon  bool
		region string
	}
	type acc struct {
		units     int
		states    map[State]int
		sources   map[string]int
		revisions map[string]int
		subjects  map[string]string
	}
	byKey := map[key]*acc{}
	for unit, p := range s.placements {
		kind := kindOf(unit)
		if kind == KindNamespace {
			continue
		}
		k := key{unit.Name(), kind == KindAddon, p.region}
		a, ok := byKey[k]
		if !ok {
			a = &acc{states: map[State]int{}, sources: map[string]int{}, revisions: map[string]int{}, subjects: map[string]string{}}
			byKey[k] = a
		}
		a.units++
		a.states[p.state]++
		a.sources[p.source]++
		a.revisions[p.revision]++
		if c, ok := s.commits[p.revision]; ok && c.Subject != "" {
			a.subjects[p.revision] = c.Subject
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
	out := []AppView{}
	keys := slices.SortedFunc(maps.Keys(byKey), func(a, b key) int {
		return cmp.Or(cmp.Compare(a.app, b.app), cmp.Compare(boolInt(a.addon), boolInt(b.addon)), cmp.Compare(a.region, b.region))
	})
	for _, k := range keys {
		if n := len(out); n == 0 || out[n-1].Name != k.app || out[n-1].Addon != k.addon {
			out = append(out, AppView{Name: k.app, Addon: k.addon})
		}
		a := byKey[k]
		v := &out[len(out)-1]
		v.Regions = append(v.Regions, AppRegion{Region: k.region, Units: a.units, States: a.states, Sources: counts(a.sources, nil), Revisions: counts(a.revisions, a.subjects)})
	}
	return out
}
