package reconciler_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
)

// withAddon adds the addon platform to every region of rev.
func withAddon(rev revision, objects string) revision {
	for _, r := range testRegions {
		rev = rev.set(fleet.AddonUnit(r, "platform").String(), objects)
	}
	return rev
}

// kindOf names the kind of a unit for the order of applies.
func kindOf(id fleet.UnitID) string {
	switch {
	case id.IsAddon():
		return "addons"
	case id.IsNamespace():
		return "namespaces"
	}
	return "placements"
}

// TestRunOnceAppliesAddonsFirst checks that a region's addons are applied, and
// found healthy, before any tenant unit of the region is applied; that tenants'
// units wait for them (not applied, never deleted) when an addon fails or is not
// healthy; and that an addon is pruned after every tenant unit.
func TestRunOnceAppliesAddonsFirst(t *testing.T) {
	first := withAddon(revisionOf(standardFleet()), "Namespace/platform ConfigMap/info")
	// A change to every portal, with the addon unchanged.
	portalV2 := first.app("portal", "ConfigMap/portal=v2 Deployment/portal")
	errBroken := errors.New("PriorityClass/tenant-default: apply failed: the API server refused it")
	const waitUnhealthy = ": not applied: it waits for addon:eu-west-2/platform, which is unhealthy; it is applied once that unit is healthy"

	t.Run("a first pass applies and waits for the addons, then the namespaces, then the placements", func(t *testing.T) {
		w := emptyWorld()
		report := w.run(t, first, false)
		if err := report.Err(); err != nil {
			t.Fatalf("pass: %v", err)
		}
		phases := map[string][]string{}
		for _, e := range w.log.all() {
			if e.who == "dns" || (e.verb != "apply" && e.verb != "wait") {
				continue
			}
			phase := e.verb + " " + kindOf(mustUnit(e.what))
			if p := phases[e.who]; len(p) == 0 || p[len(p)-1] != phase {
				phases[e.who] = append(p, phase)
			}
		}
		want := []string{"apply addons", "wait addons", "apply namespaces", "apply placements", "wait namespaces"}
		for _, r := range testRegions {
			// Waits after the placements' applies may come in any order.
			if got := phases[r]; len(got) < len(want)-1 || !cmp.Equal(want[:4], got[:4]) {
				t.Errorf("%s: phases %v, want them to start %v", r, got, want[:4])
			}
		}
	})

	t.Run("an unchanged addon is found healthy before the placements are updated", func(t *testing.T) {
		w := lastPass(t, first)
		report := w.run(t, portalV2, false)
		if err := report.Err(); err != nil {
			t.Fatalf("pass: %v", err)
		}
		got := w.log.lines(func(e event) bool {
			return e.who == "eu-west-2" && (e.verb == "apply" || e.verb == "wait" && strings.HasPrefix(e.what, "addon:"))
		})
		want := []string{"eu-west-2 wait addon:eu-west-2/platform", "eu-west-2 apply charging/eu-west-2/portal", "eu-west-2 apply trucking/eu-west-2/portal"}
		if diff := cmp.Diff(want, sortedAfter(got, 1)); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})

	t.Run("an unhealthy addon holds the tenants' changes in its region, and nothing is deleted", func(t *testing.T) {
		w := lastPass(t, first)
		w.clusters["eu-west-2"].reportHealth("addon:eu-west-2/platform", apply.Failed, errors.New("Deployment/platform/controller: Failed: progress deadline exceeded"))
		report := w.run(t, portalV2.set("trucking/eu-west-2/worker", "Deployment/worker"), false)
		rr := report.Regions["eu-west-2"]
		got := outcomes(rr)
		for _, u := range []string{"charging/eu-west-2/portal", "trucking/eu-west-2/portal", "trucking/eu-west-2/worker"} {
			if o := got[u]; o.Err != u+waitUnhealthy {
				t.Errorf("%s: error %q, want %q", u, o.Err, u+waitUnhealthy)
			}
		}
		if o := got["charging/eu-west-2/worker"]; o.Action != "unchanged" || o.Err != "" {
			t.Errorf("an unchanged placement: %+v, want it unchanged and left alone", o)
		}
		if applied := w.calls("eu-west-2", "apply"); len(applied) != 0 {
			t.Errorf("applied %v in a region whose addon is not healthy", applied)
		}
		if pruned := w.calls("eu-west-2", "prune"); len(pruned) != 0 {
			t.Errorf("pruned %v: nothing is deleted because something failed", pruned)
		}
		if report.Stopped == "" {
			t.Error("the canary wave is not healthy, yet the revision went on")
		}
	})

	t.Run("an addon that fails to apply holds the tenants' units, which are applied once it does", func(t *testing.T) {
		w := emptyWorld()
		w.clusters["eu-west-2"].failApply("addon:eu-west-2/platform", errBroken)
		report := w.run(t, first, false)
		got := outcomes(report.Regions["eu-west-2"])
		const want = "trucking/eu-west-2: not applied: it waits for addon:eu-west-2/platform, which failed; it is applied once that unit is healthy"
		if o := got["trucking/eu-west-2"]; o.Err != want {
			t.Errorf("namespace unit: error %q, want %q", o.Err, want)
		}
		if applied := w.calls("eu-west-2", "apply"); !cmp.Equal(applied, []string{"addon:eu-west-2/platform"}) {
			t.Errorf("applied %v, want only the addon", applied)
		}

		w.clusters["eu-west-2"].failApply("addon:eu-west-2/platform", nil)
		w.log = &eventLog{}
		for _, c := range w.clusters {
			c.log = w.log
		}
		if err := w.run(t, first, false).Err(); err != nil {
			t.Errorf("the retry: %v", err)
		}
	})

	t.Run("an addon leaving the fleet is pruned after every tenant unit", func(t *testing.T) {
		w := lastPass(t, first)
		gone := first.set("addon:eu-west-2/platform", "").set("charging/eu-west-2/worker", "")
		delete(gone.units, fleet.AddonUnit("eu-west-2", "platform"))
		delete(gone.units, fleet.UnitID{Tenant: "charging", Region: "eu-west-2", App: "worker"})
		w.run(t, gone, true)
		got := w.log.lines(func(e event) bool { return e.who == "eu-west-2" && isPrune(e) })
		want := []string{
			"eu-west-2 prune charging/eu-west-2/worker (gone): ConfigMap/charging/worker Deployment/charging/worker",
			"eu-west-2 prune addon:eu-west-2/platform (gone): Namespace/platform ConfigMap/info",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("prunes (-want +got):\n%s", diff)
		}
	})
}

