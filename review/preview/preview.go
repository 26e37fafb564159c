// Package preview shows what applying a revision would do to the live regions
// (meridian plan): each region's plan and a server-side dry-run of every unit it
// already holds, so drift shows too. It writes nothing.
package preview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

// Preview is what applying a snapshot would do to the live regions, found without
// writing anything: each region's plan, and for every unit already in the region a
// server-side dry-run of its objects, which shows both what the revision changes
// and any drift.
type Preview struct {
	// Revision is the snapshot's revision.
	Revision string
	// RenderErrors are the units that failed to render.
	RenderErrors []*render.UnitError
	// Regions holds each region's preview, by name.
	Regions map[string]*RegionPreview
}

// RegionPreview is one region's preview.
type RegionPreview struct {
	// Changes is the region's plan, with the mass-deletion guard applied.
	Changes plan.ChangeSet
	// Live maps each unit in the region to its objects that applying would change
	// (fields by path, never values) or create. For a unit the revision leaves
	// unchanged, that is drift.
	Live map[fleet.UnitID][]apply.Drift
	// Adopt maps each unit the revision creates or updates to the objects it would
	// take over because the fleet asks for it (adoptExisting): they exist in the
	// region, and Meridian did not create them.
	Adopt map[fleet.UnitID][]plan.ObjectRef
	// Hooks maps each unit the revision creates or updates to the Helm hooks
	// applying it would run, in order: its install or upgrade hooks.
	Hooks map[fleet.UnitID][]apply.HookStep
	// Err is why the region could not be read, or every unit that could not be
	// dry-run or that applying would refuse (an object it would take over exists
	// and Meridian did not create it) joined, each a *reconciler.UnitError; or nil.
	Err error
}

// Changed reports whether applying the snapshot would change anything: a unit
// created, updated or pruned, or an object that differs from what would be applied.
func (p *Preview) Changed() bool {
	for _, rp := range p.Regions {
		for _, ch := range rp.Changes.Changes {
			if ch.Action != plan.Unchanged || len(ch.Delete)+len(ch.Release) > 0 {
				return true
			}
		}
		for _, d := range rp.Live {
			if len(d) > 0 {
				return true
			}
		}
	}
	return false
}

// Err summarises what could not be previewed, or returns nil.
func (p *Preview) Err() error {
	var problems []string
	if len(p.RenderErrors) > 0 {
		problems = append(problems, fmt.Sprintf("%d units failed to render", len(p.RenderErrors)))
	}
	problems = append(problems, reconciler.RegionProblems(p.Regions, func(rp *RegionPreview) error { return rp.Err })...)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("plan of revision %s: %s", sources.ShortRevision(p.Revision), strings.Join(problems, "; "))
}

// Run plans snap with r (reconciler.Reconciler.Plan) and dry-runs, region by
// region side by side, every unit each region already holds. It writes nothing. It
// returns an error only when the snapshot could not be rendered at all.
func Run(ctx context.Context, r *reconciler.Reconciler, snap render.Snapshot, allowMassDeletion bool) (*Preview, error) {
	pl, err := r.Plan(ctx, snap, allowMassDeletion)
	if err != nil {
		return nil, err
	}
	p := &Preview{Revision: pl.Revision, RenderErrors: pl.RenderErrors, Regions: map[string]*RegionPreview{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, rp := range pl.Regions {
		wg.Go(func() {
			out := dryRun(ctx, rp, pl.Redactor)
			mu.Lock()
			p.Regions[name] = out
			mu.Unlock()
		})
	}
	wg.Wait()
	return p, nil
}

// dryRun dry-runs every unit of a region's plan that the region already holds,
// and finds what the units it creates or updates would adopt or be refused.
func dryRun(ctx context.Context, rp *reconciler.RegionPlan, redact *secrets.Redactor) *RegionPreview {
	out := &RegionPreview{Changes: rp.Changes, Live: map[fleet.UnitID][]apply.Drift{}, Adopt: map[fleet.UnitID][]plan.ObjectRef{}, Hooks: map[fleet.UnitID][]apply.HookStep{}, Err: rp.Err}
	if rp.Err != nil {
		return out
	}
	var errs []error
	for _, ch := range rp.Changes.Changes {
		u := rp.Unit(ch.Unit)
		if u != nil && (ch.Action == plan.Create || ch.Action == plan.Update) {
			adopt, err := rp.Cluster().Claim(ctx, u, ch.Applied)
			if err != nil {
				errs = append(errs, &reconciler.UnitError{Unit: ch.Unit, Step: reconciler.StepApply, Err: redact.Error(err)})
			}
			if len(adopt) > 0 {
				out.Adopt[ch.Unit] = adopt
			}
			if hooks := apply.Hooks(u, ch.Applied); len(hooks) > 0 {
				out.Hooks[ch.Unit] = hooks
			}
		}
		if u == nil || ch.Action == plan.Create {
			// A new unit's objects are all created, and its tenant's service
			// account may not exist yet to dry-run them as.
			continue
		}
		drifts, err := rp.Cluster().Drift(ctx, u)
		if err != nil {
			errs = append(errs, &reconciler.UnitError{Unit: ch.Unit, Step: reconciler.StepDrift, Err: redact.Error(err)})
		}
		if len(drifts) > 0 {
			out.Live[ch.Unit] = drifts
		}
	}
	out.Err = errors.Join(errs...)
	return out
}

// WriteText writes the preview for people: per region its plan, each unit that
// would change with the objects and fields, and drift in units the revision
// leaves unchanged. Values never appear, only field paths.
func (p *Preview) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan of revision %s against %d regions\n", sources.ShortRevision(p.Revision), len(p.Regions))
	for _, e := range p.RenderErrors {
		fmt.Fprintf(&b, "render error: %s\n", e.Error())
	}
	for _, name := range slices.Sorted(maps.Keys(p.Regions)) {
		rp := p.Regions[name]
		fmt.Fprintf(&b, "\n%s\n", rp.Changes.String())
		if rp.Err != nil {
			fmt.Fprintf(&b, "  error: %s\n", rp.Err)
		}
		for _, ch := range rp.Changes.Changes {
			live := rp.Live[ch.Unit]
			if ch.Action == plan.Unchanged && len(live) == 0 && len(ch.Delete)+len(ch.Release) == 0 {
				continue
			}
			action := ch.Action.String()
			if ch.Action == plan.Unchanged {
				action = "drift"
			}
			fmt.Fprintf(&b, "  %-9s %s\n", action, ch.Unit)
			for _, d := range live {
				fmt.Fprintf(&b, "      %s\n", d.String())
			}
			for _, ref := range rp.Adopt[ch.Unit] {
				fmt.Fprintf(&b, "      %s: adopt (it exists and Meridian did not create it)\n", ref.String())
			}
			for _, h := range rp.Hooks[ch.Unit] {
				fmt.Fprintf(&b, "      %s\n", h.String())
			}
			for _, ref := range ch.Delete {
				fmt.Fprintf(&b, "      %s: delete\n", ref.String())
			}
			for _, ref := range ch.Release {
				fmt.Fprintf(&b, "      %s: release (adopted: left in place, without Meridian's labels)\n", ref.String())
			}
		}
		if rp.Changes.Held != "" {
			fmt.Fprintf(&b, "  deletions held: %s\n", rp.Changes.Held)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
