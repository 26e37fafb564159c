package helm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
)

// goodChart renders one ConfigMap; the refusal cases break it one way each.
var goodChart = map[string]string{
	"apps/x/chart/Chart.yaml":        "apiVersion: v2\nname: good\nversion: 1.0.0\n",
	"apps/x/chart/values.yaml":       "queue:\n  url: amqp://queue\n",
	"apps/x/chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  url: {{ required \"queue.url is required\" .Values.queue.url | quote }}\n",
}

func TestRenderRefusals(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // the snapshot; nil means goodChart
		links   map[string]string
		outside map[string]string // files next to the snapshot, outside it
		change  func(*Request)
		wantErr string
	}{
		{
			name:    "chart path that climbs out of the repository",
			change:  func(r *Request) { r.Source.Chart = "../../../etc" },
			wantErr: "apps/x/app.yaml: chart path ../../../etc leaves the repository",
		},
		{
			name:    "absolute chart path",
			change:  func(r *Request) { r.Source.Chart = "/etc" },
			wantErr: "apps/x/app.yaml: chart path /etc is absolute; give the chart directory relative to app.yaml",
		},
		{
			name:    "chart directory is a symlink out of the repository",
			files:   map[string]string{"apps/x/app.yaml": "kind: App\n"},
			links:   map[string]string{"apps/x/chart": "../../../outside/chart"},
			outside: map[string]string{"chart/Chart.yaml": "apiVersion: v2\nname: outside\nversion: 1.0.0\n"},
			wantErr: "apps/x/app.yaml: chart path chart: apps/x/chart: symlink to ../../../outside/chart leaves the repository; replace it with the file itself or a relative link that stays inside",
		},
		{
			name:    "template is an absolute symlink",
			files:   goodChart,
			links:   map[string]string{"apps/x/chart/templates/passwd.yaml": "/etc/passwd"},
			wantErr: "apps/x/chart/templates/passwd.yaml: symlink to /etc/passwd leaves the repository; replace it with the file itself or a relative link that stays inside",
		},
		{
			name:    "templates directory is a symlink out of the repository",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/cm.yaml": ""}),
			links:   map[string]string{"apps/x/chart/templates": "../../../../outside/templates"},
			outside: map[string]string{"templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\n"},
			wantErr: "apps/x/chart/templates: symlink to ../../../../outside/templates leaves the repository; replace it with the file itself or a relative link that stays inside",
		},
		{
			name:    "symlink inside the repository to a symlink out of it",
			files:   goodChart,
			links:   map[string]string{"apps/x/chart/templates/a.yaml": "../../b.yaml", "apps/x/b.yaml": "../../../outside/b.yaml"},
			outside: map[string]string{"b.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: stolen}\n"},
			wantErr: "apps/x/b.yaml: symlink to ../../../outside/b.yaml leaves the repository; replace it with the file itself or a relative link that stays inside",
		},
		{
			name:    ".helmignore is a symlink out of the repository",
			files:   goodChart,
			links:   map[string]string{"apps/x/chart/.helmignore": "/etc/hostname"},
			wantErr: "apps/x/chart/.helmignore: symlink to /etc/hostname leaves the repository; replace it with the file itself or a relative link that stays inside",
		},
		{
			name:    "symlink loop",
			files:   goodChart,
			links:   map[string]string{"apps/x/chart/templates/again": "."},
			wantErr: "apps/x/chart/templates/again: symlink loop back to apps/x/chart/templates; remove the link",
		},
		{
			name:    "missing chart directory",
			files:   goodChart,
			change:  func(r *Request) { r.Source.Chart = "charts/missing" },
			wantErr: "apps/x/app.yaml: chart path charts/missing: directory apps/x/charts/missing does not exist",
		},
		{
			name:    "chart path names a file",
			files:   goodChart,
			change:  func(r *Request) { r.Source.Chart = "chart/Chart.yaml" },
			wantErr: "apps/x/app.yaml: chart path chart/Chart.yaml is not a directory; point helm.chart at the directory holding Chart.yaml",
		},
		{
			name:    "missing Chart.yaml",
			files:   with(goodChart, map[string]string{"apps/x/chart/Chart.yaml": ""}),
			wantErr: "apps/x/chart/Chart.yaml: no such file; a chart directory needs a Chart.yaml (helm create writes one), or point helm.chart in apps/x/app.yaml at the chart directory",
		},
		{
			name:    "Chart.yaml without a version",
			files:   with(goodChart, map[string]string{"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: good\n"}),
			wantErr: "apps/x/chart/Chart.yaml: validation: chart.metadata.version is required",
		},
		{
			name:    "values.yaml that is not YAML",
			files:   with(goodChart, map[string]string{"apps/x/chart/values.yaml": "queue: [\n"}),
			wantErr: "apps/x/chart/values.yaml: error converting YAML to JSON: yaml: line 1: did not find expected node content",
		},
		{
			name:    "Chart.yaml that is not YAML",
			files:   with(goodChart, map[string]string{"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: [good\n"}),
			wantErr: "apps/x/chart/Chart.yaml: error converting YAML to JSON: yaml: line 2: did not find expected ',' or ']'",
		},
		{
			name:    "Chart.lock of the wrong shape",
			files:   with(goodChart, map[string]string{"apps/x/chart/Chart.lock": "dependencies: {redis: 17}\n"}),
			wantErr: "apps/x/chart/Chart.lock: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal object into Go struct field .dependencies of type []*chart.Dependency",
		},
		{
			// Located at the chart only: the subchart's files are not parsed again.
			name: "subchart values.yaml that is not YAML",
			files: with(goodChart, map[string]string{
				"apps/x/chart/charts/sub/Chart.yaml":  "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
				"apps/x/chart/charts/sub/values.yaml": "a: [\n",
			}),
			wantErr: "apps/x/chart: error unpacking subchart sub in good: cannot load values.yaml: error converting YAML to JSON: yaml: line 1: did not find expected node content",
		},
		{
			name: "dependency not vendored",
			files: with(goodChart, map[string]string{
				"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: good\nversion: 1.0.0\ndependencies:\n  - name: redis\n    version: 17.3.1\n    repository: https://charts.example.com\n",
			}),
			wantErr: "apps/x/chart/Chart.yaml: dependency redis 17.3.1 is not vendored under apps/x/chart/charts/; vendor it with helm dependency build",
		},
		{
			name: "two dependencies not vendored, one present",
			files: with(goodChart, map[string]string{
				"apps/x/chart/Chart.yaml":               "apiVersion: v2\nname: good\nversion: 1.0.0\ndependencies:\n  - {name: redis, version: 17.3.1}\n  - {name: common, version: 2.0.0}\n  - {name: postgresql, version: ^12}\n",
				"apps/x/chart/charts/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 2.0.0\n",
			}),
			wantErr: "apps/x/chart/Chart.yaml: dependencies redis 17.3.1, postgresql ^12 are not vendored under apps/x/chart/charts/; vendor them with helm dependency build",
		},
		{
			name: "dependency of a vendored subchart not vendored",
			files: with(goodChart, map[string]string{
				"apps/x/chart/Chart.yaml":               "apiVersion: v2\nname: good\nversion: 1.0.0\ndependencies:\n  - {name: common, version: 2.0.0}\n",
				"apps/x/chart/charts/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 2.0.0\ndependencies:\n  - {name: util, version: 1.0.0}\n",
			}),
			wantErr: "apps/x/chart/charts/common/Chart.yaml: dependency util 1.0.0 is not vendored under apps/x/chart/charts/common/charts/; vendor it with helm dependency build",
		},
		{
			name:    "template renders invalid YAML",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n   labels: {}\n"}),
			wantErr: "apps/x/chart/templates/bad.yaml: rendered document 1 is not valid YAML: yaml: line 5: mapping values are not allowed in this context; render the chart locally to see it",
		},
		{
			name:    "second document of a template is invalid YAML",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: [\n"}),
			wantErr: "apps/x/chart/templates/bad.yaml: rendered document 2 is not valid YAML: yaml: line 1: did not find expected node content; render the chart locally to see it",
		},
		{
			name:    "required value missing",
			files:   goodChart,
			change:  func(r *Request) { r.Values = map[string]any{"queue": map[string]any{"url": nil}} },
			wantErr: "apps/x/chart/templates/cm.yaml:6:10: queue.url is required",
		},
		{
			name:    "template fails at run time",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.missing.name }}\n"}),
			wantErr: "apps/x/chart/templates/cm.yaml:4:18: at <.Values.missing.name>: nil pointer evaluating interface {}.name",
		},
		{
			name:    "template does not parse",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/cm.yaml": "apiVersion: v1\n{{ nosuchfunction }}\n"}),
			wantErr: "apps/x/chart/templates/cm.yaml:2: function \"nosuchfunction\" not defined",
		},
		{
			name: "helper template fails: Helm reports where it was included",
			files: with(goodChart, map[string]string{
				"apps/x/chart/templates/_helpers.tpl": "{{- define \"good.name\" -}}\n{{ fail \"name is not set\" }}\n{{- end }}\n",
				"apps/x/chart/templates/cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"good.name\" . }}\n",
			}),
			wantErr: "apps/x/chart/templates/cm.yaml:4:11: name is not set",
		},
		{
			name: "subchart template fails",
			files: with(goodChart, map[string]string{
				"apps/x/chart/Chart.yaml":                  "apiVersion: v2\nname: good\nversion: 1.0.0\ndependencies:\n  - {name: sub, version: 1.0.0}\n",
				"apps/x/chart/charts/sub/Chart.yaml":       "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
				"apps/x/chart/charts/sub/templates/a.yaml": "{{ required \"sub needs a value\" .Values.missing }}\n",
			}),
			wantErr: "apps/x/chart/charts/sub/templates/a.yaml:1:3: sub needs a value",
		},
		{
			name:    "document that is not a mapping",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/list.yaml": "- a\n- b\n"}),
			wantErr: "apps/x/chart/templates/list.yaml: rendered document 1 is not a Kubernetes object (a mapping with apiVersion, kind and metadata)",
		},
		{
			name:    "object without kind",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/nokind.yaml": "apiVersion: v1\nmetadata: {name: a}\n"}),
			wantErr: "apps/x/chart/templates/nokind.yaml: rendered document 1: no kind",
		},
		{
			name:    "object without apiVersion",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/noapi.yaml": "kind: ConfigMap\nmetadata: {name: a}\n"}),
			wantErr: "apps/x/chart/templates/noapi.yaml: rendered document 1: no apiVersion",
		},
		{
			name:    "object without name",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/noname.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n"}),
			wantErr: "apps/x/chart/templates/noname.yaml: rendered document 1: ConfigMap has no metadata.name",
		},
		{
			name:    "object rendered twice",
			files:   with(goodChart, map[string]string{"apps/x/chart/templates/again.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n"}),
			wantErr: "apps/x/chart/templates/cm.yaml: renders ConfigMap/good, which apps/x/chart/templates/again.yaml renders too; an object may be rendered once",
		},
		{
			name:    "chart made for other Kubernetes versions",
			files:   with(goodChart, map[string]string{"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: good\nversion: 1.0.0\nkubeVersion: \"<1.30.0-0\"\n"}),
			change:  func(r *Request) { r.KubeVersion = "1.37.2" },
			wantErr: "apps/x/chart/Chart.yaml: chart requires kubeVersion <1.30.0-0, which Kubernetes v1.37.2 does not satisfy; pin a chart version made for this cluster",
		},
		{
			name:    "library chart",
			files:   with(goodChart, map[string]string{"apps/x/chart/Chart.yaml": "apiVersion: v2\nname: good\nversion: 1.0.0\ntype: library\n"}),
			wantErr: "apps/x/chart/Chart.yaml: type is library, and a library chart renders nothing on its own; point apps/x/app.yaml at an application chart",
		},
		{
			name: "values against the chart's schema",
			files: with(goodChart, map[string]string{
				"apps/x/chart/values.schema.json": `{"type": "object", "properties": {"replicas": {"type": "integer"}}}`,
			}),
			change:  func(r *Request) { r.Values = map[string]any{"replicas": "three"} },
			wantErr: "apps/x/chart: values don't meet the specifications of the schema(s) in the following chart(s):\ngood:\n- at '/replicas': got string, want integer\n",
		},
		{
			name:    "Kubernetes version that is not a version",
			files:   goodChart,
			change:  func(r *Request) { r.KubeVersion = "latest" },
			wantErr: `apps/x/app.yaml: Kubernetes version "latest": could not parse "latest" as version; give it as major.minor.patch, e.g. 1.37.2`,
		},
		{
			name:    "invalid release name",
			files:   goodChart,
			change:  func(r *Request) { r.ReleaseName = "Web_App" },
			wantErr: `apps/x/app.yaml: release name "Web_App": invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53`,
		},
		{
			name:    "no namespace",
			files:   goodChart,
			change:  func(r *Request) { r.Namespace = "" },
			wantErr: "apps/x/app.yaml: no namespace to render release x into",
		},
		{
			name:    "both chart and repository",
			files:   goodChart,
			change:  func(r *Request) { r.Source.Repository = "https://charts.example.com" },
			wantErr: "apps/x/app.yaml: helm sets both chart and repository; set one",
		},
		{
			name:    "neither chart nor repository",
			files:   goodChart,
			change:  func(r *Request) { r.Source = fleet.HelmSource{} },
			wantErr: "apps/x/app.yaml: helm sets neither chart nor repository; set one",
		},
		{
			name:  "repository without a pinned version",
			files: goodChart,
			change: func(r *Request) {
				r.Source = fleet.HelmSource{Repository: "https://charts.example.com", Name: "podinfo"}
			},
			wantErr: "apps/x/app.yaml: helm.repository needs helm.name and helm.version to pin the chart",
		},
		{
			name:  "repository URL with credentials",
			files: goodChart,
			change: func(r *Request) {
				r.Source = fleet.HelmSource{Repository: "https://bot:tok3n@charts.example.com", Name: "podinfo", Version: "1.0.0"}
			},
			wantErr: "apps/x/app.yaml: helm.repository has credentials in its URL; remove them from the repository and give them to Meridian's configuration",
		},
		{
			name:  "repository that is neither HTTP nor OCI",
			files: goodChart,
			change: func(r *Request) {
				r.Source = fleet.HelmSource{Repository: "ftp://charts.example.com", Name: "podinfo", Version: "1.0.0"}
			},
			wantErr: "apps/x/app.yaml: chart podinfo 1.0.0 from ftp://charts.example.com: repository must be an http://, https:// or oci:// URL",
		},
		{
			name:    "relative snapshot root",
			files:   goodChart,
			change:  func(r *Request) { r.Root = "fleet" },
			wantErr: `apps/x/app.yaml: snapshot root "fleet" is not an absolute path`,
		},
		{
			name:    "app directory outside the repository",
			files:   goodChart,
			change:  func(r *Request) { r.AppDir = "../apps/x" },
			wantErr: `../apps/x/app.yaml: app directory "../apps/x" is not inside the repository`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "repo")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			files := tt.files
			if files == nil {
				files = goodChart
			}
			writeTree(t, root, files, tt.links)
			writeTree(t, filepath.Join(dir, "outside"), tt.outside, nil)
			req := localRequest(root)
			if tt.change != nil {
				tt.change(&req)
			}
			objs, err := newRenderer(t, Options{}).Render(context.Background(), req)
			if diff := cmp.Diff(tt.wantErr, errText(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if objs != nil {
				t.Errorf("refused render returned %d objects", len(objs))
			}
		})
	}
}

