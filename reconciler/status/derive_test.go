package status

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

func region(changes []plan.Change, held string, err error, unhealthy map[string]string) *reconciler.RegionReport {
	return &reconciler.RegionReport{Changes: plan.ChangeSet{Changes: changes, Held: held}, Err: err, Unhealthy: unhealthy}
}

func change(unit string, a plan.Action, deletes int) plan.Change {
	ch := plan.Change{Unit: unit, Action: a}
	for range deletes {
		ch.Delete = append(ch.Delete, plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "t", Name: "old"})
	}
	return ch
}

func TestDeriveStates(t *testing.T) {
	tests := []struct {
		name   string
		report *reconciler.Report
		want   PassOutcome
	}{{
		name: "applied and healthy units are Ready at the revision",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"eu-west-2": region([]plan.Change{change("t/eu-west-2", plan.Unchanged, 0), change("t/eu-west-2/web", plan.Create, 0), change("t/eu-west-2/api", plan.Update, 1)}, "", nil, nil),
		}},
		want: PassOutcome{
			Units: map[string]Outcome{
				"t/eu-west-2":     {State: Ready, Applied: true, Revision: rev1},
				"t/eu-west-2/web": {State: Ready, Applied: true, Revision: rev1},
				"t/eu-west-2/api": {State: Ready, Applied: true, Revision: rev1},
			},
			Listed: map[string]bool{"eu-west-2": true},
		},
	}, {
		name: "a unit still progressing at the health timeout is Progressing, one whose workloads failed is Failed",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/web", plan.Update, 0), change("t/r/api", plan.Update, 0)}, "", nil, map[string]string{
				"t/r/web": "Deployment/t/web: not ready after 5m0s: InProgress: Available: 1/3",
				"t/r/api": "Deployment/t/api: failed: Failed: ProgressDeadlineExceeded",
			}),
		}},
		want: PassOutcome{
			Units: map[string]Outcome{
				"t/r/web": {State: Progressing, Reason: "Deployment/t/web: not ready after 5m0s: InProgress: Available: 1/3", Applied: true, Revision: rev1},
				"t/r/api": {State: Failed, Reason: "Deployment/t/api: failed: Failed: ProgressDeadlineExceeded", Applied: true, Revision: rev1},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "apply errors are given to the units they name; the others applied",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r", plan.Unchanged, 0), change("t/r/web", plan.Update, 0), change("t/r/api", plan.Update, 0), change("t/r/old", plan.Prune, 1)}, "",
				errors.New("t/r/web: Deployment/t/web: apply failed: admission webhook denied: replicas; must be at most 5; t/r/api: Service/t/api: apply failed: conflict"), nil),
		}},
		want: PassOutcome{
			Units: map[string]Outcome{
				"t/r":     {State: Ready, Applied: true, Revision: rev1},
				"t/r/web": {State: Failed, Reason: "t/r/web: Deployment/t/web: apply failed: admission webhook denied: replicas; must be at most 5"},
				"t/r/api": {State: Failed, Reason: "t/r/api: Service/t/api: apply failed: conflict"},
				"t/r/old": {State: Held, Reason: "left the fleet; deleted once every apply in r succeeds"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a region whose inventory cannot be read fails with every unit it has",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region(nil, "", errors.New("read inventory: dial tcp 127.0.0.1:6443: connection refused"), nil),
		}},
		want: PassOutcome{
			Units:     map[string]Outcome{},
			Listed:    map[string]bool{},
			Unreached: map[string]string{"r": "r: read inventory: dial tcp 127.0.0.1:6443: connection refused"},
		},
	}, {
		name: "held deletions hold the units that would delete, and keep units leaving the fleet",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/web", plan.Update, 2), change("t/r/api", plan.Unchanged, 0), change("gone/r", plan.Prune, 3)},
				"the revision deletes tenant namespace gone/r; allow it explicitly to proceed", nil, nil),
		}},
		want: PassOutcome{
			Units: map[string]Outcome{
				"t/r/web": {State: Held, Reason: "deletions held: the revision deletes tenant namespace gone/r; allow it explicitly to proceed", Applied: true, Revision: rev1},
				"t/r/api": {State: Ready, Applied: true, Revision: rev1},
				"gone/r":  {State: Held, Reason: "deletions held: the revision deletes tenant namespace gone/r; allow it explicitly to proceed"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "a unit pruned by the pass is gone",
		report: &reconciler.Report{Revision: rev1, Regions: map[string]*reconciler.RegionReport{
			"r": region([]plan.Change{change("t/r/old", plan.Prune, 1)}, "", nil, nil),
		}},
		want: PassOutcome{Units: map[string]Outcome{"t/r/old": {Gone: true}}, Listed: map[string]bool{"r": true}},
	}, {
		name: "a unit that failed to render is RenderFailed with its error, in a planned region or not",
		report: &reconciler.Report{Revision: rev1,
			RenderErrors: []*render.UnitError{
				{Unit: "t/r/web", Err: errors.New(`apps/web/chart/templates/deployment.yaml:3: map has no entry for key "image"`)},
				{Unit: "t/far/web", Err: errors.New("apps/web/chart: chart not found")},
			},
			Regions: map[string]*reconciler.RegionReport{
				"r": region([]plan.Change{change("t/r/web", plan.Keep, 0)}, "", nil, nil),
			}},
		want: PassOutcome{
			Units: map[string]Outcome{
				"t/r/web":   {State: RenderFailed, Reason: `t/r/web: apps/web/chart/templates/deployment.yaml:3: map has no entry for key "image"`},
				"t/far/web": {State: RenderFailed, Reason: "t/far/web: apps/web/chart: chart not found"},
			},
			Listed: map[string]bool{"r": true},
		},
	}, {
		name: "the regions of skipped waves wait, with the reason the rollout stopped",
		report: &reconciler.Report{Revision: rev1,
			Regions: map[string]*reconciler.RegionReport{
				"canary": region([]plan.Change{change("t/canary/web", plan.Update, 0)}, "", nil, map[string]string{"t/canary/web": "Deployment/t/web: failed: Failed: CrashLoopBackOff"}),
			},
			Waves: []reconciler.WaveReport{
				{Name: "canary", Regions: []string{"canary"}},
				{Name: "main", Regions: []string{"r1", "r2"}, Skipped: true},
			},
			Stopped: "wave canary is not healthy, so revision 3f1c9a7e5b2d does not go on to later waves",
		},
		want: PassOutcome{
			Units:   map[string]Outcome{"t/canary/web": {State: Failed, Reason: "Deployment/t/web: failed: Failed: CrashLoopBackOff", Applied: true, Revision: rev1}},
			Listed:  map[string]bool{"canary": true},
			Waiting: map[string]string{"r1": "wave canary is not healthy, so revision 3f1c9a7e5b2d does not go on to later waves", "r2": "wave canary is not healthy, so revision 3f1c9a7e5b2d does not go on to later waves"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeriveStates(tt.report)
			want := tt.want
			for _, m := range []*map[string]string{&want.Unreached, &want.Waiting} {
				if *m == nil {
					*m = map[string]string{}
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DeriveStates() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSplitUnitErrors(t *testing.T) {
	units := []string{"t/r", "t/r/web", "t/r/api"}
	tests := []struct {
		name string
		msg  string
		want map[string]string
	}{
		{"one unit", "t/r/web: apply failed: x", map[string]string{"t/r/web": "t/r/web: apply failed: x"}},
		{"a namespace unit is not mistaken for its placements", "t/r: apply failed: quota; t/r/api: prune: forbidden",
			map[string]string{"t/r": "t/r: apply failed: quota", "t/r/api": "t/r/api: prune: forbidden"}},
		{"a message with a semicolon stays whole", "t/r/web: denied: a; b; t/r/api: c",
			map[string]string{"t/r/web": "t/r/web: denied: a; b", "t/r/api": "t/r/api: c"}},
		{"apply and prune errors of one unit join", "t/r/web: apply failed; t/r/web: prune: gone",
			map[string]string{"t/r/web": "t/r/web: apply failed; t/r/web: prune: gone"}},
		{"a message naming no unit is nobody's", "read inventory: timeout", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, splitUnitErrors(tt.msg, units)); diff != "" {
				t.Errorf("splitUnitErrors(%q) (-want +got):\n%s", tt.msg, diff)
			}
		})
	}
}
