package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render/secrets"
)

// fixedClock is a clock the tests move by hand.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fixedClock {
	return &fixedClock{t: time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)}
}

// row is what the tests compare of a placement.
type row struct {
	State    State
	Revision string
	Subject  string
	Drift    int
	DNS      string
}

func rows(st Status) map[fleet.UnitID]row {
	out := map[fleet.UnitID]row{}
	for _, p := range st.Placements {
		r := row{State: p.State, Revision: p.Revision, Subject: p.CommitSubject, Drift: p.Drift.Objects}
		for _, d := range p.DNS {
			r.DNS += fmt.Sprintf("%s=%t ", d.Name, d.Healthy)
		}
		r.DNS = strings.TrimSpace(r.DNS)
		out[p.Unit] = r
	}
	return out
}

func TestObservePassDerivesEveryPlacement(t *testing.T) {
	f := loadExampleFleet(t)
	clock := newClock()
	s := New(Options{Now: clock.Now})

	s.ObserveRevision(commit1)
	s.ObservePass(f.readyReport(rev1), 40*time.Second)
	want := map[fleet.UnitID]row{}
	for _, u := range f.allUnits() {
		want[u] = row{State: Ready, Revision: rev1, Subject: commit1.Subject}
	}
	if diff := cmp.Diff(want, rows(s.Status())); diff != "" {
		t.Fatalf("after a healthy pass (-want +got):\n%s", diff)
	}

	clock.Add(time.Hour)
	feedExample(s, f)
	st := s.Status()
	for _, u := range f.allUnits() {
		want[u] = row{State: Ready, Revision: rev2, Subject: commit2.Subject}
	}
	set := func(u string, state State, rev, subject string) {
		r := want[unit(u)]
		r.State, r.Revision, r.Subject = state, rev, subject
		want[unit(u)] = r
	}
	set("charging-stations-ca/us-east-1/worker", RenderFailed, rev1, commit1.Subject)
	set("trucking/us-east-1/api", Progressing, rev2, commit2.Subject)
	set("trucking/ap-northeast-2/portal", Failed, rev2, commit2.Subject)
	set("logistics-eu/us-east-1/reports", Held, rev1, commit1.Subject)
	for u, r := range want {
		if u.App == "portal" {
			r.DNS = fmt.Sprintf("portal.%s.fleet.example.com=%t", u.Tenant, u.Region != "ap-northeast-2")
			want[u] = r
		}
	}
	r := want[unit("trucking/eu-west-2/portal")]
	r.Drift = 1
	want[unit("trucking/eu-west-2/portal")] = r
	r = want[unit("logistics-eu/us-east-1/portal")]
	r.Drift = 2
	want[unit("logistics-eu/us-east-1/portal")] = r
	if diff := cmp.Diff(want, rows(st)); diff != "" {
		t.Errorf("after a troubled pass, a drift check and DNS (-want +got):\n%s", diff)
	}

	// The reasons people read.
	byUnit := map[string]Placement{}
	for _, p := range st.Placements {
		byUnit[p.Unit.String()] = p
	}
	for unit, wantReason := range map[string]string{
		"charging-stations-ca/us-east-1/worker": `map has no entry for key "queue"`,
		"trucking/us-east-1/api":                "not ready after 5m0s",
		"trucking/ap-northeast-2/portal":        "ProgressDeadlineExceeded",
		"logistics-eu/us-east-1/reports":        "deletions held: an earlier step failed",
	} {
		if p := byUnit[unit]; !strings.Contains(p.Reason, wantReason) || !strings.Contains(p.LastError+p.Reason, wantReason) {
			t.Errorf("%s: reason %q, last error %q; want them to say %q", unit, p.Reason, p.LastError, wantReason)
		}
	}
	if p := byUnit["trucking/eu-west-2/portal"]; p.Reason != "" || p.LastSyncAt == nil || !p.LastSyncAt.Equal(clock.Now()) || p.Wave != "canary" {
		t.Errorf("trucking/eu-west-2/portal: reason %q, last sync %v, wave %q; want no reason, synced now, wave canary", p.Reason, p.LastSyncAt, p.Wave)
	}
	if d := byUnit["logistics-eu/us-east-1/portal"].Drift; d.Action != "reported" || len(d.Details) != 2 || d.Details[1] != "ConfigMap/logistics-eu/portal: missing" {
		t.Errorf("logistics-eu/us-east-1/portal drift = %+v; want 2 reported objects named", d)
	}

	if diff := cmp.Diff([]Wave{
		{Name: "canary", Regions: []string{"eu-west-2"}, State: "healthy"},
		{Name: "main", Regions: []string{"us-east-1", "ap-northeast-2"}, State: "failed"},
	}, st.Waves); diff != "" {
		t.Errorf("waves (-want +got):\n%s", diff)
	}
	type regionRow struct {
		State                        string
		Held, Drifted, DNSOK, DNSAll int
	}
	gotRegions := map[string]regionRow{}
	for _, r := range st.Regions {
		gotRegions[r.Name] = regionRow{r.State, r.HeldDeletions, r.DriftedObjects, r.DNS.Healthy, r.DNS.Total}
	}
	if diff := cmp.Diff(map[string]regionRow{
		"eu-west-2":      {State: "converged", Drifted: 1, DNSOK: 2, DNSAll: 2},
		"us-east-1":      {State: "failed", Held: 2, Drifted: 2, DNSOK: 3, DNSAll: 3},
		"ap-northeast-2": {State: "failed", DNSOK: 0, DNSAll: 1},
	}, gotRegions); diff != "" {
		t.Errorf("regions (-want +got):\n%s", diff)
	}
	if st.Revision == nil || *st.Revision != commit2 {
		t.Errorf("revision = %+v; want %+v", st.Revision, commit2)
	}
	if st.LastPass == nil || st.LastPass.Converged || st.LastPass.Revision != rev2 || st.LastPass.DurationSeconds != 303 {
		t.Errorf("last pass = %+v; want rev2, not converged, 303s", st.LastPass)
	}
	kinds := map[string]int{}
	for _, e := range st.Errors {
		kinds[e.Kind]++
	}
	if diff := cmp.Diff(map[string]int{"render": 1, "health": 2, "held": 1, "rollout": 1, "fetch": 1}, kinds); diff != "" {
		t.Errorf("recent errors by kind (-want +got):\n%s", diff)
	}
	if st.Fetch.Failures != 1 || !strings.Contains(st.Fetch.LastError, "connection reset") {
		t.Errorf("fetch = %+v; want one failure, connection reset", st.Fetch)
	}
}

