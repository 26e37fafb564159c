package reconciler

import (
	"context"
	"fmt"
	"sync"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// A pass, a plan and a drift check share their first steps: render the snapshot
// (rendered), then, per region, read what it holds and plan it (planRegion). What
// they do with each region's plan differs: a pass applies it, a plan previews it,
// a drift check compares the units it leaves unchanged.

// rendered is a snapshot rendered for one pass, plan or drift check.
type rendered struct {
	snap render.Snapshot
	res  *render.Result
	// byRegion are the units each region should hold; failed the units of each
	// region that did not render (kept as they are, never pruned).
	byRegion map[string][]*render.Unit
	failed   map[string][]fleet.UnitID
	// redact removes every secret value of the revision from what is reported:
	// API servers quote the values they refuse.
	redact *secrets.Redactor
	// limits are the safety limits every region's plan is held to.
	limits plan.Limits
}

// render renders snap and sorts its units by region.
func (r *Reconciler) render(ctx context.Context, snap render.Snapshot, allowMassDeletion bool) (*rendered, error) {
	return r.renderFiltered(ctx, snap, allowMassDeletion, render.Filter{})
}

// renderFiltered renders the units of snap that filter selects, as render does
// for all of them.
func (r *Reconciler) renderFiltered(ctx context.Context, snap render.Snapshot, allowMassDeletion bool, filter render.Filter) (*rendered, error) {
	res, err := r.opts.Renderer.Render(ctx, snap, filter)
	if err != nil {
		return nil, err
	}
	in := &rendered{
		snap:     snap,
		res:      res,
		byRegion: map[string][]*render.Unit{},
		failed:   map[string][]fleet.UnitID{},
		redact:   secrets.NewRedactor(res.Shown()),
		limits: plan.Limits{
			MaxDeletePercent:  maxDeletePercent(snap.Model.Fleet),
			AllowMassDeletion: allowMassDeletion,
			NoPrune:           len(res.Errors) > 0,
		},
	}
	for _, u := range res.Units {
		in.byRegion[u.Region] = append(in.byRegion[u.Region], u)
	}
	for _, id := range res.Failed() {
		in.failed[id.Region] = append(in.failed[id.Region], id)
	}
	return in, nil
}

// regionPlan is one region's plan and what it was made from.
type regionPlan struct {
	cluster Cluster
	// applied is what the region holds: every unit's inventory.
	applied []plan.Inventory
	changes plan.ChangeSet
	// units are the rendered units of the plan, by ID.
	units map[fleet.UnitID]*render.Unit
}

// planRegion reads what a region holds and plans it. An error means the region
// could not be read: nothing may be written there in this pass.
func (r *Reconciler) planRegion(ctx context.Context, region string, in *rendered) (*regionPlan, error) {
	cluster, ok := r.opts.Clusters[region]
	if !ok {
		return nil, fmt.Errorf("region %s has no cluster configured; add it to Meridian's configuration", region)
	}
	applied, err := cluster.Inventories(ctx)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", in.redact.Error(err))
	}
	return planOf(cluster, region, applied, in), nil
}

// planOf plans region's units of in against applied, the inventories read from
// cluster.
func planOf(cluster Cluster, region string, applied []plan.Inventory, in *rendered) *regionPlan {
	units := in.byRegion[region]
	desired := make([]plan.Desired, len(units))
	byID := make(map[fleet.UnitID]*render.Unit, len(units))
	for i, u := range units {
		desired[i] = plan.DesiredOf(u)
		byID[u.ID()] = u
	}
	return &regionPlan{
		cluster: cluster,
		applied: applied,
		changes: plan.Calculate(region, desired, applied, in.failed[region], in.limits),
		units:   byID,
	}
}

// eachRegion runs fn for every region named side by side and collects what it
// returns by region name.
func eachRegion[T any](regions []string, fn func(region string) T) map[string]T {
	out := make(map[string]T, len(regions))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range regions {
		wg.Go(func() {
			v := fn(name)
			mu.Lock()
			out[name] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// Plan is what applying a snapshot would do to every region, found without writing
// anything: the review commands (meridian plan) start from it.
type Plan struct {
	// Revision is the snapshot's revision.
	Revision string
	// RenderErrors are the units that failed to render.
	RenderErrors []*render.UnitError
	// Regions holds each region's plan, by name.
	Regions map[string]*RegionPlan
	// Redactor removes the revision's secret values from anything shown.
	Redactor *secrets.Redactor
}

// RegionPlan is one region's plan.
type RegionPlan struct {
	// Changes is the region's ChangeSet, with the mass-deletion guard applied.
	Changes plan.ChangeSet
	// Err is why the region could not be read, or nil.
	Err error

	cluster Cluster
	units   map[fleet.UnitID]*render.Unit
}

// Unit returns the rendered unit a change applies, or nil (a unit that is pruned
// or kept).
func (p *RegionPlan) Unit(id fleet.UnitID) *render.Unit { return p.units[id] }

// Cluster is the region's write side, for reading what applying would change.
func (p *RegionPlan) Cluster() Cluster { return p.cluster }

// Plan renders snap and plans every region, side by side, without writing to any.
// It returns an error only when the snapshot could not be rendered at all.
func (r *Reconciler) Plan(ctx context.Context, snap render.Snapshot, allowMassDeletion bool) (*Plan, error) {
	in, err := r.render(ctx, snap, allowMassDeletion)
	if err != nil {
		return nil, err
	}
	regions := eachRegion(regionNames(snap.Model), func(region string) *RegionPlan {
		rp, err := r.planRegion(ctx, region, in)
		if err != nil {
			return &RegionPlan{Err: err}
		}
		return &RegionPlan{Changes: rp.changes, cluster: rp.cluster, units: rp.units}
	})
	return &Plan{Revision: snap.Revision, RenderErrors: in.res.Errors, Regions: regions, Redactor: in.redact}, nil
}

func maxDeletePercent(f *fleet.Fleet) int {
	if p := f.Spec.Safety.MaxDeletePercent; p != nil {
		return *p
	}
	return fleet.DefaultMaxDeletePercent
}
