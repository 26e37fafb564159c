package deploy

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/kube"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/config"
	"meridian.dev/meridian/internal/testenv/testbed"
)

const chartDir = "meridian"

// values are what a platform team sets: the repository, and Secrets by name.
func values() map[string]any {
	return map[string]any{
		"config": map[string]any{
			"repository": map[string]any{
				"url":          "https://git.example.com/platform/fleet.git",
				"branch":       "main",
				"passwordFile": "/etc/meridian/git/password",
				"usernameFile": "/etc/meridian/git/username",
			},
			"decryption": map[string]any{"keyFiles": []any{"/etc/meridian/sops/age.txt"}},
			// The chart's defaults (two replicas, ha) keep Route53 records.
			"route53": map[string]any{"region": "us-east-1"},
		},
		"secrets": map[string]any{"git": "meridian-git", "sops": "meridian-sops", "kubeconfig": "meridian-regions"},
	}
}

// render templates the chart as `helm template` does for a release "meridian" in
// meridian-system, with the API versions given; strict refuses any reference to
// a value that does not exist.
func render(t *testing.T, vals map[string]any, strict bool, apiVersions ...string) (string, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(caps.APIVersions, apiVersions...)
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "meridian", Namespace: "meridian-system", IsInstall: true}, caps)
	if err != nil {
		return "", err
	}
	files, err := engine.Engine{Strict: strict}.Render(ch, rv)
	if err != nil {
		return "", err
	}
	// Kinds in the order `helm install` creates them: the ServiceAccount before
	// the Deployment whose pods use it.
	_, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return "", err
	}
	var docs []string
	for _, m := range manifests {
		if doc := strings.TrimSpace(m.Content); doc != "" {
			docs = append(docs, doc)
		}
	}
	return strings.Join(docs, "\n---\n") + "\n", nil
}

