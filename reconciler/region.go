package reconciler

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// applyConcurrency is how many units of a region are applied at once.
const applyConcurrency = 8

// region runs one region's pass: plan, apply, prune, wait. The region's
// deletions wait until d withdrew from DNS the records of what they remove, and
// are held when that failed.
func (r *Reconciler) region(ctx context.Context, region string, in *rendered, d *dnsPass) *RegionReport {
	log := r.opts.Log.With("region", region)
	rp, err := r.planRegion(ctx, region, in)
	if err != nil {
		log.Error("region unreachable; nothing changed there", "error", err)
		return &RegionReport{Err: err, Units: map[fleet.UnitID]*UnitResult{}}
	}
	rr := &RegionReport{Changes: rp.changes, Units: make(map[fleet.UnitID]*UnitResult, len(rp.changes.Changes))}
	for _, ch := range rp.changes.Changes {
		rr.Units[ch.Unit] = &UnitResult{Action: ch.Action}
	}
	if !rr.Changes.Empty() {
		log.Info("plan", "changes", rr.Changes.String())
	}
	applied := r.applyUnits(ctx, rp, rr, in)
	if rr.Failed() {
		// The region failed this pass whatever its health; waiting would only hold
		// the pass (and the other regions' next revision) for the health timeout
		// when the region is unreachable. Its health stays unknown until the retry,
		// and nothing is deleted because something failed.
		return rr
	}
	if r.gatePrune(ctx, region, rr, d) {
		// A prune that fails (the API server refuses a deletion, for good or for
		// now) fails its unit, which is retried with backoff; it takes nothing
		// away from what runs, so the region still waits for health, and the
		// revision still goes on to later waves.
		r.prune(ctx, rp, rr, in)
	}
	r.waitHealthy(ctx, rp, rr, applied, in)
	return rr
}

// applyUnits applies every unit the plan creates or updates, in stages (see
// stages): the region's addons first, then the tenants' namespace units (a
// placement is applied as the service account its namespace unit creates), then
// the placements; each stage applyConcurrency units at a time — a unit's apply is
// a dozen requests one after another, and one unit at a time left the region idle.
// Before a unit is applied, every unit it needs healthy (needs) was waited for; a
// unit whose dependency is not healthy, or whose namespace unit failed, is not
// applied and fails with the reason: it is left as it is, never deleted. It
// records each failure in rr and returns the units still to wait for: those
// applied or unchanged whose health was not read already.
func (r *Reconciler) applyUnits(ctx context.Context, rp *regionPlan, rr *RegionReport, in *rendered) []*render.Unit {
	needs := r.needs(rp, in)
	awaited := map[fleet.UnitID]bool{} // units that some unit to apply needs healthy
	for _, ch := range rp.changes.Changes {
		if ch.Action == plan.Create || ch.Action == plan.Update {
			for _, dep := range needs(ch.Unit) {
				awaited[dep] = true
			}
		}
	}
	var mu sync.Mutex
	var toWait []*render.Unit
	for _, changes := range stages(rp.changes.Changes, needs) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, applyConcurrency)
		var ready []*render.Unit // units of the stage to wait for now
		for _, ch := range changes {
			u := rp.units[ch.Unit]
			switch ch.Action {
			case plan.Create, plan.Update:
				if err := blocked(ch.Unit, rr, needs); err != nil {
					rr.Units[ch.Unit].Err = &UnitError{Unit: ch.Unit, Step: StepApply, Err: err}
					continue
				}
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					err := rp.cluster.Apply(ctx, u, ch.Applied)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						rr.Units[ch.Unit].Err = &UnitError{Unit: ch.Unit, Step: StepApply, Err: in.redact.Error(err)}
						return
					}
					if awaited[ch.Unit] {
						ready = append(ready, u)
					} else {
						toWait = append(toWait, u)
					}
				})
			case plan.Unchanged:
				mu.Lock()
				if awaited[ch.Unit] {
					ready = append(ready, u)
				} else {
					toWait = append(toWait, u)
				}
				mu.Unlock()
			}
		}
		wg.Wait()
		r.waitHealthy(ctx, rp, rr, ready, in)
	}
	return toWait
}

// needs returns, for a unit of the region, the units that must be healthy before
// it is applied: for every tenant unit, each addon the region runs; for an addon,
// the addons it depends on; for a placement, also the tenant's apps it depends on
// (fleet's dependsOn), in the same region.
func (r *Reconciler) needs(rp *regionPlan, in *rendered) func(fleet.UnitID) []fleet.UnitID {
	var addons []fleet.UnitID
	for _, ch := range rp.changes.Changes {
		if ch.Unit.IsAddon() && ch.Action != plan.Prune {
			addons = append(addons, ch.Unit)
		}
	}
	m := in.snap.Model
	return func(id fleet.UnitID) []fleet.UnitID {
		if id.IsAddon() {
			var out []fleet.UnitID
			if a := m.Addon(id.Addon); a != nil {
				for _, dep := range a.Spec.DependsOn {
					out = append(out, fleet.AddonUnit(id.Region, dep))
				}
			}
			return out
		}
		out := slices.Clone(addons)
		if t := m.Tenant(id.Tenant); t != nil && !id.IsNamespace() {
			for _, dep := range t.DependenciesOf(id.App) {
				out = append(out, fleet.UnitID{Tenant: id.Tenant, Region: id.Region, App: dep})
			}
		}
		return out
	}
}

