package unitstatus

import (
	"fmt"
	"slices"
	"strings"

	"meridian.dev/meridian/reconciler/status"
)

// The kinds of unit, as --kind names them.
const (
	KindPlacement = "placement" // a tenant's app in a region
	KindNamespace = "namespace" // a tenant's namespace in a region
	KindAddon     = "addon"     // a platform addon in a region
)

// Selection is the filters of `meridian status`: a unit is selected when it
// matches every list that is not empty.
type Selection struct {
	Tenants, Regions, Apps, Kinds []string
	States                        []status.State
}

// NewSelection builds a Selection from the flags' lists (blanks trimmed, empty
// items dropped) and checks what needs no daemon to check: states (in any
// case) and kinds. Errors name the flag.
func NewSelection(tenants, regions, apps, states, kinds []string) (Selection, error) {
	sel := Selection{
		Tenants: clean(tenants), Regions: clean(regions), Apps: clean(apps), Kinds: clean(kinds),
	}
	for _, s := range clean(states) {
		i := slices.IndexFunc(status.States, func(st status.State) bool { return strings.EqualFold(string(st), s) })
		if i < 0 {
			return sel, fmt.Errorf("--state %s: no such state; use %s", s, StatesList())
		}
		sel.States = append(sel.States, status.States[i])
	}
	for _, k := range sel.Kinds {
		if k != KindPlacement && k != KindNamespace && k != KindAddon {
			return sel, fmt.Errorf("--kind %s: no such kind of unit; use placement, namespace or addon", k)
		}
	}
	return sel, nil
}

// clean splits nothing further (pflag split the commas) but trims blanks and
// drops empty items, so "--tenant a, b" and "--tenant a," work.
func clean(list []string) []string {
	var out []string
	for _, s := range list {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// StatesList is every state, for help and errors.
func StatesList() string {
	names := make([]string, len(status.States))
	for i, s := range status.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Known fails naming the first tenant, region or app filter the daemon's status
// does not know, with the names it does.
func (sel Selection) Known(st *status.Status) error {
	tenants, regions, apps := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, p := range st.Placements {
		if p.Tenant != "" {
			tenants[p.Tenant] = true
		}
		regions[p.Region] = true
		if a := App(p); a != "" {
			apps[a] = true
		}
	}
	for _, r := range st.Regions {
		regions[r.Name] = true
	}
	for _, f := range []struct {
		flag  string
		names []string
		known map[string]bool
	}{{"tenant", sel.Tenants, tenants}, {"region", sel.Regions, regions}, {"app", sel.Apps, apps}} {
		for _, n := range f.names {
			if !f.known[n] {
				return fmt.Errorf("--%s %s: the daemon knows no such %s (it knows %s)", f.flag, n, f.flag, knownList(f.known))
			}
		}
	}
	return nil
}

// knownList lists names for an error, sorted, or says there are none yet.
func knownList(names map[string]bool) string {
	if len(names) == 0 {
		return "none yet: has it finished a pass?"
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	if len(list) > 20 {
		return strings.Join(list[:20], ", ") + fmt.Sprintf(" and %d more", len(list)-20)
	}
	return strings.Join(list, ", ")
}

// Kind says whether a unit is a placement, a tenant's namespace or an addon.
func Kind(p status.Placement) string {
	switch {
	case p.Addon != "":
		return KindAddon
	case p.App == "":
		return KindNamespace
	}
	return KindPlacement
}

// App is what --app matches and the APP column shows: the app, or the addon.
func App(p status.Placement) string {
	if p.Addon != "" {
		return p.Addon
	}
	return p.App
}

// Filter returns the units every filter selects, in the daemon's order.
func (sel Selection) Filter(all []status.Placement) []status.Placement {
	out := []status.Placement{}
	for _, p := range all {
		if matches(sel.Tenants, p.Tenant) && matches(sel.Regions, p.Region) && matches(sel.Apps, App(p)) &&
			matches(sel.Kinds, Kind(p)) && (len(sel.States) == 0 || slices.Contains(sel.States, p.State)) {
			out = append(out, p)
		}
	}
	return out
}

// matches reports whether name is in list, or list is empty.
func matches(list []string, name string) bool {
	return len(list) == 0 || slices.Contains(list, name)
}

// AllReady reports whether every unit is Ready; false for none.
func AllReady(units []status.Placement) bool {
	if len(units) == 0 {
		return false
	}
	for _, p := range units {
		if p.State != status.Ready {
			return false
		}
	}
	return true
}

// AllAt reports whether every unit runs revision (a prefix of its hash); true
// when revision is empty.
func AllAt(units []status.Placement, revision string) bool {
	for _, p := range units {
		if revision != "" && !strings.HasPrefix(p.Revision, revision) {
			return false
		}
	}
	return true
}
