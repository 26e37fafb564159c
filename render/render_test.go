package render

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/golden"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

const exampleDir = "../fleet-example"

// demoSecrets are the plaintext values of fleet-example's secrets files, to prove
// they never reach redacted output.
var demoSecrets = []string{"demo-not-a-real-password-trucking-7d1e", "demo-not-a-real-password-charging-3a9f"}

func newTestRenderer(t testing.TB, withKeys bool) *Renderer {
	t.Helper()
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Helm: charts}
	if withKeys {
		keys, err := secrets.KeysFromFiles(filepath.Join(exampleDir, "demo-age-key.txt"))
		if err != nil {
			t.Fatal(err)
		}
		opts.Decryptor = secrets.NewDecryptor(keys)
	}
	return New(opts)
}

func loadSnapshot(t testing.TB, dir, revision string) Snapshot {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := fleet.LoadDir(abs)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	return Snapshot{Dir: abs, Revision: revision, Model: m}
}

func renderOK(t testing.TB, r *Renderer, snap Snapshot, filter Filter) *Result {
	t.Helper()
	res, err := r.Render(context.Background(), snap, filter)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatalf("render errors:\n%v", err)
	}
	return res
}

func encode(t testing.TB, units []*Unit) string {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeYAML(&b, units); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestGoldenFleetExample renders every placement and namespace of fleet-example and
// compares each, redacted, with testdata/fleet-example/<tenant>/<region>/<app>.yaml.
func TestGoldenFleetExample(t *testing.T) {
	res := renderOK(t, newTestRenderer(t, true), loadSnapshot(t, exampleDir, "0123456789abcdef0123456789abcdef01234567"), Filter{})
	redacted, err := res.Redact(res.Units)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(redacted), 14+6+3; got != want {
		t.Errorf("rendered %d units, want 14 placements + 6 tenant namespaces + 3 addon units", got)
	}
	dir := filepath.Join("testdata", "fleet-example")
	if *golden.Update {
		if err := os.RemoveAll(dir); err != nil { // placements that left the example go too
			t.Fatal(err)
		}
	}
	for _, u := range redacted {
		got := encode(t, []*Unit{u})
		for _, s := range demoSecrets {
			if strings.Contains(got, s) {
				t.Errorf("%s: redacted output holds a decrypted secret", u.ID())
			}
		}
		golden.Check(t, filepath.Join(dir, filepath.FromSlash(UnitFile(u))), []byte(got))
	}
}

// TestRenderIsDeterministic renders fleet-example twice with fresh renderers.
func TestRenderIsDeterministic(t *testing.T) {
	snap := loadSnapshot(t, exampleDir, "rev")
	first := encode(t, renderOK(t, newTestRenderer(t, true), snap, Filter{}).Units)
	second := encode(t, renderOK(t, newTestRenderer(t, true), snap, Filter{}).Units)
	if first != second {
		t.Error("two renders of the same snapshot differ")
	}
}

// TestSecretsReachTheirPlacementOnly checks the last layer of the values precedence:
// the decrypted value lands in the tenant's own Secret, unredacted in the raw result.
func TestSecretsReachTheirPlacementOnly(t *testing.T) {
	res := renderOK(t, newTestRenderer(t, true), loadSnapshot(t, exampleDir, ""), Filter{Tenant: "trucking", Region: "eu-west-2", App: "portal"})
	raw := encode(t, res.Units)
	if !strings.Contains(raw, demoSecrets[0]) {
		t.Error("trucking's decrypted password is not in its portal Secret")
	}
	if strings.Contains(raw, demoSecrets[1]) {
		t.Error("another tenant's secret reached trucking")
	}
	if diff := cmp.Diff([]string{demoSecrets[0]}, res.SecretValues()); diff != "" {
		t.Errorf("secret values (-want +got):\n%s", diff)
	}
}

func TestEveryNamespacedObjectIsInTheTenantNamespace(t *testing.T) {
	res := renderOK(t, newTestRenderer(t, true), loadSnapshot(t, exampleDir, ""), Filter{})
	for _, u := range res.Units {
		if u.ID().IsAddon() {
			continue // an addon writes the namespaces it names (TestConfineAddon)
		}
		for _, o := range u.Objects {
			if o.GetKind() == "Namespace" {
				if o.GetName() != u.Tenant {
					t.Errorf("%s: namespace %s is not the tenant's", u.ID(), o.GetName())
				}
				continue
			}
			if o.GetNamespace() != u.Tenant {
				t.Errorf("%s: %s is not in namespace %s", u.ID(), ObjectRef(o), u.Tenant)
			}
			for k, want := range map[string]string{LabelTenant: u.Tenant, LabelRegion: u.Region, LabelManagedBy: ManagedByMeridian} {
				if got := o.GetLabels()[k]; got != want {
					t.Errorf("%s: %s label %s = %q, want %q", u.ID(), ObjectRef(o), k, got, want)
				}
			}
		}
	}
}

// TestCacheRendersOnlyWhatChanged renders fleet-example, then the same snapshot again
// (nothing rendered, nothing decrypted), then a copy where one tenant's value changed
// (only that tenant's placements rendered).
func TestCacheRendersOnlyWhatChanged(t *testing.T) {
	r := newTestRenderer(t, true)
	snap := loadSnapshot(t, exampleDir, "")
	if got := renderOK(t, r, snap, Filter{}).Renders; got != 14+3 {
		t.Fatalf("cold render rendered %d units, want 14 placements and 3 addon units", got)
	}

	r.opts.Decryptor = nil // a warm render must not need to decrypt anything
	warm := renderOK(t, r, snap, Filter{})
	if warm.Renders != 0 {
		t.Errorf("warm render rendered %d placements, want 0", warm.Renders)
	}
	for _, u := range warm.Units {
		if !u.Cached {
			t.Errorf("%s not served from the cache", u.ID())
		}
	}

	dir := copyExample(t)
	edit(t, filepath.Join(dir, "tenants", "logistics-eu.yaml"), "    - name: portal\n", "    - name: portal\n      values: {replicas: 5}\n")
	res := renderOK(t, r, loadSnapshot(t, dir, ""), Filter{})
	var rendered []string
	for _, u := range res.Units {
		if u.App != "" && !u.Cached {
			rendered = append(rendered, u.ID().String())
		}
	}
	if diff := cmp.Diff([]string{"logistics-eu/eu-west-2/portal", "logistics-eu/us-east-1/portal"}, rendered); diff != "" {
		t.Errorf("placements rendered after one tenant changed (-want +got):\n%s", diff)
	}
}

// TestCacheKeepsNamespaceUnits changes one tenant's quota: only its namespace
// units change digest, built once for both its regions (whose isolation objects
// are the same); the others come from the cache.
func TestCacheKeepsNamespaceUnits(t *testing.T) {
	r := newTestRenderer(t, true)
	before := map[fleet.UnitID]string{}
	for _, u := range renderOK(t, r, loadSnapshot(t, exampleDir, ""), Filter{}).Units {
		before[u.ID()] = u.Digest
	}
	dir := copyExample(t)
	edit(t, filepath.Join(dir, "tenants", "logistics-eu.yaml"), `pods: "20"`, `pods: "30"`)
	var changed, built []string
	for _, u := range renderOK(t, r, loadSnapshot(t, dir, ""), Filter{}).Units {
		if !u.ID().IsNamespace() {
			continue
		}
		if u.Digest != before[u.ID()] {
			changed = append(changed, u.ID().String())
		}
		if !u.Cached {
			built = append(built, u.ID().String())
		}
	}
	if diff := cmp.Diff([]string{"logistics-eu/eu-west-2", "logistics-eu/us-east-1"}, changed); diff != "" {
		t.Errorf("namespace units changed after one tenant's quota changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"logistics-eu/eu-west-2"}, built); diff != "" {
		t.Errorf("namespace units built after one tenant's quota changed (-want +got):\n%s", diff)
	}
}

// TestPassesShareTheCache renders one fleet at two revisions: each pass's objects
// carry their own revision (the second did not write into the first's), and a
// cached placement's spec is the cache's, not a copy per pass.
func TestPassesShareTheCache(t *testing.T) {
	r := newTestRenderer(t, true)
	first := renderOK(t, r, loadSnapshot(t, exampleDir, "aaaa1111"), Filter{})
	second := renderOK(t, r, loadSnapshot(t, exampleDir, "bbbb2222"), Filter{})
	if second.Renders != 0 {
		t.Fatalf("the second revision rendered %d placements, want 0", second.Renders)
	}
	shared := 0
	for i, u := range second.Units {
		for j, o := range u.Objects {
			prev := first.Units[i].Objects[j]
			if got := prev.GetAnnotations()[AnnotationRevision]; got != "aaaa1111" {
				t.Fatalf("%s: %s of the first pass has revision %q after the second pass, want aaaa1111", u.ID(), ObjectRef(prev), got)
			}
			if got := o.GetAnnotations()[AnnotationRevision]; got != "bbbb2222" {
				t.Fatalf("%s: %s has revision %q, want bbbb2222", u.ID(), ObjectRef(o), got)
			}
			if spec, ok := o.Object["spec"].(map[string]any); ok && reflect.ValueOf(spec).UnsafePointer() == reflect.ValueOf(prev.Object["spec"]).UnsafePointer() {
				shared++
			}
		}
	}
	if shared == 0 {
		t.Error("no spec is shared between the two passes: each pass copies the cache")
	}
	t.Logf("%d specs shared between the passes", shared)
}

func TestRenderRefusals(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		keys  bool
		want  string
	}{{
		name: "cluster-scoped kind not allowed",
		files: map[string]string{
			"apps/worker/chart/templates/clusterrole.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: worker-reader\nrules: []\n",
		},
		keys: true,
		want: `charging-stations-ca/us-east-1/worker: apps/worker/app.yaml: ClusterRole/worker-reader: cluster-scoped kind ClusterRole is refused for tenant apps; if the app must create it, add "ClusterRole" to the app's spec.allowClusterScoped`,
	}, {
		name: "an object replacing an isolation object",
		files: map[string]string{
			"apps/worker/chart/templates/quota.yaml": "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: meridian-quota\nspec:\n  hard: {pods: \"1000\"}\n",
		},
		keys: true,
		want: `charging-stations-ca/us-east-1/worker: apps/worker/app.yaml: ResourceQuota/charging-stations-ca/meridian-quota: the name is reserved for the tenant namespace's isolation object; rename it`,
	}, {
		// Moving it would leave the binding's subject in kube-system: it would
		// apply, and grant nothing.
		name: "an object in another namespace is refused, never moved",
		files: map[string]string{
			"apps/worker/chart/templates/rolebinding.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: worker-auth-reader\n  namespace: kube-system\n" +
				"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}\nsubjects: [{kind: ServiceAccount, name: worker, namespace: \"{{ .Release.Namespace }}\"}]\n",
		},
		keys: true,
		want: `charging-stations-ca/us-east-1/worker: apps/worker/app.yaml: RoleBinding/kube-system/worker-auth-reader: the object asks for namespace "kube-system", but a tenant's app writes only into the tenant's namespace "charging-stations-ca"; ` +
			`leave the namespace out (or set it to the release namespace) so that Meridian puts it in "charging-stations-ca", or run the component as a platform addon rather than a tenant app`,
	}, {
		name: "no keys for a tenant with secrets",
		want: `charging-stations-ca/us-east-1/portal: tenants/charging-stations-ca.secrets.sops.yaml: no SOPS keys are configured; give Meridian the key this file is encrypted to (--key-file, SOPS_AGE_KEY_FILE)`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyExample(t)
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res, err := newTestRenderer(t, tt.keys).Render(context.Background(), loadSnapshot(t, dir, ""), Filter{Tenant: "charging-stations-ca"})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) == 0 {
				t.Fatal("rendered without error")
			}
			if diff := cmp.Diff(tt.want, res.Errors[0].Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			for _, u := range res.Units {
				if u.App == "worker" && (strings.Contains(tt.name, "kind") || strings.Contains(tt.name, "namespace")) {
					t.Errorf("%s rendered despite the refusal", u.ID())
				}
			}
		})
	}
}

