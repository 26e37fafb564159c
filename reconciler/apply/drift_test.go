package apply_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// TestDriftWatching checks drift read from the region's watches on a real
// region: a check that finds nothing makes no request once Meridian's applies (or
// a first check's dry runs) recorded what they left Meridian's, and what drifted
// — a field edited, scaled, a label removed, an object deleted — is reported
// exactly as a check without watches reports it (dry-running every object),
// dry-running only the drifted objects.
func TestDriftWatching(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	ctx := t.Context()
	w := &writes{}
	cfg := w.wrap(tb.Regions[0].Config)
	store := newStore(t, cfg)
	objects := watches(t, cfg)
	applier := newApplier(t, cfg, apply.Options{Inventory: store, Live: objects})
	// The check as Meridian made it before watches: every object dry-run.
	polling := newApplier(t, tb.Regions[0].Config, apply.Options{Inventory: store})
	admin, err := client.New(tb.Regions[0].Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)

	const ns = "drift-watched"
	u := unit(ns, "",
		object("v1", "Namespace", "", ns, nil),
		configMap(ns, "drift-config", map[string]any{"mode": "blue"}),
		deployment(ns, "drift", 1, nil),
		object("v1", "Secret", ns, "drift-db", map[string]any{"stringData": map[string]any{"password": "drift-watched-secret-4c7d"}}))
	refs := refsOf(u)
	config, dep, secret := refs[1], refs[2], refs[3]

	// caughtUp waits until the watch holds what the API server holds of refs:
	// a check reads what the watch last saw, a few milliseconds after a write.
	caughtUp := func(t *testing.T, refs ...plan.ObjectRef) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for _, r := range refs {
			for {
				o := &unstructured.Unstructured{}
				o.SetGroupVersionKind(r.GroupVersionKind())
				err := admin.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, o)
				if err != nil && !apierrors.IsNotFound(err) {
					t.Fatalf("%s: %v", r, err)
				}
				seen, werr := objects.Get(ctx, r)
				switch {
				case werr != nil:
				case apierrors.IsNotFound(err) && seen == nil:
				case err == nil && o.GetLabels()[render.LabelManagedBy] != render.ManagedByMeridian && seen == nil:
				case err == nil && seen != nil && live.Seen(seen.GetResourceVersion(), o.GetResourceVersion()):
				default:
					if time.Now().After(deadline) {
						t.Fatalf("%s: the watch has not caught up after 30s", r)
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				break
			}
		}
	}
	// check runs the watched check and the polling one of unit and compares
	// them with want; it returns the requests the watched check made.
	check := func(t *testing.T, a *apply.Applier, unit *render.Unit, want []apply.Drift) []string {
		t.Helper()
		w.takeRequests()
		got, err := a.Drift(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		requests := w.takeRequests()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("drift read from the watches (-want +got):\n%s", diff)
		}
		polled, err := polling.Drift(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, polled); diff != "" {
			t.Errorf("drift of the dry-run check (-want +got):\n%s", diff)
		}
		return requests
	}
	reapply := func(t *testing.T) {
		t.Helper()
		prev, err := store.Get(ctx, u.ID())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := applier.Apply(ctx, u, prev); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, refs...)
		if got := check(t, applier, u, nil); len(got) != 0 {
			t.Errorf("a check right after the re-apply made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
		}
	}
	// only fails unless every request concerns one of the objects named.
	only := func(t *testing.T, requests []string, objects ...string) {
		t.Helper()
		if len(requests) == 0 {
			t.Error("no request: the drifted objects were not dry-run")
		}
	next:
		for _, r := range requests {
			for _, o := range objects {
				if strings.HasSuffix(r, o) {
					continue next
				}
			}
			t.Errorf("request %q: only %v drifted", r, objects)
		}
	}
	update := func(t *testing.T, o *unstructured.Unstructured) {
		t.Helper()
		if err := admin.Update(ctx, o, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := applier.Apply(ctx, u, nil); err != nil {
		t.Fatal(err)
	}
	caughtUp(t, refs...)

	t.Run("a check that finds nothing makes no request", func(t *testing.T) {
		if got := check(t, applier, u, nil); len(got) != 0 {
			t.Errorf("a check after the apply made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
		}
		// A later revision that leaves the unit unchanged renders it with its
		// own revision annotation: not drift, and still no request.
		later := &render.Unit{Tenant: u.Tenant, Region: u.Region, App: u.App, Digest: u.Digest}
		for _, o := range u.Objects {
			o = o.DeepCopy()
			a := o.GetAnnotations()
			a[render.AnnotationRevision] = "a-later-revision"
			o.SetAnnotations(a)
			later.Objects = append(later.Objects, o)
		}
		if got := check(t, applier, later, nil); len(got) != 0 {
			t.Errorf("a check of a later revision made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
		}
	})

	t.Run("a fresh applier dry-runs once, then reads the watches", func(t *testing.T) {
		fresh := newApplier(t, cfg, apply.Options{Inventory: store, Live: objects})
		dryRuns := 0
		for _, r := range check(t, fresh, u, nil) {
			if strings.HasPrefix(r, "PATCH ") {
				dryRuns++
			}
		}
		if dryRuns != len(refs) {
			t.Errorf("the first check of a fresh applier made %d dry runs, want one per object (%d)", dryRuns, len(refs))
		}
		if got := check(t, fresh, u, nil); len(got) != 0 {
			t.Errorf("the second check of a fresh applier made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
		}
	})

	t.Run("edits of owned fields are drift, another manager's field is not", func(t *testing.T) {
		d := liveObject(t, admin, dep)
		if err := unstructured.SetNestedField(d.Object, int64(3), "spec", "replicas"); err != nil {
			t.Fatal(err)
		}
		update(t, d)
		s := liveObject(t, admin, secret)
		if err := unstructured.SetNestedField(s.Object, "ZWRpdGVk", "data", "password"); err != nil {
			t.Fatal(err)
		}
		update(t, s)
		c := liveObject(t, admin, config)
		labels := c.GetLabels()
		labels["team"] = "ops"
		c.SetLabels(labels)
		update(t, c)
		caughtUp(t, refs...)
		requests := check(t, applier, u, []apply.Drift{
			{Object: dep, Fields: []string{"replace /spec/replicas"}},
			{Object: secret, Fields: []string{"replace /data/password"}},
		})
		only(t, requests, "/deployments/drift", "/secrets/drift-db")
		reapply(t)
	})

	t.Run("a removed label is drift, the watch's own label too", func(t *testing.T) {
		c := liveObject(t, admin, config)
		labels := c.GetLabels()
		delete(labels, render.LabelRegion)
		c.SetLabels(labels)
		update(t, c)
		// Without the label the watch selects by, the object leaves the watch:
		// dry-run, it is not missing.
		d := liveObject(t, admin, dep)
		labels = d.GetLabels()
		delete(labels, render.LabelManagedBy)
		d.SetLabels(labels)
		update(t, d)
		caughtUp(t, refs...)
		requests := check(t, applier, u, []apply.Drift{
			{Object: config, Fields: []string{"add /metadata/labels/meridian.dev~1region"}},
			{Object: dep, Fields: []string{"add /metadata/labels/app.kubernetes.io~1managed-by"}},
		})
		only(t, requests, "/configmaps/drift-config", "/deployments/drift")
		reapply(t)
	})

	t.Run("a Deployment scaled through its scale subresource has drifted", func(t *testing.T) {
		s, err := cs.AppsV1().Deployments(ns).GetScale(ctx, "drift", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = 5
		if _, err := cs.AppsV1().Deployments(ns).UpdateScale(ctx, "drift", s, metav1.UpdateOptions{FieldManager: "autoscaler"}); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, refs...)
		requests := check(t, applier, u, []apply.Drift{{Object: dep, Fields: []string{"replace /spec/replicas"}}})
		only(t, requests, "/deployments/drift")
		reapply(t)
	})

	t.Run("a deleted object is missing", func(t *testing.T) {
		if err := admin.Delete(ctx, liveObject(t, admin, config)); err != nil {
			t.Fatal(err)
		}
		caughtUp(t, refs...)
		requests := check(t, applier, u, []apply.Drift{{Object: config, Missing: true}})
		only(t, requests, "/configmaps/drift-config")
		reapply(t)
	})
}
