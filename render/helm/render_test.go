package helm

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/golden"
)

// fleetExample is the repository the golden tests render from; read only.
func fleetExample(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "fleet-example"))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// exampleRequests render fleet-example's charts as a tenant's placement would.
func exampleRequests(root string) map[string]Request {
	// The placement facts the render package gives every chart under "meridian".
	facts := func(app string) fleet.Values {
		return fleet.Values{
			"tenant": "trucking", "region": "us-east-1", "awsRegion": "us-east-1", "app": app,
			"namespace": "trucking", "zone": "fleet.example.com",
			"host":         app + ".trucking.fleet.example.com",
			"regionalHost": app + ".trucking.us-east-1.fleet.example.com",
		}
	}
	return map[string]Request{
		"portal": {
			Root: root, AppDir: "apps/portal", Source: fleet.HelmSource{Chart: "chart"},
			ReleaseName: "portal", Namespace: "trucking", KubeVersion: "1.37.2",
			Values: map[string]any{
				"replicas": 3,
				"global":   map[string]any{"logFormat": "json"},
				"ingress":  map[string]any{"className": "nginx", "tlsSecretName": "portal-tls"},
				"database": map[string]any{"password": "not-a-real-password"},
				"meridian": facts("portal"),
			},
		},
		"worker": {
			Root: root, AppDir: "apps/worker", Source: fleet.HelmSource{Chart: "chart"},
			ReleaseName: "worker", Namespace: "trucking", KubeVersion: "1.37.2",
			Values: map[string]any{
				"replicas": 2,
				"queue":    map[string]any{"url": "amqp://queue.trucking.internal:5672/jobs"},
				"meridian": facts("worker"),
			},
		},
	}
}

