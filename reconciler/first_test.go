package reconciler_test

import (
	"context"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/render"
)

// filteringRenderer renders a revision's units as fakeRenderer does, keeping
// only those of the filter's tenant when it names one, and logs each call.
type filteringRenderer struct {
	rev revision
	log *eventLog
}

func (r *filteringRenderer) Render(ctx context.Context, snap render.Snapshot, filter render.Filter) (*render.Result, error) {
	res := renderResult(testRevision, r.rev.units, r.rev.failed)
	if filter.Tenant == "" {
		r.log.add("renderer", "render", "all")
		return res, nil
	}
	r.log.add("renderer", "render", filter.Tenant)
	var units []*render.Unit
	for _, u := range res.Units {
		if u.Tenant == filter.Tenant && u.Addon == "" {
			units = append(units, u)
		}
	}
	res.Units = units
	return res, nil
}

// applyOrder returns the render calls and the applies of the log, in order.
func applyOrder(w *world) []string {
	return w.log.lines(func(e event) bool { return e.verb == "render" || e.verb == "apply" })
}

// TestRunOnceAppliesTheChangedTenantFirst changes two tenants, one of them named
// the changed tenant: its units of the first wave's region are applied before
// the whole fleet is rendered, the rest as always, and the regions end as a pass
// without the early step leaves them.
func TestRunOnceAppliesTheChangedTenantFirst(t *testing.T) {
	prev := revisionOf(standardFleet())
	next := prev.
		set("charging/eu-west-2/portal", "ConfigMap/portal=2 Deployment/portal").
		set("charging/us-east-1/portal", "ConfigMap/portal=2 Deployment/portal").
		set("trucking/eu-west-2/worker", "ConfigMap/worker=3 Deployment/worker")

	w := lastPass(t, prev)
	report := w.runWith(t, next, false, func(o *reconciler.Options) {
		o.Renderer = &filteringRenderer{rev: next, log: w.log}
		o.FirstTenant = "charging"
	})
	want := []string{
		"renderer render charging",
		"eu-west-2 apply charging/eu-west-2/portal", // first: the canary wave only
		"renderer render all",
		"eu-west-2 apply trucking/eu-west-2/worker", // the pass finds charging's unit applied
		"us-east-1 apply charging/us-east-1/portal", // the next wave, after the canary is healthy
	}
	if diff := cmp.Diff(want, applyOrder(w)); diff != "" {
		t.Errorf("renders and applies (-want +got):\n%s", diff)
	}
	if err := report.Err(); err != nil {
		t.Errorf("report: %v", err)
	}
	// The report says what the revision changed, the early applies included.
	gotChanges := map[string]string{}
	for region, rr := range report.Regions {
		gotChanges[region] = rr.Changes.String()
	}
	wantChanges := map[string]string{
		"eu-west-2":      "eu-west-2: 2 update, 4 unchanged",
		"us-east-1":      "us-east-1: 1 update, 5 unchanged",
		"ap-northeast-2": "ap-northeast-2: 3 unchanged",
	}
	if diff := cmp.Diff(wantChanges, gotChanges); diff != "" {
		t.Errorf("change sets (-want +got):\n%s", diff)
	}
	if got := outcomes(report.Regions["eu-west-2"])["charging/eu-west-2/portal"].Action; got != "update" {
		t.Errorf("charging/eu-west-2/portal reported as %q, want update", got)
	}

	without := lastPass(t, prev)
	without.runWith(t, next, false, func(o *reconciler.Options) { o.Renderer = &filteringRenderer{rev: next, log: without.log} })
	if diff := cmp.Diff(without.holds(), w.holds()); diff != "" {
		t.Errorf("regions after the pass, against a pass without the early step (-without +with):\n%s", diff)
	}
}

// TestRunOnceChangedTenantNotFirst lists what keeps a changed tenant's units
// for the pass: an object outside the tenant's namespace (another unit may
// render it too, which only the whole fleet's render shows), a change to its
// namespace unit, and a revision that removes one of its units (removals wait
// for the pass, and nothing else changes early).
func TestRunOnceChangedTenantNotFirst(t *testing.T) {
	prev := revisionOf(standardFleet())
	for _, tc := range []struct {
		name string
		next revision
		want []string
	}{
		{
			name: "a cluster-scoped object",
			next: prev.set("charging/eu-west-2/portal", "Namespace/shared ConfigMap/portal=2 Deployment/portal"),
			want: []string{"renderer render charging", "renderer render all", "eu-west-2 apply charging/eu-west-2/portal"},
		},
		{
			name: "its namespace unit changes",
			next: prev.
				set("charging/eu-west-2", "Namespace/charging ConfigMap/quota=2").
				set("charging/eu-west-2/portal", "ConfigMap/portal=2 Deployment/portal"),
			want: []string{"renderer render charging", "renderer render all", "eu-west-2 apply charging/eu-west-2", "eu-west-2 apply charging/eu-west-2/portal"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := lastPass(t, prev)
			w.runWith(t, tc.next, false, func(o *reconciler.Options) {
				o.Renderer = &filteringRenderer{rev: tc.next, log: w.log}
				o.FirstTenant = "charging"
			})
			if diff := cmp.Diff(tc.want, applyOrder(w)); diff != "" {
				t.Errorf("renders and applies (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("a removed unit is pruned by the pass only", func(t *testing.T) {
		next := prev.set("charging/eu-west-2/portal", "ConfigMap/portal=2 Deployment/portal")
		next.units = maps.Clone(next.units)
		delete(next.units, fleet.UnitID{Tenant: "charging", Region: "eu-west-2", App: "worker"})
		w := lastPass(t, prev)
		w.runWith(t, next, false, func(o *reconciler.Options) {
			o.Renderer = &filteringRenderer{rev: next, log: w.log}
			o.FirstTenant = "charging"
		})
		got := w.log.lines(func(e event) bool { return e.verb == "render" || e.verb == "apply" || e.verb == "prune" })
		want := []string{
			"renderer render charging",
			"eu-west-2 apply charging/eu-west-2/portal",
			"renderer render all",
			"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("renders, applies and prunes (-want +got):\n%s", diff)
		}
	})
}

func TestChangedTenant(t *testing.T) {
	base := func() *fleet.Model { return standardFleet() }
	withReplicas := func(m *fleet.Model, tenant string) *fleet.Model {
		for _, tn := range m.Tenants {
			if tn.Metadata.Name == tenant {
				tn.Spec.Apps[0].Values = fleet.Values{"replicas": 2}
			}
		}
		return m
	}
	for _, tc := range []struct {
		name       string
		prev, next *fleet.Model
		want       string
	}{
		{"no previous revision", nil, base(), ""},
		{"nothing changed", base(), base(), ""},
		{"one tenant's values", base(), withReplicas(base(), "trucking"), "trucking"},
		{"two tenants", base(), withReplicas(withReplicas(base(), "trucking"), "charging"), ""},
		{"a new tenant", base(), testFleet(append(base().Tenants, tenant("mining", testRegions, "portal"))...), "mining"},
		{"one tenant's secrets file", base(), func() *fleet.Model {
			m := base()
			m.Tenants[0].SecretsFile = "tenants/charging.secrets.sops.yaml"
			return m
		}(), "charging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reconciler.ChangedTenant(tc.prev, tc.next); got != tc.want {
				t.Errorf("ChangedTenant = %q, want %q", got, tc.want)
			}
		})
	}
}