// sortedAfter sorts the lines after the first n, whose order is the test's.
func sortedAfter(lines []string, n int) []string {
	if len(lines) <= n {
		return lines
	}
	out := append([]string{}, lines[:n]...)
	rest := append([]string{}, lines[n:]...)
	for i := range rest {
		for j := i + 1; j < len(rest); j++ {
			if rest[j] < rest[i] {
				rest[i], rest[j] = rest[j], rest[i]
			}
		}
	}
	return append(out, rest...)
}

// TestRunOnceDependsOn checks that a tenant's app that depends on another is
// applied only once that one is healthy in the region, and waits — not applied,
// nothing deleted — while it is not.
func TestRunOnceDependsOn(t *testing.T) {
	m := standardFleet()
	for _, tn := range m.Tenants {
		tn.Spec.Apps[0].DependsOn = []string{"worker"} // portal waits for worker
	}
	first := revisionOf(m)
	v2 := first.app("portal", "ConfigMap/portal=v2 Deployment/portal").app("worker", "ConfigMap/worker=v2 Deployment/worker")

	t.Run("the dependency is applied and found healthy first", func(t *testing.T) {
		w := lastPass(t, first)
		if err := w.run(t, v2, false).Err(); err != nil {
			t.Fatalf("pass: %v", err)
		}
		got := w.log.lines(func(e event) bool {
			return e.who == "us-east-1" && strings.HasPrefix(e.what, "trucking/us-east-1/") && (e.verb == "apply" || e.verb == "wait")
		})
		want := []string{
			"us-east-1 apply trucking/us-east-1/worker",
			"us-east-1 wait trucking/us-east-1/worker",
			"us-east-1 apply trucking/us-east-1/portal",
			"us-east-1 wait trucking/us-east-1/portal",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})

	t.Run("an unhealthy dependency holds its dependents, and nothing else", func(t *testing.T) {
		w := lastPass(t, first)
		w.clusters["eu-west-2"].reportHealth("trucking/eu-west-2/worker", apply.Progressing, errors.New("Deployment/trucking/worker: InProgress: Deployment does not have minimum availability."))
		report := w.run(t, v2, false)
		got := outcomes(report.Regions["eu-west-2"])
		const want = "trucking/eu-west-2/portal: not applied: it waits for trucking/eu-west-2/worker, which is progressing; it is applied once that unit is healthy"
		if o := got["trucking/eu-west-2/portal"]; o.Err != want {
			t.Errorf("portal: error %q, want %q", o.Err, want)
		}
		applied := w.calls("eu-west-2", "apply")
		if o := got["charging/eu-west-2/portal"]; o.Err != "" || !slices.Contains(applied, "charging/eu-west-2/portal") {
			t.Errorf("another tenant's portal: %+v, applied %v; want it applied", o, applied)
		}
		if slices.Contains(applied, "trucking/eu-west-2/portal") {
			t.Errorf("applied %v: the portal whose worker is not healthy was applied", applied)
		}
	})
}
