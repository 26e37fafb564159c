package kustomize

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	fluxkustomize "github.com/fluxcd/pkg/kustomize"
	"github.com/google/go-cmp/cmp"
)

// outsideTree is what sits next to the snapshot, where no build may read.
var outsideTree = tree{
	"kustomization.yaml": "resources: [cm.yaml]\n",
	"cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\n",
	"secret.txt":         "outside-secret\n",
}

const cmYAML = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"

func TestBuildRefusals(t *testing.T) {
	tests := []struct {
		name string
		// tree is the snapshot; "OUTSIDE" in a symlink target or content is replaced
		// by the directory beside the snapshot that holds outsideTree.
		tree    tree
		dir     string
		wantErr string
	}{
		{
			name:    "remote base over https",
			tree:    tree{"app/kustomization.yaml": "resources:\n  - https://github.com/acme/deploy//base?ref=v1\n"},
			wantErr: "app/kustomization.yaml: remote resource https://github.com/acme/deploy//base?ref=v1 is not allowed; vendor it into the repository",
		},
		{
			name:    "remote base as a GitHub shorthand",
			tree:    tree{"app/kustomization.yaml": "resources:\n  - github.com/acme/deploy/base?ref=v1\n"},
			wantErr: "app/kustomization.yaml: remote resource github.com/acme/deploy/base?ref=v1 is not allowed; vendor it into the repository",
		},
		{
			name:    "remote base over scp-like git",
			tree:    tree{"app/kustomization.yaml": "bases:\n  - git@gitlab.example.com:acme/deploy.git//base\n"},
			wantErr: "app/kustomization.yaml: remote resource git@gitlab.example.com:acme/deploy.git//base is not allowed; vendor it into the repository",
		},
		{
			name:    "remote component",
			tree:    tree{"app/kustomization.yaml": "resources: [cm.yaml]\ncomponents:\n  - git::https://example.com/acme/components.git//tls\n", "app/cm.yaml": cmYAML},
			wantErr: "app/kustomization.yaml: remote component git::https://example.com/acme/components.git//tls is not allowed; vendor it into the repository",
		},
		{
			name:    "remote base in a nested base",
			tree:    tree{"app/kustomization.yaml": "resources: [../base]\n", "base/kustomization.yaml": "resources:\n  - http://example.com/all.yaml\n"},
			wantErr: "base/kustomization.yaml: remote resource http://example.com/all.yaml is not allowed; vendor it into the repository",
		},
		{
			name:    "remote patch file",
			tree:    tree{"app/kustomization.yaml": "resources: [cm.yaml]\npatches:\n  - path: https://example.com/patch.yaml\n", "app/cm.yaml": cmYAML},
			wantErr: "app/kustomization.yaml: remote patch https://example.com/patch.yaml is not allowed; vendor it into the repository",
		},
		{
			name:    "remote configMapGenerator file",
			tree:    tree{"app/kustomization.yaml": "configMapGenerator:\n  - name: c\n    files: [conf=https://example.com/app.conf]\n"},
			wantErr: "app/kustomization.yaml: remote file https://example.com/app.conf is not allowed; vendor it into the repository",
		},
		{
			name: "exec plugin as a generator",
			tree: tree{
				"app/kustomization.yaml": "generators: [vault.yaml]\n",
				"app/vault.yaml":         "apiVersion: example.com/v1\nkind: VaultSecretGenerator\nmetadata:\n  name: db\n",
			},
			wantErr: "app/kustomization.yaml: generator vault.yaml: example.com/v1 VaultSecretGenerator is an exec or container plugin, which is not allowed; use only Kustomize's built-in generators and transformers (apiVersion: builtin)",
		},
		{
			name: "container KRM function as an inline transformer",
			tree: tree{
				"app/kustomization.yaml": `resources: [cm.yaml]
transformers:
  - |
    apiVersion: example.com/v1
    kind: SetTeam
    metadata:
      name: team
      annotations:
        config.kubernetes.io/function: |
          container:
            image: example.com/set-team:v1
`,
				"app/cm.yaml": cmYAML,
			},
			wantErr: "app/kustomization.yaml: inline transformer: example.com/v1 SetTeam is a KRM function (config.kubernetes.io/function), which is not allowed; use only Kustomize's built-in generators and transformers (apiVersion: builtin)",
		},
		{
			name: "exec plugin inside a transformers kustomization",
			tree: tree{
				"app/kustomization.yaml":          "resources: [cm.yaml]\ntransformers: [../transformers]\n",
				"app/cm.yaml":                     cmYAML,
				"transformers/kustomization.yaml": "resources: [labels.yaml, sed.yaml]\n",
				"transformers/labels.yaml":        "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: l\nlabels: {a: b}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
				"transformers/sed.yaml":           "apiVersion: someteam.example.com/v1\nkind: SedTransformer\nmetadata:\n  name: s\n",
			},
			wantErr: "app/kustomization.yaml: transformer transformers/sed.yaml: someteam.example.com/v1 SedTransformer is an exec or container plugin, which is not allowed; use only Kustomize's built-in generators and transformers (apiVersion: builtin)",
		},
		{
			name: "patches inside a transformers kustomization",
			tree: tree{
				"app/kustomization.yaml":          "resources: [cm.yaml]\ntransformers: [../transformers]\n",
				"app/cm.yaml":                     cmYAML,
				"transformers/kustomization.yaml": "resources: [labels.yaml]\npatches:\n  - path: more.yaml\n",
				"transformers/labels.yaml":        "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: l\nlabels: {a: b}\n",
			},
			wantErr: "transformers/kustomization.yaml: a kustomization listed under transformers in app/kustomization.yaml may only list resources, since anything else could rewrite plugin configurations; move the rest into app/kustomization.yaml",
		},
		{
			name: "built-in patch transformer reading outside the snapshot",
			tree: tree{
				"app/kustomization.yaml": "resources: [cm.yaml]\ntransformers: [patch.yaml]\n",
				"app/cm.yaml":            cmYAML,
				"app/patch.yaml":         "apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: p\npath: ../../outside/cm.yaml\n",
			},
			wantErr: "app/kustomization.yaml: file ../../outside/cm.yaml leaves the snapshot root; keep every path inside the repository",
		},
		{
			name:    "helmCharts",
			tree:    tree{"app/kustomization.yaml": "helmCharts:\n  - name: podinfo\n    repo: https://stefanprodan.github.io/podinfo\n    version: 6.7.0\n    valuesInline: {replicaCount: 2}\n"},
			wantErr: "app/kustomization.yaml: helmCharts is not allowed: Kustomize would inflate a Helm chart by running helm; make the chart its own app with spec.helm instead",
		},
		{
			name:    "helmGlobals",
			tree:    tree{"app/kustomization.yaml": "resources: [cm.yaml]\nhelmGlobals:\n  chartHome: charts\n", "app/cm.yaml": cmYAML},
			wantErr: "app/kustomization.yaml: helmGlobals is not allowed: Kustomize would inflate a Helm chart by running helm; make the chart its own app with spec.helm instead",
		},
		{
			name: "helm inflation as a built-in generator",
			tree: tree{
				"app/kustomization.yaml": "generators: [helm.yaml]\n",
				"app/helm.yaml":          "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata:\n  name: h\nname: podinfo\nchartHome: charts\n",
			},
			wantErr: "app/kustomization.yaml: generator helm.yaml: builtin HelmChartInflationGenerator is not allowed: Kustomize would inflate a Helm chart by running helm; make the chart its own app with spec.helm instead",
		},
		{
			name:    "resource escaping with ..",
			tree:    tree{"apps/x/base/kustomization.yaml": "resources:\n  - ../../../../etc/passwd\n"},
			dir:     "apps/x/base",
			wantErr: "apps/x/base/kustomization.yaml: resource ../../../../etc/passwd leaves the snapshot root; keep every path inside the repository",
		},
		{
			name:    "base escaping with .. to a real kustomization",
			tree:    tree{"app/kustomization.yaml": "resources: [../../outside]\n"},
			wantErr: "app/kustomization.yaml: resource ../../outside leaves the snapshot root; keep every path inside the repository",
		},
		{
			name:    "symlinked base pointing outside",
			tree:    tree{"app/kustomization.yaml": "resources: [base]\n", "app/base": symlinkPrefix + "OUTSIDE"},
			wantErr: "app/kustomization.yaml: resource base leaves the snapshot root through the symlink app/base (-> OUTSIDE); replace the symlink with the files it points to",
		},
		{
			name:    "symlinked directory on the way to a file",
			tree:    tree{"app/kustomization.yaml": "resources: [vendor/cm.yaml]\n", "app/vendor": symlinkPrefix + "OUTSIDE"},
			wantErr: "app/kustomization.yaml: resource vendor/cm.yaml leaves the snapshot root through the symlink app/vendor (-> OUTSIDE); replace the symlink with the files it points to",
		},
		{
			name:    "symlinked file pointing outside, missing behind the link",
			tree:    tree{"app/kustomization.yaml": "resources: [vendor/missing.yaml]\n", "app/vendor": symlinkPrefix + "OUTSIDE"},
			wantErr: "app/kustomization.yaml: resource vendor/missing.yaml leaves the snapshot root through the symlink app/vendor (-> OUTSIDE); replace the symlink with the files it points to",
		},
		{
			name:    "absolute resource path",
			tree:    tree{"app/kustomization.yaml": "resources:\n  - /etc/passwd\n"},
			wantErr: "app/kustomization.yaml: resource /etc/passwd is an absolute path, which is not allowed; use a path relative to the kustomization's directory, inside the repository",
		},
		{
			name:    "configMapGenerator file from outside",
			tree:    tree{"app/kustomization.yaml": "configMapGenerator:\n  - name: c\n    files: [../../outside/secret.txt]\n"},
			wantErr: "app/kustomization.yaml: file ../../outside/secret.txt leaves the snapshot root; keep every path inside the repository",
		},
		{
			name:    "secretGenerator file through a symlink out",
			tree:    tree{"app/kustomization.yaml": "secretGenerator:\n  - name: s\n    files: [token=secret.txt]\n", "app/secret.txt": symlinkPrefix + "OUTSIDE/secret.txt"},
			wantErr: "app/kustomization.yaml: file secret.txt leaves the snapshot root through the symlink app/secret.txt (-> OUTSIDE/secret.txt); replace the symlink with the files it points to",
		},
		{
			name:    "secretGenerator env file by absolute path",
			tree:    tree{"app/kustomization.yaml": "secretGenerator:\n  - name: s\n    envs: [/etc/environment]\n"},
			wantErr: "app/kustomization.yaml: env file /etc/environment is an absolute path, which is not allowed; use a path relative to the kustomization's directory, inside the repository",
		},
		{
			name:    "strategic merge patch from outside",
			tree:    tree{"app/kustomization.yaml": "resources: [cm.yaml]\npatchesStrategicMerge:\n  - ../../outside/cm.yaml\n", "app/cm.yaml": cmYAML},
			wantErr: "app/kustomization.yaml: patch ../../outside/cm.yaml leaves the snapshot root; keep every path inside the repository",
		},
		{
			name:    "kustomization directory leaving the snapshot",
			tree:    tree{"README.md": "x"},
			dir:     "../outside",
			wantErr: "../outside: the kustomization directory must be a relative path inside the repository; fix spec.kustomize.path",
		},
		{
			name:    "kustomization directory that is a symlink out",
			tree:    tree{"apps/x": symlinkPrefix + "OUTSIDE"},
			dir:     "apps/x",
			wantErr: "apps/x: the kustomization directory leaves the snapshot root through the symlink apps/x (-> OUTSIDE); replace the symlink with the files it points to",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// parent/snapshot is the root; parent/outside holds outsideTree.
			parent := t.TempDir()
			root := filepath.Join(parent, "snapshot")
			outside := filepath.Join(parent, "outside")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			outsideTree.write(t, outside)
			files := tree{}
			for k, v := range tt.tree {
				files[k] = strings.ReplaceAll(v, "OUTSIDE", outside)
			}
			files.write(t, root)
			dir := tt.dir
			if dir == "" {
				dir = "app"
			}

			_, err := Build(context.Background(), Request{Root: root, Dir: dir})
			want := strings.ReplaceAll(tt.wantErr, "OUTSIDE", outside)
			if err == nil {
				t.Fatalf("got no error, want %q", want)
			}
			if diff := cmp.Diff(want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if !errors.Is(err, ErrRefused) {
				t.Errorf("errors.Is(err, ErrRefused) = false for %v", err)
			}
		})
	}
}

