package fleetgen

import (
	"testing"

	"meridian.dev/meridian/fleet"
)

func TestWriteLoadsAsValidFleet(t *testing.T) {
	for _, s := range []Spec{
		{Tenants: 2, Regions: 3, Apps: 3, Secrets: true},
		{Tenants: 5, Regions: 7, Apps: 4},
	} {
		s.Example = "../../../fleet-example"
		dir := t.TempDir()
		if err := Write(dir, s); err != nil {
			t.Fatal(err)
		}
		m, err := fleet.LoadDir(dir)
		if err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		if got := len(m.Placements()); got != s.Placements() {
			t.Errorf("%+v: %d placements, want %d", s, got, s.Placements())
		}
	}
}
