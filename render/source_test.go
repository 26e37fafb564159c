package render

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnitsSayWhereTheirObjectsComeFrom(t *testing.T) {
	snap := loadSnapshot(t, exampleDir, "rev")
	got := map[string]string{}
	for _, u := range renderOK(t, newTestRenderer(t, true), snap, Filter{}).Units {
		if u.Tenant == "trucking" && u.Region == "us-east-1" {
			got[u.ID().String()] = u.Source
		}
	}
	want := map[string]string{
		"trucking/us-east-1":        "",
		"trucking/us-east-1/api":    "kustomize apps/api/base",
		"trucking/us-east-1/portal": "chart apps/portal/chart (portal 0.1.0)",
		"trucking/us-east-1/worker": "chart apps/worker/chart (worker 0.1.0)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
}
