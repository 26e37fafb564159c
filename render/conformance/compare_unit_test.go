package conformance

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
)

// TestCompare: the comparison lets through exactly what Meridian documents and
// names the object and field of anything else. It needs neither helm nor
// kustomize, and runs with the fast tests.
func TestCompare(t *testing.T) {
	unit := fleet.UnitID{Tenant: tenant, Region: "eu-west-2", App: "web"}
	const rev = "abc"
	// upstream is what helm or kustomize would print.
	upstream := func(yaml string) *unstructured.Unstructured {
		t.Helper()
		objs, err := parseManifests([]byte(yaml))
		if err != nil || len(objs) != 1 {
			t.Fatalf("parse %q: %v, %d objects", yaml, err, len(objs))
		}
		return objs[0]
	}
	// meridian is the same object as Meridian renders it: in the tenant's
	// namespace unless cluster-scoped, with its labels and annotations.
	meridian := func(yaml string, clusterScoped bool) *unstructured.Unstructured {
		o := upstream(yaml)
		if !clusterScoped && o.GetNamespace() == "" {
			o.SetNamespace(tenant)
		}
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		for k, v := range meridianLabels(unit) {
			labels[k] = v
		}
		o.SetLabels(labels)
		annotations := o.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		for k, v := range meridianAnnotations(unit, rev) {
			annotations[k] = v
		}
		o.SetAnnotations(annotations)
		return o
	}
	const (
		cm         = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  labels:\n    app.kubernetes.io/managed-by: Helm\ndata:\n  a: \"1\"\n"
		cmOther    = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: \"2\"\n"
		role       = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: web\n  annotations:\nrules: []\n"
		testHook   = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-test\n  annotations:\n    helm.sh/hook: test\nspec: {}\n"
		deleteHook = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web-cleanup\n  annotations:\n    helm.sh/hook: pre-delete,post-rollback\nspec: {}\n"
	)
	tests := []struct {
		name     string
		upstream []string
		meridian []*unstructured.Unstructured
		want     []string // the differences, as String gives them
	}{{
		name:     "labels, annotations and the tenant's namespace are Meridian's to add",
		upstream: []string{cm, role},
		meridian: []*unstructured.Unstructured{meridian(cm, false), meridian(role, true)},
	}, {
		name:     "a value that differs is named by object and field",
		upstream: []string{cm},
		meridian: []*unstructured.Unstructured{meridian(cmOther, false)},
		want:     []string{"ConfigMap/conformance/web: data.a:\n      -helm \"1\"\n      +meridian \"2\""},
	}, {
		name:     "an object on one side only",
		upstream: []string{cm},
		meridian: []*unstructured.Unstructured{meridian(role, true)},
		want:     []string{"ConfigMap/web: helm renders it, Meridian does not", "ClusterRole.rbac.authorization.k8s.io/web: Meridian renders it, helm does not"},
	}, {
		name:     "test, delete and rollback hooks are not rendered",
		upstream: []string{cm, testHook, deleteHook},
		meridian: []*unstructured.Unstructured{meridian(cm, false)},
	}, {
		name:     "a delete hook Meridian renders",
		upstream: []string{deleteHook},
		meridian: []*unstructured.Unstructured{meridian(deleteHook, false)},
		want:     []string{"Job.batch/conformance/web-cleanup: a Helm hook only for tests, deletion or rollback, which Meridian documents it does not render, is rendered"},
	}, {
		name:     "a test hook Meridian renders",
		upstream: []string{testHook},
		meridian: []*unstructured.Unstructured{meridian(testHook, false)},
		want:     []string{"Pod/conformance/web-test: a Helm hook only for tests, deletion or rollback, which Meridian documents it does not render, is rendered"},
	}, {
		name:     "an install hook is compared like any object",
		upstream: []string{strings.Replace(deleteHook, "pre-delete,post-rollback", "pre-install", 1)},
		meridian: []*unstructured.Unstructured{meridian(strings.Replace(strings.Replace(deleteHook, "pre-delete,post-rollback", "pre-install", 1), "spec: {}", "spec: {parallelism: 2}", 1), false)},
		want:     []string{"Job.batch/conformance/web-cleanup: spec.parallelism: only Meridian has it: 2"},
	}, {
		name:     "Meridian's label with another value",
		upstream: []string{cm},
		meridian: func() []*unstructured.Unstructured {
			o := meridian(cm, false)
			o.SetLabels(map[string]string{render.LabelManagedBy: "Helm", render.LabelTenant: tenant, render.LabelRegion: "eu-west-2", render.LabelApp: "web"})
			return []*unstructured.Unstructured{o}
		}(),
		want: []string{`ConfigMap/conformance/web: Meridian's label app.kubernetes.io/managed-by is "Helm", want "meridian"`},
	}, {
		name:     "no namespace on an object Meridian renders cluster-scoped",
		upstream: []string{strings.Replace(role, "  name: web\n", "  name: web\n  namespace: conformance\n", 1)},
		meridian: []*unstructured.Unstructured{meridian(role, true)},
	}, {
		name:     "a namespace that Meridian leaves out",
		upstream: []string{strings.Replace(cm, "  name: web\n", "  name: web\n  namespace: conformance\n", 1)},
		meridian: []*unstructured.Unstructured{meridian(cm, true)},
		want:     []string{"ConfigMap/conformance/web: helm renders it, Meridian does not", "ConfigMap/web: Meridian renders it, helm does not"},
	}, {
		name:     "a text that differs in one line",
		upstream: []string{"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  run.sh: |\n    set -e\n    echo a\n"},
		meridian: []*unstructured.Unstructured{meridian("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: s\ndata:\n  run.sh: |-\n    set -e\n    echo a\n", false)},
		want:     []string{"ConfigMap/conformance/s: data.run.sh: the texts (3 lines from helm, 2 from Meridian) differ at line 3:\n      -helm \"\"\n      +meridian (none: the text ends before)"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var up []*unstructured.Unstructured
			for _, y := range tt.upstream {
				up = append(up, upstream(y))
			}
			var got []string
			for _, d := range compare("helm", up, tt.meridian, unit, rev) {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("differences (-want +got):\n%s", diff)
			}
		})
	}
}
