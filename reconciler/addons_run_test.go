package reconciler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
)

// databasesFleet is a fleet of one region where the addon databases installs a
// CRD (Database, db.example.com) and its operator's namespace, and the tenant shop
// runs the app orders, which asks for a Database: a team asking for a cloud
// resource in git. grant is the tenant's spec.customResources.
func databasesFleet(grant string) map[string]string {
	return map[string]string{
		"fleet.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  dns:
    zone: fleet.example.com
    hostedZoneID: ZTEST
`,
		"regions/eu-west-2.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Region
metadata:
  name: eu-west-2
  labels: {databases: "true"}
spec:
  awsRegion: eu-west-2
  cluster:
    kubeconfigContext: eu-west-2
  endpoint:
    type: CNAME
    target: ingress.eu-west-2.example.net
`,
		"addons/databases/addon.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Addon
metadata:
  name: databases
spec:
  kustomize: {path: base}
  namespace: databases-system
  regionSelector: {databases: "true"}
`,
		"addons/databases/base/kustomization.yaml": "resources: [crd.yaml, namespace.yaml, settings.yaml]\n",
		"addons/databases/base/namespace.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: databases-system\n",
		"addons/databases/base/settings.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: operator-settings\ndata:\n  engine: postgres\n",
		"addons/databases/base/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: databases.db.example.com
spec:
  group: db.example.com
  scope: Namespaced
  names: {kind: Database, plural: databases, singular: database, listKind: DatabaseList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                engine: {type: string}
                sizeGB: {type: integer}
            status:
              type: object
              x-kubernetes-preserve-unknown-fields: true
`,
		"apps/orders/app.yaml":                "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata:\n  name: orders\nspec:\n  kustomize: {path: base}\n",
		"apps/orders/base/kustomization.yaml": "resources: [database.yaml]\n",
		"apps/orders/base/database.yaml":      "apiVersion: db.example.com/v1\nkind: Database\nmetadata:\n  name: orders\nspec:\n  engine: postgres\n  sizeGB: 20\n",
		"tenants/shop.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: shop
spec:
  regions: [eu-west-2]
` + grant + `  apps:
    - name: orders
`,
	}
}

// writeFleet writes files into dir and loads the fleet as a snapshot at revision.
func writeFleet(t *testing.T, dir, revision string, files map[string]string) render.Snapshot {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return render.Snapshot{Dir: dir, Revision: revision, Model: m}
}

// TestAddonCRDAndCustomResource runs, on a real kube-apiserver, a revision in
// which an addon installs a CRD and a tenant's app creates a custom resource of it:
// the addon is applied and found healthy (the CRD Established) before the tenant's
// units; the tenant's Role may write the custom resource only once git grants it;
// and the custom resource's health is read from its status conditions, as an
// operator sets them.
func TestAddonCRDAndCustomResource(t *testing.T) {
	start := time.Now()
	tb := testbed.New(t, testbed.Options{Names: []string{"eu-west-2"}})
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	renderer := render.New(render.Options{Helm: charts})
	dir := t.TempDir()
	// pass runs one pass; allowMassDeletion, when given, is the commit's allowance.
	pass := func(t *testing.T, snap render.Snapshot, allowMassDeletion ...bool) *reconciler.RegionReport {
		t.Helper()
		r := reconciler.New(reconciler.Options{Renderer: renderer, Clusters: reconciler.Clusters(t.Context(), snap.Model, tb.Kubeconfig, reconciler.Access{}, nil), HealthTimeout: 5 * time.Second})
		report, err := r.RunOnce(t.Context(), snap, len(allowMassDeletion) > 0 && allowMassDeletion[0])
		if err != nil {
			t.Fatal(err)
		}
		return report.Regions["eu-west-2"]
	}
	c, err := client.New(tb.Region("eu-west-2").Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addon, orders := fleet.AddonUnit("eu-west-2", "databases"), fleet.UnitID{Tenant: "shop", Region: "eu-west-2", App: "orders"}

	granted := "  customResources:\n    - group: db.example.com\n      resources: [databases]\n"
	t.Run("in one revision, the addon's CRD is established before the tenant's custom resource is applied", func(t *testing.T) {
		rr := pass(t, writeFleet(t, dir, "r1", databasesFleet(granted)))
		if err := rr.Problem(); err != nil {
			t.Fatalf("pass: %v", err)
		}
		for _, id := range []fleet.UnitID{addon, fleet.NamespaceUnit("shop", "eu-west-2"), orders} {
			if res := rr.Units[id]; res.Action != plan.Create || res.Err != nil || res.Health != reconciler.Healthy {
				t.Errorf("%s: %s, %v, health %s; want it created and healthy", id, res.Action, res.Err, res.Health)
			}
		}
		db := database(t, c, "shop")
		if got := db.GetLabels()[render.LabelApp]; got != "orders" {
			t.Errorf("Database/shop/orders: label %s=%q, want orders", render.LabelApp, got)
		}
	})

	t.Run("a tenant whose Role is not granted the custom resource may not write it", func(t *testing.T) {
		files := databasesFleet(granted)
		files["tenants/cafe.yaml"] = strings.ReplaceAll(databasesFleet("")["tenants/shop.yaml"], "shop", "cafe")
		rr := pass(t, writeFleet(t, dir, "r2", files))
		cafe := fleet.UnitID{Tenant: "cafe", Region: "eu-west-2", App: "orders"}
		err := rr.Units[cafe].Err
		if err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), "Database/cafe/orders") {
			t.Fatalf("%s: %v; want the tenant's apply of Database/cafe/orders forbidden", cafe, err)
		}
		if res := rr.Units[orders]; res.Action != plan.Unchanged || res.Err != nil {
			t.Errorf("%s: %s, %v; want it unchanged, another tenant's refusal is not its own", orders, res.Action, res.Err)
		}
		// cafe leaves; deleting its namespace is allowed explicitly.
		if err := os.Remove(filepath.Join(dir, "tenants", "cafe.yaml")); err != nil {
			t.Fatal(err)
		}
		if rr := pass(t, writeFleet(t, dir, "r2b", nil), true); rr.Problem() != nil {
			t.Fatalf("cafe's removal: %v", rr.Problem())
		}
	})

	t.Run("the custom resource's health is read from its status conditions", func(t *testing.T) {
		setReady(t, c, "False", "Provisioning", "the database is being created")
		rr := pass(t, writeFleet(t, dir, "r3", nil))
		res := rr.Units[orders]
		if res.Health != reconciler.Progressing || res.HealthErr == nil || !strings.Contains(res.HealthErr.Error(), "Database/shop/orders") {
			t.Errorf("orders: health %s (%v); want Progressing, naming Database/shop/orders", res.Health, res.HealthErr)
		}

		setReady(t, c, "True", "Available", "the database accepts connections")
		rr = pass(t, writeFleet(t, dir, "r3", nil))
		if res := rr.Units[orders]; res.Health != reconciler.Healthy {
			t.Errorf("orders: health %s (%v); want Healthy once its Ready condition is True", res.Health, res.HealthErr)
		}
	})
	t.Run("an app that depends on another is applied only once that one is healthy, and waits meanwhile", func(t *testing.T) {
		withAPI := func(version string) map[string]string {
			files := databasesFleet(granted)
			files["tenants/shop.yaml"] += "    - name: api\n      dependsOn: [orders]\n"
			files["apps/api/app.yaml"] = "apiVersion: meridian.dev/v1alpha1\nkind: App\nmetadata:\n  name: api\nspec:\n  kustomize: {path: base}\n"
			files["apps/api/base/kustomization.yaml"] = "resources: [config.yaml]\n"
			files["apps/api/base/config.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: api\ndata:\n  version: \"" + version + "\"\n"
			return files
		}
		api := fleet.UnitID{Tenant: "shop", Region: "eu-west-2", App: "api"}
		if rr := pass(t, writeFleet(t, dir, "r4", withAPI("1"))); rr.Problem() != nil {
			t.Fatalf("pass: %v", rr.Problem())
		}

		setReady(t, c, "False", "Resizing", "the database is being resized")
		rr := pass(t, writeFleet(t, dir, "r5", withAPI("2")))
		const want = "shop/eu-west-2/api: not applied: it waits for shop/eu-west-2/orders, which is progressing; it is applied once that unit is healthy"
		if err := rr.Units[api].Err; err == nil || err.Error() != want {
			t.Errorf("api: %v, want %q", err, want)
		}
		if got := apiVersion(t, c); got != "1" {
			t.Errorf("ConfigMap/shop/api: version %q while its dependency is not healthy, want 1 (left as it was)", got)
		}

		setReady(t, c, "True", "Available", "the database accepts connections")
		rr = pass(t, writeFleet(t, dir, "r5", nil))
		if res := rr.Units[api]; res.Err != nil || res.Health != reconciler.Healthy {
			t.Errorf("api: %v, health %s; want it applied and healthy once orders is", res.Err, res.Health)
		}
		if got := apiVersion(t, c); got != "2" {
			t.Errorf("ConfigMap/shop/api: version %q, want 2", got)
		}
	})
	t.Run("an addon's object someone else made is refused, adopted when git says so, and released rather than deleted", func(t *testing.T) {
		// The platform team made ConfigMap/databases-system/legacy by hand.
		legacy := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "databases-system", Name: "legacy"}, Data: map[string]string{"owner": "platform-team"}}
		if err := c.Create(t.Context(), legacy, client.FieldOwner("platform-team")); err != nil {
			t.Fatal(err)
		}
		files := databasesFleet(granted)
		files["addons/databases/base/kustomization.yaml"] = "resources: [crd.yaml, namespace.yaml, settings.yaml, legacy.yaml]\n"
		files["addons/databases/base/legacy.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: legacy\ndata:\n  owner: platform\n"
		rr := pass(t, writeFleet(t, dir, "r6", files))
		err := rr.Units[addon].Err
		if err == nil || !strings.Contains(err.Error(), "refused: ConfigMap/databases-system/legacy (field managers: platform-team)") || !strings.Contains(err.Error(), "set adoptExisting: true in the spec of addon databases") {
			t.Fatalf("addon: %v; want ConfigMap/databases-system/legacy refused, naming its owner and the addon's adoptExisting", err)
		}
		if got := configMapData(t, c, "databases-system", "legacy")["owner"]; got != "platform-team" {
			t.Errorf("the refused ConfigMap was written: owner %q", got)
		}

		files["addons/databases/addon.yaml"] += "  adoptExisting: true\n"
		if rr := pass(t, writeFleet(t, dir, "r7", files)); rr.Problem() != nil {
			t.Fatalf("pass: %v", rr.Problem())
		}
		if got := configMapData(t, c, "databases-system", "legacy")["owner"]; got != "platform" {
			t.Errorf("the adopted ConfigMap: owner %q, want platform", got)
		}

		// The addon stops rendering both ConfigMaps: Meridian's is deleted, the
		// adopted one released.
		files["addons/databases/base/kustomization.yaml"] = "resources: [crd.yaml, namespace.yaml]\n"
		rr = pass(t, writeFleet(t, dir, "r8", files))
		if rr.Problem() != nil || rr.Changes.Held != "" {
			t.Fatalf("pass: %v, held: %q", rr.Problem(), rr.Changes.Held)
		}
		if got := rr.Changes.String(); got != "eu-west-2: 1 update, 2 unchanged; 1 objects to delete; 1 adopted objects to release" {
			t.Errorf("changes: %s", got)
		}
		released := &corev1.ConfigMap{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: "databases-system", Name: "legacy"}, released); err != nil {
			t.Fatalf("the adopted ConfigMap was deleted: %v", err)
		}
		if _, ok := released.Labels[render.LabelManagedBy]; ok {
			t.Errorf("the released ConfigMap keeps Meridian's labels: %v", released.Labels)
		}
		err = c.Get(t.Context(), client.ObjectKey{Namespace: "databases-system", Name: "operator-settings"}, &corev1.ConfigMap{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("ConfigMap/databases-system/operator-settings, which Meridian created and the addon no longer renders: %v, want it deleted", err)
		}
	})
	t.Logf("took %s", time.Since(start).Round(time.Millisecond))
}

var databaseGVK = schema.GroupVersionKind{Group: "db.example.com", Version: "v1", Kind: "Database"}

// database reads the Database orders of a tenant.
func database(t *testing.T, c client.Client, tenant string) *unstructured.Unstructured {
	t.Helper()
	db := &unstructured.Unstructured{}
	db.SetGroupVersionKind(databaseGVK)
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: tenant, Name: "orders"}, db); err != nil {
		t.Fatal(err)
	}
	return db
}

// setReady writes the Ready condition of Database/shop/orders as its operator
// would, through the status subresource.
func setReady(t *testing.T, c client.Client, status, reason, message string) {
	t.Helper()
	db := database(t, c, "shop")
	conditions := []any{map[string]any{
		"type": "Ready", "status": status, "reason": reason, "message": message,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339), "observedGeneration": db.GetGeneration(),
	}}
	if err := unstructured.SetNestedField(db.Object, map[string]any{"observedGeneration": db.GetGeneration(), "conditions": conditions}, "status"); err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Update(t.Context(), db); err != nil {
		t.Fatal(err)
	}
}

// apiVersion reads data.version of ConfigMap/shop/api.
func apiVersion(t *testing.T, c client.Client) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "api"}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data["version"]
}

// configMapData reads a ConfigMap's data.
func configMapData(t *testing.T, c client.Client, namespace, name string) map[string]string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: name}, cm); err != nil {
		t.Fatal(err)
	}
	return cm.Data
}
