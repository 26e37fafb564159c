package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/sources"
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
	Drifted map[fleet.UnitID][]apply.Drift
	// Objects counts the drifted objects of the region.
	Objects int
	// Corrected are the drifted units applied again; Reported those left as they
	// are because their drift policy is report. Both sorted.
	Corrected, Reported []fleet.UnitID
	// Err is why the region could not be read, or every unit that could not be
	// checked or corrected joined (each a *UnitError), or nil.
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
	problems := RegionProblems(r.Regions, func(rd *RegionDrift) error { return rd.Err })
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("drift check of revision %s: %s", sources.ShortRevision(r.Revision), strings.Join(problems, "; "))
}

// CheckDrift looks for drift in every unit that is applied and unchanged — whose
// inventory digest equals the digest snap renders — and, per the unit's drift
// policy (fleet.Tenant.DriftPolicyOf), applies drifted units again or only reports
// them. Units the snapshot changes are left to RunOnce. Regions are checked in
// parallel; a region that cannot be read is reported in its RegionDrift alone. It
// returns an error only when the snapshot could not be rendered at all.
func (r *Reconciler) CheckDrift(ctx context.Context, snap render.Snapshot) (*DriftReport, error) {
	in, err := r.render(ctx, snap, false)
	if err != nil {
		return nil, err
	}
	regions := eachRegion(regionNames(snap.Model), func(region string) *RegionDrift {
		return r.drift(ctx, region, in)
	})
	return &DriftReport{Revision: snap.Revision, Regions: regions}, nil
}

// drift checks one region's applied, unchanged units.
func (r *Reconciler) drift(ctx context.Context, region string, in *rendered) *RegionDrift {
	rd := &RegionDrift{Drifted: map[fleet.UnitID][]apply.Drift{}}
	log := r.opts.Log.With("region", region)
	rp, err := r.planRegion(ctx, region, in)
	if err != nil {
		rd.Err = err
		return rd
	}
	var errs []error
	for _, ch := range rp.changes.Changes {
		if ch.Action != plan.Unchanged {
			continue
		}
		u := rp.units[ch.Unit]
		drifts, err := rp.cluster.Drift(ctx, u)
		if err != nil {
			errs = append(errs, &UnitError{Unit: ch.Unit, Step: StepDrift, Err: in.redact.Error(err)})
		}
		if len(drifts) == 0 {
			continue
		}
		rd.Drifted[ch.Unit] = drifts
		rd.Objects += len(drifts)
		names := make([]string, len(drifts))
		for j, d := range drifts {
			names[j] = d.String()
		}
		policy := fleet.DriftCorrect
		if a := in.snap.Model.Addon(ch.Unit.Addon); ch.Unit.IsAddon() && a != nil && a.Spec.DriftPolicy != "" {
			policy = a.Spec.DriftPolicy
		} else if t := in.snap.Model.Tenant(ch.Unit.Tenant); !ch.Unit.IsAddon() && t != nil {
			policy = t.DriftPolicyOf(ch.Unit.App)
		}
		if policy == fleet.DriftReport {
			log.Warn("drift found; left as it is (driftPolicy: report)", "unit", ch.Unit, "objects", names)
			rd.Reported = append(rd.Reported, ch.Unit)
			continue
		}
		log.Warn("drift found; applying the unit again", "unit", ch.Unit, "objects", names)
		if err := rp.cluster.Apply(ctx, u, ch.Applied); err != nil {
			errs = append(errs, &UnitError{Unit: ch.Unit, Step: StepCorrect, Err: in.redact.Error(err)})
			continue
		}
		rd.Corrected = append(rd.Corrected, ch.Unit)
	}
	rd.Err = errors.Join(errs...)
	return rd
}
