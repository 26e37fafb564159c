package render_test

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// TestShownCoversRenderedSecrets checks that an API server error quoting a value
// of a Secret being applied — one of the unit's objects or one of its hooks — is
// redacted, even when the unit came from the render cache and nothing was
// decrypted in this pass.
func TestShownCoversRenderedSecrets(t *testing.T) {
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "db", "namespace": "t1"},
		"stringData": map[string]any{"password": "hunter2-plain"},
		"data":       map[string]any{"token": base64.StdEncoding.EncodeToString([]byte("tok-123456")), "short": base64.StdEncoding.EncodeToString([]byte("1"))},
	}}
	hookSecret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "admission", "namespace": "t1", "annotations": map[string]any{"helm.sh/hook": "pre-install"}},
		"stringData": map[string]any{"ca": "hook-ca-value"},
	}}
	configMap := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "c", "namespace": "t1"},
		"data":     map[string]any{"plain": "not-a-secret"},
	}}
	res := &render.Result{Units: []*render.Unit{{Tenant: "t1", Region: "r", App: "web",
		Objects: []*unstructured.Unstructured{secret, configMap},
		Hooks:   []render.Hook{{Object: hookSecret}},
	}}}
	redact := secrets.NewRedactor(res.Shown())
	got := redact.RedactString(`Secret "db" is invalid: data[password]: "hunter2-plain" and token tok-123456; replicas 1; not-a-secret; ca hook-ca-value`)
	want := `Secret "db" is invalid: data[password]: "**REDACTED**" and token **REDACTED**; replicas 1; not-a-secret; ca **REDACTED**`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("redacted (-want +got):\n%s", diff)
	}
}
