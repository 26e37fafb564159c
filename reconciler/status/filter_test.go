package status

import (
	"net/url"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
)

// TestFilterOf selects units by a query as the API, the dashboard and `meridian
// status` send it: lists comma-separated or repeated, every list must match.
func TestFilterOf(t *testing.T) {
	units := map[fleet.UnitID]State{
		{Tenant: "trucking", Region: "us-east-1"}:                Ready,
		{Tenant: "trucking", Region: "us-east-1", App: "portal"}: Failed,
		{Tenant: "trucking", Region: "eu-west-2", App: "portal"}: Ready,
		{Tenant: "acme", Region: "us-east-1", App: "api"}:        Progressing,
		fleet.AddonUnit("us-east-1", "platform"):                 Ready,
	}
	tests := []struct {
		name, query string
		want        []string
	}{
		{"all", "", []string{"acme/us-east-1/api", "addon:us-east-1/platform", "trucking/eu-west-2/portal", "trucking/us-east-1", "trucking/us-east-1/portal"}},
		{"tenant", "tenant=trucking", []string{"trucking/eu-west-2/portal", "trucking/us-east-1", "trucking/us-east-1/portal"}},
		{"two tenants, blanks, repeated", "tenant=+acme,&tenant=trucking", []string{"acme/us-east-1/api", "trucking/eu-west-2/portal", "trucking/us-east-1", "trucking/us-east-1/portal"}},
		{"the addons row", "tenant=" + url.QueryEscape(AddonsRow), []string{"addon:us-east-1/platform"}},
		{"region and app", "region=us-east-1&app=portal", []string{"trucking/us-east-1/portal"}},
		{"addon by app", "app=platform", []string{"addon:us-east-1/platform"}},
		{"states", "state=Failed,Progressing", []string{"acme/us-east-1/api", "trucking/us-east-1/portal"}},
		{"placements", "kind=placement", []string{"acme/us-east-1/api", "trucking/eu-west-2/portal", "trucking/us-east-1/portal"}},
		{"namespaces and addons", "kind=namespace&kind=addon", []string{"addon:us-east-1/platform", "trucking/us-east-1"}},
		{"search", "q=PORT", []string{"trucking/eu-west-2/portal", "trucking/us-east-1/portal"}},
		{"nothing", "tenant=acme&state=Ready", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			f := FilterOf(q)
			if back := FilterOf(f.Query()); !cmp.Equal(f, back) {
				t.Errorf("FilterOf(%q).Query() reads back as %+v; want %+v", tt.query, back, f)
			}
			var got []string
			for u, st := range units {
				if f.matches(u, st) {
					got = append(got, u.String())
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
		})
	}
}