func TestRenderFleetExampleMatchesGolden(t *testing.T) {
	root := fleetExample(t)
	r := newRenderer(t, Options{})
	for name, req := range exampleRequests(root) {
		t.Run(name, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", name+".golden.yaml"), golden.YAML(t, mustRender(t, r, req)))
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	root := t.TempDir()
	// Many objects over several templates, lists, CRDs and a subchart, so that any
	// map-order dependence shows up as a different order between runs.
	files := map[string]string{
		"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: many\nversion: 1.0.0\ndependencies:\n  - name: sub\n    version: 1.0.0\n",
		"apps/x/chart/templates/a.yaml": `{{- range $i := until 12 }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a-{{ $i }}
data: {{ dict "k" (printf "%d" $i) "z" "1" "b" "2" | toJson }}
{{- end }}
`,
		"apps/x/chart/templates/b.yaml":             "apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: Secret, metadata: {name: s2}}\n  - {apiVersion: v1, kind: Secret, metadata: {name: s1}}\n",
		"apps/x/chart/templates/c.yaml":             "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
		"apps/x/chart/crds/crd.yaml":                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n",
		"apps/x/chart/charts/sub/Chart.yaml":        "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
		"apps/x/chart/charts/sub/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-sub}\n",
		"apps/x/chart/charts/sub/crds/crd.yaml":     "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.example.com}\n",
	}
	writeTree(t, root, files, nil)
	req := localRequest(root)

	first := golden.YAML(t, mustRender(t, newRenderer(t, Options{}), req))
	for range 5 {
		if got := golden.YAML(t, mustRender(t, newRenderer(t, Options{}), req)); !bytes.Equal(first, got) {
			t.Fatalf("second render differs (-first +second):\n%s", cmp.Diff(string(first), string(got)))
		}
	}
	wantOrder := []string{
		"ConfigMap//a-0", "ConfigMap//a-1", "ConfigMap//a-10", "ConfigMap//a-11", "ConfigMap//a-2", "ConfigMap//a-3",
		"ConfigMap//a-4", "ConfigMap//a-5", "ConfigMap//a-6", "ConfigMap//a-7", "ConfigMap//a-8", "ConfigMap//a-9",
		"ConfigMap//from-sub", "Secret//s1", "Secret//s2", "Service//web",
		"CustomResourceDefinition//gadgets.example.com", "CustomResourceDefinition//widgets.example.com",
		"Deployment//web",
	}
	if diff := cmp.Diff(wantOrder, ids(mustRender(t, newRenderer(t, Options{}), req))); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// capabilitiesChart reports what it sees of the cluster in a ConfigMap, and renders a
// ServiceMonitor only when the cluster serves its API, as charts commonly do.
var capabilitiesChart = map[string]string{
	"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: caps\nversion: 1.0.0\n",
	"apps/x/chart/templates/caps.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: caps
data:
  version: {{ .Capabilities.KubeVersion.Version | quote }}
  major: {{ .Capabilities.KubeVersion.Major | quote }}
  minor: {{ .Capabilities.KubeVersion.Minor | quote }}
  ingressAPI: {{ if semverCompare ">=1.19-0" .Capabilities.KubeVersion.Version }}networking.k8s.io/v1{{ else }}networking.k8s.io/v1beta1{{ end }}
  hasApps: {{ .Capabilities.APIVersions.Has "apps/v1" | quote }}
  hasMonitoring: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" | quote }}
  hasServiceMonitorKind: {{ .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" | quote }}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: metrics
spec: {}
{{- end }}
`,
}

func TestRenderCapabilities(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, capabilitiesChart, nil)
	r := newRenderer(t, Options{})

	tests := []struct {
		name        string
		kubeVersion string
		apiVersions []string
		wantData    map[string]any
		wantIDs     []string
	}{
		{
			name:        "kube version from the request",
			kubeVersion: "1.37.2",
			wantData: map[string]any{
				"version": "v1.37.2", "major": "1", "minor": "37", "ingressAPI": "networking.k8s.io/v1",
				"hasApps": "true", "hasMonitoring": "false", "hasServiceMonitorKind": "false",
			},
			wantIDs: []string{"ConfigMap//caps"},
		},
		{
			name:        "an old cluster takes the other branch",
			kubeVersion: "1.18.4",
			wantData: map[string]any{
				"version": "v1.18.4", "major": "1", "minor": "18", "ingressAPI": "networking.k8s.io/v1beta1",
				"hasApps": "true", "hasMonitoring": "false", "hasServiceMonitorKind": "false",
			},
			wantIDs: []string{"ConfigMap//caps"},
		},
		{
			name:        "empty kube version means the default",
			kubeVersion: "",
			wantData: map[string]any{
				"version": "v" + DefaultKubeVersion, "major": "1", "minor": "37", "ingressAPI": "networking.k8s.io/v1",
				"hasApps": "true", "hasMonitoring": "false", "hasServiceMonitorKind": "false",
			},
			wantIDs: []string{"ConfigMap//caps"},
		},
		{
			name:        "extra API versions render optional objects",
			kubeVersion: "1.37.2",
			apiVersions: []string{"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"},
			wantData: map[string]any{
				"version": "v1.37.2", "major": "1", "minor": "37", "ingressAPI": "networking.k8s.io/v1",
				"hasApps": "true", "hasMonitoring": "true", "hasServiceMonitorKind": "true",
			},
			wantIDs: []string{"ConfigMap//caps", "ServiceMonitor//metrics"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := localRequest(root)
			req.KubeVersion = tt.kubeVersion
			req.APIVersions = tt.apiVersions
			objs := mustRender(t, r, req)
			if diff := cmp.Diff(tt.wantIDs, ids(objs)); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantData, objs[0].Object["data"]); diff != "" {
				t.Errorf("ConfigMap data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultKubeVersionFollowsTheKubernetesLibraries(t *testing.T) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build information in this test binary")
	}
	for _, m := range info.Deps {
		if m.Path != "k8s.io/api" {
			continue
		}
		// k8s.io/api v0.37.x is Kubernetes 1.37.x.
		minor := strings.Split(strings.TrimPrefix(m.Version, "v0."), ".")[0]
		if got := strings.Split(DefaultKubeVersion, ".")[1]; got != minor {
			t.Errorf("DefaultKubeVersion is %s but the Kubernetes libraries are %s; set it to 1.%s.0", DefaultKubeVersion, m.Version, minor)
		}
		return
	}
	t.Skip("k8s.io/api is not in the build information")
}

func TestRenderReleaseHooksCRDsAndNotes(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: hooks\nversion: 1.0.0\n",
		"apps/x/chart/templates/release.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: release
  namespace: {{ .Release.Namespace }}
data:
  name: {{ .Release.Name }}
  namespace: {{ .Release.Namespace }}
  isInstall: {{ .Release.IsInstall | quote }}
  isUpgrade: {{ .Release.IsUpgrade | quote }}
  revision: {{ .Release.Revision | quote }}
  chart: {{ .Chart.Name }}-{{ .Chart.Version }}
`,
		"apps/x/chart/templates/hooks.yaml": `apiVersion: v1
kind: Secret
metadata:
  name: pre-install
  annotations: {helm.sh/hook: pre-install}
---
apiVersion: v1
kind: Pod
metadata:
  name: test
  annotations: {helm.sh/hook: test}
---
apiVersion: v1
kind: Pod
metadata:
  name: test-success
  annotations: {helm.sh/hook: test-success}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: test-and-post-install
  annotations: {helm.sh/hook: "test, post-install"}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: crd-install
  annotations: {helm.sh/hook: crd-install}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: pre-delete
  annotations: {helm.sh/hook: "pre-delete,post-delete"}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: rollback
  annotations: {helm.sh/hook: " Pre-Rollback "}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: delete-and-upgrade
  annotations: {helm.sh/hook: "pre-delete, Post-Upgrade"}
`,
		"apps/x/chart/templates/empty.yaml":   "# nothing here\n---\n---\n{{- if false }}\nkind: Nothing\n{{- end }}\n",
		"apps/x/chart/templates/NOTES.txt":    "Thanks for installing {{ .Release.Name }}: this is not YAML: [\n",
		"apps/x/chart/templates/_helpers.tpl": "{{- define \"x\" }}not: [yaml{{- end }}\n",
		"apps/x/chart/crds/widgets.yaml":      "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n",
	}, nil)
	req := localRequest(root)
	req.ReleaseName = "web"
	objs := mustRender(t, newRenderer(t, Options{}), req)

	wantIDs := []string{
		"ConfigMap/trucking/release", "Secret//pre-install",
		"CustomResourceDefinition//widgets.example.com", "Job//delete-and-upgrade", "Job//test-and-post-install",
	}
	if diff := cmp.Diff(wantIDs, ids(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	wantRelease := map[string]any{
		"name": "web", "namespace": "trucking", "isInstall": "true", "isUpgrade": "false", "revision": "1", "chart": "hooks-1.0.0",
	}
	if diff := cmp.Diff(wantRelease, objs[0].Object["data"]); diff != "" {
		t.Errorf("release values (-want +got):\n%s", diff)
	}
	if got := objs[1].GetAnnotations()["helm.sh/hook"]; got != "pre-install" {
		t.Errorf("kept hook lost its annotation: got %q", got)
	}
}

func TestRenderLeavesValuesAlone(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"apps/x/chart/Chart.yaml":  "apiVersion: v2\nname: values\nversion: 1.0.0\n",
		"apps/x/chart/values.yaml": "nested:\n  fromChart: chart\n  overridden: chart\nlist: [chart]\n",
		"apps/x/chart/templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: values}
data:
  fromChart: {{ .Values.nested.fromChart }}
  overridden: {{ .Values.nested.overridden }}
  list: {{ .Values.list | join "," }}
  big: {{ .Values.big | quote }}
`,
	}, nil)
	values := map[string]any{
		// A nested map of the fleet model's named type still counts as a table.
		"nested": fleet.Values{"overridden": "placement"},
		"list":   []any{"a", "b"},
		"big":    1000000,
	}
	req := localRequest(root)
	req.Values = values
	objs := mustRender(t, newRenderer(t, Options{}), req)

	want := map[string]any{"fromChart": "chart", "overridden": "placement", "list": "a,b", "big": "1000000"}
	if diff := cmp.Diff(want, objs[0].Object["data"]); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	wantValues := map[string]any{"nested": fleet.Values{"overridden": "placement"}, "list": []any{"a", "b"}, "big": 1000000}
	if diff := cmp.Diff(wantValues, values); diff != "" {
		t.Errorf("the caller's values changed (-before +after):\n%s", diff)
	}
}

func TestRenderFollowsSymlinksInsideTheRepository(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"shared/templates/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\n",
		"shared/one.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: linked-file}\n",
		"charts/x/Chart.yaml":       "apiVersion: v2\nname: linked\nversion: 1.0.0\n",
		"charts/x/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"charts/x/.helmignore":      "templates/via-self-link\ntemplates/ignored-loop\n",
	}, map[string]string{
		"apps/x/chart":                      "../../charts/x",
		"charts/x/templates/shared":         "../../../shared/templates",
		"charts/x/templates/linked.yaml":    "../../../shared/one.yaml",
		"charts/x/templates/via-self-link":  ".",
		"charts/x/templates/ignored-loop/a": "../ignored-loop",
	})

	objs := mustRender(t, newRenderer(t, Options{}), localRequest(root))
	want := []string{"ConfigMap//a", "ConfigMap//linked-file", "ConfigMap//shared"}
	if diff := cmp.Diff(want, ids(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}

func TestDigestOfLocalChart(t *testing.T) {
	base := map[string]string{
		"apps/x/chart/Chart.yaml":       "apiVersion: v2\nname: d\nversion: 1.0.0\n",
		"apps/x/chart/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"apps/x/chart/.helmignore":      "*.md\n",
		"apps/x/other.yaml":             "outside the chart",
	}
	digest := func(files map[string]string) string {
		t.Helper()
		root := t.TempDir()
		writeTree(t, root, files, nil)
		d, err := newRenderer(t, Options{}).Digest(context.Background(), localRequest(root))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	same := digest(base)
	if !strings.HasPrefix(same, "sha256:") || len(same) != len("sha256:")+64 {
		t.Fatalf("digest %q is not sha256:<hex>", same)
	}
	tests := []struct {
		name    string
		files   map[string]string
		changes bool
	}{
		{"same files, same digest", base, false},
		{"a file outside the chart does not count", with(base, map[string]string{"apps/x/other.yaml": "changed"}), false},
		{"a file .helmignore excludes does not count", with(base, map[string]string{"apps/x/chart/README.md": "docs"}), false},
		{"a changed template counts", with(base, map[string]string{"apps/x/chart/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"}), true},
		{"a new file counts", with(base, map[string]string{"apps/x/chart/files/extra.txt": "x"}), true},
		{"a renamed file counts", with(base, map[string]string{"apps/x/chart/templates/a.yaml": "", "apps/x/chart/templates/b.yaml": base["apps/x/chart/templates/a.yaml"]}), true},
		{"content moved between names counts", with(base, map[string]string{"apps/x/chart/templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\n", "apps/x/chart/templates/a.yaml2": "metadata: {name: a}\n"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := digest(tt.files); (got != same) != tt.changes {
				t.Errorf("digest changed = %v, want %v", got != same, tt.changes)
			}
		})
	}
}

func TestRenderVendoredArchiveDependency(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"apps/x/chart/Chart.yaml":        "apiVersion: v2\nname: parent\nversion: 1.0.0\ndependencies:\n  - {name: sub, version: 1.0.0, condition: sub.enabled}\n",
		"apps/x/chart/values.yaml":       "sub:\n  enabled: true\n  greeting: from the parent\n",
		"apps/x/chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: parent}\n",
	}, nil)
	// The subchart is vendored as helm dependency build leaves it: a packaged archive.
	sub, err := loader.LoadFiles([]*loader.BufferedFile{
		{Name: "Chart.yaml", Data: []byte("apiVersion: v2\nname: sub\nversion: 1.0.0\n")},
		{Name: "values.yaml", Data: []byte("greeting: from the subchart\n")},
		{Name: "templates/cm.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\ndata: {greeting: {{ .Values.greeting | quote }}}\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chartutil.Save(sub, filepath.Join(root, "apps", "x", "chart", "charts")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		values   map[string]any
		wantIDs  []string
		greeting any
	}{
		{"enabled, with the parent's values for it", nil, []string{"ConfigMap//parent", "ConfigMap//sub"}, "from the parent"},
		{"placement values reach the subchart", map[string]any{"sub": map[string]any{"greeting": "from the placement"}}, []string{"ConfigMap//parent", "ConfigMap//sub"}, "from the placement"},
		{"disabled by its condition", map[string]any{"sub": map[string]any{"enabled": false}}, []string{"ConfigMap//parent"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := localRequest(root)
			req.Values = tt.values
			objs := mustRender(t, newRenderer(t, Options{}), req)
			if diff := cmp.Diff(tt.wantIDs, ids(objs)); diff != "" {
				t.Fatalf("objects (-want +got):\n%s", diff)
			}
			if tt.greeting != nil {
				if got := objs[1].Object["data"].(map[string]any)["greeting"]; got != tt.greeting {
					t.Errorf("subchart greeting = %v, want %v", got, tt.greeting)
				}
			}
		})
	}
}

// A block scalar that ends a document keeps its final newline, as in what helm
// template prints and helm install applies: each document followed by a newline.
func TestRenderKeepsTheFinalNewlineOfABlockScalar(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: scripts\nversion: 1.0.0\n",
		"apps/x/chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: scripts}\ndata:\n" +
			"  first.sh: |\n    echo first\n  last.sh: |\n    echo last\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: stripped}\ndata:\n  last.sh: |-\n    echo last\n",
	}, nil)
	objs := mustRender(t, newRenderer(t, Options{}), localRequest(root))
	got := map[string]any{}
	for _, o := range objs {
		got[o.GetName()] = o.Object["data"]
	}
	want := map[string]any{
		"scripts":  map[string]any{"first.sh": "echo first\n", "last.sh": "echo last\n"},
		"stripped": map[string]any{"last.sh": "echo last"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}
