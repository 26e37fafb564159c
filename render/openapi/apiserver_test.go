package openapi

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

// TestValidateAgreesWithAPIServer sends the objects of TestValidate to a real
// kube-apiserver of the bundled version, as a server-side dry run with strict field
// validation, and checks that it refuses exactly the objects the bundled schemas
// refuse. A disagreement means the bundle or the validation drifted from what
// clusters do.
func TestValidateAgreesWithAPIServer(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1})
	cfg := tb.Regions[0].Config
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The CRD is created for real, so that its custom resources can be sent.
	crd := object(t, widgetCRD)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := client.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	s, _, err := ForVersion("1.37")
	if err != nil {
		t.Fatal(err)
	}
	v := s.NewValidator([]*unstructured.Unstructured{crd})
	objects := map[string]string{
		"valid Deployment":    deployment,
		"unknown field":       strings.Replace(deployment, "replicas: 2", "replicas: 2\n  replica: 3", 1),
		"wrong type":          strings.Replace(deployment, "replicas: 2", `replicas: "two"`, 1),
		"missing name":        strings.Replace(deployment, "        - name: web\n", "        - \n", 1),
		"Secret, not base64":  "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: 'not base64!'}\n",
		"Secret, base64":      "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: aHVudGVyMg==}\n",
		"valid Widget":        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {size: 3, extra: {anything: [1]}}\n",
		"Widget, bad fields":  "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec: {colour: red}\n",
		"Service, int port":   "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: 8080}]}\n",
		"Service, named port": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: http}]}\n",
	}
	for name, doc := range objects {
		t.Run(name, func(t *testing.T) {
			obj := object(t, doc)
			var problems []string
			for _, p := range v.Validate(obj) {
				if !p.Warning {
					problems = append(problems, p.Field+": "+p.Message)
				}
			}
			apiErr := dryRun(ctx, t, client, disco, obj, "default")
			if (len(problems) > 0) != (apiErr != nil) {
				t.Errorf("the bundled schemas say %q; kube-apiserver says %v", problems, apiErr)
			}
		})
	}

	// Every object fleet-example renders fits the bundled schemas, and
	// kube-apiserver takes it: the schemas refuse nothing a cluster accepts.
	t.Run("fleet-example", func(t *testing.T) {
		result := renderExample(t)
		checked := 0
		for _, u := range result.Units {
			for _, obj := range u.Objects {
				if problems := v.Validate(obj); len(problems) > 0 {
					t.Errorf("%s: %s: %+v", u.ID(), render.ObjectRef(obj), problems)
				}
				if obj.GetKind() == "Namespace" { // created for real, for the objects in it
					_, err := client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, obj, metav1.CreateOptions{})
					if err != nil && !apierrors.IsAlreadyExists(err) { // the same tenant in another region
						t.Fatal(err)
					}
				}
			}
		}
		for _, u := range result.Units {
			for _, obj := range u.Objects {
				if obj.GetKind() == "Namespace" {
					continue
				}
				if err := dryRun(ctx, t, client, disco, obj, obj.GetNamespace()); err != nil {
					t.Errorf("%s: %s: kube-apiserver refuses it: %v", u.ID(), render.ObjectRef(obj), err)
				}
				checked++
			}
		}
		t.Logf("kube-apiserver took all %d objects of fleet-example", checked)
	})
}

// renderExample renders fleet-example with its demo key.
func renderExample(t *testing.T) *render.Result {
	t.Helper()
	dir, err := filepath.Abs("../../fleet-example")
	if err != nil {
		t.Fatal(err)
	}
	m, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.KeysFromFiles(filepath.Join(dir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	result, err := render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)}).Render(t.Context(), render.Snapshot{Dir: dir, Model: m}, render.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := result.Err(); err != nil {
		t.Fatal(err)
	}
	return result
}

// dryRun creates obj in namespace (for a namespaced kind) as a server-side dry run
// with strict field validation, and returns kube-apiserver's refusal, if any.
func dryRun(ctx context.Context, t *testing.T, client dynamic.Interface, disco discovery.DiscoveryInterface, obj *unstructured.Unstructured, namespace string) error {
	t.Helper()
	gvk := obj.GroupVersionKind()
	var mapping *meta.RESTMapping
	deadline := time.Now().Add(30 * time.Second)
	for { // a new CRD takes a moment to be served
		mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
		var err error
		if mapping, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", gvk, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resource := dynamic.ResourceInterface(client.Resource(mapping.Resource))
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		resource = client.Resource(mapping.Resource).Namespace(namespace)
	}
	_, err := resource.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	if err != nil && !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
		t.Fatalf("%s: %v", gvk, fmt.Errorf("not a validation error: %w", err))
	}
	return err
}