func TestObservePassLifecycle(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{Now: newClock().Now})
	s.ObserveRevision(commit1)
	s.ObservePass(f.readyReport(rev1), time.Second)

	t.Run("an unreachable region fails every unit it had, which keeps its revision", func(t *testing.T) {
		r := f.readyReport(rev2)
		r.Regions["ap-northeast-2"] = &reconciler.RegionReport{Err: errors.New("read inventory: dial tcp 127.0.0.1:40123: connection refused"), Units: map[fleet.UnitID]*reconciler.UnitResult{}}
		s.ObservePass(r, time.Second)
		for _, p := range s.Status().Placements {
			switch {
			case p.Region == "ap-northeast-2" && (p.State != Failed || p.Revision != rev1 || !strings.Contains(p.Reason, "connection refused")):
				t.Errorf("%s: %s at %s (%q); want Failed at rev1 with the region's error", p.Unit, p.State, p.Revision, p.Reason)
			case p.Region != "ap-northeast-2" && (p.State != Ready || p.Revision != rev2):
				t.Errorf("%s: %s at %s; want Ready at rev2", p.Unit, p.State, p.Revision)
			}
		}
	})

	t.Run("the regions of a skipped wave wait at their revision", func(t *testing.T) {
		r := f.readyReport(rev2)
		setHealth(r.Regions["eu-west-2"], unit("trucking/eu-west-2/api"), reconciler.Unhealthy, "Deployment/trucking/api: failed: Failed: CrashLoopBackOff")
		r.Waves[0].Healthy = false
		r.Waves[1].Skipped = true
		r.Stopped = "wave canary is not healthy, so revision 9b8a7c6d5e4f does not go on to later waves"
		for _, region := range r.Waves[1].Regions {
			delete(r.Regions, region)
		}
		s.ObservePass(r, time.Second)
		for _, p := range s.Status().Placements {
			if p.Region == "us-east-1" && (p.State != Progressing || !strings.HasPrefix(p.Reason, "waiting: wave canary is not healthy")) {
				t.Errorf("%s: %s (%q); want Progressing, waiting for wave canary", p.Unit, p.State, p.Reason)
			}
		}
	})

	t.Run("units that left the fleet leave the status once pruned", func(t *testing.T) {
		r := f.readyReport(rev2)
		eu := r.Regions["eu-west-2"]
		for _, ch := range eu.Changes.Changes {
			if ch.Unit.Tenant == "logistics-eu" {
				setAction(eu, plan.Change{Unit: ch.Unit, Action: plan.Prune})
				eu.Units[ch.Unit].Pruned = true
			}
		}
		// A unit the inventory no longer has is not in the plan at all.
		us := r.Regions["us-east-1"]
		us.Changes.Changes = us.Changes.Changes[1:]
		gone := f.units["us-east-1"][0]
		delete(us.Units, gone)
		s.ObservePass(r, time.Second)
		for _, p := range s.Status().Placements {
			if (p.Region == "eu-west-2" && p.Tenant == "logistics-eu") || p.Unit == gone {
				t.Errorf("%s is still shown (%s) after it was pruned", p.Unit, p.State)
			}
		}
	})
}