// stages groups a region's changes in the order they are applied: addons first
// (an addon after those it needs), then namespace units, then placements (a
// placement after those it needs). A unit that needs one of a later stage, which
// validation refuses, is put in the stage after it.
func stages(changes []plan.Change, needs func(fleet.UnitID) []fleet.UnitID) [][]plan.Change {
	const (
		addons = iota
		namespaces
		placements
	)
	kind := func(id fleet.UnitID) int {
		switch {
		case id.IsAddon():
			return addons
		case id.IsNamespace():
			return namespaces
		}
		return placements
	}
	inPlan := map[fleet.UnitID]bool{}
	for _, ch := range changes {
		inPlan[ch.Unit] = true
	}
	// depth is how many units of its own kind a unit waits for, one after another;
	// a cycle, which validation refuses, is cut where it closes.
	depth := map[fleet.UnitID]int{}
	visiting := map[fleet.UnitID]bool{}
	var depthOf func(id fleet.UnitID) int
	depthOf = func(id fleet.UnitID) int {
		if d, ok := depth[id]; ok {
			return d
		}
		if visiting[id] {
			return 0
		}
		visiting[id] = true
		d := 0
		for _, dep := range needs(id) {
			if inPlan[dep] && kind(dep) == kind(id) {
				d = max(d, depthOf(dep)+1)
			}
		}
		visiting[id] = false
		depth[id] = d
		return d
	}
	byStage := map[[2]int][]plan.Change{}
	var keys [][2]int
	for _, ch := range changes {
		if ch.Action != plan.Create && ch.Action != plan.Update && ch.Action != plan.Unchanged {
			continue
		}
		k := [2]int{kind(ch.Unit), depthOf(ch.Unit)}
		if _, ok := byStage[k]; !ok {
			keys = append(keys, k)
		}
		byStage[k] = append(byStage[k], ch)
	}
	slices.SortFunc(keys, func(a, b [2]int) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	out := make([][]plan.Change, len(keys))
	for i, k := range keys {
		out[i] = byStage[k]
	}
	return out
}

// blocked says why a unit may not be applied yet, or returns nil: its namespace
// unit failed, or a unit it needs is not healthy in the region.
func blocked(id fleet.UnitID, rr *RegionReport, needs func(fleet.UnitID) []fleet.UnitID) error {
	if !id.IsNamespace() && !id.IsAddon() {
		ns := id.Namespace()
		if res := rr.Units[ns]; res != nil && res.Err != nil {
			return &NamespaceFailedError{Namespace: ns}
		}
	}
	for _, dep := range needs(id) {
		res := rr.Units[dep]
		switch {
		case res == nil:
			return &DependencyError{Dependency: dep, Reason: "is not in the revision's plan for the region"}
		case res.Action == plan.Keep:
			return &DependencyError{Dependency: dep, Reason: "did not render"}
		case res.Err != nil:
			return &DependencyError{Dependency: dep, Reason: "failed"}
		case res.Health != Healthy:
			return &DependencyError{Dependency: dep, Reason: fmt.Sprintf("is %s", res.Health)}
		}
	}
	return nil
}

// gatePrune decides whether the region's deletions go ahead: only when nothing
// holds them and DNS no longer points at what they remove. Only once the
// mass-deletion guard let them through are the records of the region's
// placements leaving the fleet withdrawn (d.proceed): a held removal keeps them.
// It holds the deletions (in rr.Changes.Held) when the withdrawal failed.
func (r *Reconciler) gatePrune(ctx context.Context, region string, rr *RegionReport, d *dnsPass) bool {
	if rr.Changes.Held != "" {
		return false
	}
	deletes := rr.Changes.Deletions() > 0
	if err := d.proceed(ctx, region, deletes); err != nil {
		rr.Changes.Held = "DNS records could not be withdrawn, and nothing is deleted because something failed"
		return false
	}
	return deletes
}

// prune carries out the plan's deletions: placements, then namespaces, then
// addons — the reverse of the order they are applied in — each in the reverse of
// the plan's order. A unit that failed to prune keeps every unit of the later
// steps: deleting a namespace would delete what was refused, and deleting an
// addon (its CRDs) what tenants still run on it.
func (r *Reconciler) prune(ctx context.Context, rp *regionPlan, rr *RegionReport, in *rendered) {
	changes := rp.changes.Changes
	step := func(id fleet.UnitID) int {
		switch {
		case id.IsAddon():
			return 2
		case id.IsNamespace():
			return 1
		}
		return 0
	}
	for s := range 3 {
		if s > 0 && rr.Failed() {
			return
		}
		for i := len(changes) - 1; i >= 0; i-- {
			ch := changes[i]
			if len(ch.Delete)+len(ch.Release) == 0 || step(ch.Unit) != s {
				continue
			}
			if err := rp.cluster.Prune(ctx, ch); err != nil {
				rr.Units[ch.Unit].Err = &UnitError{Unit: ch.Unit, Step: StepPrune, Err: in.redact.Error(err)}
				continue
			}
			rr.Units[ch.Unit].Pruned = true
		}
	}
}

// waitHealthy waits, side by side, for every unit applied or unchanged to become
// healthy and records what it found.
func (r *Reconciler) waitHealthy(ctx context.Context, rp *regionPlan, rr *RegionReport, units []*render.Unit, in *rendered) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Go(func() {
			state, err := rp.cluster.Wait(ctx, u, r.opts.HealthTimeout)
			mu.Lock()
			defer mu.Unlock()
			res := rr.Units[u.ID()]
			switch {
			case err == nil:
				res.Health = Healthy
			case apply.HealthUnknown(err):
				res.Health, res.HealthErr = HealthUnknown, in.redact.Error(err)
			case state == apply.Failed:
				res.Health, res.HealthErr = Unhealthy, in.redact.Error(err)
			default:
				res.Health, res.HealthErr = Progressing, in.redact.Error(err)
			}
		})
	}
	wg.Wait()
}
