package status

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"meridian.dev/meridian/fleet"
)

// TestAddonUnits checks that an addon's unit is shown as the addon's, of no
// tenant, in the status API and the metrics.
func TestAddonUnits(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{Now: newClock().Now})
	s.ObservePass(f.readyReport("3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e"), time.Minute)

	want := fleet.AddonUnit("eu-west-2", "platform")
	var found *Placement
	for i, p := range s.Status().Placements {
		if p.Unit == want {
			found = &s.Status().Placements[i]
		}
	}
	if found == nil {
		t.Fatalf("no placement %s in the status", want)
	}
	if found.Addon != "platform" || found.Tenant != "" || found.App != "" || found.Region != "eu-west-2" || found.State != Ready {
		t.Errorf("placement %+v: want addon platform in eu-west-2, no tenant nor app, Ready", *found)
	}

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	line := `meridian_placement_sync_state{addon="platform",app="",kind="addon",region="eu-west-2",state="Ready",tenant=""} 1`
	if !strings.Contains(rec.Body.String(), line) {
		t.Errorf("/metrics lacks %s", line)
	}
}
