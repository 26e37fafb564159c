package kustomize

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/internal/testenv/golden"
)

// fleetExample is the example fleet of this repository, read-only.
func fleetExample(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "fleet-example"))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestBuildFleetExampleAPIBase(t *testing.T) {
	res, err := Build(context.Background(), Request{Root: fleetExample(t), Dir: "apps/api/base"})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "api-base.golden.yaml"), golden.YAML(t, res.Objects))
	wantInputs := []string{
		"apps/api/base/deployment.yaml",
		"apps/api/base/kustomization.yaml",
		"apps/api/base/service.yaml",
	}
	if diff := cmp.Diff(wantInputs, res.Inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
	if len(res.Symlinks) != 0 {
		t.Errorf("symlinks = %q, want none", res.Symlinks)
	}
}

// webBase is a base outside any app, shared by overlays.
var webBase = tree{
	"bases/web/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
`,
	"bases/web/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: ${IMAGE:=nginx:1.27}
          envFrom:
            - configMapRef: {name: web-config}
            - secretRef: {name: web-secret}
`,
	"bases/web/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
`,
}

// webOverlay is an app overlay of webBase with patches and generators.
var webOverlay = tree{
	"apps/web/overlay/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../../bases/web
namePrefix: prod-
labels:
  - pairs: {team: web}
patches:
  - path: replicas.yaml
  - target: {kind: Service}
    patch: |-
      - op: add
        path: /metadata/annotations
        value: {meridian.dev/tier: public}
configMapGenerator:
  - name: web-config
    files: [config/app.properties]
    literals: [LOG_LEVEL=info]
secretGenerator:
  - name: web-secret
    envs: [secret.env]
`,
	"apps/web/overlay/replicas.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS:=2}
`,
	"apps/web/overlay/config/app.properties": "greeting=hello\n",
	"apps/web/overlay/secret.env":            "API_TOKEN=test-token-not-a-secret\n",
}

func merge(trees ...tree) tree {
	out := tree{}
	for _, tr := range trees {
		for k, v := range tr {
			out[k] = v
		}
	}
	return out
}

func TestBuildOverlayWithBaseElsewhere(t *testing.T) {
	root := snapshot(t, merge(webBase, webOverlay))
	res, err := Build(context.Background(), Request{Root: root, Dir: "apps/web/overlay", Vars: map[string]string{"REPLICAS": "3"}})
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "web-overlay.golden.yaml"), golden.YAML(t, res.Objects))
	wantInputs := []string{
		"apps/web/overlay/config/app.properties",
		"apps/web/overlay/kustomization.yaml",
		"apps/web/overlay/replicas.yaml",
		"apps/web/overlay/secret.env",
		"bases/web/deployment.yaml",
		"bases/web/kustomization.yaml",
		"bases/web/service.yaml",
	}
	if diff := cmp.Diff(wantInputs, res.Inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
}

func TestBuildThroughSymlinksInsideTheSnapshot(t *testing.T) {
	root := snapshot(t, merge(webBase, tree{
		"apps/linked/kustomization.yaml": "resources: [base, extra.yaml]\n",
		"apps/linked/base":               symlinkPrefix + "../../bases/web",
		"apps/linked/extra.yaml":         symlinkPrefix + "../../shared/cm.yaml",
		"shared/cm.yaml":                 cmYAML,
	}))
	res, err := Build(context.Background(), Request{Root: root, Dir: "apps/linked"})
	if err != nil {
		t.Fatal(err)
	}
	got := struct{ Inputs, Symlinks []string }{res.Inputs, res.Symlinks}
	want := struct{ Inputs, Symlinks []string }{
		Inputs: []string{
			"apps/linked/kustomization.yaml",
			"bases/web/deployment.yaml",
			"bases/web/kustomization.yaml",
			"bases/web/service.yaml",
			"shared/cm.yaml",
		},
		Symlinks: []string{"apps/linked/base", "apps/linked/extra.yaml"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inputs and symlinks (-want +got):\n%s", diff)
	}
	if len(res.Objects) != 3 {
		t.Errorf("got %d objects, want the base's 2 and the linked ConfigMap", len(res.Objects))
	}
}

func TestBuildSubstitution(t *testing.T) {
	deployment := func(image string) tree {
		return tree{
			"app/kustomization.yaml": "resources: [deployment.yaml]\n",
			"app/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: ${NAMESPACE:=default}
spec:
  replicas: ${REPLICAS:=2}
  template:
    spec:
      containers:
        - name: web
          image: ` + image + "\n",
		}
	}
	tests := []struct {
		name      string
		tree      tree
		vars      map[string]string
		wantImage string
		wantNS    string
		wantRepl  int64
		// wantScript is the run.sh of a ConfigMap built instead of a Deployment.
		wantScript string
		wantErr    string
	}{
		{
			name:      "defaults fill unset variables",
			tree:      deployment("nginx:${TAG:=1.27}"),
			vars:      map[string]string{},
			wantImage: "nginx:1.27", wantNS: "default", wantRepl: 2,
		},
		{
			name:      "set variables win over defaults",
			tree:      deployment("nginx:${TAG:=1.27}"),
			vars:      map[string]string{"TAG": "1.28", "NAMESPACE": "trucking", "REPLICAS": "5"},
			wantImage: "nginx:1.28", wantNS: "trucking", wantRepl: 5,
		},
		{
			name:    "an unset variable without a default names the object and the variable",
			tree:    deployment("nginx:${TAG}"),
			vars:    map[string]string{"NAMESPACE": "trucking"},
			wantErr: "app/kustomization.yaml: Deployment/${NAMESPACE:=default}/web: variable TAG is not set; set it, or give a default with ${TAG:=value}",
		},
		{
			name:       "substitution disabled by annotation leaves references alone",
			tree:       tree{"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  run.sh: echo ${HOME}\n"},
			vars:       map[string]string{},
			wantScript: "echo ${HOME}",
		},
		{
			// An app that does not substitute gets what kustomize builds: a shell
			// variable is neither an error nor replaced by its default.
			name:       "without substitution a script's ${...} stay as written",
			tree:       tree{"app/kustomization.yaml": "resources: [cm.yaml]\n", "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\ndata:\n  run.sh: echo ${FRONTEND} ${STEPS:-6}\n"},
			wantScript: "echo ${FRONTEND} ${STEPS:-6}",
		},
		{
			name:    "an invalid variable name is refused",
			tree:    deployment("nginx"),
			vars:    map[string]string{"1TAG": "x"},
			wantErr: `app/kustomization.yaml: substitution variable "1TAG" is not a valid name; use letters, digits and underscores, not starting with a digit`,
		},
		{
			name:    "a value that breaks the YAML is reported without the value",
			tree:    deployment("${IMAGE}"),
			vars:    map[string]string{"IMAGE": "[unclosed-secret-value"},
			wantErr: "app/kustomization.yaml: Deployment/${NAMESPACE:=default}/web: the object is no longer valid YAML after variable substitution; quote the ${...} references whose values hold YAML syntax",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := snapshot(t, tt.tree)
			res, err := Build(context.Background(), Request{Root: root, Dir: "app", Vars: tt.vars})
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("got no error, want %q", tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				for _, v := range tt.vars {
					if strings.Contains(err.Error(), v) && len(v) > 2 {
						t.Errorf("error %q quotes a variable value", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			obj := res.Objects[0]
			if obj.GetKind() == "ConfigMap" {
				if got := obj.Object["data"].(map[string]any)["run.sh"]; got != tt.wantScript {
					t.Errorf("run.sh = %q, want it untouched: %q", got, tt.wantScript)
				}
				return
			}
			containers := obj.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
			got := struct {
				Image, NS string
				Replicas  any
			}{containers[0].(map[string]any)["image"].(string), obj.GetNamespace(), obj.Object["spec"].(map[string]any)["replicas"]}
			want := struct {
				Image, NS string
				Replicas  any
			}{tt.wantImage, tt.wantNS, tt.wantRepl}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("substituted object (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	files := merge(webBase, webOverlay)
	// Two checkouts of the same content at different places give the same bytes.
	var outputs [][]byte
	for _, root := range []string{snapshot(t, files), snapshot(t, files)} {
		for range 2 {
			res, err := Build(context.Background(), Request{Root: root, Dir: "apps/web/overlay"})
			if err != nil {
				t.Fatal(err)
			}
			outputs = append(outputs, golden.YAML(t, res.Objects))
		}
	}
	for i, out := range outputs[1:] {
		if !bytes.Equal(outputs[0], out) {
			t.Errorf("build %d differs from build 0:\n%s", i+1, cmp.Diff(string(outputs[0]), string(out)))
		}
	}
}

func TestBuildFailuresNameTheKustomization(t *testing.T) {
	tests := []struct {
		name    string
		tree    tree
		dir     string
		wantErr string
	}{
		{
			name:    "directory without a kustomization",
			tree:    tree{"app/deployment.yaml": "kind: Deployment\n"},
			dir:     "app",
			wantErr: "app: no kustomization file (kustomization.yaml, kustomization.yml, Kustomization); add a kustomization.yaml to it",
		},
		{
			name:    "base without a kustomization",
			tree:    tree{"app/kustomization.yaml": "resources: [../base]\n", "base/deployment.yaml": "kind: Deployment\n"},
			dir:     "app",
			wantErr: "app/kustomization.yaml: resource ../base: directory base has no kustomization file (kustomization.yaml, kustomization.yml, Kustomization); add a kustomization.yaml to it",
		},
		{
			name:    "missing directory",
			tree:    tree{"README.md": "x"},
			dir:     "apps/nope",
			wantErr: "apps/nope: no such directory in the repository; fix spec.kustomize.path",
		},
		{
			name:    "two kustomization files",
			tree:    tree{"app/kustomization.yaml": "resources: []\n", "app/kustomization.yml": "resources: []\n"},
			dir:     "app",
			wantErr: "app: more than one kustomization file (kustomization.yaml, kustomization.yml); keep only one",
		},
		{
			name:    "unknown field",
			tree:    tree{"app/kustomization.yaml": "resourcez: [a.yaml]\n"},
			dir:     "app",
			wantErr: `app/kustomization.yaml: invalid Kustomization: json: unknown field "resourcez"; fix the file (kustomize's reference lists the fields)`,
		},
		{
			name: "missing resource file, reported by kustomize with relative paths",
			tree: tree{"app/kustomization.yaml": "resources: [missing.yaml]\n"},
			dir:  "app",
			wantErr: "app/kustomization.yaml: kustomize build failed: accumulating resources: accumulation err='accumulating resources from 'missing.yaml': " +
				"read app/missing.yaml: file does not exist': must build at directory: not a valid directory: resolve app/missing.yaml: file does not exist; " +
				"fix the kustomization (kustomize build app in the repository shows the same)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := snapshot(t, tt.tree)
			_, err := Build(context.Background(), Request{Root: root, Dir: tt.dir})
			if err == nil {
				t.Fatalf("got no error, want %q", tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if errors.Is(err, ErrRefused) {
				t.Errorf("errors.Is(%v, ErrRefused) = true for a plain failure", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not an *Error", err)
			}
		})
	}
}

func TestBuildHonoursCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, Request{Root: fleetExample(t), Dir: "apps/api/base"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func BenchmarkBuild(b *testing.B) {
	root := snapshot(b, merge(webBase, webOverlay))
	req := Request{Root: root, Dir: "apps/web/overlay", Vars: map[string]string{"REPLICAS": "3"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBuildCustomSchemaDoesNotLeak builds a kustomization that names its own OpenAPI
// schema, which kustomize keeps process-wide, between builds of one that does not:
// those must come out as they would on their own.
func TestBuildCustomSchemaDoesNotLeak(t *testing.T) {
	widget := "apiVersion: example.io/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  parts:\n    - {name: a, size: 1}\n    - {name: b, size: 2}\n"
	patch := "apiVersion: example.io/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  parts:\n    - {name: b, size: 3}\n"
	root := snapshot(t, tree{
		"schema/kustomization.yaml": "resources: [widget.yaml]\nopenapi:\n  path: schema.json\npatches:\n  - path: patch.yaml\n",
		"schema/schema.json": `{"definitions": {"io.example.v1.Widget": {
  "type": "object",
  "x-kubernetes-group-version-kind": [{"group": "example.io", "kind": "Widget", "version": "v1"}],
  "properties": {"spec": {"type": "object", "properties": {"parts": {
    "type": "array", "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge",
    "items": {"type": "object", "properties": {"name": {"type": "string"}, "size": {"type": "integer"}}}}}}}}}}`,
		"schema/widget.yaml":       widget,
		"schema/patch.yaml":        patch,
		"plain/kustomization.yaml": "resources: [widget.yaml]\npatches:\n  - path: patch.yaml\n",
		"plain/widget.yaml":        widget,
		"plain/patch.yaml":         patch,
	})
	// Without a schema the patch replaces the list; with it, items merge by name
	// (kustomize puts the patched item first).
	replaced := []any{map[string]any{"name": "b", "size": int64(3)}}
	merged := []any{map[string]any{"name": "b", "size": int64(3)}, map[string]any{"name": "a", "size": int64(1)}}
	for i, step := range []struct {
		dir  string
		want []any
	}{{"plain", replaced}, {"schema", merged}, {"plain", replaced}, {"schema", merged}} {
		res, err := Build(context.Background(), Request{Root: root, Dir: step.dir})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(step.want, res.Objects[0].Object["spec"].(map[string]any)["parts"]); diff != "" {
			t.Errorf("build %d of %s: parts (-want +got):\n%s", i, step.dir, diff)
		}
	}
}

func TestBuildConcurrently(t *testing.T) {
	root := snapshot(t, merge(webBase, webOverlay))
	want, err := Build(context.Background(), Request{Root: root, Dir: "apps/web/overlay"})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes := golden.YAML(t, want.Objects)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			got, err := Build(context.Background(), Request{Root: root, Dir: "apps/web/overlay"})
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(wantBytes, golden.YAML(t, got.Objects)) || !slices.Equal(want.Inputs, got.Inputs) {
				errs <- errors.New("a concurrent build differs from a lone one")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