// TestLint is what `helm lint --strict` checks, through the SDK: Chart.yaml is
// valid, the templates render with no reference to a missing value, and every
// document is a Kubernetes object with apiVersion, kind and a name. (The install
// test adds the apiserver's own validation of every object.)
func TestLint(t *testing.T) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Validate(); err != nil {
		t.Errorf("Chart.yaml: %v", err)
	}
	manifest, err := render(t, values(), true)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var obj struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.UnmarshalStrict([]byte(doc), &obj, yaml.DisallowUnknownFields); err != nil {
			// Unknown fields are the objects' own; only the shape is checked here.
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Errorf("not YAML: %v\n%s", err, doc)
				continue
			}
		}
		if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
			t.Errorf("a document without apiVersion, kind or name:\n%s", doc)
		}
		kinds[obj.Kind] = true
	}
	want := []string{"ConfigMap", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"}
	if got := slices.Sorted(maps.Keys(kinds)); !slices.Equal(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
}

// TestTemplate checks what the chart refuses, that the ServiceMonitor appears
// only when asked for and its CRD exists, and that single-replica mode recreates
// the pod instead of rolling it.
func TestTemplate(t *testing.T) {
	tests := []struct {
		name        string
		set         func(map[string]any)
		apiVersions []string
		want        []string
		refused     string
	}{
		{name: "no repository", set: func(v map[string]any) { delete(v, "config") },
			refused: "config.repository.url: required"},
		{name: "replicas without ha", set: func(v map[string]any) { v["ha"] = map[string]any{"enabled": false} },
			refused: "replicaCount: more than one replica needs ha.enabled"},
		{name: "route53 with ha: the replicas share placement health in ConfigMaps", set: func(map[string]any) {},
			want: []string{"resources: [leases]", "resources: [configmaps]", "route53:"}},
		{name: "image digest", set: func(v map[string]any) {
			v["image"] = map[string]any{"repository": "registry.example.com/platform/meridian", "tag": "v1.4.0", "digest": "sha256:" + strings.Repeat("0a", 32)}
		},
			want: []string{`image: "registry.example.com/platform/meridian:v1.4.0@sha256:0a0a`}},
		{name: "not a digest", set: func(v map[string]any) {
			v["image"] = map[string]any{"digest": "v1.4.0"}
		},
			refused: `image.digest: "v1.4.0" is not a digest`},
		{name: "service monitor without its CRD", set: func(v map[string]any) { v["serviceMonitor"] = map[string]any{"enabled": true} },
			refused: "serviceMonitor.enabled: the ServiceMonitor CRD (monitoring.coreos.com/v1) is not installed"},
		{name: "service monitor", set: func(v map[string]any) { v["serviceMonitor"] = map[string]any{"enabled": true} },
			apiVersions: []string{"monitoring.coreos.com/v1/ServiceMonitor"},
			want:        []string{"kind: ServiceMonitor", "path: /metrics"}},
		{name: "single replica", set: func(v map[string]any) { v["replicaCount"] = 1; v["ha"] = map[string]any{"enabled": false} },
			want: []string{"type: Recreate", "automountServiceAccountToken: false"}},
		{name: "region Secrets", set: func(v map[string]any) {
			v["replicaCount"] = 1
			v["ha"] = map[string]any{"enabled": false}
			v["regionSecrets"] = []any{"region-kubeconfigs"}
		},
			want: []string{"name: meridian-region-secrets", "resources: [secrets]", `resourceNames: ["region-kubeconfigs"]`, "verbs: [get]", "automountServiceAccountToken: true"}},
		{name: "history ConfigMap: its namespace grants it, by name", set: func(v map[string]any) {
			v["replicaCount"] = 1
			v["ha"] = map[string]any{"enabled": false}
			v["config"].(map[string]any)["management"] = map[string]any{"historyConfigMap": "meridian-system/meridian-status-history"}
		},
			want: []string{"name: meridian-status-history\n  namespace: meridian-system", "resources: [configmaps]\n    resourceNames: [\"meridian-status-history\"]\n    verbs: [get, update]",
				"verbs: [create]", "name: meridian-status-history\n  namespace: meridian-system\n  labels:", "kind: RoleBinding", "automountServiceAccountToken: true"}},
		{name: "history ConfigMap not namespace/name", set: func(v map[string]any) {
			v["config"].(map[string]any)["management"] = map[string]any{"historyConfigMap": "meridian-status-history"}
		},
			refused: `config.management.historyConfigMap: "meridian-status-history" is not namespace/name`},
		{name: "ha", set: func(map[string]any) {},
			want: []string{"kind: Role\n", "resources: [leases]", "kind: PodDisruptionBudget", "maxUnavailable: 0", "readOnlyRootFilesystem: true", "runAsNonRoot: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := values()
			tt.set(v)
			manifest, err := render(t, v, true, tt.apiVersions...)
			if tt.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tt.refused) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(manifest, w) {
					t.Errorf("manifest lacks %q", w)
				}
			}
			if strings.Contains(manifest, "kind: ServiceMonitor") != slicesContains(tt.apiVersions, "monitoring.coreos.com/v1/ServiceMonitor") {
				t.Errorf("ServiceMonitor rendered = %v with API versions %v", strings.Contains(manifest, "kind: ServiceMonitor"), tt.apiVersions)
			}
		})
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestInstall installs the chart with Helm's install action into a testbed region whose
// pods are run by kwok, and checks its objects, that the configuration it writes
// is one the daemon loads, that no Secret's content reaches the release, and that
// the Deployment becomes available.
func TestInstall(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1, Workloads: true})
	region := tb.Regions[0]
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(region.Config)
	const ns = "meridian-system"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The Secrets exist before the release and are only referenced by it.
	secretValues := map[string]map[string]string{
		"meridian-git":     {"username": "fleet-reader-7Hq2", "password": "glpat-9Qe7vXw2LmTzR4kA8sNd"},
		"meridian-sops":    {"age.txt": "AGE-SECRET-KEY-1QXZ7F3K9M2V8T6R4P0L5J7H3G1D9S8A6F4D2S0A8F6G4H2J0K8L6"},
		"meridian-regions": {"kubeconfig": "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {token: kz8Yt3Rw1Qv6Bn2Mx4}}]\n"},
	}
	for name, data := range secretValues {
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	vals := values()
	vals["regionSecrets"] = []any{"region-kubeconfigs"}
	start := time.Now()
	rel := helmInstall(t, region, ns, vals)
	for _, data := range secretValues {
		for key, v := range data {
			if strings.Contains(rel.Manifest, v) {
				t.Errorf("the release's manifest shows the value of Secret key %s", key)
			}
		}
	}
	t.Logf("installed; ready after %s", time.Since(start).Round(time.Millisecond))

	// Helm's wait may return as the second replica becomes ready, before the
	// Deployment's status counts it available.
	d := waitAvailable(t, cs, ns, "meridian", "2/2")
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("probes: readiness %+v, liveness %+v", c.ReadinessProbe, c.LivenessProbe)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v", sc)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod security context %+v", psc)
	}
	mounted := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			mounted[v.Secret.SecretName] = v.Name
		}
	}
	for name := range secretValues {
		if mounted[name] == "" {
			t.Errorf("Secret %s not mounted; volumes %v", name, mounted)
		}
	}

	sa, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "meridian", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("pod's service account %q, want %q", pod.ServiceAccountName, sa.Name)
	}
	role, err := cs.RbacV1().Roles(ns).Get(ctx, "meridian", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !allows(role.Rules, "coordination.k8s.io", "leases", "update") || !allows(role.Rules, "", "configmaps", "update") || allows(role.Rules, "", "secrets", "get") {
		t.Errorf("role rules %+v: want Leases, the ConfigMaps of health reports, and nothing else", role.Rules)
	}
	// regionSecrets: the service account may get those Secrets, by name, and no other.
	for secret, want := range map[string]bool{"region-kubeconfigs": true, "meridian-git": false} {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + ns + ":" + sa.Name,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "get", Resource: "secrets", Name: secret},
		}}
		got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed != want {
			t.Errorf("service account may get Secret %s: %t, want %t", secret, got.Status.Allowed, want)
		}
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, "meridian", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 {
		t.Errorf("service ports %+v", svc.Spec.Ports)
	}

	// The configuration the chart writes is one the daemon accepts, in ha mode
	// with the pod's name and namespace.
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "meridian", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAME", "meridian-5c7d9f6b8-q2w4e")
	t.Setenv("POD_NAMESPACE", ns)
	loaded, err := config.Load(file)
	if err != nil {
		t.Fatalf("the chart's configuration does not load: %v\n%s", err, cm.Data["config.yaml"])
	}
	if loaded.Route53 == nil {
		t.Errorf("route53 not configured:\n%s", cm.Data["config.yaml"])
	}
	if h := loaded.HA; h == nil || h.Namespace != ns || h.Identity != "meridian-5c7d9f6b8-q2w4e" || h.Shards != 32 || time.Duration(h.LeaseDuration) != 15*time.Second {
		t.Errorf("ha = %+v", loaded.HA)
	}
	if loaded.Kubeconfig != "/etc/meridian/kubeconfig/kubeconfig" || loaded.Repository.PasswordFile != "/etc/meridian/git/password" {
		t.Errorf("paths: kubeconfig %q, password %q", loaded.Kubeconfig, loaded.Repository.PasswordFile)
	}
	if _, err := yaml.Marshal(loaded); err != nil {
		t.Fatal(err)
	}

	uninstall := action.NewUninstall(helmConfig(t, region, ns))
	uninstall.Wait, uninstall.Timeout = true, 2*time.Minute
	if _, err := uninstall.Run(rel.Name); err != nil {
		t.Errorf("helm uninstall: %v", err)
	}
}

