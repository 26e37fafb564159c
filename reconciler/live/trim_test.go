package live

import (
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestTrim checks what the watches keep of an object: kstatus computes the same
// status from the trimmed object as from the whole one, and what is dropped is
// gone — a Secret's values above all.
func TestTrim(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		gone [][]string // paths that must be dropped
		kept [][]string // paths that must stay
	}{
		{
			name: "a Deployment rolling out keeps what kstatus reads",
			doc: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: trucking
  generation: 3
  labels: {app.kubernetes.io/managed-by: meridian}
  annotations:
    meridian.dev/placement: trucking/us-east-1/web
    kubectl.kubernetes.io/last-applied-configuration: '{"big": "copy"}'
  managedFields:
  - manager: meridian
    operation: Apply
spec:
  replicas: 3
  progressDeadlineSeconds: 60
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
status:
  observedGeneration: 3
  replicas: 3
  updatedReplicas: 2
  readyReplicas: 2
  availableReplicas: 2
  conditions:
  - {type: Progressing, status: "True", reason: ReplicaSetUpdated}
  - {type: Available, status: "True"}
`,
			gone: [][]string{{"metadata", "managedFields"}, {"metadata", "annotations", lastApplied}, {"spec", "template"}},
			kept: [][]string{{"metadata", "annotations", "meridian.dev/placement"}, {"metadata", "labels"}, {"spec", "replicas"}, {"spec", "progressDeadlineSeconds"}, {"status", "updatedReplicas"}},
		},
		{
			name: "a Secret keeps no value",
			doc: `apiVersion: v1
kind: Secret
metadata: {name: db, namespace: trucking}
data: {password: c2VjcmV0}
stringData: {token: plain}
`,
			gone: [][]string{{"data"}, {"stringData"}},
			kept: [][]string{{"metadata", "name"}},
		},
		{
			name: "a CRD keeps its conditions, not its schemas",
			doc: `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com, generation: 1}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
status:
  conditions:
  - {type: NamesAccepted, status: "True"}
  - {type: Established, status: "True"}
`,
			gone: [][]string{{"spec", "versions"}},
			kept: [][]string{{"spec", "names"}, {"status", "conditions"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole := parse(t, tt.doc)
			want, err := status.Compute(whole)
			if err != nil {
				t.Fatal(err)
			}
			out, err := Trim(whole.DeepCopy())
			if err != nil {
				t.Fatal(err)
			}
			trimmed := out.(*unstructured.Unstructured)
			got, err := status.Compute(trimmed)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.Status, got.Status); diff != "" || want.Message != got.Message {
				t.Errorf("kstatus of the trimmed object (-whole +trimmed):\n%s\n%q vs %q", diff, want.Message, got.Message)
			}
			for _, p := range tt.gone {
				if _, found, _ := unstructured.NestedFieldNoCopy(trimmed.Object, p...); found {
					t.Errorf("%v kept", p)
				}
			}
			for _, p := range tt.kept {
				if _, found, _ := unstructured.NestedFieldNoCopy(trimmed.Object, p...); !found {
					t.Errorf("%v dropped", p)
				}
			}
		})
	}
}
