package status

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// region is a planned region's report: every unit of changes has a result with
// the change's action, as the reconciler gives it, and results says what the pass
// found of some of them (their Action is taken from the change).
func region(changes []plan.Change, held string, results map[fleet.UnitID]*reconciler.UnitResult) *reconciler.RegionReport {
	rr := &reconciler.RegionReport{Changes: plan.ChangeSet{Changes: changes, Held: held}, Units: map[fleet.UnitID]*reconciler.UnitResult{}}
	for _, ch := range changes {
		res := results[ch.Unit]
		if res == nil {
			res = &reconciler.UnitResult{}
		}
		res.Action = ch.Action
		rr.Units[ch.Unit] = res
	}
	return rr
}

// unreached is the report of a region that could not be planned.
func unreached(err error) *reconciler.RegionReport {
	return &reconciler.RegionReport{Err: err, Units: map[fleet.UnitID]*reconciler.UnitResult{}}
}

// failed is the result of a unit whose step failed with cause.
func failed(u string, step reconciler.Step, cause string) *reconciler.UnitResult {
	return &reconciler.UnitResult{Err: &reconciler.UnitError{Unit: unit(u), Step: step, Err: errors.New(cause)}}
}

// notHealthy is the result of a unit that did not become healthy, for reason.
func notHealthy(h reconciler.Health, reason string) *reconciler.UnitResult {
	return &reconciler.UnitResult{Health: h, HealthErr: errors.New(reason)}
}

func change(u string, a plan.Action, deletes int) plan.Change {
	ch := plan.Change{Unit: unit(u), Action: a}
	for range deletes {
		ch.Delete = append(ch.Delete, plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "t", Name: "old"})
	}
	return ch
}

// checkOutcome compares DeriveStates' answer with want, whose nil maps of regions
// stand for empty ones.
func checkOutcome(t *testing.T, report *reconciler.Report, want PassOutcome) {
	t.Helper()
	got := DeriveStates(report)
	for _, m := range []*map[string]string{&want.Unreached, &want.Waiting} {
		if *m == nil {
			*m = map[string]string{}
		}
	}
	if want.Listed == nil {
		want.Listed = map[string]bool{}
	}
	if want.Units == nil {
		want.Units = map[fleet.UnitID]Outcome{}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DeriveStates() (-want +got):\n%s", diff)
	}
}

