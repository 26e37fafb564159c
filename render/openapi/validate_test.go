package openapi

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}, creationTimestamp: null}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx
          ports: [{containerPort: 80}]
          readinessProbe: {httpGet: {path: /, port: http}}
          livenessProbe: {httpGet: {path: /, port: 8080}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {cpu: 1}}
`

const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer}
                extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

func TestValidate(t *testing.T) {
	s, note, err := ForVersion("1.37.2")
	if err != nil || note != "" {
		t.Fatalf("ForVersion(1.37.2) = %v, note %q", err, note)
	}
	gadgetCRD := strings.NewReplacer("Widget", "Gadget", "widgets", "gadgets", "required: [size]", "allOf: [{$ref: '#/definitions/x'}]").Replace(widgetCRD)
	v := s.NewValidator([]*unstructured.Unstructured{object(t, widgetCRD), object(t, gadgetCRD)})
	const where = " (Kubernetes 1.37 apps/v1 Deployment)"
	tests := []struct {
		name string
		doc  string
		want []Problem
	}{
		{"a valid Deployment, int-or-string ports, quantities and nulls", deployment, nil},
		{"an unknown field", strings.Replace(deployment, "replicas: 2", "replicas: 2\n  replica: 3", 1),
			[]Problem{{Field: "spec.replica", Message: "unknown field (Kubernetes 1.37 apps/v1 Deployment has no such field); did you mean \"replicas\"?"}}},
		{"an unknown field deep in a list", strings.Replace(deployment, "image: nginx", "image: nginx\n          imagePullPolicy: Always\n          imagePolicy: Always", 1),
			[]Problem{{Field: "spec.template.spec.containers[0].imagePolicy", Message: "unknown field (Kubernetes 1.37 apps/v1 Deployment has no such field); did you mean \"imagePullPolicy\"?"}}},
		{"a wrong type", strings.Replace(deployment, "replicas: 2", `replicas: "two"`, 1),
			[]Problem{{Field: "spec.replicas", Message: "must be of type integer" + where + "; fix the value (quote numbers meant as strings)"}}},
		{"a required field missing", strings.Replace(deployment, "        - name: web\n", "        - \n", 1),
			[]Problem{{Field: "spec.template.spec.containers[0].name", Message: "required field is missing" + where + "; set it"}}},
		{"a version Kubernetes no longer serves", strings.Replace(deployment, "apps/v1", "apps/v1beta1", 1),
			[]Problem{{Field: "apiVersion", Message: "Kubernetes 1.37 does not serve apps/v1beta1 Deployment; use apiVersion apps/v1"}}},
		{"a misspelt built-in kind", "apiVersion: v1\nkind: ConfigMapp\nmetadata: {name: x}\n",
			[]Problem{{Field: "kind", Message: "Kubernetes 1.37 has no kind ConfigMapp in v1; fix the kind or the apiVersion"}}},
		{"a custom resource without its CRD", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {}\n",
			[]Problem{{Warning: true, Message: "no schema for monitoring.coreos.com/v1 ServiceMonitor: its CustomResourceDefinition is not rendered in the fleet, so the object is not checked"}}},
		{"a custom resource that fits its CRD", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {size: 3, extra: {anything: [1]}}\n", nil},
		{"a custom resource with an unknown field and a missing one", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {colour: red}\n",
			[]Problem{
				{Field: "spec.colour", Message: "unknown field (Kubernetes 1.37 example.com/v1 Widget has no such field); remove it or fix its name"},
				{Field: "spec.size", Message: "required field is missing (Kubernetes 1.37 example.com/v1 Widget); set it"},
			}},
		{"a custom resource whose CRD schema uses $ref", "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: x}\nspec: {}\n",
			[]Problem{{Message: "cannot be checked: the schema of example.com/v1 Gadget is not usable (schema references not supported: #/definitions/x); fix the CustomResourceDefinition"}}},
		{"a custom resource of a version its CRD does not serve", "apiVersion: example.com/v2\nkind: Widget\nmetadata: {name: x}\n",
			[]Problem{{Field: "apiVersion", Message: "Kubernetes 1.37 does not serve example.com/v2 Widget; use apiVersion example.com/v1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := v.Validate(object(t, tt.doc))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateSecretValueNeverShown checks that a Secret whose data is not base64
// is refused without repeating the value.
func TestValidateSecretValueNeverShown(t *testing.T) {
	s, _, err := ForVersion("1.37")
	if err != nil {
		t.Fatal(err)
	}
	got := s.NewValidator(nil).Validate(object(t, "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: 'hunter2 not base64!'}\n"))
	if len(got) != 1 || got[0].Field != "data.password" {
		t.Fatalf("problems = %+v, want one at data.password", got)
	}
	if strings.Contains(got[0].Message, "hunter2") {
		t.Errorf("the problem repeats the Secret's value: %s", got[0].Message)
	}
}

func TestForVersion(t *testing.T) {
	tests := []struct{ version, minor, note string }{
		{"1.37.2", "1.37", ""},
		{"v1.37", "1.37", ""},
		{"1.35.1", "1.37", "no schemas are bundled for Kubernetes 1.35; checked against 1.37, the nearest bundled version (bundled: 1.37)"},
		{"", "1.37", "no spec.kubernetesVersion; checked against Kubernetes 1.37, the newest bundled schemas; set the cluster's version"},
	}
	for _, tt := range tests {
		s, note, err := ForVersion(tt.version)
		if err != nil {
			t.Fatalf("ForVersion(%q): %v", tt.version, err)
		}
		if s.Minor != tt.minor || note != tt.note {
			t.Errorf("ForVersion(%q) = %s, %q; want %s, %q", tt.version, s.Minor, note, tt.minor, tt.note)
		}
	}
	if _, _, err := ForVersion("latest"); err == nil {
		t.Error("ForVersion(latest) did not fail")
	}
}

const limitCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: limits.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Limit, plural: limits}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                replicas: {type: integer, minimum: 1, maximum: 1000000}
                ratio: {type: number, minimum: 0, exclusiveMinimum: true, multipleOf: 0.5}
                name: {type: string, pattern: '^[a-z]+$', maxLength: 5}
                mode: {type: string, enum: [fast, slow]}
                zones: {type: array, maxItems: 2, items: {type: string}}
                since: {type: string, format: date-time}
                blob: {type: string, format: byte}
`

