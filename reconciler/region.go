package reconciler

import (
	"context"
	"sync"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// applyConcurrency is how many units of a region are applied at once.
const applyConcurrency = 8

// region runs one region's pass: plan, apply, prune, wait. withdrawn waits until
// the records of what is going away left DNS, and says whether they did: the
// region's deletions wait for it, and are held when it failed.
func (r *Reconciler) region(ctx context.Context, region string, in *rendered, withdrawn func() error) *RegionReport {
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
	if r.gatePrune(rr, withdrawn) {
		// A prune that fails (the API server refuses a deletion, for good or for
		// now) fails its unit, which is retried with backoff; it takes nothing
		// away from what runs, so the region still waits for health, and the
		// revision still goes on to later waves.
		r.prune(ctx, rp, rr, in)
	}
	r.waitHealthy(ctx, rp, rr, applied, in)
	return rr
}

// applyUnits applies every unit the plan creates or updates: first the namespace
// units (a placement is applied as the service account its namespace unit
// creates), then the placements, applyConcurrency at a time — a unit's apply is a
// dozen requests one after another, and one unit at a time left the region idle.
// A placement whose namespace unit failed is not applied: its namespace may not be
// the tenant's. It records each failure in rr and returns the units to wait for:
// those applied and those unchanged.
func (r *Reconciler) applyUnits(ctx context.Context, rp *regionPlan, rr *RegionReport, in *rendered) []*render.Unit {
	var namespaces, placements []plan.Change
	for _, ch := range rp.changes.Changes {
		if ch.Unit.IsNamespace() {
			namespaces = append(namespaces, ch)
		} else {
			placements = append(placements, ch)
		}
	}
	var mu sync.Mutex
	var toWait []*render.Unit
	for _, changes := range [][]plan.Change{namespaces, placements} {
		var wg sync.WaitGroup
		sem := make(chan struct{}, applyConcurrency)
		for _, ch := range changes {
			u := rp.units[ch.Unit]
			switch ch.Action {
			case plan.Create, plan.Update:
				ns := fleet.NamespaceUnit(ch.Unit.Tenant, ch.Unit.Region)
				if nsResult := rr.Units[ns]; !ch.Unit.IsNamespace() && nsResult != nil && nsResult.Err != nil {
					rr.Units[ch.Unit].Err = &UnitError{Unit: ch.Unit, Step: StepApply, Err: &NamespaceFailedError{Namespace: ns}}
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
					toWait = append(toWait, u)
				})
			case plan.Unchanged:
				mu.Lock()
				toWait = append(toWait, u)
				mu.Unlock()
			}
		}
		wg.Wait()
	}
	return toWait
}

// gatePrune decides whether the region's deletions go ahead: only when nothing
// holds them and DNS no longer points at what they remove. It holds them (in
// rr.Changes.Held) when the withdrawal from DNS failed.
func (r *Reconciler) gatePrune(rr *RegionReport, withdrawn func() error) bool {
	if rr.Changes.Held != "" || rr.Changes.Deletions() == 0 {
		return false
	}
	if withdrawn() != nil {
		rr.Changes.Held = "DNS records could not be withdrawn, and nothing is deleted because something failed"
		return false
	}
	return true
}

// prune carries out the plan's deletions: placements before namespaces, each in
// the reverse of the plan's order. A placement that failed to prune keeps every
// namespace of the region: deleting a namespace would delete what was refused.
func (r *Reconciler) prune(ctx context.Context, rp *regionPlan, rr *RegionReport, in *rendered) {
	changes := rp.changes.Changes
	for _, namespaces := range []bool{false, true} {
		if namespaces && rr.Failed() {
			return
		}
		for i := len(changes) - 1; i >= 0; i-- {
			ch := changes[i]
			if len(ch.Delete)+len(ch.Release) == 0 || ch.Unit.IsNamespace() != namespaces {
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
