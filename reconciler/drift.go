package reconciler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// DriftReport is what one drift check found and did.
type DriftReport struct {
	// Revision is the snapshot's revision.
	Revision string
	// Regions holds each region's drift, by name.
	Regions map[string]*RegionDrift
}

// RegionDrift is one region's drift.
type RegionDrift struct {
	// Drifted maps each unit with drifted objects to them.
	Drifted map[string][]apply.Drift
	// Objects counts the drifted objects of the region.
	Objects int
	// Corrected are the drifted units applied again; Reported those left as they
	// are because their drift policy is report. Both sorted.
	Corrected, Reported []string
	// Err is why some units could not be checked or corrected, or nil.
	Err error
}

// Objects counts the drifted objects of every region.
func (r *DriftReport) Objects() int {
	n := 0
	for _, rd := range r.Regions {
		n += rd.Objects
	}
	return n
}

// Err summarises the regions that could not be checked or corrected, or returns nil.
func (r *DriftReport) Err() error {
	problems := regionErrors(r.Regions, func(rd *RegionDrift) error { return rd.Err })
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("drift check of revision %s: %s", shortRevision(r.Revision), strings.Join(problems, "; "))
}

// regionErrors lists "region: error" for every region whose err is not nil, in
// the order of region names.
func regionErrors[R any](regions map[string]R, err func(R) error) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(regions)) {
		if e := err(regions[name]); e != nil {
			out = append(out, name+": "+e.Error())
		}
	}
	return out
}

// CheckDrift looks for drift in every unit that is applied and unchanged — whose
// inventory digest equals the digest snap renders — and, per the unit's drift
// policy (fleet.Tenant.DriftPolicyOf), applies drifted units again or only reports
// them. Units the snapshot changes are left to RunOnce. Regions are checked in
// parallel; a region that cannot be read is reported in its RegionDrift alone. It
// returns an error only when the snapshot could not be rendered at all.
func (r *Reconciler) CheckDrift(ctx context.Context, snap render.Snapshot) (*DriftReport, error) {
	res, err := r.opts.Renderer.Render(ctx, snap, render.Filter{})
	if err != nil {
		return nil, err
	}
	redact := secrets.NewRedactor(secretValues(res))
	byRegion := map[string][]*render.Unit{}
	for _, u := range res.Units {
		byRegion[u.Region] = append(byRegion[u.Region], u)
	}
	report := &DriftReport{Revision: snap.Revision, Regions: map[string]*RegionDrift{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, region := range snap.Model.Regions {
		name := region.Metadata.Name
		wg.Go(func() {
			rd := r.drift(ctx, snap.Model, name, byRegion[name], redact)
			mu.Lock()
			report.Regions[name] = rd
			mu.Unlock()
		})
	}
	wg.Wait()
	return report, nil
}

// drift checks one region's applied, unchanged units.
func (r *Reconciler) drift(ctx context.Context, model *fleet.Model, region string, units []*render.Unit, redact *secrets.Redactor) *RegionDrift {
	rd := &RegionDrift{Drifted: map[string][]apply.Drift{}}
	log := r.opts.Log.With("region", region)
	cluster, ok := r.opts.Clusters[region]
	if !ok {
		rd.Err = fmt.Errorf("region %s has no cluster configured; add it to Meridian's configuration", region)
		return rd
	}
	applied, err := cluster.Inventories(ctx)
	if err != nil {
		rd.Err = fmt.Errorf("read inventory: %w", err)
		return rd
	}
	byUnit := map[string]int{}
	for i, inv := range applied {
		byUnit[inv.Unit] = i
	}
	var problems []string
	for _, u := range units {
		i, ok := byUnit[u.ID()]
		if !ok || applied[i].Digest != u.Digest {
			continue
		}
		drifts, err := cluster.Drift(ctx, u)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s", u.ID(), redact.RedactString(err.Error())))
		}
		if len(drifts) == 0 {
			continue
		}
		rd.Drifted[u.ID()] = drifts
		rd.Objects += len(drifts)
		names := make([]string, len(drifts))
		for j, d := range drifts {
			names[j] = d.String()
		}
		policy := fleet.DriftCorrect
		if t := model.Tenant(u.Tenant); t != nil {
			policy = t.DriftPolicyOf(u.App)
		}
		if policy == fleet.DriftReport {
			log.Warn("drift found; left as it is (driftPolicy: report)", "unit", u.ID(), "objects", names)
			rd.Reported = append(rd.Reported, u.ID())
			continue
		}
		log.Warn("drift found; applying the unit again", "unit", u.ID(), "objects", names)
		inv := applied[i]
		if err := cluster.Apply(ctx, u, &inv); err != nil {
			problems = append(problems, fmt.Sprintf("%s: correct drift: %s", u.ID(), redact.RedactString(err.Error())))
			continue
		}
		rd.Corrected = append(rd.Corrected, u.ID())
	}
	slices.Sort(rd.Corrected)
	slices.Sort(rd.Reported)
	if len(problems) > 0 {
		rd.Err = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return rd
}