// TestValidateLimits checks the words for each limit a schema sets, taken from the
// schema and the error's fields, never repeating the value.
func TestValidateLimits(t *testing.T) {
	s, _, err := ForVersion("1.37")
	if err != nil {
		t.Fatal(err)
	}
	v := s.NewValidator([]*unstructured.Unstructured{object(t, limitCRD)})
	const where = " (Kubernetes 1.37 example.com/v1 Limit)"
	const fix = "; fix the value"
	problem := func(field, what, fix string) []Problem {
		return []Problem{{Field: "spec." + field, Message: what + where + fix}}
	}
	tests := []struct {
		name, spec string
		want       []Problem
	}{
		{"below the minimum", "replicas: 0", problem("replicas", "should be greater than or equal to 1", fix)},
		{"above the maximum, written as in the schema", "replicas: 1000001", problem("replicas", "should be less than or equal to 1000000", fix)},
		{"not above an exclusive minimum", "ratio: 0", problem("ratio", "should be greater than 0", fix)},
		{"not a multiple", "ratio: 0.7", problem("ratio", "should be a multiple of 0.5", fix)},
		{"too long", "name: secretvalue", problem("name", "should be at most 5 chars long", fix)},
		{"not matching the pattern", "name: ABC", problem("name", "should match '^[a-z]+$'", fix)},
		{"not one of the enumeration", "mode: secret-value", problem("mode", "should be one of [fast slow]", fix)},
		{"too many items", "zones: [a, b, c]", problem("zones", "should have at most 2 items", fix)},
		{"a string not in its format", "since: secret-value", problem("since", "is not in format date-time", fix)},
		{"a string not base64", "blob: secret-value!", problem("blob", "is not base64, which format byte requires", "; encode the value (in a Secret, or move it to stringData)")},
		{"a number where base64 is wanted", "blob: 12345", problem("blob", "must be of type string", fix+" (quote numbers meant as strings)")},
		{"a string where a number is wanted", "replicas: secret-value", problem("replicas", "must be of type integer", fix+" (quote numbers meant as strings)")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := v.Validate(object(t, "apiVersion: example.com/v1\nkind: Limit\nmetadata: {name: x}\nspec: {"+tt.spec+"}\n"))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			for _, p := range got {
				if strings.Contains(p.Message, "secret-value") || strings.Contains(p.Message, "Secret-Value") {
					t.Errorf("the problem repeats the value: %s", p.Message)
				}
			}
		})
	}
}