func TestDeriveStates(t *testing.T) {
	tests := []struct {
		name   string
		report *reconciler.Report
		want   PassOutcome
	}{{
		name: "applied and healthy units are Ready at the revision",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"eu-west-2": region([]plan.Change{change("t/eu-west-2", plan.Unchanged, 0), change("t/eu-west-2/web", plan.Create, 0), change("t/eu-west-2/api", plan.Update, 1)}, "", map[fleet.UnitID]*reconciler.UnitResult{
				unit("t/eu-west-2"):     {Health: reconciler.Healthy},
				unit("t/eu-west-2/web"): {Health: reconciler.Healthy},
				unit("t/eu-west-2/api"): {Health: reconciler.Healthy},
			}),
		}},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/eu-west-2"):     {State: Ready, Applied: true, Revision: rev1},
				unit("t/eu-west-2/web"): {State: Ready, Applied: true, Revision: rev1},
				unit("t/eu-west-2/api"): {State: Ready, Applied: true, Revision: rev1},
			},
			Listed: map[string]bool{"eu-west-2": true},
		},
	}, {
		name: "a unit still progressing at the health timeout (or not read) is Progressing, one whose workloads failed is Failed",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/web", plan.Update, 0), change("t/r/api", plan.Update, 0), change("t/r/db", plan.Update, 0)}, "", map[fleet.UnitID]*reconciler.UnitResult{
				unit("t/r/web"): notHealthy(reconciler.Progressing, "Deployment/t/web: not ready after 5m0s: InProgress: Available: 1/3"),
				unit("t/r/api"): notHealthy(reconciler.Unhealthy, "Deployment/t/api: failed: Failed: ProgressDeadlineExceeded"),
				unit("t/r/db"):  notHealthy(reconciler.HealthUnknown, "StatefulSet/t/db: read: connection refused"),
			}),
		}},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r/web"): {State: Progressing, Reason: "Deployment/t/web: not ready after 5m0s: InProgress: Available: 1/3", Applied: true, Revision: rev1},
				unit("t/r/api"): {State: Failed, Reason: "Deployment/t/api: failed: Failed: ProgressDeadlineExceeded", Applied: true, Revision: rev1},
				unit("t/r/db"):  {State: Progressing, Reason: "StatefulSet/t/db: read: connection refused", Applied: true, Revision: rev1},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "apply errors are given to the units they belong to; the others applied",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r", plan.Unchanged, 0), change("t/r/web", plan.Update, 0), change("t/r/api", plan.Update, 0), change("t/r/old", plan.Prune, 1)}, "", map[fleet.UnitID]*reconciler.UnitResult{
				unit("t/r/web"): failed("t/r/web", reconciler.StepApply, "Deployment/t/web: apply failed: admission webhook denied: replicas; must be at most 5"),
				unit("t/r/api"): failed("t/r/api", reconciler.StepApply, "Service/t/api: apply failed: conflict"),
			}),
		}},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r"):     {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/web"): {State: Failed, Reason: "t/r/web: Deployment/t/web: apply failed: admission webhook denied: replicas; must be at most 5"},
				unit("t/r/api"): {State: Failed, Reason: "t/r/api: Service/t/api: apply failed: conflict"},
				unit("t/r/old"): {State: Held, Reason: "left the fleet; deleted once every apply in r succeeds"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a region whose inventory cannot be read fails with every unit it has",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": unreached(errors.New("read inventory: dial tcp 127.0.0.1:6443: connection refused")),
		}},
		want: PassOutcome{
			Unreached: map[string]string{"r": "r: read inventory: dial tcp 127.0.0.1:6443: connection refused"},
		},
	}, {
		name: "held deletions hold the units that would delete, and keep units leaving the fleet",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/web", plan.Update, 2), change("t/r/api", plan.Unchanged, 0), change("gone/r", plan.Prune, 3)},
				"the revision deletes tenant namespace gone/r; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"", map[fleet.UnitID]*reconciler.UnitResult{
					unit("t/r/web"): {Health: reconciler.Healthy},
					unit("t/r/api"): {Health: reconciler.Healthy},
				}),
		}},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r/web"): {State: Held, Reason: "deletions held: the revision deletes tenant namespace gone/r; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\"", Applied: true, Revision: rev1},
				unit("t/r/api"): {State: Ready, Applied: true, Revision: rev1},
				unit("gone/r"):  {State: Held, Reason: "deletions held: the revision deletes tenant namespace gone/r; to let this revision through, end its commit message with the trailer \"Meridian-Allow-Mass-Deletion: true\""},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a unit pruned by the pass is gone",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/old", plan.Prune, 1)}, "", map[fleet.UnitID]*reconciler.UnitResult{unit("t/r/old"): {Action: plan.Prune, Pruned: true}}),
		}},
		want: PassOutcome{Units: map[fleet.UnitID]Outcome{unit("t/r/old"): {Gone: true}}, Listed: map[string]bool{"r": true}},
	}, {
		name: "a unit leaving the fleet that the pass did not prune is held",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/old", plan.Prune, 1)}, "", nil),
		}},
		want: PassOutcome{Units: map[fleet.UnitID]Outcome{unit("t/r/old"): {State: Held, Reason: "left the fleet; deleted once every apply in r succeeds"}}, Listed: map[string]bool{"r": true}},
	}, {
		name: "a unit that failed to render is RenderFailed with its error, in a planned region or not",
		report: &reconciler.Report{Revision: rev1,
			RenderErrors: []*render.UnitError{
				{Unit: unit("t/r/web"), Err: errors.New(`apps/web/chart/templates/deployment.yaml:3: map has no entry for key "image"`)},
				{Unit: unit("t/far/web"), Err: errors.New("apps/web/chart: chart not found")},
			},
			Regions: map[string]*reconciler.RegionReport{
				"r": region([]plan.Change{change("t/r/web", plan.Keep, 0)}, "", nil),
			}},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r/web"):   {State: RenderFailed, Reason: `t/r/web: apps/web/chart/templates/deployment.yaml:3: map has no entry for key "image"`},
				unit("t/far/web"): {State: RenderFailed, Reason: "t/far/web: apps/web/chart: chart not found"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "the regions of skipped waves wait, with the reason the rollout stopped",
		report: &reconciler.Report{Revision: rev1,
			Regions: map[string]*reconciler.RegionReport{
				"canary": region([]plan.Change{change("t/canary/web", plan.Update, 0)}, "", map[fleet.UnitID]*reconciler.UnitResult{
					unit("t/canary/web"): notHealthy(reconciler.Unhealthy, "Deployment/t/web: failed: Failed: CrashLoopBackOff"),
				}),
			},
			Waves: []reconciler.WaveReport{
				{Name: "canary", Regions: []string{"canary"}},
				{Name: "main", Regions: []string{"r1", "r2"}, Skipped: true},
			},
			Stopped: "wave canary is not healthy, so revision 3f1c9a7e5b2d does not go on to later waves",
		},
		want: PassOutcome{
			Units:   map[fleet.UnitID]Outcome{unit("t/canary/web"): {State: Failed, Reason: "Deployment/t/web: failed: Failed: CrashLoopBackOff", Applied: true, Revision: rev1}},
			Listed:  map[string]bool{"canary": true},
			Waiting: map[string]string{"r1": "wave canary is not healthy, so revision 3f1c9a7e5b2d does not go on to later waves", "r2": "wave canary is not healthy, so revision 3f1c9a7e5b2d does not go on to later waves"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOutcome(t, tt.report, tt.want)
		})
	}
}

