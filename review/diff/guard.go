package diff

import (
	"fmt"
	"slices"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// guard plans each region of the head revision as the daemon would, with the base
// revision's units as what the region holds, and reports the regions with
// deletions. notes say what it could not compute.
func guard(base, head Revision, opts Options) ([]RegionGuard, []string) {
	out, notes := []RegionGuard{}, []string{}
	if opts.Filter.Tenant != "" || opts.Filter.App != "" || opts.Filter.Addon != "" {
		return out, append(notes, "the mass-deletion guard is not computed with --tenant, --app or --addon: it counts every object of a region")
	}
	limit := fleet.DefaultMaxDeletePercent
	if p := head.Model.Fleet.Spec.Safety.MaxDeletePercent; p != nil {
		limit = *p
	}
	applied := map[string][]plan.Inventory{}
	for _, u := range base.Result.Units {
		inv := plan.Inventory{Unit: u.ID(), Digest: u.Digest, Revision: base.Name}
		for _, o := range u.Objects {
			inv.Objects = append(inv.Objects, plan.RefOf(o))
		}
		inv.Hooks = plan.DesiredOf(u).Hooks
		applied[u.Region] = append(applied[u.Region], inv)
	}
	desired := map[string][]plan.Desired{}
	for _, u := range head.Result.Units {
		desired[u.Region] = append(desired[u.Region], plan.DesiredOf(u))
	}

	inHead := map[string]bool{}
	for _, r := range head.Model.Regions {
		region := r.Metadata.Name
		inHead[region] = true
		if !selectRegion(opts.Filter, region) {
			continue
		}
		cs := plan.Calculate(region, desired[region], applied[region], nil, plan.Limits{MaxDeletePercent: limit})
		if cs.Deletions() == 0 {
			continue
		}
		g := RegionGuard{Region: region, Deletions: cs.Deletions(), MaxDeletePercent: limit, Held: cs.Held != "", Reason: cs.Held}
		for _, inv := range applied[region] {
			g.Managed += len(inv.Objects)
		}
		if g.Held && opts.AllowMassDeletion {
			g.Held, g.AllowedByTrailer = false, true
		}
		out = append(out, g)
	}
	var gone []string
	for _, r := range base.Model.Regions {
		if region := r.Metadata.Name; !inHead[region] && selectRegion(opts.Filter, region) && len(applied[region]) > 0 {
			gone = append(gone, region)
		}
	}
	slices.Sort(gone)
	for _, region := range gone {
		notes = append(notes, fmt.Sprintf("region %s leaves the fleet: Meridian stops reconciling it and deletes nothing there; its objects stay until removed by hand", region))
	}
	return out, notes
}

func selectRegion(f render.Filter, region string) bool { return f.Region == "" || f.Region == region }
