package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render/secrets"
)

func TestFiltersSelectUnits(t *testing.T) {
	s := New(Options{})
	feedExample(s, loadExampleFleet(t))
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"a tenant's app", "tenant=trucking&app=portal", []string{"trucking/ap-northeast-2/portal", "trucking/eu-west-2/portal", "trucking/us-east-1/portal"}},
		{"a state in a region", "region=us-east-1&state=RenderFailed", []string{"charging-stations-ca/us-east-1/worker"}},
		{"namespace units of a region", "kind=namespace&region=ap-northeast-2", []string{"trucking/ap-northeast-2"}},
		{"a search, whatever the case", "q=LOGISTICS-EU/us", []string{"logistics-eu/us-east-1", "logistics-eu/us-east-1/portal", "logistics-eu/us-east-1/reports"}},
		{"nothing", "tenant=nobody", nil},
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + "/api/v1/status?" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var st Status
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range st.Placements {
				got = append(got, p.Unit.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("units (-want +got):\n%s", diff)
			}
			if st.Counts.Units != len(s.Status().Placements) || st.Counts.Placements != 15 {
				t.Errorf("counts = %d units, %d placements; want every unit counted whatever the filter", st.Counts.Units, st.Counts.Placements)
			}
		})
	}
}

func TestSummaryHeatmap(t *testing.T) {
	s := New(Options{})
	feedExample(s, loadExampleFleet(t))
	sum := s.Summary(Filter{Tenants: []string{"trucking"}})
	if len(sum.Rows) != 1 || sum.Rows[0].Tenant != "trucking" {
		t.Fatalf("rows = %+v; want trucking's only", sum.Rows)
	}
	got := map[string]HeatCell{}
	for i, c := range sum.Rows[0].Cells {
		got[sum.Columns[i]] = c
	}
	// us-east-1: the namespace, api (progressing), portal, worker; ap-northeast-2:
	// the portal failed.
	want := map[string]HeatCell{
		"us-east-1":      {State: Progressing, Units: 4, NotReady: 1},
		"eu-west-2":      {State: Ready, Units: 4},
		"ap-northeast-2": {State: Failed, Units: 4, NotReady: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trucking's cells (-want +got):\n%s", diff)
	}
	if !slices.Equal(sum.Tenants, []string{AddonsRow, "charging-stations-ca", "logistics-eu", "trucking"}) || sum.Matched.Units != 12 {
		t.Errorf("tenants %v, %d units matched; want every tenant, 12 of trucking's units", sum.Tenants, sum.Matched.Units)
	}
	for _, tt := range []struct{ a, b, want State }{{Ready, Failed, Failed}, {Held, Progressing, Held}, {RenderFailed, Failed, Failed}, {"", Unknown, Unknown}, {Ready, Unknown, Unknown}} {
		if got := Worse(tt.a, tt.b); got != tt.want {
			t.Errorf("Worse(%q, %q) = %q; want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestUnitDetail(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{})
	s.ObserveRevision(commit1)
	first := f.readyReport(rev1)
	portal := unit("trucking/us-east-1/portal")
	deploy := plan.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "trucking", Name: "portal"}
	svc := plan.ObjectRef{Version: "v1", Kind: "Service", Namespace: "trucking", Name: "portal"}
	old := plan.ObjectRef{Version: "v1", Kind: "ConfigMap", Namespace: "trucking", Name: "portal-v1"}
	desired := func(source string) *plan.Desired {
		return &plan.Desired{Unit: portal, Source: source, Objects: objectsOf(deploy, svc)}
	}
	setAction(first.Regions["us-east-1"], plan.Change{Unit: portal, Action: plan.Create, Desired: desired("chart apps/portal/chart (portal 0.1.0)")})
	s.ObservePass(first, time.Second)
	s.ObserveRevision(commit2)
	second := f.readyReport(rev2)
	us := second.Regions["us-east-1"]
	setAction(us, plan.Change{Unit: portal, Action: plan.Update, Desired: desired("chart apps/portal/chart (portal 0.2.0)"),
		Applied: &plan.Inventory{Unit: portal, Revision: rev1, Objects: []plan.ObjectRef{deploy, old}}, Delete: []plan.ObjectRef{old}})
	us.Units[portal].Pruned = true
	s.ObservePass(second, time.Second)

	d, ok := s.Unit(portal)
	if !ok {
		t.Fatal("the unit is not known")
	}
	wantApply := &UnitApply{Revision: rev2, Action: "update", Created: []string{"Service/trucking/portal"}, Applied: []string{"Deployment/trucking/portal"},
		Deleted: []string{"ConfigMap/trucking/portal-v1"}, Objects: 2, Health: "healthy"}
	if diff := cmp.Diff(wantApply, d.LastApply, cmpIgnoreAt); diff != "" {
		t.Errorf("last apply (-want +got):\n%s", diff)
	}
	var revs []string
	for _, r := range d.Revisions {
		revs = append(revs, r.Revision[:7]+" "+r.Subject+" "+string(r.State))
	}
	if diff := cmp.Diff([]string{rev2[:7] + " " + commit2.Subject + " Ready", rev1[:7] + " " + commit1.Subject + " Ready"}, revs); diff != "" {
		t.Errorf("revisions (-want +got):\n%s", diff)
	}
	if d.Changed == nil || d.Changed.Revision != rev2 || d.Changed.Subject != commit2.Subject {
		t.Errorf("changed = %+v; want rev2, which updated the unit", d.Changed)
	}

	// A later revision that leaves the unit as it is: the unit runs it, but the
	// last change stays rev2's.
	rev3 := "0123456789abcdef0123456789abcdef01234567"
	s.ObserveRevision(Commit{Revision: rev3, Subject: "api: two replicas", Author: "Ana Lima"})
	s.ObservePass(f.readyReport(rev3), time.Second)
	d3, _ := s.Unit(portal)
	var changed []bool
	for _, r := range d3.Revisions {
		changed = append(changed, r.Changed)
	}
	if d3.Revision != rev3 || d3.Changed == nil || d3.Changed.Revision != rev2 || !slices.Equal(changed, []bool{false, true, true}) {
		t.Errorf("after an unchanged pass: runs %.7s, changed %+v, revisions changed %v; want rev3, rev2, [false true true]", d3.Revision, d3.Changed, changed)
	}
	if d.Source != "chart apps/portal/chart (portal 0.2.0)" || d.Kind != KindPlacement || d.Commit == nil || d.Commit.Author != commit2.Author {
		t.Errorf("source %q, kind %q, commit %+v; want the new chart version, a placement, rev2's commit", d.Source, d.Kind, d.Commit)
	}

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for path, want := range map[string]int{
		"/api/v1/units/trucking/us-east-1/portal":    200,
		"/api/v1/units/trucking/us-east-1":           200,
		"/api/v1/units/addon:us-east-1/nothing":      404,
		"/api/v1/units/trucking/us-east-1/a/b":       400,
		"/api/v1/events/trucking/us-east-1/portal":   501,
		"/api/v1/events/nobody/us-east-1/portal":     501,
		"/api/v1/units/trucking/nowhere/portal":      404,
		"/api/v1/history":                            200,
		"/api/v1/apps":                               200,
		"/api/v1/summary?tenant=trucking&rows=false": 200,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		decodeErr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %s; want %d", path, resp.Status, want)
		}
		if msg, _ := body["error"].(string); want >= 400 && (decodeErr != nil || msg == "") {
			t.Errorf("GET %s: %v %v; want {\"error\": ...}", path, body, decodeErr)
		}
	}
}

// cmpIgnoreAt leaves out when a UnitApply was taken.
var cmpIgnoreAt = cmp.Transformer("noAt", func(a *UnitApply) *UnitApply {
	if a == nil {
		return nil
	}
	c := *a
	c.At = time.Time{}
	return &c
})

func TestUnitEvents(t *testing.T) {
	f := loadExampleFleet(t)
	var asked []string
	read := func(_ context.Context, u fleet.UnitID, objects, _ []plan.ObjectRef) ([]KubeEvent, error) {
		for _, o := range objects {
			asked = append(asked, o.String())
		}
		if u.Region == "eu-west-2" {
			return nil, errors.New("eu-west-2: Unauthorized; token " + secretValue)
		}
		t0 := time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)
		return []KubeEvent{
			{Type: "Normal", Reason: "Scheduled", Object: "Pod/trucking/portal-1", Message: "assigned", Last: t0},
			{Type: "Warning", Reason: "BackOff", Object: "Pod/trucking/portal-1", Message: "env " + secretValue, Last: t0.Add(time.Minute), Count: 3},
		}, nil
	}
	// The Redactor comes with a pass, as the daemon's does: before it, no event
	// is served, since what the region says is not redacted.
	clock := newClock()
	s := New(Options{Events: read, Now: clock.Now})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	s.ObservePass(f.readyReport(rev1), time.Second)
	if code, body := getBody(t, srv.URL+"/api/v1/events/trucking/us-east-1/portal"); code != http.StatusServiceUnavailable || strings.Contains(body, secretValue) {
		t.Errorf("events before a pass brought a Redactor: %d %s; want 503", code, body)
	}
	r := f.readyReport(rev1)
	r.Redactor = secrets.NewRedactor([]string{secretValue})
	s.ObservePass(r, time.Second)
	portal := unit("trucking/us-east-1/portal")
	s.ObserveHealth(portal, UnitHealth{State: Ready, At: time.Now(), Objects: []ObjectStatus{{Group: "apps", Kind: "Deployment", Namespace: "trucking", Name: "portal", Status: "Current"}}})

	get := func(path string) (int, string) { return getBody(t, srv.URL+path) }
	code, body := get("/api/v1/events/trucking/us-east-1/portal")
	var got struct{ Events []KubeEvent }
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
		t.Fatalf("events: %d %s (%v)", code, body, err)
	}
	if len(got.Events) != 2 || got.Events[0].Reason != "BackOff" || strings.Contains(body, secretValue) {
		t.Errorf("events = %s; want both, newest first, the secret redacted", body)
	}
	if !slices.Equal(asked, []string{"Deployment/trucking/portal"}) {
		t.Errorf("the reader was asked for %v; want the unit's objects", asked)
	}
	// Asked again within ten seconds, the Store answers what it read; later, it
	// reads again.
	clock.Add(5 * time.Second)
	if code, again := get("/api/v1/events/trucking/us-east-1/portal"); code != 200 || again != body || len(asked) != 1 {
		t.Errorf("events asked again at once: %d, the reader asked %d times; want the same answer, read once", code, len(asked))
	}
	clock.Add(6 * time.Second)
	if code, _ := get("/api/v1/events/trucking/us-east-1/portal"); code != 200 || len(asked) != 2 {
		t.Errorf("events asked 11s later: %d, the reader asked %d times; want them read again", code, len(asked))
	}
	code, body = get("/api/v1/events/trucking/eu-west-2/portal")
	if code != http.StatusBadGateway || !strings.Contains(body, "Unauthorized") || strings.Contains(body, secretValue) {
		t.Errorf("events of an unreadable region: %d %s; want 502 with the reason, redacted", code, body)
	}
	if code, _ := get("/api/v1/events/nobody/us-east-1/portal"); code != http.StatusNotFound {
		t.Errorf("events of an unknown unit: %d; want 404", code)
	}
}

