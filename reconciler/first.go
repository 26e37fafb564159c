package reconciler

import (
	"context"
	"reflect"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// A pass renders, reads and plans the whole fleet before it applies anything,
// which at thousands of placements costs more than applying a one-tenant change.
// When the revision changed one tenant only, RunOnce first applies that tenant's
// units on their own (first), then runs the pass as always; the pass finds them
// unchanged. Applying early only what the pass itself would apply next, and
// nothing else, keeps every rule the pass keeps:
//
//   - nothing is deleted or released early: the early step applies, never prunes;
//   - only the first wave's regions, so a later wave still waits for the first
//     to be healthy;
//   - not in a region with addons, which every placement waits for;
//   - not when the tenant's namespace units change, nor when a unit renders an
//     object outside the tenant's namespace (a cluster-scoped one): whether
//     another unit renders the same object is known only once every unit is
//     rendered;
//   - ownership, adoption and the tenant's own dependencies are checked by the
//     same apply, in the same stages, as in the pass.
//
// What failed early is not reported: the pass applies it again, and reports
// that. What was applied early is reported as the pass's own change (an update,
// not "unchanged"), so the pass's report says what the revision changed.

// ChangedTenant returns the one tenant whose spec differs between prev and next,
// a tenant new in next included, or "" when there is none or more than one, or
// prev is nil. It reads the tenants' files as loaded (values, regions, apps), not
// their secrets files: a change to those alone is applied by the pass.
func ChangedTenant(prev, next *fleet.Model) string {
	if prev == nil || next == nil {
		return ""
	}
	changed := ""
	for _, t := range next.Tenants {
		p := prev.Tenant(t.Metadata.Name)
		if p != nil && reflect.DeepEqual(p.Spec, t.Spec) && p.SecretsFile == t.SecretsFile && reflect.DeepEqual(p.RegionSecretsFiles, t.RegionSecretsFiles) {
			continue
		}
		if changed != "" {
			return ""
		}
		changed = t.Metadata.Name
	}
	return changed
}

// first applies tenant's units of snap in the regions of the first wave, before
// the pass, as the comment above says. It returns how many units it rendered,
// and the creates and updates it applied without error, by region.
func (r *Reconciler) first(ctx context.Context, snap render.Snapshot, tenant string) (int, map[string]map[fleet.UnitID]plan.Action) {
	m := snap.Model
	if m.Tenant(tenant) == nil {
		return 0, nil
	}
	in, err := r.renderFiltered(ctx, snap, false, render.Filter{Tenant: tenant})
	if err != nil {
		return 0, nil
	}
	in.limits.NoPrune = true
	for _, u := range in.res.Units {
		if u.Tenant != tenant || u.Addon != "" {
			return in.res.Renders, nil
		}
		for _, o := range u.All() {
			if o.GetNamespace() == "" && !u.ID().IsNamespace() {
				return in.res.Renders, nil // cluster-scoped: another unit may render it too
			}
		}
	}
	log := r.opts.Log.With("tenant", tenant)
	wave := waves(m)[0]
	applied := eachRegion(wave.Regions, func(region string) map[fleet.UnitID]plan.Action {
		if m.Region(region) == nil || len(m.AddonsOf(m.Region(region))) > 0 {
			return nil
		}
		rp, err := r.planTenant(ctx, region, tenant, in)
		if err != nil || rp == nil {
			return nil
		}
		rr := &RegionReport{Changes: rp.changes, Units: make(map[fleet.UnitID]*UnitResult, len(rp.changes.Changes))}
		for _, ch := range rp.changes.Changes {
			rr.Units[ch.Unit] = &UnitResult{Action: ch.Action}
		}
		log.Info("applying the changed tenant first", "region", region, "changes", rp.changes.String())
		r.applyUnits(ctx, rp, rr, in)
		done := map[fleet.UnitID]plan.Action{}
		for id, res := range rr.Units {
			if (res.Action == plan.Create || res.Action == plan.Update) && res.Err == nil {
				done[id] = res.Action
			}
		}
		return done
	})
	return in.res.Renders, applied
}

// reportFirst reports the units first applied as the changes they were, where
// the pass found them unchanged.
func reportFirst(report *Report, applied map[string]map[fleet.UnitID]plan.Action) {
	for region, units := range applied {
		rr := report.Regions[region]
		if rr == nil || rr.Err != nil {
			continue
		}
		for i, ch := range rr.Changes.Changes {
			if a, ok := units[ch.Unit]; ok && ch.Action == plan.Unchanged {
				rr.Changes.Changes[i].Action = a
				if res := rr.Units[ch.Unit]; res != nil {
					res.Action = a
				}
			}
		}
	}
}

// planTenant plans tenant's units in region against their inventories, for
// first; nil when there is nothing to apply early there: no change, or a change
// to a namespace unit.
func (r *Reconciler) planTenant(ctx context.Context, region, tenant string, in *rendered) (*regionPlan, error) {
	cluster, ok := r.opts.Clusters[region]
	if !ok {
		return nil, nil
	}
	all, err := cluster.Inventories(ctx)
	if err != nil {
		return nil, err
	}
	var applied []plan.Inventory
	for _, inv := range all {
		if inv.Unit.Tenant == tenant && !inv.Unit.IsAddon() {
			applied = append(applied, inv)
		}
	}
	rp := planOf(cluster, region, applied, in)
	some := false
	for _, ch := range rp.changes.Changes {
		switch ch.Action {
		case plan.Create, plan.Update:
			if ch.Unit.IsNamespace() {
				return nil, nil
			}
			some = true
		}
	}
	if !some {
		return nil, nil
	}
	return rp, nil
}
