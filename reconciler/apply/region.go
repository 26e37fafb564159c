package apply

import (
	"context"
	"errors"
	"slices"
	"time"

	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// Region is one region's write side in the shape a reconcile pass drives it
// (reconciler.Cluster): the Applier together with its inventory, so that each step
// keeps the inventory right on its own.
type Region struct {
	applier *Applier
	// obs follows the health of the units waited for, between passes; nil until
	// Observe.
	obs *observer
}

// Region returns the Applier's region view.
func (a *Applier) Region() *Region { return &Region{applier: a} }

// Inventories lists every unit's inventory in the region. A pass starts with it:
// the namespaces the previous pass created are no longer new (see
// Applier.Existing).
func (r *Region) Inventories(ctx context.Context) ([]plan.Inventory, error) {
	r.applier.mu.Lock()
	clear(r.applier.created)
	r.applier.mu.Unlock()
	return r.applier.opts.Inventory.List(ctx)
}

// Apply applies a unit and records it (see Applier.Apply); objects of prev the unit
// no longer renders stay recorded until Prune removes them.
func (r *Region) Apply(ctx context.Context, unit *render.Unit, prev *plan.Inventory) error {
	res, err := r.applier.Apply(ctx, unit, prev)
	if err != nil {
		return err
	}
	if res.Changed() || len(res.Leftover) > 0 {
		r.applier.opts.Logger.Info("applied", "result", res.String())
	}
	return nil
}

// Prune carries out a change's deletions: it deletes the objects of ch.Delete that
// are still Meridian's (see Applier.Prune), releases the adopted ones of
// ch.Release (see Applier.Release) and, once every one is gone, released or left
// to its new owner, takes them out of the unit's inventory — or, when the unit left
// the fleet (plan.Prune), deletes its inventory. After a failure the inventory is
// left as it was, so the next pass tries again.
func (r *Region) Prune(ctx context.Context, ch plan.Change) error {
	if err := errors.Join(r.applier.Prune(ctx, ch.Unit, ch.Delete), r.applier.Release(ctx, ch.Unit, ch.Release)); err != nil {
		return err
	}
	r.applier.forgetObjects(slices.Concat(ch.Delete, ch.Release))
	inv := r.applier.opts.Inventory
	if ch.Action == plan.Prune {
		if r.obs != nil {
			r.obs.forget(ch.Unit)
		}
		return inv.Delete(ctx, ch.Unit)
	}
	cur, err := inv.Get(ctx, ch.Unit)
	if err != nil || cur == nil {
		return err
	}
	done := slices.Concat(ch.Delete, ch.Release)
	next := *cur
	next.Objects = leftover(cur.Objects, done)
	next.Adopted = leftover(cur.Adopted, done)
	next.Hooks = leftover(cur.Hooks, done)
	if len(next.Objects) == len(cur.Objects) && len(next.Hooks) == len(cur.Hooks) {
		return nil
	}
	return inv.Put(ctx, next)
}

// Wait waits until a unit's objects are Ready (see Applier.Wait) and returns the
// state it last read, with why it is not Ready. When the objects could not be read
// (HealthUnknown of the error), the state says nothing. After Observe, the unit's
// health is followed from then on.
func (r *Region) Wait(ctx context.Context, unit *render.Unit, timeout time.Duration) (State, error) {
	refs := make([]plan.ObjectRef, len(unit.Objects))
	for i, o := range unit.Objects {
		refs[i] = plan.RefOf(o)
	}
	r.applier.expectReplicas(unit.Objects)
	h, err := r.applier.Wait(ctx, refs, timeout)
	if r.obs != nil && ctx.Err() == nil {
		r.obs.waited(unit.ID(), refs, h, err)
	}
	return h.State, err
}

// Claim says what applying unit would take over, writing nothing: the objects it
// would adopt, or the refusal Apply would meet (see Applier.Apply).
func (r *Region) Claim(ctx context.Context, unit *render.Unit, prev *plan.Inventory) ([]plan.ObjectRef, error) {
	adopt, _, err := r.applier.claim(ctx, unit, prev)
	if err != nil {
		return nil, err
	}
	return adopt, r.applier.claimHooks(ctx, unit.ID(), hooksFor(unit, prev), prev)
}

// Drift lists the unit's objects whose live state differs from what Meridian
// applied (see Applier.Drift).
func (r *Region) Drift(ctx context.Context, unit *render.Unit) ([]Drift, error) {
	return r.applier.Drift(ctx, unit)
}
