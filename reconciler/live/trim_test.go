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

// watched returns what a watch holds of u, as Cache.Get returns it: Trim's
// Object, decoded.
func watched(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	out, err := Trim(u)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := out.(*Object)
	if !ok {
		t.Fatalf("Trim returned a %T, want an *Object", out)
	}
	got, err := o.Unstructured()
	if err != nil {
		t.Fatal(err)
	}
	return got
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
			trimmed := watched(t, whole.DeepCopy())
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

// withEntries builds an object whose managed fields are the given entries, each a
// JSON document.
func withEntries(t *testing.T, entries ...string) *unstructured.Unstructured {
	t.Helper()
	u := parse(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\n")
	var list []any
	for _, e := range entries {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(e), &m); err != nil {
			t.Fatal(err)
		}
		list = append(list, m)
	}
	if list != nil {
		if err := unstructured.SetNestedSlice(u.Object, list, "metadata", "managedFields"); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

// TestAppliedFields checks which managed fields entry is fingerprinted: Meridian's
// own apply of the object, not its updates, its subresources' or another
// manager's; and that the fingerprint follows the entry's fields, not the order
// they are written in.
func TestAppliedFields(t *testing.T) {
	const (
		meridian        = `{manager: meridian, operation: Apply, apiVersion: v1, fieldsType: FieldsV1, fieldsV1: {f:data: {f:a: {}, f:b: {}}, f:metadata: {f:labels: {f:x: {}}}}}`
		meridianShuffle = `{fieldsV1: {f:metadata: {f:labels: {f:x: {}}}, f:data: {f:b: {}, f:a: {}}}, operation: Apply, manager: meridian, time: "2026-12-05T10:00:00Z"}`
		meridianLess    = `{manager: meridian, operation: Apply, fieldsV1: {f:data: {f:a: {}}, f:metadata: {f:labels: {f:x: {}}}}}`
		meridianUpdate  = `{manager: meridian, operation: Update, fieldsV1: {f:data: {f:a: {}, f:b: {}}}}`
		meridianStatus  = `{manager: meridian, operation: Apply, subresource: status, fieldsV1: {f:status: {}}}`
		other           = `{manager: kubectl-edit, operation: Update, fieldsV1: {f:data: {f:b: {}}}}`
	)
	fp := func(entries ...string) string { return AppliedFields(withEntries(t, entries...)) }
	base := fp(meridian)
	if len(base) != 64 {
		t.Fatalf("fingerprint %q, want a sha256 in hex", base)
	}
	tests := []struct {
		name    string
		entries []string
		same    bool // the same fingerprint as meridian's entry alone
		none    bool // no fingerprint
	}{
		{name: "other managers' entries are not part of it", entries: []string{other, meridian, meridianUpdate, meridianStatus}, same: true},
		{name: "the order of fields and keys is not part of it, nor the time", entries: []string{meridianShuffle}, same: true},
		{name: "a field gone from Meridian's entry changes it", entries: []string{meridianLess, other}},
		{name: "an object Meridian never applied has none", entries: []string{other, meridianUpdate, meridianStatus}, none: true},
		{name: "an object without managed fields has none", none: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fp(tt.entries...)
			switch {
			case tt.none && got != "":
				t.Errorf("fingerprint %q, want none", got)
			case tt.none:
			case tt.same && got != base:
				t.Errorf("fingerprint %q, want Meridian's entry's %q", got, base)
			case !tt.same && (got == base || got == ""):
				t.Errorf("fingerprint %q, want another than %q", got, base)
			}
		})
	}
}

// deploymentAsServed is a Deployment as the API server returns it after
// Meridian applied it and its controller updated its status: its managed fields
// are Meridian's apply and the controller's update.
const deploymentAsServed = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: portal
  namespace: trucking
  uid: 3f0f3a52-6d0e-4c1e-9b7a-2f1f0c6b7d11
  resourceVersion: "4711"
  generation: 1
  creationTimestamp: "2026-12-05T10:00:00Z"
  labels:
    app.kubernetes.io/managed-by: meridian
    meridian.dev/tenant: trucking
    meridian.dev/region: us-east-1
    meridian.dev/app: portal
  annotations:
    meridian.dev/placement: trucking/us-east-1/portal
    meridian.dev/revision: 0123456789abcdef0123456789abcdef01234567
    deployment.kubernetes.io/revision: "1"
  managedFields:
  - manager: meridian
    operation: Apply
    apiVersion: apps/v1
    time: "2026-12-05T10:00:00Z"
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations: {f:meridian.dev/placement: {}, f:meridian.dev/revision: {}}
        f:labels: {f:app.kubernetes.io/managed-by: {}, f:meridian.dev/app: {}, f:meridian.dev/region: {}, f:meridian.dev/tenant: {}}
      f:spec:
        f:replicas: {}
        f:selector: {}
        f:template:
          f:metadata: {f:labels: {f:app.kubernetes.io/name: {}}}
          f:spec:
            f:containers:
              'k:{"name":"app"}':
                .: {}
                f:image: {}
                f:name: {}
                f:ports: {'k:{"containerPort":9898,"protocol":"TCP"}': {.: {}, f:containerPort: {}, f:name: {}, f:protocol: {}}}
                f:readinessProbe: {f:httpGet: {f:path: {}, f:port: {}}}
                f:resources: {f:limits: {f:memory: {}}, f:requests: {f:cpu: {}, f:memory: {}}}
                f:securityContext: {f:allowPrivilegeEscalation: {}, f:capabilities: {f:drop: {}}}
            f:securityContext: {f:runAsNonRoot: {}, f:runAsUser: {}}
  - manager: kube-controller-manager
    operation: Update
    apiVersion: apps/v1
    time: "2026-12-05T10:00:03Z"
    fieldsType: FieldsV1
    subresource: status
    fieldsV1:
      f:metadata: {f:annotations: {.: {}, f:deployment.kubernetes.io/revision: {}}}
      f:status:
        f:availableReplicas: {}
        f:conditions:
          .: {}
          'k:{"type":"Available"}': {.: {}, f:lastTransitionTime: {}, f:lastUpdateTime: {}, f:message: {}, f:reason: {}, f:status: {}, f:type: {}}
          'k:{"type":"Progressing"}': {.: {}, f:lastTransitionTime: {}, f:lastUpdateTime: {}, f:message: {}, f:reason: {}, f:status: {}, f:type: {}}
        f:observedGeneration: {}
        f:readyReplicas: {}
        f:replicas: {}
        f:updatedReplicas: {}
spec:
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: portal}}
  progressDeadlineSeconds: 600
  revisionHistoryLimit: 10
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  template:
    metadata: {labels: {app.kubernetes.io/name: portal}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 10001}
      containers:
      - name: app
        image: ghcr.io/stefanprodan/podinfo:6.7.0
        ports: [{name: http, containerPort: 9898, protocol: TCP}]
        readinessProbe: {httpGet: {path: /readyz, port: 9898}}
        resources: {limits: {memory: 128Mi}, requests: {cpu: 10m, memory: 32Mi}}
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
status:
  observedGeneration: 1
  replicas: 2
  updatedReplicas: 2
  readyReplicas: 2
  availableReplicas: 2
  conditions:
  - {type: Available, status: "True", reason: MinimumReplicasAvailable, message: Deployment has minimum availability., lastUpdateTime: "2026-12-05T10:00:03Z", lastTransitionTime: "2026-12-05T10:00:03Z"}
  - {type: Progressing, status: "True", reason: NewReplicaSetAvailable, message: ReplicaSet "portal-7d4b9c" has successfully progressed., lastUpdateTime: "2026-12-05T10:00:03Z", lastTransitionTime: "2026-12-05T10:00:00Z"}