func TestRenderGoodChartRenders(t *testing.T) {
	// The refusals above each break this chart; make sure it renders unbroken.
	root := t.TempDir()
	writeTree(t, root, goodChart, nil)
	objs := mustRender(t, newRenderer(t, Options{}), localRequest(root))
	if diff := cmp.Diff([]string{"ConfigMap//good"}, ids(objs)); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
}

func TestRenderErrorsDoNotQuoteRenderedValues(t *testing.T) {
	const secret = "hunter2-do-not-print"
	tests := map[string]string{
		"invalid YAML": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: {{ .Values.password }}\n   oops: [\n",
		"no kind":      "apiVersion: v1\nmetadata: {name: s}\nstringData: {password: {{ .Values.password | quote }}}\n",
		"not a map":    "- {{ .Values.password }}\n",
		"duplicate":    "apiVersion: v1\nkind: Secret\nmetadata: {name: good}\nstringData: {password: {{ .Values.password | quote }}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: good}\n",
		"bad list":     "apiVersion: v1\nkind: List\nitems:\n  - {{ .Values.password | quote }}\n",
	}
	for name, tmpl := range tests {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, with(goodChart, map[string]string{"apps/x/chart/templates/secret.yaml": tmpl}), nil)
			req := localRequest(root)
			req.Values = map[string]any{"password": secret}
			_, err := newRenderer(t, Options{}).Render(context.Background(), req)
			if err == nil {
				t.Fatal("render succeeded; want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the secret value: %v", err)
			}
		})
	}
}