func TestObserveRefusedKeepsTheRevisionInUse(t *testing.T) {
	s := New(Options{Now: newClock().Now})
	s.ObserveRevision(commit1)
	bad := Commit{Revision: rev2, Subject: "add tenant acme", Author: "Jon Park"}
	s.ObserveRefused(bad, []error{
		errors.New(`tenants/acme.yaml:7: unknown field "regoins"`),
		errors.New("tenants/acme.yaml:9: app \"portl\" is not in apps/"),
	})
	st := s.Status()
	if st.Revision == nil || st.Revision.Revision != rev1 {
		t.Errorf("revision in use = %+v; want rev1", st.Revision)
	}
	if st.Refused == nil || st.Refused.Commit != bad || len(st.Refused.Errors) != 2 || !strings.Contains(st.Refused.Errors[0], "tenants/acme.yaml:7") {
		t.Errorf("refused = %+v; want rev2 with its two errors", st.Refused)
	}
	s.ObserveRevision(commit2)
	if st := s.Status(); st.Refused != nil {
		t.Errorf("refused = %+v after a later revision was accepted; want nil", st.Refused)
	}
}

func TestRecentErrorsAreBoundedAndDeduplicated(t *testing.T) {
	clock := newClock()
	s := New(Options{Now: clock.Now, RecentErrors: 3})
	for i := range 3 {
		clock.Add(time.Second)
		s.ObserveFetchFailure(errors.New("connection reset"))
		_ = i
	}
	st := s.Status()
	if len(st.Errors) != 1 || st.Errors[0].Count != 3 || !st.Errors[0].Last.Equal(clock.Now()) || st.Errors[0].First.Equal(st.Errors[0].Last) {
		t.Fatalf("errors = %+v; want one entry seen 3 times", st.Errors)
	}
	for i := range 5 {
		s.ObserveFetchFailure(fmt.Errorf("failure %d", i))
	}
	st = s.Status()
	var got []string
	for _, e := range st.Errors {
		got = append(got, e.Message)
	}
	if diff := cmp.Diff([]string{"failure 2", "failure 3", "failure 4"}, got); diff != "" {
		t.Errorf("ring of 3 (-want +got):\n%s", diff)
	}
	if st.Fetch.Failures != 8 {
		t.Errorf("fetch failures = %d; want 8", st.Fetch.Failures)
	}
}

// secretValue is a decrypted value that must never be shown.
const secretValue = "pg-pass-7Hq2vX9wLk"

func TestNothingStoredShowsASecret(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{Now: newClock().Now, Redactor: secrets.NewRedactor([]string{secretValue})})
	leak := "Secret/trucking/portal-db: apply failed: value " + secretValue + " is invalid"
	r := f.readyReport(rev1)
	setApplyError(r.Regions["eu-west-2"], unit("trucking/eu-west-2/portal"), leak)
	setHealth(r.Regions["us-east-1"], unit("trucking/us-east-1/portal"), reconciler.Unhealthy, "Deployment/trucking/portal: failed: env DB_PASSWORD="+secretValue)
	s.ObserveRevision(Commit{Revision: rev1, Subject: "rotate " + secretValue, Author: "x"})
	s.ObservePass(r, time.Second)
	d := f.driftReport(rev1)
	d.Regions["ap-northeast-2"].Err = errors.New("trucking/ap-northeast-2/portal: " + secretValue)
	s.ObserveDrift(d)
	s.ObserveFetchFailure(errors.New("auth " + secretValue))
	s.ObserveRefused(Commit{Revision: rev2, Subject: "x"}, []error{errors.New("tenants/t.yaml:1: " + secretValue)})

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/v1/status", "/metrics"} {
		body := get(t, srv.URL+path)
		if strings.Contains(body, secretValue) {
			t.Errorf("%s shows the secret value", path)
		}
		if path == "/api/v1/status" && strings.Count(body, secrets.Redacted) < 6 {
			t.Errorf("%s has %d redactions; want one for each place the secret was given", path, strings.Count(body, secrets.Redacted))
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 20 {
				switch (i + j) % 4 {
				case 0:
					s.ObservePass(f.troubledReport(), time.Second)
				case 1:
					s.ObserveDrift(f.driftReport(rev2))
				case 2:
					s.ObserveDNS(f.dnsEndpoints())
					s.Route53Request("GetChange", j%2 == 0)
				case 3:
					s.ObserveRevision(commit2)
					s.ObserveFetchFailure(errors.New("timeout"))
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				get(t, srv.URL+"/api/v1/status")
				get(t, srv.URL+"/metrics")
			}
		})
	}
	wg.Wait()
	var st Status
	if err := json.Unmarshal([]byte(get(t, srv.URL+"/api/v1/status")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Placements) != len(f.allUnits())+1 {
		t.Errorf("%d placements after concurrent updates; want %d", len(st.Placements), len(f.allUnits())+1)
	}
}

// get returns the body of a GET that must answer 200.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Error(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
