package status

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// TestAnAddonAndAnAppOfOneName are two rows of the apps view, not one.
func TestAnAddonAndAnAppOfOneName(t *testing.T) {
	s := New(Options{})
	s.mu.Lock()
	s.placementOf(fleet.UnitID{Tenant: "trucking", Region: "us-east-1", App: "platform"}).state = Ready
	s.placementOf(fleet.AddonUnit("us-east-1", "platform")).state = Failed
	s.mu.Unlock()
	var got []string
	for _, v := range s.Apps() {
		for _, r := range v.Regions {
			got = append(got, fmt.Sprintf("%s addon=%t %s %d %v", v.Name, v.Addon, r.Region, r.Units, r.States))
		}
	}
	want := []string{"platform addon=false us-east-1 1 map[Ready:1]", "platform addon=true us-east-1 1 map[Failed:1]"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("apps view (-want +got):\n%s", diff)
	}
}
