package fleet

import (
	"testing"
)

// TestAdoptsExisting loads adoptExisting for a tenant and one of its apps (the strict
// decoder takes both) and checks which units may adopt: the tenant's setting is its
// namespace unit's, and an app has its own.
func TestAdoptsExisting(t *testing.T) {
	fsys := withFiles(map[string]string{"tenants/billing.yaml": `apiVersion: meridian.dev/v1alpha1
kind: Tenant
metadata:
  name: billing
spec:
  regions: [us-east-1]
  adoptExisting: true
  apps:
    - name: web
      adoptExisting: true
    - name: api
`})
	m, err := Load(fsys)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name   string
		tenant string
		app    string
		want   bool
	}{
		{name: "namespace unit of a tenant that adopts", tenant: "billing", want: true},
		{name: "app that adopts", tenant: "billing", app: "web", want: true},
		{name: "app that does not, in a tenant that does", tenant: "billing", app: "api"},
		{name: "app the tenant does not run", tenant: "billing", app: "worker"},
		{name: "namespace unit of a tenant that does not adopt", tenant: "trucking"},
		{name: "app of a tenant that does not adopt", tenant: "trucking", app: "web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Tenant(tt.tenant).AdoptsExisting(tt.app); got != tt.want {
				t.Errorf("Tenant(%q).AdoptsExisting(%q) = %t, want %t", tt.tenant, tt.app, got, tt.want)
			}
		})
	}
}
