package status

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render/secrets"
)

// TestObserveHealth checks that a watch's view of a unit changes its state
// between passes, is redacted, and leaves alone units it must not change.
func TestObserveHealth(t *testing.T) {
	f := loadExampleFleet(t)
	clock := newClock()
	s := New(Options{Now: clock.Now, Redactor: secrets.NewRedactor([]string{secretValue})})
	s.ObservePass(f.readyReport("3f1c9a7e5b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e"), time.Minute)
	portal := unit("trucking/us-east-1/portal")
	at := clock.Now().Add(time.Second)
	s.ObserveHealth(portal, UnitHealth{
		State: Progressing, Reason: "Deployment/trucking/portal: InProgress: 0 of 2 replicas " + secretValue, At: at,
		Objects: []ObjectStatus{{Group: "apps", Kind: "Deployment", Namespace: "trucking", Name: "portal", Status: "InProgress", Message: "0 of 2 " + secretValue}},
	})
	s.ObserveHealth(fleet.UnitID{Tenant: "nobody", Region: "us-east-1", App: "x"}, UnitHealth{State: Failed, At: at})

	var got *Placement
	st := s.Status()
	for i, p := range st.Placements {
		if p.Unit == portal {
			got = &st.Placements[i]
		}
		if p.Tenant == "nobody" {
			t.Errorf("a unit the Store did not know appeared: %s", p.Unit)
		}
	}
	if got == nil {
		t.Fatalf("no placement %s", portal)
	}
	if got.State != Progressing || !strings.HasPrefix(got.Reason, "Deployment/trucking/portal") {
		t.Errorf("state %s (%q), want Progressing with the Deployment's reason", got.State, got.Reason)
	}
	if len(got.Objects) != 1 || got.Objects[0].Status != "InProgress" || got.HealthAt == nil || !got.HealthAt.Equal(at) {
		t.Errorf("objects %+v at %v, want the Deployment InProgress at %v", got.Objects, got.HealthAt, at)
	}
	if strings.Contains(got.Reason+got.Objects[0].Message, secretValue) {
		t.Errorf("a secret reached the status: %q %q", got.Reason, got.Objects[0].Message)
	}

	s.ObserveHealth(portal, UnitHealth{State: Ready, At: at.Add(time.Second)})
	for _, p := range s.Status().Placements {
		if p.Unit == portal && (p.State != Ready || p.Reason != "") {
			t.Errorf("after recovery: %s (%q), want Ready", p.State, p.Reason)
		}
	}
}

// TestObserveHealthNotifies checks that a unit turning from Ready between passes,
// and back, is notified once each way, redacted, and that changes that keep it
// not Ready are not.
func TestObserveHealthNotifies(t *testing.T) {
	f := loadExampleFleet(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n := NewNotifier(NotifierOptions{WebhookURL: srv.URL + "/hook", Backoff: time.Millisecond})
	clock := newClock()
	s := New(Options{Now: clock.Now, Notifier: n, Redactor: secrets.NewRedactor([]string{secretValue})})
	s.ObserveRevision(commit1)
	s.ObservePass(f.readyReport(rev1), time.Minute)
	portal := unit("trucking/us-east-1/portal")
	at := clock.Now().Add(time.Second)
	s.ObserveHealth(portal, UnitHealth{State: Ready, At: at}) // no change
	s.ObserveHealth(portal, UnitHealth{State: Failed, Reason: "Deployment/trucking/portal: Failed: scaled to 0 " + secretValue, At: at})
	s.ObserveHealth(portal, UnitHealth{State: Progressing, Reason: "Deployment/trucking/portal: InProgress: 1/2", At: at}) // still not Ready
	s.ObserveHealth(portal, UnitHealth{State: Ready, At: at.Add(time.Second)})
	n.Close(5 * time.Second)

	type short struct{ Kind, Region, Revision, Subject string }
	var got []short
	for _, e := range rc.webhook {
		if e.Kind == EventSucceeded {
			continue // the pass's
		}
		got = append(got, short{e.Kind, e.Region, e.Revision, e.Subject})
		if !strings.Contains(e.Message, portal.String()) || strings.Contains(e.Message, secretValue) {
			t.Errorf("event %+v: want the unit named and no secret", e)
		}
	}
	want := []short{
		{EventUnhealthy, "us-east-1", rev1, commit1.Subject},
		{EventRecovered, "us-east-1", rev1, commit1.Subject},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestObserveHealthKeepsPassFailures checks that a watch's view does not turn a
// unit whose last pass failed to apply it, or could not reach its region, Ready:
// it runs an old revision, whatever its objects' health. Its objects are still
// recorded, its last sync does not move, and nothing is notified.
func TestObserveHealthKeepsPassFailures(t *testing.T) {
	f := loadExampleFleet(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	n := NewNotifier(NotifierOptions{WebhookURL: srv.URL + "/hook", Backoff: time.Millisecond})
	clock := newClock()
	s := New(Options{Now: clock.Now, Notifier: n})
	s.ObservePass(f.readyReport(rev1), time.Minute)
	portal := unit("trucking/us-east-1/portal")
	synced := func() time.Time {
		for _, p := range s.Status().Placements {
			if p.Unit == portal && p.LastSyncAt != nil {
				return *p.LastSyncAt
			}
		}
		return time.Time{}
	}
	before := synced()

	rep := f.readyReport(rev2)
	setApplyError(rep.Regions["us-east-1"], portal, "apply failed: the API server refused it")
	clock.Add(time.Minute)
	s.ObservePass(rep, time.Minute)

	at := clock.Now().Add(time.Second)
	s.ObserveHealth(portal, UnitHealth{State: Ready, At: at, Objects: []ObjectStatus{{Group: "apps", Kind: "Deployment", Namespace: "trucking", Name: "portal", Status: "Current"}}})
	n.Close(5 * time.Second)
	for _, p := range s.Status().Placements {
		if p.Unit != portal {
			continue
		}
		if p.State != Failed || !strings.Contains(p.Reason, "the API server refused it") {
			t.Errorf("after a failed apply and a Ready watch: %s (%q), want the apply's failure", p.State, p.Reason)
		}
		if len(p.Objects) != 1 {
			t.Errorf("objects %+v, want the watch's", p.Objects)
		}
	}
	if got := synced(); !got.Equal(before) {
		t.Errorf("last sync %v, want %v: the watch saw no pass succeed", got, before)
	}
	for _, e := range rc.webhook {
		if e.Kind == EventRecovered || e.Kind == EventUnhealthy {
			t.Errorf("notified %s: %s", e.Kind, e.Message)
		}
	}
}