// helmConfig is Helm's action configuration for the region's namespace, with
// releases stored in Secrets as the helm CLI stores them.
func helmConfig(t *testing.T, region *testbed.Region, ns string) *action.Configuration {
	t.Helper()
	cfg := new(action.Configuration)
	if err := cfg.Init(kube.GetConfig(region.Kubeconfig, region.Name, ns), ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// helmInstall installs the chart as `helm install meridian deploy/meridian -n
// ns --wait` does, with Helm's install action: the apiserver validates every
// object, Helm creates them in its install order and waits for them to be
// ready.
func helmInstall(t *testing.T, region *testbed.Region, ns string, vals map[string]any) *release.Release {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(helmConfig(t, region, ns))
	install.ReleaseName, install.Namespace = "meridian", ns
	install.Wait, install.Timeout = true, 3*time.Minute
	rel, err := install.RunWithContext(t.Context(), ch, vals)
	if err != nil {
		t.Fatalf("helm install: %v", err)
	}
	if rel.Info.Status != release.StatusDeployed {
		t.Fatalf("release %s: %s", rel.Info.Status, rel.Info.Description)
	}
	return rel
}

func available(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return fmt.Sprintf("%d/%d", d.Status.AvailableReplicas, want)
}

func allows(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slicesContains(r.APIGroups, group) && slicesContains(r.Resources, resource) && slicesContains(r.Verbs, verb) {
			return true
		}
	}
	return false
}