`

// TestTrimKeepsAppliedFields checks that a watch's copy keeps the fingerprint of
// Meridian's apply entry and nothing else of the managed fields, also when
// trimmed twice, measures what that costs a Deployment's trimmed copy, and that a
// custom resource cannot plant a fingerprint of its own.
func TestTrimKeepsAppliedFields(t *testing.T) {
	whole := parse(t, deploymentAsServed)
	want := AppliedFields(whole)
	if want == "" {
		t.Fatal("the served Deployment has no Meridian apply entry")
	}
	trimmed := watched(t, whole.DeepCopy())
	if got := WatchedFields(trimmed); got != want {
		t.Errorf("kept fingerprint %q, want %q", got, want)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(trimmed.Object, "metadata", "managedFields"); found {
		t.Error("managed fields kept")
	}
	// Informers may transform an object they transformed already.
	again := watched(t, trimmed.DeepCopy())
	if diff := cmp.Diff(trimmed.Object, again.Object); diff != "" {
		t.Errorf("trimmed twice (-once +twice):\n%s", diff)
	}

	// What a watch holds per Deployment: trimmed as before (no managed fields at
	// all), with the fingerprint, and with Meridian's entry kept whole instead.
	size := func(u *unstructured.Unstructured) int {
		data, err := u.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return len(data)
	}
	before := trimmed.DeepCopy()
	delete(before.Object, appliedFieldsKey)
	entry := whole.GetManagedFields()[0]
	withEntry := before.DeepCopy()
	withEntry.SetManagedFields(append(withEntry.GetManagedFields(), entry))
	t.Logf("Deployment: %d bytes as served; trimmed %d without managed fields, %d with the fingerprint, %d with Meridian's entry whole",
		size(whole), size(before), size(trimmed), size(withEntry))
	if grown := size(trimmed) - size(before); grown > 128 {
		t.Errorf("the fingerprint grows a trimmed Deployment by %d bytes, want at most 128", grown)
	}

	planted := parse(t, `apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
  namespace: n
  managedFields: [{manager: someone, operation: Update, fieldsV1: {f:spec: {}}}]
meridian.dev/applied-fields: forged
`)
	if got := WatchedFields(watched(t, planted)); got != "" {
		t.Errorf("a planted fingerprint %q was kept, want none", got)
	}
}
