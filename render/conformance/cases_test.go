package conformance

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// tenant is the tenant every app of the suite's fleet belongs to: its namespace
// is the release namespace of every chart and the namespace of every tree.
const tenant = "conformance"

// source is public content in a Go module: the directory Dir of Module at Version.
// An empty Version is the version Meridian's go.mod requires.
type source struct {
	Module, Version, Dir string
}

// chartCase is a public Helm chart, rendered as a tenant app by Meridian and by
// helm template with the same release name (the app's), namespace, Kubernetes
// version and values.
type chartCase struct {
	// name is the app's name, and so the release name.
	name string
	src  source
	// covers says which of Helm's features the chart exercises.
	covers string
	// values are given to both, as the App's values and as helm's --values.
	values string
	// allow lists the cluster-scoped kinds the App allows.
	allow []string
	// prepare, when set, changes the chart's copy before either renders it.
	prepare func(t *testing.T, chartDir string)
	// refused, when set, is what Meridian's render error must hold instead of
	// objects: the chart asks for something a tenant's app may not do.
	refused []string
}

// treeCase is a public Kustomize tree, built by Meridian and by kustomize build.
type treeCase struct {
	// name is the app's name.
	name string
	// src is copied to the app's directory as tree/.
	src    source
	covers string
	// overlay, when set, is the kustomization.yaml of the app's overlay/, which
	// builds the tree into the tenant's namespace; without it the app is tree/.
	overlay string
	allow   []string
}

// Module versions of the public content, pinned.
var (
	certManager   = source{Module: "github.com/cert-manager/cert-manager", Version: "v1.21.2"}
	externalDNS   = source{Module: "sigs.k8s.io/external-dns", Version: "v0.23.0"}
	metricsServer = source{Module: "sigs.k8s.io/metrics-server", Version: "v0.8.1"}
	gatekeeper    = source{Module: "github.com/open-policy-agent/gatekeeper/v3", Version: "v3.23.1"}
	kyverno       = source{Module: "github.com/kyverno/kyverno", Version: "v1.19.1"}
	kwok          = source{Module: "sigs.k8s.io/kwok", Version: "v0.8.0"}
	sourceCtl     = source{Module: "github.com/fluxcd/source-controller", Version: "v1.10.1"}
	helmModule    = source{Module: "helm.sh/helm/v3"} // its own test charts, at the version Meridian uses
)

func (s source) at(dir string) source { s.Dir = dir; return s }