// TestEventsAfterARotation: once a pass applied a revision with a new secret,
// the old value, which pods of the old revision may still print, stays
// redacted.
func TestEventsAfterARotation(t *testing.T) {
	f := loadExampleFleet(t)
	const oldSecret, newSecret = "old-password-0c9e4a71", "new-password-5b2d8f03"
	read := func(context.Context, fleet.UnitID, []plan.ObjectRef, []plan.ObjectRef) ([]KubeEvent, error) {
		return []KubeEvent{{Type: "Warning", Reason: "BackOff", Object: "Pod/trucking/portal-5d8f-x2k4p", Message: "env " + oldSecret + " " + newSecret}}, nil
	}
	clock := newClock()
	s := New(Options{Events: read, Now: clock.Now})
	for _, pass := range []struct{ rev, secret string }{{rev1, oldSecret}, {rev2, newSecret}, {rev2, newSecret}} {
		r := f.readyReport(pass.rev)
		r.Redactor = secrets.NewRedactor([]string{pass.secret})
		s.ObservePass(r, time.Second)
	}
	events, err := s.UnitEvents(t.Context(), unit("trucking/us-east-1/portal"))
	if err != nil || len(events) != 1 {
		t.Fatalf("events: %v, %v", events, err)
	}
	if m := events[0].Message; strings.Contains(m, oldSecret) || strings.Contains(m, newSecret) {
		t.Errorf("message = %q; want both the new secret and the rotated one redacted", m)
	}
}

