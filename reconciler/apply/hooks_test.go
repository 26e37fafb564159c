package apply_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// TestHooks applies a chart written the way admission webhooks' charts are
// (testdata/hooks: certificate Jobs before and after the release, with the
// ServiceAccount and RBAC they run as, all deleted once they succeeded) to a real
// region whose Jobs run to completion (controller-manager and kwok), and watches
// the order in which objects come and go.
func TestHooks(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1, Workloads: true})
	ctx := t.Context()
	cfg := tb.Regions[0].Config
	store := newStore(t, cfg)
	applier := newApplier(t, cfg, apply.Options{Inventory: store, PollInterval: 500 * time.Millisecond, HookTimeout: time.Minute})
	const ns = "gatekeepers"
	app := fleet.UnitID{Tenant: ns, Region: region, App: "admission"}
	events := watchObjects(t, dynamic.NewForConfigOrDie(cfg), ns)
	recorded := func(t *testing.T) *plan.Inventory {
		t.Helper()
		inv, err := store.Get(ctx, app)
		if err != nil || inv == nil {
			t.Fatalf("inventory of %s: %v, %v", app, inv, err)
		}
		return inv
	}
	get := func(t *testing.T, gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
		t.Helper()
		u, err := dynamic.NewForConfigOrDie(cfg).Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	deployment := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configMaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	version := func(t *testing.T) string {
		t.Helper()
		v, _, _ := unstructured.NestedString(get(t, deployment, "admission").Object, "spec", "template", "metadata", "annotations", "example.com/version")
		return v
	}
	// certgen is what each certificate phase makes and, once it succeeded,
	// deletes, the last first.
	certgen := func(job string) []string {
		return []string{
			"added ServiceAccount/admission-certgen", "added Role/admission-certgen", "added RoleBinding/admission-certgen", "added Job/" + job,
			"deleted Job/" + job, "deleted RoleBinding/admission-certgen", "deleted Role/admission-certgen", "deleted ServiceAccount/admission-certgen",
		}
	}

	var units []*render.Unit
	t.Run("install: pre-install hooks, the objects, and once they are Ready the post-install hooks", func(t *testing.T) {
		units = admissionFleet(t, `version: "1"`)
		if len(units) != 2 || units[1].ID() != app {
			t.Fatalf("rendered %v, want the namespace unit and %s", units, app)
		}
		if _, err := applier.Apply(ctx, units[0], nil); err != nil {
			t.Fatal(err)
		}
		steps := func(prev *plan.Inventory) string {
			var out []string
			for _, s := range apply.Hooks(units[1], prev) {
				out = append(out, s.String())
			}
			return strings.Join(out, "\n")
		}
		wantSteps := `ServiceAccount/gatekeepers/admission-certgen: pre-install hook
Role/gatekeepers/admission-certgen: pre-install hook
RoleBinding/gatekeepers/admission-certgen: pre-install hook
Job/gatekeepers/admission-create: pre-install hook
ServiceAccount/gatekeepers/admission-certgen: post-install hook
Role/gatekeepers/admission-certgen: post-install hook
RoleBinding/gatekeepers/admission-certgen: post-install hook
Job/gatekeepers/admission-patch: post-install hook
ConfigMap/gatekeepers/admission-last-run: post-install hook`
		if diff := cmp.Diff(wantSteps, steps(nil)); diff != "" {
			t.Errorf("hooks meridian plan shows (-want +got):\n%s", diff)
		}
		if got := steps(&plan.Inventory{Unit: app, Digest: units[1].Digest}); got != "" {
			t.Errorf("hooks planned for the same digest:\n%s\nwant none", got)
		}
		if got := steps(&plan.Inventory{Unit: app, Digest: "sha256:before"}); !strings.HasPrefix(got, "ServiceAccount/gatekeepers/admission-certgen: pre-upgrade hook\n") {
			t.Errorf("hooks planned for another digest:\n%s\nwant the upgrade hooks", got)
		}
		events.take(t)
		res, err := applier.Apply(ctx, units[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Concat(certgen("admission-create"),
			[]string{"added Deployment/admission"},
			certgen("admission-patch")[:4], []string{"added ConfigMap/admission-last-run"}, certgen("admission-patch")[4:])
		if diff := cmp.Diff(want, events.take(t)); diff != "" {
			t.Errorf("what came and went, in order (-want +got):\n%s", diff)
		}
		var ran []string
		for _, h := range res.Hooks {
			ran = append(ran, fmt.Sprintf("%s %s deleted=%t", h.Event, h.Object, h.Deleted))
		}
		wantRan := []string{
			"pre-install ServiceAccount/gatekeepers/admission-certgen deleted=true",
			"pre-install Role/gatekeepers/admission-certgen deleted=true",
			"pre-install RoleBinding/gatekeepers/admission-certgen deleted=true",
			"pre-install Job/gatekeepers/admission-create deleted=true",
			"post-install ServiceAccount/gatekeepers/admission-certgen deleted=true",
			"post-install Role/gatekeepers/admission-certgen deleted=true",
			"post-install RoleBinding/gatekeepers/admission-certgen deleted=true",
			"post-install Job/gatekeepers/admission-patch deleted=true",
			"post-install ConfigMap/gatekeepers/admission-last-run deleted=false",
		}
		if diff := cmp.Diff(wantRan, ran); diff != "" {
			t.Errorf("hooks run (-want +got):\n%s", diff)
		}
		inv := recorded(t)
		if got := fmt.Sprint(inv.Hooks); got != "[ConfigMap/gatekeepers/admission-last-run]" {
			t.Errorf("inventory hooks %s: want only the hook that stays", got)
		}
		if inv.Digest != units[1].Digest {
			t.Errorf("inventory digest %q, want the unit's", inv.Digest)
		}
		for _, gone := range []struct {
			gvr  schema.GroupVersionResource
			name string
		}{{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "admission-cleanup"}, {schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "admission-test"}} {
			if get(t, gone.gvr, gone.name) != nil {
				t.Errorf("%s %s exists: delete and test hooks are never applied", gone.gvr.Resource, gone.name)
			}
		}
	})

	t.Run("correcting drift re-applies the objects and runs no hook", func(t *testing.T) {
		lastRun := get(t, configMaps, "admission-last-run")
		live := get(t, deployment, "admission")
		if err := unstructured.SetNestedField(live.Object, "edited", "spec", "template", "metadata", "annotations", "example.com/version"); err != nil {
			t.Fatal(err)
		}
		if _, err := dynamic.NewForConfigOrDie(cfg).Resource(deployment).Namespace(ns).Update(ctx, live, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
			t.Fatal(err)
		}
		events.take(t)
		res, err := applier.Apply(ctx, units[1], recorded(t))
		if err != nil {
			t.Fatal(err)
		}
		if got := version(t); got != "1" {
			t.Errorf("the Deployment's version is %q after correcting drift, want 1", got)
		}
		if len(res.Hooks) != 0 {
			t.Errorf("hooks ran to correct drift: %v", res.Hooks)
		}
		if diff := cmp.Diff([]string{"updated Deployment/admission"}, events.take(t)); diff != "" {
			t.Errorf("what came and went (-want +got):\n%s", diff)
		}
		if got := get(t, configMaps, "admission-last-run"); got.GetUID() != lastRun.GetUID() {
			t.Error("the kept hook was made again")
		}
	})

	t.Run("upgrade: the upgrade hooks run, and the kept hook is replaced", func(t *testing.T) {
		prev := recorded(t)
		units = admissionFleet(t, `version: "2"`)
		events.take(t)
		if _, err := applier.Apply(ctx, units[1], prev); err != nil {
			t.Fatal(err)
		}
		want := slices.Concat(certgen("admission-create"), []string{"updated Deployment/admission"},
			certgen("admission-patch")[:4], []string{"deleted ConfigMap/admission-last-run", "added ConfigMap/admission-last-run"}, certgen("admission-patch")[4:])
		if diff := cmp.Diff(want, events.take(t)); diff != "" {
			t.Errorf("what came and went, in order (-want +got):\n%s", diff)
		}
		if v, _, _ := unstructured.NestedString(get(t, configMaps, "admission-last-run").Object, "data", "version"); v != "2" {
			t.Errorf("last run version %q, want 2", v)
		}
	})

	t.Run("a failed pre-upgrade hook stops the upgrade, is deleted as its policy says, and runs again at the next apply", func(t *testing.T) {
		prev := recorded(t)
		failing := admissionFleet(t, "version: \"3\"\n    failCertificates: true")
		events.take(t)
		_, err := applier.Apply(ctx, failing[1], prev)
		var ae *apply.Error
		if !errors.As(err, &ae) || ae.Object != "Job/gatekeepers/admission-create" || ae.Op != "pre-upgrade hook failed" || !strings.Contains(err.Error(), "DeadlineExceeded") {
			t.Fatalf("error %v: want the certificate Job named, as failed past its deadline", err)
		}
		if got := version(t); got != "2" {
			t.Errorf("the Deployment's version is %q after a failed pre-upgrade hook, want 2", got)
		}
		// The hook-failed policy deleted the Job; its ServiceAccount and RBAC stay
		// until the next run replaces them, as with Helm.
		want := []string{"added ServiceAccount/admission-certgen", "added Role/admission-certgen", "added RoleBinding/admission-certgen", "added Job/admission-create", "deleted Job/admission-create"}
		if diff := cmp.Diff(want, events.take(t)); diff != "" {
			t.Errorf("what came and went, in order (-want +got):\n%s", diff)
		}
		inv := recorded(t)
		if inv.Digest != prev.Digest {
			t.Error("the failed upgrade recorded its digest: the next apply would not run its hooks again")
		}

		fixed := admissionFleet(t, `version: "3"`)
		if _, err := applier.Apply(ctx, fixed[1], inv); err != nil {
			t.Fatal(err)
		}
		if got := version(t); got != "3" {
			t.Errorf("the Deployment's version is %q, want 3", got)
		}
		got := events.take(t)
		// Each hook left by the failed run is replaced as its turn comes.
		want = slices.Concat([]string{
			"deleted ServiceAccount/admission-certgen", "added ServiceAccount/admission-certgen",
			"deleted Role/admission-certgen", "added Role/admission-certgen",
			"deleted RoleBinding/admission-certgen", "added RoleBinding/admission-certgen",
		}, certgen("admission-create")[3:], []string{"updated Deployment/admission"})
		if len(got) < len(want) || !cmp.Equal(want, got[:len(want)]) {
			t.Errorf("what came and went first:\n%v\nwant the leftover hooks replaced in turn, then the certificate Job, then the Deployment:\n%v", got, want)
		}
		if got := fmt.Sprint(recorded(t).Hooks); got != "[ConfigMap/gatekeepers/admission-last-run]" {
			t.Errorf("inventory hooks %s: want only the hook that stays", got)
		}
	})

	t.Run("a hook whose object Meridian did not create is refused before anything is written", func(t *testing.T) {
		prev := recorded(t)
		foreign := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "batch/v1", "kind": "Job",
			"metadata": map[string]any{"name": "admission-create", "namespace": ns},
			"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
				"restartPolicy": "Never", "containers": []any{map[string]any{"name": "x", "image": "x"}}}}},
		}}
		jobs := schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
		if _, err := dynamic.NewForConfigOrDie(cfg).Resource(jobs).Namespace(ns).Create(ctx, foreign, metav1.CreateOptions{FieldManager: "ops-team"}); err != nil {
			t.Fatal(err)
		}
		next := admissionFleet(t, `version: "4"`)
		// A new pass, as the daemon starts one: within the pass that created
		// the namespace nothing in it is read (a hook's object there is younger
		// than Meridian's check), in later ones its hooks are checked again.
		if _, err := applier.Region().Inventories(ctx); err != nil {
			t.Fatal(err)
		}
		events.take(t)
		_, err := applier.Apply(ctx, next[1], prev)
		var refused *apply.RefusedError
		want := "gatekeepers/us-east-1/admission: refused: Job/gatekeepers/admission-create (field managers: kube-controller-manager, ops-team): " +
			"it exists and Meridian did not create it, so nothing of the unit was written; a hook replaces its object each time it runs, " +
			"so it never takes one over: delete or rename it in the cluster, or rename the hook in the chart"
		if !errors.As(err, &refused) || err.Error() != want {
			t.Fatalf("error:\n%v\nwant:\n%s", err, want)
		}
		if got := events.take(t); len(got) != 0 {
			t.Errorf("a refused unit wrote %v", got)
		}
	})
}

