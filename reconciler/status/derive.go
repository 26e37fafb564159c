package status

import (
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
)

// State is a placement's sync state, as the metrics, the API and the dashboard
// show it.
type State string

// The states of a placement.
const (
	// Ready: the unit runs the pass's revision and became healthy.
	Ready State = "Ready"
	// Progressing: the unit was applied but is not healthy yet, or the rollout has
	// not reached its region (an earlier wave stopped it).
	Progressing State = "Progressing"
	// Failed: applying the unit failed, its workloads failed, or its region could
	// not be reached; it keeps what it ran before.
	Failed State = "Failed"
	// Held: the unit's deletions are held by the mass-deletion guard (or because
	// something else failed in the region); they wait for a commit.
	Held State = "Held"
	// RenderFailed: the unit did not render; it is left as it is in the cluster.
	RenderFailed State = "RenderFailed"
	// Unknown: nothing the Store was told says how the unit is (it is known only
	// from its DNS endpoints or a drift check).
	Unknown State = "Unknown"
)

// States lists every State in the order the dashboard and the metrics list them.
var States = []State{Ready, Progressing, Failed, Held, RenderFailed, Unknown}

// Outcome is what one pass says about one unit.
type Outcome struct {
	// State is the unit's state after the pass.
	State State
	// Reason says why the state is not Ready; empty for Ready.
	Reason string
	// Applied reports that the unit now runs the pass's revision: it was applied,
	// or found unchanged, without error (it may still be unhealthy).
	Applied bool
	// Revision is the revision the unit runs after the pass: the pass's when
	// Applied, else the one its inventory records (empty when it has none).
	Revision string
	// Gone reports that the unit left the fleet and the pass pruned it.
	Gone bool
}

// PassOutcome is what one pass says about every unit and region it concerns.
type PassOutcome struct {
	// Units holds the outcome of every unit the pass names.
	Units map[fleet.UnitID]Outcome
	// Listed are the regions whose every unit the pass planned: a unit of such a
	// region that Units does not name is no longer Meridian's.
	Listed map[string]bool
	// Unreached maps regions that failed before their units could be listed
	// (inventory unreadable, no cluster configured) to the reason: every unit
	// known there has failed.
	Unreached map[string]string
	// Waiting maps the regions of waves the rollout did not reach to why: their
	// units keep what they run, and the new revision waits.
	Waiting map[string]string
}

// DeriveStates turns a pass's Report into the state of each unit:
//
//   - a unit that failed to render is RenderFailed, whatever its region did;
//   - in a region that could not be read, every unit is Failed (Unreached);
//   - a unit whose apply (or prune) failed is Failed with that error;
//   - a unit that did not become healthy is Failed when its workloads failed and
//     Progressing when they were still progressing at the health timeout (or
//     their health could not be read);
//   - a unit leaving the fleet that the pass pruned is Gone; one it did not prune
//     (deletions held, or an apply of its region failed) is Held;
//   - a unit whose deletions are held is Held;
//   - every other unit is Ready at the report's revision;
//   - the regions of skipped waves are Waiting.
//
// It is pure: the Store applies the outcome to what it knew before.
func DeriveStates(r *reconciler.Report) PassOutcome {
	out := PassOutcome{Units: map[fleet.UnitID]Outcome{}, Listed: map[string]bool{}, Unreached: map[string]string{}, Waiting: map[string]string{}}
	if r == nil {
		return out
	}
	renderErrs := map[fleet.UnitID]string{}
	for _, e := range r.RenderErrors {
		if e == nil {
			continue
		}
		renderErrs[e.Unit] = e.Error()
	}
	for region, rr := range r.Regions {
		if rr == nil {
			continue
		}
		if rr.Err != nil {
			out.Unreached[region] = region + ": " + rr.Err.Error()
			continue
		}
		out.Listed[region] = true
		held := rr.Changes.Held
		for _, ch := range rr.Changes.Changes {
			res := rr.Units[ch.Unit]
			if res == nil {
				res = &reconciler.UnitResult{Action: ch.Action}
			}
			o := Outcome{}
			switch {
			case ch.Action == plan.Keep:
				o = Outcome{State: RenderFailed, Reason: renderErrs[ch.Unit]}
				if o.Reason == "" {
					o.Reason = ch.Unit.String() + ": failed to render; left as it is"
				}
			case res.Err != nil:
				o = Outcome{State: Failed, Reason: res.Err.Error()}
			case ch.Action == plan.Prune && res.Pruned:
				o = Outcome{Gone: true}
			case ch.Action == plan.Prune && held != "":
				o = Outcome{State: Held, Reason: "deletions held: " + held}
			case ch.Action == plan.Prune:
				o = Outcome{State: Held, Reason: "left the fleet; deleted once every apply in " + region + " succeeds"}
			case res.HealthErr != nil:
				o = Outcome{State: Progressing, Reason: res.HealthErr.Error(), Applied: true}
				if res.Health == reconciler.Unhealthy {
					o.State = Failed
				}
			case held != "" && len(ch.Delete) > 0:
				o = Outcome{State: Held, Reason: "deletions held: " + held, Applied: true}
			default:
				o = Outcome{State: Ready, Applied: true}
			}
			switch {
			case o.Applied:
				o.Revision = r.Revision
			case ch.Applied != nil:
				o.Revision = ch.Applied.Revision
			}
			out.Units[ch.Unit] = o
		}
	}
	// A unit that failed to render in a region that was not planned (unreached,
	// or in a skipped wave) failed all the same.
	for unit, reason := range renderErrs {
		if _, ok := out.Units[unit]; !ok {
			out.Units[unit] = Outcome{State: RenderFailed, Reason: reason}
		}
	}
	for _, w := range r.Waves {
		if !w.Skipped {
			continue
		}
		for _, region := range w.Regions {
			reason := r.Stopped
			if reason == "" {
				reason = "wave " + w.Name + " was skipped"
			}
			out.Waiting[region] = reason
		}
	}
	return out
}