// TestEventReadsPerRegionAreBounded: while four units of a region are being read,
// a fifth's events are answered 429; another region's are read.
func TestEventReadsPerRegionAreBounded(t *testing.T) {
	f := loadExampleFleet(t)
	started, release := make(chan fleet.UnitID, 10), make(chan struct{})
	read := func(_ context.Context, u fleet.UnitID, _, _ []plan.ObjectRef) ([]KubeEvent, error) {
		started <- u
		if u.Region == "us-east-1" {
			<-release
		}
		return nil, nil
	}
	r := f.readyReport(rev1)
	r.Redactor = secrets.NewRedactor([]string{secretValue})
	s := New(Options{Events: read})
	s.ObservePass(r, time.Second)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	var east, west []fleet.UnitID
	for _, u := range s.sortedUnits() {
		switch u.Region {
		case "us-east-1":
			east = append(east, u)
		case "eu-west-2":
			west = append(west, u)
		}
	}
	if len(east) <= maxEventReadsPerRegion || len(west) == 0 {
		t.Fatalf("%d units in us-east-1, %d in eu-west-2: the example cannot fill a region", len(east), len(west))
	}
	var wg sync.WaitGroup
	for _, u := range east[:maxEventReadsPerRegion] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := http.Get(srv.URL + "/api/v1/events/" + u.String()); err == nil {
				resp.Body.Close()
			}
		}()
		<-started
	}
	if code, body := getBody(t, srv.URL+"/api/v1/events/"+east[maxEventReadsPerRegion].String()); code != http.StatusTooManyRequests {
		t.Errorf("a fifth unit of a region read four times at once: %d %s; want 429", code, body)
	}
	if code, body := getBody(t, srv.URL+"/api/v1/events/"+west[0].String()); code != http.StatusOK {
		t.Errorf("a unit of another region: %d %s; want 200", code, body)
	}
	close(release)
	wg.Wait()
}

