package unitstatus

import (
	"fmt"
	"slices"
	"strings"

	"meridian.dev/meridian/reconciler/status"
)

// NewSelection builds the status.Filter of the flags' lists (blanks trimmed,
// empty items dropped) and checks what needs no daemon to check: states (in any
// case) and kinds. Errors name the flag. The daemon applies the filter
// (status.Filter.Query).
func NewSelection(tenants, regions, apps, states, kinds []string) (status.Filter, error) {
	f := status.Filter{
		Tenants: clean(tenants), Regions: clean(regions), Apps: clean(apps), Kinds: clean(kinds),
	}
	for _, s := range clean(states) {
		i := slices.IndexFunc(status.States, func(st status.State) bool { return strings.EqualFold(string(st), s) })
		if i < 0 {
			return f, fmt.Errorf("--state %s: no such state; use %s", s, StatesList())
		}
		f.States = append(f.States, status.States[i])
	}
	for _, k := range f.Kinds {
		if k != status.KindPlacement && k != status.KindNamespace && k != status.KindAddon {
			return f, fmt.Errorf("--kind %s: no such kind of unit; use %s, %s or %s", k, status.KindPlacement, status.KindNamespace, status.KindAddon)
		}
	}
	return f, nil
}

// clean trims blanks and drops empty items (pflag split the commas), so
// "--tenant a, b" and "--tenant a," work.
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

// Known fails naming the first tenant, region or app of f the daemon does not
// know (as its summary lists them), with the names it does.
func Known(sum *status.Summary, f status.Filter) error {
	set := func(names ...[]string) map[string]bool {
		m := map[string]bool{}
		for _, list := range names {
			for _, n := range list {
				m[n] = true
			}
		}
		return m
	}
	regions := set(sum.Columns)
	for _, r := range sum.Regions {
		regions[r.Name] = true
	}
	for _, c := range []struct {
		flag  string
		names []string
		known map[string]bool
	}{{"tenant", f.Tenants, set(sum.Tenants)}, {"region", f.Regions, regions}, {"app", f.Apps, set(sum.Apps)}} {
		for _, n := range c.names {
			if !c.known[n] {
				return fmt.Errorf("--%s %s: the daemon knows no such %s (it knows %s)", c.flag, n, c.flag, knownList(c.known))
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

// App is what --app matches and the APP column shows: the app, or the addon.
func App(p status.Placement) string {
	if p.Addon != "" {
		return p.Addon
	}
	return p.App
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