// TestCacheNoticesKustomizeFiles changes a file of the api app's Kustomize base: only
// the api placements render again, and their output shows the change.
// TestCacheNoticesKustomizeFiles: a change to a file of a Kustomize base renders
// its placements again and changes their digests, which is what plans them as
// updates; the cache serves them again while the files stay as they are.
func TestCacheNoticesKustomizeFiles(t *testing.T) {
	dir := copyExample(t)
	r := newTestRenderer(t, true)
	before := map[fleet.UnitID]string{}
	for _, u := range renderOK(t, r, loadSnapshot(t, dir, ""), Filter{}).Units {
		before[u.ID()] = u.Digest
	}

	edit(t, filepath.Join(dir, "apps", "api", "base", "deployment.yaml"), "replicas: 2", "replicas: 4")
	res := renderOK(t, r, loadSnapshot(t, dir, ""), Filter{})
	var rendered, changed []string
	after := map[fleet.UnitID]string{}
	for _, u := range res.Units {
		after[u.ID()] = u.Digest
		if u.App != "" && !u.Cached {
			rendered = append(rendered, u.ID().String())
			if !strings.Contains(encode(t, []*Unit{u}), "replicas: 4") {
				t.Errorf("%s re-rendered without the change", u.ID())
			}
		}
		if u.Digest != before[u.ID()] {
			changed = append(changed, u.ID().String())
		}
	}
	for _, u := range renderOK(t, r, loadSnapshot(t, dir, ""), Filter{}).Units {
		if u.App == "api" && (!u.Cached || u.Digest != after[u.ID()]) {
			t.Errorf("%s from unchanged files again: cached %t (want true), digest %s (want %s)", u.ID(), u.Cached, u.Digest, after[u.ID()])
		}
	}
	want := []string{"logistics-eu/eu-west-2/api", "trucking/ap-northeast-2/api", "trucking/eu-west-2/api", "trucking/us-east-1/api"}
	if diff := cmp.Diff(want, rendered); diff != "" {
		t.Errorf("placements rendered after the base changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, changed); diff != "" {
		t.Errorf("placements whose digest changed with the base (-want +got):\n%s", diff)
	}
}

// copyExample copies fleet-example into a directory the test may change.
func copyExample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(exampleDir)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// edit replaces the first old in file with new, failing when the example no longer
// holds old.
func edit(t *testing.T, file, old, new string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(data), old, new, 1)
	if changed == string(data) {
		t.Fatalf("%s no longer holds %q; fleet-example changed, update this test", file, old)
	}
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestShared: units of one region that render the same object both fail, naming
// it and each other; the same object in another region, or another object, is
// fine.
func TestShared(t *testing.T) {
	cm := func(name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.SetNamespace("trucking")
		u.SetName(name)
		return u
	}
	units := []*Unit{
		{Tenant: "trucking", Region: "eu-west-2", App: "api", Objects: []*unstructured.Unstructured{cm("api"), cm("shared")}},
		{Tenant: "trucking", Region: "eu-west-2", App: "portal", Objects: []*unstructured.Unstructured{cm("portal"), cm("shared")}},
		{Tenant: "trucking", Region: "eu-west-2", App: "worker", Objects: []*unstructured.Unstructured{cm("worker")}},
		{Tenant: "trucking", Region: "us-east-1", App: "api", Objects: []*unstructured.Unstructured{cm("shared")}},
	}
	kept, errs := shared(units, nil)
	var keptIDs []string
	for _, u := range kept {
		keptIDs = append(keptIDs, u.ID().String())
	}
	if diff := cmp.Diff([]string{"trucking/eu-west-2/worker", "trucking/us-east-1/api"}, keptIDs); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"trucking/eu-west-2/api: ConfigMap/trucking/shared: unit trucking/eu-west-2/portal renders it too; one object cannot belong to two units: rename it in one of them",
		"trucking/eu-west-2/portal: ConfigMap/trucking/shared: unit trucking/eu-west-2/api renders it too; one object cannot belong to two units: rename it in one of them",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

// TestFactsReachAChartOnlyUnderItsFactsKey: a chart whose values schema allows no
// other key renders as Helm renders it, since Meridian adds nothing to its values
// unless its App names a facts key; then the facts arrive under that key.
func TestFactsReachAChartOnlyUnderItsFactsKey(t *testing.T) {
	const schema = `{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
  "properties": {"global": {}, "region": {}, "replicas": {}, "image": {}, "queue": {}, "resources": {}, "db": {}, "placement": {}}}`
	const template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: facts\ndata:\n  where: {{ printf \"%v\" .Values.placement | quote }}\n"
	tests := []struct {
		name     string
		factsKey string
		want     string // the ConfigMap's where, or the render error
	}{{
		name: "no facts key: the values are the fleet's, and the schema holds",
		want: "<nil>",
	}, {
		name:     "a facts key: the facts are there, and the schema must allow the key",
		factsKey: "placement",
		want:     "map[app:worker awsRegion:eu-west-2 namespace:trucking region:eu-west-2 tenant:trucking zone:fleet.example.com]",
	}, {
		name:     "a facts key the schema does not allow is refused as Helm refuses it",
		factsKey: "meridian",
		want:     "additional properties 'meridian' not allowed",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyExample(t)
			for name, content := range map[string]string{
				"apps/worker/chart/values.schema.json":   schema,
				"apps/worker/chart/templates/facts.yaml": template,
			} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.factsKey != "" {
				edit(t, filepath.Join(dir, "apps", "worker", "app.yaml"), "    chart: chart\n", "    chart: chart\n    factsKey: "+tt.factsKey+"\n")
			}
			res, err := newTestRenderer(t, true).Render(context.Background(), loadSnapshot(t, dir, ""), Filter{Tenant: "trucking", Region: "eu-west-2", App: "worker"})
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, e := range res.Errors {
				got = e.Error()
			}
			for _, u := range res.Units {
				for _, o := range u.Objects {
					if o.GetKind() == "ConfigMap" && o.GetName() == "facts" {
						got, _, _ = unstructured.NestedString(o.Object, "data", "where")
					}
				}
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