// getBody GETs url and returns the status code and the body.
func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// objectsOf returns objects with the references given.
func objectsOf(refs ...plan.ObjectRef) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(refs))
	for i, r := range refs {
		o := &unstructured.Unstructured{}
		o.SetGroupVersionKind(r.GroupVersionKind())
		o.SetNamespace(r.Namespace)
		o.SetName(r.Name)
		out[i] = o
	}
	return out
}

// TestCountsAgreeWithValidate counts fleet-example's units after a pass as
// `meridian validate` counts its model: placements are tenant × region × app
// (fleet.Model.Placements), addon units are counted apart, and so are the
// tenants' namespace units.
func TestCountsAgreeWithValidate(t *testing.T) {
	m, err := fleet.LoadDir("../../fleet-example")
	if err != nil {
		t.Fatal(err)
	}
	namespaces := 0
	for _, tenant := range m.Tenants {
		namespaces += len(tenant.Spec.Regions)
	}
	s := New(Options{})
	s.ObservePass(loadExampleFleet(t).readyReport(rev1), time.Second)
	c := s.Status().Counts
	want := Counts{Placements: len(m.Placements()), Namespaces: namespaces, Addons: len(m.AddonPlacements())}
	want.Units = want.Placements + want.Namespaces + want.Addons
	if c.Placements != want.Placements || c.Namespaces != want.Namespaces || c.Addons != want.Addons || c.Units != want.Units || c.PlacementStates[Ready] != want.Placements {
		t.Errorf("counts = %+v; want %d placements (as validate says), %d namespace units, %d addon units", c, want.Placements, want.Namespaces, want.Addons)
	}
	if want.Placements == c.Units {
		t.Error("the example fleet has no namespace or addon units: the test cannot tell them from placements")
	}
}
