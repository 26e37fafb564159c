package fleet

import (
	"errors"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func TestCustomResourcesErrors(t *testing.T) {
	// billing's grants start on line 7.
	billing := func(grants string) string {
		return "apiVersion: meridian.dev/v1alpha1\nkind: Tenant\nmetadata:\n  name: billing\nspec:\n  regions: [us-east-1]\n  customResources:\n" + grants + "  apps:\n    - name: web\n"
	}
	tests := []struct {
		name   string
		grants string
		want   []string
	}{{
		name:   "a CRD's group and its resources",
		grants: "    - group: db.example.com\n      resources: [databases, backups]\n",
	}, {
		name:   "a Kubernetes group",
		grants: "    - group: networking.k8s.io\n      resources: [networkpolicies]\n    - group: apps\n      resources: [deployments]\n",
		want: []string{
			`tenants/billing.yaml:8: spec.customResources[0].group: "networking.k8s.io" is a Kubernetes API group; customResources grants custom resources only, the tenant's Role already holds what it may do with Kubernetes' own`,
			`tenants/billing.yaml:10: spec.customResources[1].group: "apps" is a Kubernetes API group; customResources grants custom resources only, the tenant's Role already holds what it may do with Kubernetes' own`,
		},
	}, {
		name:   "a wildcard and no resources",
		grants: "    - group: db.example.com\n      resources: [\"*\"]\n    - group: queue.example.com\n      resources: []\n",
		want: []string{
			`tenants/billing.yaml:9: spec.customResources[0].resources[0]: "*" is not a resource's plural name (lowercase, such as databases); wildcards are not granted`,
			`tenants/billing.yaml:11: spec.customResources[1].resources: lists no resource; name the plural names of the group's resources, such as [databases]`,
		},
	}, {
		name:   "a group twice",
		grants: "    - group: db.example.com\n      resources: [databases]\n    - group: db.example.com\n      resources: [backups]\n",
		want:   []string{`tenants/billing.yaml:10: spec.customResources[1].group: "db.example.com" is listed twice (also at spec.customResources[0].group); remove one`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := validFleet()
			fsys["tenants/billing.yaml"] = &fstest.MapFile{Data: []byte(billing(tt.grants))}
			_, err := Load(fsys)
			var got []string
			var list ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					got = append(got, e.Error())
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