// clusterScoped is what the charts and trees install besides namespaced objects.
var clusterScoped = []string{"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
	"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "FlowSchema"}

var charts = []chartCase{{
	name:   "cert-manager",
	src:    certManager.at("deploy/charts/cert-manager"),
	covers: "values.schema.json with additionalProperties false; post-install hooks (the startupapicheck Job, its ServiceAccount, Role and RoleBinding); CRDs from templates",
	// Leader election defaults to kube-system, which a tenant's app may not write.
	values: "global:\n  leaderElection:\n    namespace: " + tenant + "\ncrds:\n  enabled: true\nreplicaCount: 2\n",
	allow:  clusterScoped,
}, {
	name:   "external-dns",
	src:    externalDNS.at("charts/external-dns"),
	covers: "values.schema.json (the chart refuses its own defaults: policy must be set); CRDs from crds/",
	values: "policy: sync\nprovider:\n  name: aws\ndomainFilters: [example.com]\ntxtOwnerId: " + tenant + "\n",
	allow:  clusterScoped,
}, {
	name:   "gatekeeper",
	src:    gatekeeper.at("charts/gatekeeper"),
	covers: "pre-install, post-install, post-upgrade and pre-delete hooks; CRDs from crds/; .Capabilities.KubeVersion and .Capabilities.APIVersions",
	values: "postUpgrade:\n  labelNamespace:\n    enabled: true\npreUninstall:\n  deleteWebhookConfigurations:\n    enabled: true\nreplicas: 2\n",
	allow:  clusterScoped,
}, {
	name:   "kyverno",
	src:    kyverno.at("charts/kyverno"),
	covers: "subcharts (crds, grafana) and their conditions; lookup; .Capabilities.APIVersions; .Files.Glob; post-upgrade, pre-delete and test hooks",
	values: "grafana:\n  enabled: true\nadmissionController:\n  replicas: 3\n",
	allow:  clusterScoped,
	// The chart also depends on three charts from remote repositories that its
	// module does not vendor; helm template refuses a chart whose dependencies
	// are missing, as Meridian does. They are dropped from Chart.yaml here, as a
	// fleet repository that vendors the chart without them would.
	prepare: dropRemoteDependencies,
}, {
	name:   "kwok",
	src:    kwok.at("charts/kwok"),
	covers: "a plain application chart: Deployment, Service, RBAC, a FlowSchema",
	allow:  clusterScoped,
}, {
	name:   "library",
	src:    helmModule.at("cmd/helm/testdata/testcharts/chart-with-template-lib-dep"),
	covers: "a library chart (common) as a subchart directory, whose templates the chart includes",
}, {
	name:   "library-archive",
	src:    helmModule.at("cmd/helm/testdata/testcharts/chart-with-lib-dep"),
	covers: "a library chart vendored as an archive (charts/common-0.0.5.tgz)",
}, {
	name:    "metrics-server",
	src:     metricsServer.at("charts/metrics-server"),
	covers:  "a RoleBinding in kube-system, which a tenant's app may not write: Meridian refuses the chart",
	allow:   clusterScoped,
	refused: []string{"RoleBinding/kube-system/metrics-server-auth-reader: ", `the object asks for namespace "kube-system"`, `tenant's namespace "` + tenant + `"`},
}}

// overlay is a tenant's overlay over a tree that names its own namespace: it
// builds the tree into the tenant's namespace and leaves out the Namespace
// object the tree creates, which the tenant's namespace unit already is.
func overlay(base string) string {
	return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: " + tenant + "\nresources:\n  - ../tree/" + base + "\n" +
		"patches:\n  - target: {kind: Namespace}\n    patch: |\n      $patch: delete\n      apiVersion: v1\n      kind: Namespace\n      metadata:\n        name: any\n"
}

var trees = []treeCase{{
	name:    "source-controller",
	src:     sourceCtl.at("config"),
	covers:  "a kubebuilder config tree: bases of bases, namePrefix on RBAC, images, CRDs",
	overlay: overlay("default"),
	allow:   clusterScoped,
}, {
	name:    "gatekeeper-config",
	src:     gatekeeper.at("config"),
	covers:  "commonLabels, namePrefix, patchesStrategicMerge, patchesJson6902, configurations (kustomizeconfig.yaml: name and namespace references in webhooks)",
	overlay: overlay("default"),
	allow:   clusterScoped,
}, {
	name:    "kwok-config",
	src:     kwok.at("kustomize"),
	covers:  "configMapGenerator with a namespace, labels with includeSelectors, CRDs, a FlowSchema",
	overlay: overlay("kwok"),
	allow:   clusterScoped,
}, {
	name:    "external-dns-config",
	src:     externalDNS.at("kustomize"),
	covers:  "images with newTag over plain manifests, one in namespace default",
	overlay: overlay("."),
	allow:   clusterScoped,
}}

// dropRemoteDependencies removes from a chart's Chart.yaml the dependencies that
// come from a repository and are not in its charts/ directory.
func dropRemoteDependencies(t *testing.T, chartDir string) {
	t.Helper()
	file := filepath.Join(chartDir, "Chart.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := yaml.Unmarshal(data, &meta); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	deps, _ := meta["dependencies"].([]any)
	kept := slices.DeleteFunc(slices.Clone(deps), func(d any) bool {
		repo, _ := d.(map[string]any)["repository"].(string)
		return strings.Contains(repo, "://")
	})
	if len(kept) == len(deps) {
		t.Fatalf("%s: no dependency from a repository to drop; the chart changed, review its case", file)
	}
	meta["dependencies"] = kept
	if data, err = yaml.Marshal(meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
