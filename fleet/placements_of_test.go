package fleet

import (
	"reflect"
	"testing"
)

// TestPlacementsOf checks that a tenant's placements are exactly those
// Placements lists for it, in the same order and with the same values, and
// that an unknown tenant has none.
func TestPlacementsOf(t *testing.T) {
	m, err := LoadDir("../fleet-example")
	if err != nil {
		t.Fatal(err)
	}
	all := m.Placements()
	for _, name := range []string{"trucking", "logistics-eu", "charging-stations-ca", "nobody"} {
		var want []Placement
		for _, p := range all {
			if p.Tenant.Metadata.Name == name {
				want = append(want, p)
			}
		}
		got := m.PlacementsOf(name)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PlacementsOf(%q): %d placements, want the %d of Placements", name, len(got), len(want))
		}
		if name != "nobody" && len(got) == 0 {
			t.Errorf("PlacementsOf(%q): none", name)
		}
	}
}