func TestBuildAllowsBuiltinPluginsAndFilesInside(t *testing.T) {
	root := snapshot(t, tree{
		"app/kustomization.yaml": `resources: [cm.yaml]
transformers:
  - labels.yaml
  - ../transformers
generators:
  - |
    apiVersion: builtin
    kind: ConfigMapGenerator
    metadata:
      name: generated
    files: [conf/app.conf]
`,
		"app/cm.yaml":                     cmYAML,
		"app/labels.yaml":                 "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: l\nlabels: {team: a}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
		"app/conf/app.conf":               "x=1\n",
		"transformers/kustomization.yaml": "resources: [annotations.yaml]\n",
		"transformers/annotations.yaml":   "apiVersion: builtin\nkind: AnnotationsTransformer\nmetadata:\n  name: a\nannotations: {owner: b}\nfieldSpecs: [{path: metadata/annotations, create: true}]\n",
	})
	res, err := Build(context.Background(), Request{Root: root, Dir: "app"})
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Name        string
		Labels      map[string]string
		Annotations map[string]string
	}
	var got []summary
	for _, obj := range res.Objects {
		got = append(got, summary{obj.GetName(), obj.GetLabels(), obj.GetAnnotations()})
	}
	want := []summary{
		{"cm", map[string]string{"team": "a"}, map[string]string{"owner": "b"}},
		{"generated-kgf8g5gdcm", map[string]string{"team": "a"}, map[string]string{"owner": "b"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	wantInputs := []string{
		"app/cm.yaml", "app/conf/app.conf", "app/kustomization.yaml", "app/labels.yaml",
		"transformers/annotations.yaml", "transformers/kustomization.yaml",
	}
	if diff := cmp.Diff(wantInputs, res.Inputs); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
}

// TestBuildNeverFetches points every field kustomize would fetch over HTTP at a real
// server on 127.0.0.1 and checks that Build refuses before any request is made. The
// control shows kustomize alone, on snapshotFS, does fetch: the policy walk is what
// keeps builds off the network.
func TestBuildNeverFetches(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, cmYAML)
	}))
	defer srv.Close()
	url := srv.URL + "/cm.yaml"

	kustomizations := map[string]string{
		"resource":            "resources: [" + url + "]\n",
		"patch":               "resources: [cm.yaml]\npatches:\n  - path: " + url + "\n",
		"strategic merge":     "resources: [cm.yaml]\npatchesStrategicMerge: [" + url + "]\n",
		"generator file":      "configMapGenerator:\n  - name: c\n    files: [" + url + "]\n",
		"generator env":       "secretGenerator:\n  - name: s\n    envs: [" + url + "]\n",
		"crd":                 "resources: [cm.yaml]\ncrds: [" + url + "]\n",
		"openapi":             "resources: [cm.yaml]\nopenapi:\n  path: " + url + "\n",
		"builtin transformer": "resources: [cm.yaml]\ntransformers:\n  - |\n    apiVersion: builtin\n    kind: PatchTransformer\n    metadata:\n      name: p\n    path: " + url + "\n",
	}
	for name, k := range kustomizations {
		t.Run(name, func(t *testing.T) {
			root := snapshot(t, tree{"app/kustomization.yaml": k, "app/cm.yaml": cmYAML})
			_, err := Build(context.Background(), Request{Root: root, Dir: "app"})
			if !errors.Is(err, ErrRefused) {
				t.Errorf("got %v, want a refusal", err)
			}
			if n := requests.Load(); n != 0 {
				t.Fatalf("the server got %d requests", n)
			}
		})
	}

	t.Run("control: kustomize alone fetches", func(t *testing.T) {
		root := snapshot(t, tree{"app/kustomization.yaml": kustomizations["resource"]})
		fsys, err := newSnapshotFS(root)
		if err != nil {
			t.Fatal(err)
		}
		defer fsys.Close()
		if _, err := fluxkustomize.Build(fsys, filepath.Join(root, "app")); err != nil {
			t.Fatal(err)
		}
		if requests.Load() == 0 {
			t.Error("kustomize made no request; this test no longer shows the policy walk is needed")
		}
	})
}