// TestDeriveStatesAttributesFailures checks that each failure is given to the unit
// its typed result belongs to, whatever its message says, and that a region-level
// error is the region's.
func TestDeriveStatesAttributesFailures(t *testing.T) {
	planned := []plan.Change{change("t/r", plan.Unchanged, 0), change("t/r/web", plan.Update, 1), change("t/r/api", plan.Update, 0), change("t/r/old", plan.Prune, 2)}
	tests := []struct {
		name    string
		regions map[string]*reconciler.RegionReport
		want    PassOutcome
	}{{
		// The reconciler stops a region's pass at its first failed step; DeriveStates
		// does not count on it.
		name: "an apply failure and a prune failure are each their own unit's",
		regions: map[string]*reconciler.RegionReport{"r": region(planned, "", map[fleet.UnitID]*reconciler.UnitResult{
			unit("t/r/api"): failed("t/r/api", reconciler.StepApply, "Service/t/api: apply failed: conflict"),
			unit("t/r/web"): failed("t/r/web", reconciler.StepPrune, "ConfigMap/t/old: delete: forbidden"),
		})},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r"):     {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/web"): {State: Failed, Reason: "t/r/web: prune: ConfigMap/t/old: delete: forbidden"},
				unit("t/r/api"): {State: Failed, Reason: "t/r/api: Service/t/api: apply failed: conflict"},
				unit("t/r/old"): {State: Held, Reason: "left the fleet; deleted once every apply in r succeeds"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a unit leaving the fleet whose prune failed is Failed, not Held",
		regions: map[string]*reconciler.RegionReport{"r": region(planned, "", map[fleet.UnitID]*reconciler.UnitResult{
			unit("t/r/old"): failed("t/r/old", reconciler.StepPrune, "Deployment/t/old: delete: forbidden"),
		})},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r"):     {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/web"): {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/api"): {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/old"): {State: Failed, Reason: "t/r/old: prune: Deployment/t/old: delete: forbidden"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a namespace unit's failure is not its placements'",
		regions: map[string]*reconciler.RegionReport{"r": region(planned, "", map[fleet.UnitID]*reconciler.UnitResult{
			unit("t/r"): failed("t/r", reconciler.StepApply, "ResourceQuota/t/quota: apply failed: exceeded"),
		})},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r"):     {State: Failed, Reason: "t/r: ResourceQuota/t/quota: apply failed: exceeded"},
				unit("t/r/web"): {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/api"): {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/old"): {State: Held, Reason: "left the fleet; deleted once every apply in r succeeds"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a message that names another unit, or has semicolons, stays whole with its own unit",
		regions: map[string]*reconciler.RegionReport{"r": region(planned, "", map[fleet.UnitID]*reconciler.UnitResult{
			unit("t/r/web"): failed("t/r/web", reconciler.StepApply, "Deployment/t/web: apply failed: denied: a; t/r/api: b"),
		})},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r"):     {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/web"): {State: Failed, Reason: "t/r/web: Deployment/t/web: apply failed: denied: a; t/r/api: b"},
				unit("t/r/api"): {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/old"): {State: Held, Reason: "left the fleet; deleted once every apply in r succeeds"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name:    "a region-level error marks the region Unreached, even when it names a unit",
		regions: map[string]*reconciler.RegionReport{"r": unreached(errors.New("t/r/web: read inventory: forbidden"))},
		want:    PassOutcome{Unreached: map[string]string{"r": "r: t/r/web: read inventory: forbidden"}},
	}, {
		name: "an unreached region leaves another region's units alone",
		regions: map[string]*reconciler.RegionReport{
			"r": region(planned[:2], "", map[fleet.UnitID]*reconciler.UnitResult{
				unit("t/r/web"): failed("t/r/web", reconciler.StepApply, "Deployment/t/web: apply failed: conflict"),
			}),
			"far": unreached(errors.New("no cluster is configured for region far")),
		},
		want: PassOutcome{
			Units: map[fleet.UnitID]Outcome{
				unit("t/r"):     {State: Ready, Applied: true, Revision: rev1},
				unit("t/r/web"): {State: Failed, Reason: "t/r/web: Deployment/t/web: apply failed: conflict"},
			},
			Listed:    map[string]bool{"r": true},
			Unreached: map[string]string{"far": "far: no cluster is configured for region far"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOutcome(t, &reconciler.Report{Revision: rev1, Regions: tt.regions}, tt.want)
		})
	}
}
