package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"meridian.dev/meridian/fleet"
)

// TestRenderExampleTwice is issue #3's acceptance: `meridian render --fleet
// fleet-example` twice prints identical bytes, holds no decrypted secret, and puts every
// namespaced object of a tenant in the tenant's namespace.
func TestRenderExampleTwice(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", example+"/demo-age-key.txt")
	t.Setenv("SOPS_AGE_KEY", "")
	run := func() string {
		var out, errs bytes.Buffer
		o := renderOptions{fleetDir: example, chartCache: t.TempDir()}
		if err := runRender(context.Background(), &out, &errs, o); err != nil {
			t.Fatalf("render: %v\n%s", err, errs.String())
		}
		return out.String()
	}
	first, second := run(), run()
	if first != second {
		t.Fatal("two renders of fleet-example differ")
	}
	for _, secret := range []string{"demo-not-a-real-password-trucking-7d1e", "demo-not-a-real-password-charging-3a9f"} {
		if strings.Contains(first, secret) {
			t.Errorf("output holds the decrypted value %s", secret)
		}
	}
	docs := strings.Split(first, "\n---\n")
	if len(docs) < 70 {
		t.Fatalf("only %d documents rendered", len(docs))
	}
	for _, doc := range docs {
		var o struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name        string            `json:"name"`
				Namespace   string            `json:"namespace"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(strings.TrimPrefix(doc, "---\n")), &o); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		id, err := fleet.ParseUnitID(o.Metadata.Annotations["meridian.dev/placement"])
		tenant := id.Tenant
		switch {
		case err == nil && id.IsAddon():
			// An addon writes the namespaces it names: fleet-example's, platform.
			if ns := o.Metadata.Namespace; ns != "" && ns != "platform" {
				t.Errorf("%s/%s of %s is in namespace %q, not the addon's", o.Kind, o.Metadata.Name, id, ns)
			}
		case tenant == "":
			t.Errorf("%s/%s has no placement annotation", o.Kind, o.Metadata.Name)
		case o.Kind == "Namespace":
			if o.Metadata.Name != tenant {
				t.Errorf("namespace %s rendered for tenant %s", o.Metadata.Name, tenant)
			}
		case o.Metadata.Namespace != tenant:
			t.Errorf("%s/%s is in namespace %q, not its tenant's %q", o.Kind, o.Metadata.Name, o.Metadata.Namespace, tenant)
		}
	}
}

func TestRenderShowSecretsWarns(t *testing.T) {
	t.Setenv("SOPS_AGE_KEY_FILE", example+"/demo-age-key.txt")
	var out, errs bytes.Buffer
	o := renderOptions{fleetDir: example, chartCache: t.TempDir(), showSecrets: true}
	o.filter.Tenant, o.filter.App = "trucking", "portal"
	if err := runRender(context.Background(), &out, &errs, o); err != nil {
		t.Fatalf("render: %v", err)
	}
	if !strings.Contains(out.String(), "demo-not-a-real-password-trucking-7d1e") {
		t.Error("--show-secrets did not show the decrypted value")
	}
	if !strings.Contains(errs.String(), "Warning: --show-secrets prints decrypted values") {
		t.Errorf("no warning on stderr: %q", errs.String())
	}
}

func TestRenderUnknownFilter(t *testing.T) {
	o := renderOptions{fleetDir: example, chartCache: t.TempDir()}
	o.filter.Tenant = "nobody"
	err := runRender(context.Background(), &bytes.Buffer{}, &bytes.Buffer{}, o)
	want := "--tenant nobody: no such tenant in " + example
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}