// admissionFleet renders testdata/hooks with the admission app's values replaced.
func admissionFleet(t *testing.T, values string) []*render.Unit {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/hooks")); err != nil {
		t.Fatal(err)
	}
	app := "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata:\n  name: admission\nspec:\n  helm:\n    chart: chart\n  values:\n    " + values + "\n"
	if err := os.WriteFile(filepath.Join(dir, "apps/admission/app.yaml"), []byte(app), 0o644); err != nil {
		t.Fatal(err)
	}
	return renderFleet(t, dir, nil)
}

// objectEvents records, in the order the API server made them, the additions
// and deletions of a namespace's ServiceAccounts, Roles, RoleBindings, Jobs,
// ConfigMaps and Deployments, and each change of a Deployment's spec.
type objectEvents struct {
	mu     sync.Mutex
	events []objectEvent
}

type objectEvent struct {
	rv   int64
	what string
}

func watchObjects(t *testing.T, client dynamic.Interface, namespace string) *objectEvents {
	t.Helper()
	rec := &objectEvents{}
	kinds := []struct {
		gvr  schema.GroupVersionResource
		kind string
	}{
		{schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "ServiceAccount"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, "Role"},
		{schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, "RoleBinding"},
		{schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "Job"},
		{schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "ConfigMap"},
		{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment"},
	}
	for _, k := range kinds {
		w, err := client.Resource(k.gvr).Namespace(namespace).Watch(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
		go func() {
			generations := map[string]int64{}
			for ev := range w.ResultChan() {
				u, ok := ev.Object.(*unstructured.Unstructured)
				if !ok || strings.HasPrefix(u.GetName(), "meridian-") || u.GetName() == "kube-root-ca.crt" || u.GetName() == "default" {
					continue
				}
				what := ""
				switch ev.Type {
				case watch.Added:
					what = "added"
				case watch.Deleted:
					what = "deleted"
				case watch.Modified:
					if k.kind == "Deployment" && u.GetGeneration() != generations[u.GetName()] {
						what = "updated"
					}
				}
				generations[u.GetName()] = u.GetGeneration()
				if what == "" {
					continue
				}
				rv, _ := strconv.ParseInt(u.GetResourceVersion(), 10, 64)
				rec.mu.Lock()
				rec.events = append(rec.events, objectEvent{rv: rv, what: what + " " + k.kind + "/" + u.GetName()})
				rec.mu.Unlock()
			}
		}()
	}
	return rec
}

// take returns what was recorded since the last take, once the watches have been
// quiet for a moment, ordered by resourceVersion (one etcd orders every write).
func (r *objectEvents) take(t *testing.T) []string {
	t.Helper()
	last := -1
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		r.mu.Lock()
		n := len(r.events)
		r.mu.Unlock()
		if n == last {
			break
		}
		last = n
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortStableFunc(r.events, func(a, b objectEvent) int { return int(a.rv - b.rv) })
	var out []string
	for _, e := range r.events {
		out = append(out, e.what)
	}
	r.events = nil
	return out
}
