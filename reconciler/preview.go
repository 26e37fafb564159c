package reconciler

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
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
	Live map[string][]apply.Drift
	// Err is why the region, or some units, could not be previewed, or nil.
	Err error
}

// Changed reports whether applying the snapshot would change anything: a unit
// created, updated or pruned, or an object that differs from what would be applied.
func (p *Preview) Changed() bool {
	for _, rp := range p.Regions {
		for _, ch := range rp.Changes.Changes {
			if ch.Action != plan.Unchanged || len(ch.Delete) > 0 {
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
	problems = append(problems, regionErrors(p.Regions, func(rp *RegionPreview) error { return rp.Err })...)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("plan of revision %s: %s", shortRevision(p.Revision), strings.Join(problems, "; "))
}

// Preview renders snap and previews it in every region, in parallel, without
// writing to any of them. It returns an error only when the snapshot could not be
// rendered at all.
func (r *Reconciler) Preview(ctx context.Context, snap render.Snapshot, allowMassDeletion bool) (*Preview, error) {
	res, err := r.opts.Renderer.Render(ctx, snap, render.Filter{})
	if err != nil {
		return nil, err
	}
	redact := secrets.NewRedactor(secretValues(res))
	byRegion := map[string][]*render.Unit{}
	for _, u := range res.Units {
		byRegion[u.Region] = append(byRegion[u.Region], u)
	}
	failed := map[string][]string{}
	for _, id := range res.Failed() {
		parts := strings.Split(id, "/")
		failed[parts[1]] = append(failed[parts[1]], id)
	}
	limits := plan.Limits{
		MaxDeletePercent:  maxDeletePercent(snap.Model.Fleet),
		AllowMassDeletion: allowMassDeletion,
		NoPrune:           len(res.Errors) > 0,
	}
	p := &Preview{Revision: snap.Revision, RenderErrors: res.Errors, Regions: map[string]*RegionPreview{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, region := range snap.Model.Regions {
		name := region.Metadata.Name
		wg.Go(func() {
			rp := r.preview(ctx, name, byRegion[name], failed[name], limits, redact)
			mu.Lock()
			p.Regions[name] = rp
			mu.Unlock()
		})
	}
	wg.Wait()
	return p, nil
}

// preview plans one region and dry-runs every unit it already holds.
func (r *Reconciler) preview(ctx context.Context, region string, units []*render.Unit, failed []string, limits plan.Limits, redact *secrets.Redactor) *RegionPreview {
	rp := &RegionPreview{Live: map[string][]apply.Drift{}}
	cluster, ok := r.opts.Clusters[region]
	if !ok {
		rp.Err = fmt.Errorf("region %s has no cluster configured; add it to Meridian's configuration", region)
		return rp
	}
	applied, err := cluster.Inventories(ctx)
	if err != nil {
		rp.Err = fmt.Errorf("read inventory: %w", err)
		return rp
	}
	desired := make([]plan.Desired, len(units))
	for i, u := range units {
		desired[i] = plan.Desired{Unit: u.ID(), Digest: u.Digest, Objects: u.Objects}
	}
	rp.Changes = plan.Calculate(region, desired, applied, failed, limits)
	actions := map[string]plan.Action{}
	for _, ch := range rp.Changes.Changes {
		actions[ch.Unit] = ch.Action
	}
	var problems []string
	for _, u := range units {
		if a, ok := actions[u.ID()]; !ok || a == plan.Create {
			// A new unit's objects are all created, and its tenant's service
			// account may not exist yet to dry-run them as.
			continue
		}
		drifts, err := cluster.Drift(ctx, u)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", u.ID(), redact.RedactString(err.Error())))
		}
		if len(drifts) > 0 {
			rp.Live[u.ID()] = drifts
		}
	}
	if len(problems) > 0 {
		rp.Err = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return rp
}

// WriteText writes the preview for people: per region its plan, each unit that
// would change with the objects and fields, and drift in units the revision
// leaves unchanged. Values never appear, only field paths.
func (p *Preview) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan of revision %s against %d regions\n", shortRevision(p.Revision), len(p.Regions))
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
			if ch.Action == plan.Unchanged && len(live) == 0 && len(ch.Delete) == 0 {
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
			for _, ref := range ch.Delete {
				fmt.Fprintf(&b, "      %s: delete\n", ref.String())
			}
		}
		if rp.Changes.Held != "" {
			fmt.Fprintf(&b, "  deletions held: %s\n", rp.Changes.Held)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
