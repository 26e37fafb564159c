package apply_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// TestRegion applies to one real region (etcd, kube-apiserver, controller-manager,
// scheduler and kwok nodes): readiness comes from the real controllers. The subtests
// share the region and fleet-example's tenant namespaces, each using its own units.
func TestRegion(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1, Workloads: true})
	ctx := t.Context()
	w := &writes{}
	cfg := w.wrap(tb.Regions[0].Config)
	store := newStore(t, cfg)
	logs := &logBuffer{}
	applier := newApplier(t, cfg, apply.Options{Inventory: store, Logger: logs.logger(), PollInterval: 500 * time.Millisecond})
	admin, err := client.New(tb.Regions[0].Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)

	exists := func(t *testing.T, r plan.ObjectRef) bool {
		t.Helper()
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(r.GroupVersionKind())
		err := admin.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, u)
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("%s: %v", r, err)
		}
		return err == nil
	}
	applyOK := func(t *testing.T, u *render.Unit, prev *plan.Inventory) apply.Result {
		t.Helper()
		res, err := applier.Apply(ctx, u, prev)
		if err != nil {
			t.Fatalf("apply %s: %v", u.ID(), err)
		}
		return res
	}
	recorded := func(t *testing.T, unit fleet.UnitID) *plan.Inventory {
		t.Helper()
		inv, err := store.Get(ctx, unit)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	actions := func(res apply.Result) map[string]apply.Action {
		out := map[string]apply.Action{}
		for _, o := range res.Objects {
			out[o.Object.String()] = o.Action
		}
		return out
	}

	units := renderExample(t)
	byID := map[fleet.UnitID]*render.Unit{}
	for _, u := range units {
		byID[u.ID()] = u
	}

	t.Run("fleet-example applies, becomes Ready and re-applies without a write", func(t *testing.T) {
		w.take()
		w.takeDryRuns()
		w.takeReads()
		logs.take()
		objects := 0
		for _, u := range units {
			res := applyOK(t, u, nil)
			if got, want := res.Count(apply.Created), len(u.Objects); got != want {
				t.Errorf("%s: %d objects created, want %d:\n%v", u.ID(), got, want, res.Objects)
			}
			if len(res.Leftover) != 0 {
				t.Errorf("%s: leftover %v, want none", u.ID(), res.Leftover)
			}
			if u.ID().IsAddon() {
				// fleet-example's addon has a PriorityClass, which must be ready
				// before what uses it: it takes the staged path, with its reads and
				// dry runs. Addons come first; what follows counts the tenants'.
				w.takeDryRuns()
				w.takeReads()
				continue
			}
			objects += len(u.Objects)
		}
		// A unit's first apply reads what it would take over, to refuse what
		// someone else made, but nothing in a namespace that did not exist: a
		// region's first applies read each tenant's Namespace, once. They write
		// each object once, with nothing to compare: no dry run.
		if n := w.takeDryRuns(); n != 0 {
			t.Errorf("the first applies of %d objects made %d dry runs, want 0", objects, n)
		}
		namespaces := 0
		for _, u := range units {
			if u.ID().IsNamespace() {
				namespaces++
			}
		}
		reads := 0
		for path, n := range w.takeReads() {
			if !strings.Contains(path, "/namespaces/") || strings.Contains(path, "/namespaces/meridian-system/") { // not the inventories
				continue
			}
			reads += n
			if n != 1 || strings.Count(path, "/") != 4 { // /api/v1/namespaces/<name>
				t.Errorf("the first applies read %s %d times, want only Namespaces, once", path, n)
			}
		}
		if reads != namespaces {
			t.Errorf("the first applies of %d namespace units read %d objects, want each Namespace once", namespaces, reads)
		}
		// The example's apps meet the Pod Security level that tenants' namespaces
		// warn about (restricted): the API server has nothing to warn of.
		if got := logs.take(); strings.Contains(got, "the API server warned") {
			t.Errorf("the API server warned applying fleet-example:\n%s", got)
		}
		// Namespaces and cluster roles come first in a unit, whatever their place.
		trucking := fleet.NamespaceUnit("trucking", "us-east-1")
		ns := applyOK(t, byID[trucking], recorded(t, trucking))
		if got := ns.Objects[0].Object.String(); got != "Namespace/trucking" {
			t.Errorf("first object applied of trucking/us-east-1 = %s, want Namespace/trucking", got)
		}

		invs, err := inventory.NewStore(cfg) // as a restarted daemon would
		if err != nil {
			t.Fatal(err)
		}
		listed, err := invs.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var want []plan.Inventory
		for _, u := range units {
			want = append(want, plan.Inventory{Unit: u.ID(), Digest: u.Digest, Revision: revision, Objects: refsOf(u)})
		}
		slices.SortFunc(want, func(a, b plan.Inventory) int { return a.Unit.Compare(b.Unit) })
		if diff := cmp.Diff(want, listed); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}

		for _, u := range units {
			h, err := applier.Wait(ctx, refsOf(u), 2*time.Minute)
			if err != nil {
				t.Fatalf("%s: %v", u.ID(), err)
			}
			if h.State != apply.Ready || h.Reason != "" {
				t.Errorf("%s: health %s, want Ready", u.ID(), h)
			}
		}
		portal := liveObject(t, admin, plan.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "trucking", Name: "portal"})
		if n, _, _ := unstructured.NestedInt64(portal.Object, "status", "availableReplicas"); n != 3 {
			t.Errorf("Deployment/trucking/portal has %d available replicas, want 3 (from the real controllers)", n)
		}

		versions := map[string]string{}
		for _, u := range units {
			for _, r := range refsOf(u) {
				versions[r.String()] = liveObject(t, admin, r).GetResourceVersion()
			}
		}
		w.take()
		for _, inv := range listed {
			res := applyOK(t, byID[inv.Unit], &inv)
			if got := res.Count(apply.Unchanged); got != len(inv.Objects) {
				t.Errorf("re-apply %s: %s, want every object unchanged", inv.Unit, res)
			}
		}
		if got := w.take(); len(got) != 0 {
			t.Errorf("re-applying unchanged units wrote:\n%s", strings.Join(got, "\n"))
		}
		for _, u := range units {
			for _, r := range refsOf(u) {
				if got := liveObject(t, admin, r).GetResourceVersion(); got != versions[r.String()] {
					t.Errorf("%s: resourceVersion %s after re-apply, was %s", r, got, versions[r.String()])
				}
			}
		}
	})

	t.Run("changing one object configures only it", func(t *testing.T) {
		before := unit("logistics-eu", "change",
			configMap("logistics-eu", "x", map[string]any{"k": "1"}),
			configMap("logistics-eu", "y", map[string]any{"k": "1"}),
			object("v1", "Service", "logistics-eu", "s", map[string]any{"spec": map[string]any{
				"selector": map[string]any{"app": "s"}, "ports": []any{map[string]any{"port": int64(80)}},
			}}))
		applyOK(t, before, nil)
		after := unit("logistics-eu", "change",
			configMap("logistics-eu", "x", map[string]any{"k": "1"}),
			configMap("logistics-eu", "y", map[string]any{"k": "2"}),
			before.Objects[2])
		w.take()
		res := applyOK(t, after, recorded(t, after.ID()))
		want := map[string]apply.Action{"ConfigMap/logistics-eu/x": apply.Unchanged, "ConfigMap/logistics-eu/y": apply.Configured, "Service/logistics-eu/s": apply.Unchanged}
		if diff := cmp.Diff(want, actions(res)); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
		if got, want := res.String(), "logistics-eu/us-east-1/change: 1 configured, 2 unchanged"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		wantWrites := []string{
			"PATCH /api/v1/namespaces/logistics-eu/configmaps/y",
			"PUT /api/v1/namespaces/meridian-system/configmaps/" + inventory.Name(after.ID()),
		}
		if diff := cmp.Diff(wantWrites, w.take()); diff != "" {
			t.Errorf("writes (-want +got):\n%s", diff)
		}
		if got := liveObject(t, admin, refsOf(after)[1]).Object["data"]; !cmp.Equal(got, map[string]any{"k": "2"}) {
			t.Errorf("ConfigMap/logistics-eu/y data = %v, want k: 2", got)
		}
	})

	t.Run("prune deletes only what the unit still owns", func(t *testing.T) {
		cm := func(name string) *unstructured.Unstructured {
			return configMap("logistics-eu", name, map[string]any{"k": name})
		}
		before := unit("logistics-eu", "prune", cm("a"), cm("b"), cm("c"), cm("d"))
		applyOK(t, before, nil)
		after := unit("logistics-eu", "prune", cm("a"))
		res := applyOK(t, after, recorded(t, after.ID()))
		refs := refsOf(before)
		if diff := cmp.Diff(refs[1:], res.Leftover); diff != "" {
			t.Fatalf("leftover (-want +got):\n%s", diff)
		}
		if got, want := res.String(), "logistics-eu/us-east-1/prune: 1 unchanged; 3 left over to prune"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		// Until pruned, the leftovers stay recorded under the new digest, so plan lists
		// them for deletion.
		wantRecorded := &plan.Inventory{Unit: after.ID(), Digest: after.Digest, Revision: revision, Objects: refs}
		if diff := cmp.Diff(wantRecorded, recorded(t, after.ID())); diff != "" {
			t.Errorf("recorded after apply (-want +got):\n%s", diff)
		}
		cs := plan.Calculate(region, []plan.Desired{{Unit: after.ID(), Digest: after.Digest, Objects: after.Objects}},
			[]plan.Inventory{*wantRecorded}, nil, plan.Limits{MaxDeletePercent: 100})
		if diff := cmp.Diff(refs[1:], cs.Changes[0].Delete); diff != "" {
			t.Errorf("plan deletes (-want +got):\n%s", diff)
		}

		// Someone else takes over c (another app's label) and d (another placement).
		for name, edit := range map[string]func(u *unstructured.Unstructured){
			"c": func(u *unstructured.Unstructured) {
				l := u.GetLabels()
				l[render.LabelApp] = "someone-else"
				u.SetLabels(l)
			},
			"d": func(u *unstructured.Unstructured) {
				a := u.GetAnnotations()
				a[render.AnnotationPlacement] = "other/us-east-1/app"
				u.SetAnnotations(a)
			},
		} {
			u := liveObject(t, admin, plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "logistics-eu", Name: name})
			edit(u)
			if err := admin.Update(ctx, u, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
		}
		logs.take()
		if err := applier.Region().Prune(ctx, plan.Change{Unit: after.ID(), Action: plan.Update, Delete: res.Leftover}); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range refs {
			got[r.Name] = exists(t, r)
		}
		if diff := cmp.Diff(map[string]bool{"a": true, "b": false, "c": true, "d": true}, got); diff != "" {
			t.Errorf("objects left (-want +got):\n%s", diff)
		}
		wantLog := `level=INFO msg="not pruned: no longer Meridian's for this unit" unit=logistics-eu/us-east-1/prune object=ConfigMap/logistics-eu/d reason="annotation meridian.dev/placement is \"other/us-east-1/app\", not \"logistics-eu/us-east-1/prune\""` + "\n" +
			`level=INFO msg="not pruned: no longer Meridian's for this unit" unit=logistics-eu/us-east-1/prune object=ConfigMap/logistics-eu/c reason="label meridian.dev/app is \"someone-else\", not \"prune\""` + "\n"
		if diff := cmp.Diff(wantLog, logs.take()); diff != "" {
			t.Errorf("log (-want +got):\n%s", diff)
		}
		wantRecorded.Objects = refs[:1]
		if diff := cmp.Diff(wantRecorded, recorded(t, after.ID())); diff != "" {
			t.Errorf("recorded after prune (-want +got):\n%s", diff)
		}
		// An object already gone counts as pruned.
		if err := applier.Prune(ctx, after.ID(), refs[1:2]); err != nil {
			t.Errorf("pruning a deleted object: %v", err)
		}
		// A unit that leaves the fleet: its objects, then its inventory.
		if err := applier.Region().Prune(ctx, plan.Change{Unit: after.ID(), Action: plan.Prune, Delete: refs[:1]}); err != nil {
			t.Fatal(err)
		}
		if exists(t, refs[0]) || recorded(t, after.ID()) != nil {
			t.Errorf("after pruning the whole unit: ConfigMap/logistics-eu/a exists=%v, inventory %v; want neither", exists(t, refs[0]), recorded(t, after.ID()))
		}
	})

	t.Run("a tenant manifest aimed at another tenant's namespace is refused by the API server", func(t *testing.T) {
		intruder := unit("logistics-eu", "intruder", configMap("trucking", "planted", map[string]any{"k": "v"}))
		_, err := applier.Apply(ctx, intruder, nil)
		want := `ConfigMap/trucking/planted: apply failed: configmaps "planted" is forbidden: ` +
			`User "system:serviceaccount:logistics-eu:meridian-tenant" cannot patch resource "configmaps" in API group "" in the namespace "trucking"`
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		if apply.IsTransient(err) {
			t.Error("a refusal by RBAC is transient; want permanent")
		}
		if exists(t, refsOf(intruder)[0]) {
			t.Error("ConfigMap/trucking/planted exists")
		}
		// Nor can an inventory make Meridian prune there as the tenant, even an object
		// that claims to be the tenant's.
		forged := intruder.Objects[0].DeepCopy()
		if err := admin.Create(ctx, forged); err != nil {
			t.Fatal(err)
		}
		logs.take()
		if err := applier.Prune(ctx, intruder.ID(), refsOf(intruder)); err != nil {
			t.Fatal(err)
		}
		if !exists(t, refsOf(intruder)[0]) {
			t.Error("ConfigMap/trucking/planted was pruned by logistics-eu's unit")
		}
		wantLog := `level=INFO msg="not pruned: the tenant may not read it, so it is not the tenant's" unit=logistics-eu/us-east-1/intruder object=ConfigMap/trucking/planted` + "\n"
		if diff := cmp.Diff(wantLog, logs.take()); diff != "" {
			t.Errorf("log (-want +got):\n%s", diff)
		}
		// The same manifest in the tenant's own namespace goes through.
		own := unit("logistics-eu", "intruder", configMap("logistics-eu", "planted", map[string]any{"k": "v"}))
		if err := applier.Region().Apply(ctx, own, recorded(t, own.ID())); err != nil {
			t.Fatal(err)
		}
		if !exists(t, refsOf(own)[0]) {
			t.Error("ConfigMap/logistics-eu/planted was not created")
		}
		// Nor may a tenant touch what its Role leaves out of its own namespace.
		loosen := unit("logistics-eu", "intruder", object("networking.k8s.io/v1", "NetworkPolicy", "logistics-eu", "allow-all",
			map[string]any{"spec": map[string]any{"podSelector": map[string]any{}, "ingress": []any{map[string]any{}}}}))
		_, err = applier.Apply(ctx, loosen, recorded(t, own.ID()))
		want = `NetworkPolicy/logistics-eu/allow-all: apply failed: networkpolicies.networking.k8s.io "allow-all" is forbidden: ` +
			`User "system:serviceaccount:logistics-eu:meridian-tenant" cannot patch resource "networkpolicies" in API group "networking.k8s.io" in the namespace "logistics-eu"`
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		// A cluster-scoped kind the fleet allowed for the app is written as Meridian.
		allowed := unit("logistics-eu", "intruder", object("rbac.authorization.k8s.io/v1", "ClusterRole", "", "logistics-eu-reader",
			map[string]any{"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"nodes"}, "verbs": []any{"get"}}}}),
			configMap("logistics-eu", "planted", map[string]any{"k": "v"}))
		res := applyOK(t, allowed, recorded(t, own.ID()))
		wantActions := map[string]apply.Action{"ClusterRole/logistics-eu-reader": apply.Created, "ConfigMap/logistics-eu/planted": apply.Unchanged}
		if diff := cmp.Diff(wantActions, actions(res)); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
	})

	t.Run("a manual edit of an owned field is drift, and re-applying corrects it", func(t *testing.T) {
		const secretValue = "drift-test-secret-value-5b1e"
		u := unit("logistics-eu", "drift",
			configMap("logistics-eu", "drift-config", map[string]any{"mode": "blue"}),
			deployment("logistics-eu", "drift", 1, nil),
			object("v1", "Secret", "logistics-eu", "drift-db", map[string]any{"stringData": map[string]any{"password": secretValue}}))
		applyOK(t, u, nil)
		if _, err := applier.Wait(ctx, refsOf(u), 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		if drifts, err := applier.Drift(ctx, u); err != nil || len(drifts) != 0 {
			t.Fatalf("Drift right after apply = %v, %v; want none", drifts, err)
		}

		// kubectl edit: updates with another field manager.
		refs := refsOf(u)
		d := liveObject(t, admin, refs[1])
		if err := unstructured.SetNestedField(d.Object, int64(3), "spec", "replicas"); err != nil {
			t.Fatal(err)
		}
		if err := admin.Update(ctx, d, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		s := liveObject(t, admin, refs[2])
		if err := unstructured.SetNestedField(s.Object, "ZWRpdGVk", "data", "password"); err != nil {
			t.Fatal(err)
		}
		if err := admin.Update(ctx, s, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		// A field Meridian does not set is not drift.
		c := liveObject(t, admin, refs[0])
		labels := c.GetLabels()
		labels["team"] = "ops"
		c.SetLabels(labels)
		if err := admin.Update(ctx, c, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}

		drifts, err := applier.Drift(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		want := []apply.Drift{
			{Object: refs[1], Fields: []string{"replace /spec/replicas"}},
			{Object: refs[2], Fields: []string{"replace /data/password"}},
		}
		if diff := cmp.Diff(want, drifts); diff != "" {
			t.Errorf("drift (-want +got):\n%s", diff)
		}
		var shown []string
		for _, d := range drifts {
			shown = append(shown, d.String())
		}
		if got, want := strings.Join(shown, "\n"), "Deployment/logistics-eu/drift: replace /spec/replicas\nSecret/logistics-eu/drift-db: replace /data/password"; got != want {
			t.Errorf("drift shown as %q, want %q", got, want)
		}

		res := applyOK(t, u, recorded(t, u.ID()))
		wantActions := map[string]apply.Action{"ConfigMap/logistics-eu/drift-config": apply.Unchanged, "Deployment/logistics-eu/drift": apply.Configured, "Secret/logistics-eu/drift-db": apply.Configured}
		if diff := cmp.Diff(wantActions, actions(res)); diff != "" {
			t.Errorf("re-apply actions (-want +got):\n%s", diff)
		}
		if drifts, err := applier.Drift(ctx, u); err != nil || len(drifts) != 0 {
			t.Errorf("Drift after re-apply = %v, %v; want none", drifts, err)
		}
		// A later revision that leaves the unit unchanged renders it with its own
		// revision annotation; the live objects keep the one that applied them.
		later := &render.Unit{Tenant: u.Tenant, Region: u.Region, App: u.App, Digest: u.Digest}
		for _, o := range u.Objects {
			o = o.DeepCopy()
			a := o.GetAnnotations()
			if a == nil {
				a = map[string]string{}
			}
			a[render.AnnotationRevision] = "a-later-revision"
			o.SetAnnotations(a)
			later.Objects = append(later.Objects, o)
		}
		if drifts, err := applier.Drift(ctx, later); err != nil || len(drifts) != 0 {
			t.Errorf("Drift of a later revision = %v, %v; want none", drifts, err)
		}
		if n, _, _ := unstructured.NestedInt64(liveObject(t, admin, refs[1]).Object, "spec", "replicas"); n != 1 {
			t.Errorf("replicas = %d after re-apply, want 1", n)
		}
		secret, err := cs.CoreV1().Secrets("logistics-eu").Get(ctx, "drift-db", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(secret.Data["password"]); got != secretValue {
			t.Error("the Secret's password was not restored")
		}
		if got := liveObject(t, admin, refs[0]).GetLabels()["team"]; got != "ops" {
			t.Errorf("re-apply removed a label Meridian does not own (team=%q)", got)
		}

		// A deleted object is drift too.
		if err := admin.Delete(ctx, liveObject(t, admin, refs[0])); err != nil {
			t.Fatal(err)
		}
		drifts, err = applier.Drift(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]apply.Drift{{Object: refs[0], Missing: true}}, drifts); diff != "" {
			t.Errorf("drift after a deletion (-want +got):\n%s", diff)
		}
	})

	t.Run("health names the object that is not ready", func(t *testing.T) {
		// Deployments whose pods no node takes: they stay Pending.
		unschedulable := func(name string, extra map[string]any) *unstructured.Unstructured {
			spec := map[string]any{
				"template": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": name}},
					"spec": map[string]any{
						"nodeSelector": map[string]any{"meridian.dev/no-such-node": "true"},
						"containers":   []any{map[string]any{"name": "app", "image": "ghcr.io/stefanprodan/podinfo:6.7.0"}},
					},
				},
			}
			for k, v := range extra {
				spec[k] = v
			}
			return deployment("logistics-eu", name, 1, spec)
		}
		pending := unschedulable("pending", nil)
		stuck := unschedulable("stuck", map[string]any{"progressDeadlineSeconds": int64(1)})
		ok := configMap("logistics-eu", "fine", map[string]any{"k": "v"})
		u := unit("logistics-eu", "health", ok, pending)
		applyOK(t, u, nil)
		refs := refsOf(u)

		w.takeReads()
		h, err := applier.Wait(ctx, refs, 5*time.Second)
		wantErr := "Deployment/logistics-eu/pending: not ready after 5s: InProgress: Available: 0/1"
		if diff := cmp.Diff(wantErr, errString(err)); diff != "" {
			t.Errorf("Wait error (-want +got):\n%s", diff)
		}
		// The ConfigMap is Current at the first read and not read again; the
		// Deployment is read at every poll.
		reads := w.takeReads()
		if cm, d := reads["/api/v1/namespaces/logistics-eu/configmaps/fine"], reads["/apis/apps/v1/namespaces/logistics-eu/deployments/pending"]; cm != 1 || d < 3 {
			t.Errorf("reads during the wait: ConfigMap %d (want 1), Deployment %d (want one per poll, 3 or more); all: %v", cm, d, reads)
		}
		if !apply.IsTransient(err) {
			t.Error("a timeout is permanent; want transient")
		}
		want := apply.Health{State: apply.Progressing, Reason: "Deployment/logistics-eu/pending: InProgress: Available: 0/1", Objects: []apply.ObjectHealth{
			{Object: refs[0], Status: status.CurrentStatus, Message: "Resource is always ready"},
			{Object: refs[1], Status: status.InProgressStatus, Message: "Available: 0/1"},
		}}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("health (-want +got):\n%s", diff)
		}

		u = unit("logistics-eu", "health", ok, pending, stuck)
		applyOK(t, u, recorded(t, u.ID()))
		h, err = applier.Wait(ctx, refsOf(u), time.Minute)
		if diff := cmp.Diff("Deployment/logistics-eu/stuck: failed: Failed: Progress deadline exceeded", errString(err)); diff != "" {
			t.Errorf("Wait error (-want +got):\n%s", diff)
		}
		if apply.IsTransient(err) {
			t.Error("a failed Deployment is transient; want permanent")
		}
		if h.State != apply.Failed || h.Reason != "Deployment/logistics-eu/stuck: Failed: Progress deadline exceeded" {
			t.Errorf("health = %s, want Failed because of Deployment/logistics-eu/stuck", h)
		}

		missing := plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "logistics-eu", Name: "never-applied"}
		h, err = applier.Health(ctx, []plan.ObjectRef{refs[0], missing})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.String(), "Failed: ConfigMap/logistics-eu/never-applied: NotFound: the object does not exist"; got != want {
			t.Errorf("health = %q, want %q", got, want)
		}
	})

	// payments is a namespace another team made before the fleet named a tenant
	// after it: a ConfigMap and a Deployment of theirs, and a label.
	payments := func(t *testing.T, name string) (foreign []plan.ObjectRef) {
		t.Helper()
		ns := object("v1", "Namespace", "", name, nil)
		ns.SetLabels(map[string]string{"team": "payments"})
		for _, u := range []*unstructured.Unstructured{ns, configMap(name, "ledger", map[string]any{"k": "v"}), deployment(name, "ledger", 1, nil)} {
			if err := admin.Create(ctx, u, client.FieldOwner("payments-team")); err != nil {
				t.Fatal(err)
			}
			foreign = append(foreign, plan.RefOf(u))
		}
		return foreign
	}
	// namespaceUnit is a tenant's namespace unit as render makes it, in short: the
	// Namespace with a Pod Security label, and the tenant's ServiceAccount.
	namespaceUnit := func(tenant string, adopt bool) *render.Unit {
		ns := object("v1", "Namespace", "", tenant, nil)
		ns.SetLabels(map[string]string{"pod-security.kubernetes.io/enforce": "baseline"})
		u := unit(tenant, "", ns, object("v1", "ServiceAccount", tenant, render.TenantServiceAccount, nil))
		u.AdoptExisting = adopt
		return u
	}

	t.Run("an object someone else made is refused, and nothing of the unit is written", func(t *testing.T) {
		foreign := payments(t, "payments")
		before := map[string]*unstructured.Unstructured{}
		for _, r := range foreign {
			before[r.String()] = liveObject(t, admin, r)
		}
		u := namespaceUnit("payments", false)
		w.take()
		_, err := applier.Apply(ctx, u, nil)
		want := "payments/us-east-1: refused: Namespace/payments (field managers: payments-team): it exists and Meridian did not create it, " +
			"so nothing of the unit was written; delete or rename it in the cluster, or set adoptExisting: true in the spec of tenant payments to take it over"
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		var refused *apply.RefusedError
		if !errors.As(err, &refused) || apply.IsTransient(err) {
			t.Errorf("error %#v: want a permanent *apply.RefusedError", err)
		}
		if got := w.take(); len(got) != 0 {
			t.Errorf("a refused unit wrote:\n%s", strings.Join(got, "\n"))
		}
		for _, r := range foreign {
			got := liveObject(t, admin, r)
			if !cmp.Equal(got.GetLabels(), before[r.String()].GetLabels()) {
				t.Errorf("%s labels changed: %v, were %v", r, got.GetLabels(), before[r.String()].GetLabels())
			}
			for _, m := range got.GetManagedFields() {
				if m.Manager == apply.FieldManager {
					t.Errorf("%s has fields of Meridian's: %+v", r, m)
				}
			}
		}
		if exists(t, refsOf(u)[1]) || recorded(t, u.ID()) != nil {
			t.Errorf("the refused unit left its ServiceAccount (%t) or an inventory (%v)", exists(t, refsOf(u)[1]), recorded(t, u.ID()))
		}
	})

	t.Run("adoptExisting takes a namespace over; leaving the fleet releases it, with what Meridian did not create", func(t *testing.T) {
		foreign := payments(t, "payments-adopted")
		u := namespaceUnit("payments-adopted", true)
		res := applyOK(t, u, nil)
		wantActions := map[string]apply.Action{"Namespace/payments-adopted": apply.Adopted, "ServiceAccount/payments-adopted/meridian-tenant": apply.Created}
		if diff := cmp.Diff(wantActions, actions(res)); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
		inv := recorded(t, u.ID())
		if inv == nil || !cmp.Equal(inv.Adopted, refsOf(u)[:1]) {
			t.Fatalf("inventory %+v: want the Namespace recorded as adopted", inv)
		}
		if got := liveObject(t, admin, foreign[0]).GetLabels(); got[render.LabelTenant] != "payments-adopted" || got["team"] != "payments" {
			t.Errorf("adopted namespace labels %v: want Meridian's beside the team's", got)
		}
		// Re-applying keeps the adoption on record.
		applyOK(t, u, inv)
		if inv := recorded(t, u.ID()); inv == nil || len(inv.Adopted) != 1 {
			t.Errorf("inventory after re-applying %+v: want the Namespace still adopted", inv)
		}

		// The tenant leaves the fleet.
		cs := plan.Calculate(region, nil, []plan.Inventory{*recorded(t, u.ID())}, nil, plan.Limits{AllowMassDeletion: true})
		ch := cs.Changes[0]
		if got := fmt.Sprint(ch.Action, ch.Delete, ch.Release); got != "prune [ServiceAccount/payments-adopted/meridian-tenant] [Namespace/payments-adopted]" {
			t.Errorf("change %s: want the ServiceAccount deleted and the Namespace released", got)
		}
		logs.take()
		if err := applier.Region().Prune(ctx, ch); err != nil {
			t.Fatal(err)
		}
		ns := liveObject(t, admin, foreign[0])
		if ns.GetDeletionTimestamp() != nil {
			t.Fatalf("the adopted namespace is being deleted")
		}
		if diff := cmp.Diff(map[string]string{"team": "payments", "kubernetes.io/metadata.name": "payments-adopted"}, ns.GetLabels()); diff != "" {
			t.Errorf("released namespace labels (-want +got):\n%s", diff)
		}
		if a := ns.GetAnnotations(); len(a) != 0 {
			t.Errorf("released namespace annotations %v, want none", a)
		}
		for _, m := range ns.GetManagedFields() {
			if m.Manager == apply.FieldManager {
				t.Errorf("released namespace still has Meridian's managed fields: %+v", m)
			}
		}
		for _, r := range foreign[1:] {
			if got := liveObject(t, admin, r); got.GetDeletionTimestamp() != nil {
				t.Errorf("%s is being deleted", r)
			}
		}
		if exists(t, refsOf(u)[1]) || recorded(t, u.ID()) != nil {
			t.Errorf("after the release: ServiceAccount exists=%t, inventory %v; want neither", exists(t, refsOf(u)[1]), recorded(t, u.ID()))
		}
		if got := logs.take(); !strings.Contains(got, `msg="released: adopted, so left in place without Meridian's labels" unit=payments-adopted/us-east-1 object=Namespace/payments-adopted`) {
			t.Errorf("log:\n%s\nwant the release", got)
		}
	})

	t.Run("a namespace Meridian created is not deleted while it holds what Meridian did not create", func(t *testing.T) {
		u := namespaceUnit("payments-created", false)
		applyOK(t, u, nil)
		notes := configMap("payments-created", "notes", map[string]any{"k": "v"})
		if err := admin.Create(ctx, notes, client.FieldOwner("payments-team")); err != nil {
			t.Fatal(err)
		}
		cs := plan.Calculate(region, nil, []plan.Inventory{*recorded(t, u.ID())}, nil, plan.Limits{AllowMassDeletion: true})
		err := applier.Region().Prune(ctx, cs.Changes[0])
		want := "Namespace/payments-created: delete refused: namespace payments-created holds 1 object(s) Meridian did not create (ConfigMap/payments-created/notes): " +
			"deleting the namespace would delete them; delete or move them, and the next pass deletes the namespace"
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		var foreign *apply.ForeignObjectsError
		if !errors.As(err, &foreign) || apply.IsTransient(err) {
			t.Errorf("error %#v: want a permanent *apply.ForeignObjectsError", err)
		}
		if ns := liveObject(t, admin, refsOf(u)[0]); ns.GetDeletionTimestamp() != nil {
			t.Fatal("the namespace is being deleted, with the ConfigMap Meridian did not create")
		}
		if recorded(t, u.ID()) == nil {
			t.Fatal("the refused unit's inventory is gone: the next pass could not delete the namespace")
		}

		// Once the ConfigMap is gone, the next pass deletes the namespace.
		if err := admin.Delete(ctx, notes); err != nil {
			t.Fatal(err)
		}
		if err := applier.Region().Prune(ctx, cs.Changes[0]); err != nil {
			t.Fatal(err)
		}
		if ns := liveObject(t, admin, refsOf(u)[0]); ns.GetDeletionTimestamp() == nil {
			t.Error("the emptied namespace is not being deleted")
		}
		if recorded(t, u.ID()) != nil {
			t.Error("the pruned unit's inventory is still recorded")
		}
	})

	t.Run("an object of another unit is never adopted", func(t *testing.T) {
		// A new pass, as the daemon starts one: the namespaces earlier passes
		// created are checked again.
		if _, err := applier.Region().Inventories(ctx); err != nil {
			t.Fatal(err)
		}
		first := unit("logistics-eu", "claim-a", configMap("logistics-eu", "shared", map[string]any{"k": "a"}))
		applyOK(t, first, nil)
		second := unit("logistics-eu", "claim-b", configMap("logistics-eu", "shared", map[string]any{"k": "b"}))
		second.AdoptExisting = true
		_, err := applier.Apply(ctx, second, nil)
		want := "logistics-eu/us-east-1/claim-b: refused: ConfigMap/logistics-eu/shared (Meridian's, for unit logistics-eu/us-east-1/claim-a; field managers: meridian): " +
			"it exists and Meridian did not create it, so nothing of the unit was written; one object cannot belong to two units: rename it in one of them"
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		if got, _, _ := unstructured.NestedString(liveObject(t, admin, refsOf(first)[0]).Object, "data", "k"); got != "a" {
			t.Errorf("the first unit's ConfigMap holds %q, want a", got)
		}
	})

	t.Run("an invalid object is a permanent error naming it", func(t *testing.T) {
		bad := unit("logistics-eu", "invalid", configMap("logistics-eu", "Not_A_Name", map[string]any{"k": "v"}))
		_, err := applier.Apply(ctx, bad, nil)
		want := `ConfigMap/logistics-eu/Not_A_Name: apply failed: ConfigMap "Not_A_Name" is invalid: metadata.name: Invalid value: "Not_A_Name": ` +
			`a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character ` +
			`(e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`
		if diff := cmp.Diff(want, errString(err)); diff != "" {
			t.Errorf("error (-want +got):\n%s", diff)
		}
		var e *apply.Error
		if !errors.As(err, &e) || e.Transient {
			t.Errorf("error %#v: want a permanent *apply.Error", err)
		}
	})
}
