package status

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
)

// TestDashboardAtScaleInChromium shows a 1,200-placement fleet (400 tenants × 3
// regions, a bad day's failures in it) in every view of the dashboard, and
// compares what the page shows with what the API says. It logs the API's sizes
// and the page's times: how long the first view took to draw from the start of
// the page's load, and how long each draw takes.
func TestDashboardAtScaleInChromium(t *testing.T) {
	ctx, problems := browser(t)
	s := scaleStore(t, Options{Redactor: scaleRedactor(), Events: scaleEvents})
	// A secret that reached a unit's error must not reach its page.
	failing := unit("tenant-0005/us-east-1/web")
	rep := scaleReport(rev2, true)
	res := rep.Regions["us-east-1"].Units[failing]
	res.HealthErr = fmt.Errorf("%w; env DB_PASSWORD=%s", res.HealthErr, secretValue)
	s.ObservePass(rep, 4*time.Minute)
	s.ObserveHealth(failing, UnitHealth{State: Failed, Reason: "Deployment/tenant-0005/web: ProgressDeadlineExceeded", At: time.Now(), Objects: []ObjectStatus{
		{Kind: "ConfigMap", Namespace: "tenant-0005", Name: "web-config", Status: "Current"},
		{Kind: "Service", Namespace: "tenant-0005", Name: "web", Status: "Current"},
		{Group: "apps", Kind: "Deployment", Namespace: "tenant-0005", Name: "web", Status: "Failed", Message: "Progress deadline exceeded; DB_PASSWORD=" + secretValue},
	}})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	for _, path := range []string{"/api/v1/status", "/api/v1/summary", "/api/v1/summary?region=us-east-1&state=Failed", "/api/v1/units/" + failing.String(), "/api/v1/apps", "/api/v1/history"} {
		plain, gz := apiSize(t, srv, path)
		t.Logf("API size at %d placements: %-50s %9d bytes, %7d gzipped", s.Status().Counts.Placements, path, plain, gz)
	}
	timing := func(t *testing.T, view string) {
		t.Helper()
		b := eval[map[string]string](ctx, t, `({first: document.body.dataset.firstDrawMs, fetch: document.body.dataset.fetchMs, draw: document.body.dataset.drawMs})`)
		t.Logf("%s: first view drawn %s ms after the page began loading; last poll read the API in %s ms and drew in %s ms", view, b["first"], b["fetch"], b["draw"])
	}
	noSecret := func(t *testing.T) {
		t.Helper()
		if page := eval[string](ctx, t, `document.documentElement.outerHTML`); strings.Contains(page, secretValue) {
			t.Error("the page shows a secret value")
		}
	}

	t.Run("overview heatmap", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(1400, 1000),
			chromedp.Navigate(srv.URL+"/"),
			waitFor(`document.body.dataset.shown === "overview?"`, 30*time.Second),
		)
		if err != nil {
			t.Fatalf("load the dashboard: %v", err)
		}
		timing(t, "overview at 1,200 placements")
		sum := s.Summary(Filter{})
		if diff := cmp.Diff(wantCells(sum), eval[map[string]string](ctx, t, shownCells)); diff != "" {
			t.Errorf("heatmap (-want +got):\n%s", diff)
		}
		if got := eval[int](ctx, t, `document.querySelectorAll("#heatmap .tile").length`); got != scaleTenants+1 {
			t.Errorf("%d tiles; want one per tenant and one of the addons: %d", got, scaleTenants+1)
		}
		totals := eval[string](ctx, t, `document.getElementById("totals").textContent`)
		if want := "1200 placements (tenant × region × app), 1180 Ready · 1200 tenant namespace units · 3 addon units · 400 tenants in 3 regions"; totals != want {
			t.Errorf("totals = %q; want %q", totals, want)
		}
		legend := eval[string](ctx, t, `document.getElementById("legend").textContent`)
		for _, st := range sum.States {
			if want := fmt.Sprintf("%s %d", st, sum.Matched.UnitStates[st]); !strings.Contains(legend, want) {
				t.Errorf("legend %q lacks %q", legend, want)
			}
		}
		// The whole fleet fits a screen: the heatmap's height, and the page's
		// height above the heatmap's end.
		box := eval[map[string]float64](ctx, t, `(() => { const r = document.getElementById("heatmap").getBoundingClientRect(); return {height: r.height, bottom: r.bottom + window.scrollY}; })()`)
		t.Logf("the heatmap of %d tenants is %.0f px high and ends %.0f px from the top of the page (window 1400×1000)", scaleTenants, box["height"], box["bottom"])
		if box["bottom"] > 1000 {
			t.Errorf("the heatmap ends %.0f px down the page; want the fleet on one 1000 px screen", box["bottom"])
		}
		if n := eval[int](ctx, t, `document.querySelectorAll("#units tbody tr").length`); n != 0 {
			t.Errorf("%d units listed with 2,403 matching; want none, and a note to narrow the filters", n)
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "scale-overview.png", shot)
	})

	t.Run("filters from the address", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/?region=us-east-1&state=Failed&kind=placement"),
			waitFor(`document.body.dataset.shown === "overview?region=us-east-1&kind=placement&state=Failed"`, 20*time.Second),
		)
		if err != nil {
			t.Fatalf("load the filtered overview: %v (shown %q)", err, eval[string](ctx, t, `document.body.dataset.shown`))
		}
		timing(t, "filtered overview at 1,200 placements")
		f := Filter{Regions: []string{"us-east-1"}, States: []State{Failed}, Kinds: []string{KindPlacement}}
		want := map[string]string{}
		for _, p := range s.StatusOf(f).Placements {
			want[p.Unit.String()] = p.Kind + " " + string(p.State)
		}
		if len(want) != 11 {
			t.Fatalf("the API lists %d failed placements in us-east-1; the test fleet has 11", len(want))
		}
		if diff := cmp.Diff(want, eval[map[string]string](ctx, t, shownUnits)); diff != "" {
			t.Errorf("units listed (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantCells(s.Summary(f)), eval[map[string]string](ctx, t, shownCells)); diff != "" {
			t.Errorf("heatmap (-want +got):\n%s", diff)
		}
		form := eval[map[string]string](ctx, t, `({region: document.getElementById("filter-region").value, state: document.getElementById("filter-state").value, kind: document.getElementById("filter-kind").value})`)
		if diff := cmp.Diff(map[string]string{"region": "us-east-1", "state": "Failed", "kind": "placement"}, form); diff != "" {
			t.Errorf("the filters' fields do not say the address's filters (-want +got):\n%s", diff)
		}
		noSecret(t)
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "scale-filtered.png", shot)

		// A search narrows further; a click on a tenant's cell shows that tenant there.
		filterBy(ctx, t, "filter-q", "tenant-00")
		got := eval[map[string]string](ctx, t, shownUnits)
		if diff := cmp.Diff(map[string]string{"tenant-0005/us-east-1/web": "placement Failed", "tenant-0042/us-east-1/web": "placement Failed", "tenant-0079/us-east-1/web": "placement Failed"}, got); diff != "" {
			t.Errorf("search tenant-00 (-want +got):\n%s", diff)
		}
		eval[bool](ctx, t, `document.querySelector('#heatmap .tile[data-tenant="tenant-0042"] .cell[data-state]').click() === undefined`)
		waitShown(ctx, t)
		if hash := eval[string](ctx, t, `location.hash`); hash != "#/?q=tenant-00&tenant=tenant-0042&region=us-east-1&kind=placement&state=Failed" {
			t.Errorf("after a click on tenant-0042's cell, the address is %q", hash)
		}
		if got := eval[map[string]string](ctx, t, shownUnits); len(got) != 1 || got["tenant-0042/us-east-1/web"] == "" {
			t.Errorf("after a click on tenant-0042's cell, the units listed are %v", got)
		}
	})

	t.Run("unit page", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/unit/"+failing.String()),
			waitFor(`document.body.dataset.shown === "unit?`+failing.String()+`" && document.querySelectorAll("#unit-events tbody tr").length > 0`, 20*time.Second),
		)
		if err != nil {
			t.Fatalf("load the unit page: %v", err)
		}
		timing(t, "unit page at 1,200 placements")
		d, ok := s.Unit(failing)
		if !ok {
			t.Fatal("the store does not know the unit")
		}
		type shown struct {
			Facts                                  map[string]string
			Objects, DNS, Revisions, Events, Apply []string
		}
		got := eval[shown](ctx, t, `(() => {
  const rows = (id) => Array.from(document.querySelectorAll("#" + id + " tbody tr")).map((tr) => Array.from(tr.children).map((td) => td.textContent).join(" | "));
  const facts = {};
  for (const dd of document.querySelectorAll("#unit-facts dd")) facts[dd.dataset.fact] = dd.textContent;
  return {
    Facts: facts,
    Objects: rows("unit-objects"), DNS: rows("unit-dns"), Revisions: rows("unit-revisions").map((r) => r.split(" | ").filter((_, i) => i !== 3 && i !== 4).join(" | ")),
    Events: rows("unit-events").map((r) => r.split(" | ").slice(1).join(" | ")),
    Apply: Array.from(document.querySelectorAll("#unit-apply [data-change]")).map((e) => e.dataset.change + ": " + Array.from(e.querySelectorAll("li")).map((li) => li.textContent).join(", ")),
  };
})()`)
		want := shown{Apply: []string{}} // unchanged: nothing to list
		want.Facts = map[string]string{
			"kind": "placement (tenant × region × app)", "state": "Failed — " + d.Reason, "tenant": "tenant-0005",
			"region": "us-east-1 (wave wave-1)", "app": "web", "source": scaleSource,
			"revision": rev2[:12] + " " + commit2.Subject + " — " + commit2.Author,
		}
		for _, o := range d.Objects {
			want.Objects = append(want.Objects, o.Kind+"/"+o.Namespace+"/"+o.Name+" | "+o.Status+" | "+o.Message)
		}
		for _, e := range d.DNS {
			want.DNS = append(want.DNS, e.Name+" | "+e.HealthCheckID+" | "+map[bool]string{true: "healthy", false: "unhealthy"}[e.Healthy])
		}
		for _, r := range d.Revisions {
			want.Revisions = append(want.Revisions, r.Revision[:12]+" | "+r.Subject+" | "+r.Author+" | "+string(r.State)+" | "+map[bool]string{true: "changed", false: "unchanged"}[r.Changed])
		}
		events, err := s.UnitEvents(context.Background(), failing)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			msg := e.Message
			if e.Count > 1 {
				msg += " (" + strconv.Itoa(int(e.Count)) + "×)"
			}
			want.Events = append(want.Events, e.Type+" | "+e.Reason+" | "+e.Object+" | "+msg)
		}
		a := d.LastApply
		if a == nil || a.Action != "unchanged" || len(a.HeldDeletions) != 0 {
			t.Fatalf("last apply = %+v; the test fleet's tenant-0005 is unchanged", a)
		}
		for k := range got.Facts {
			if _, ok := want.Facts[k]; !ok {
				delete(got.Facts, k)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("unit page (-want +got):\n%s", diff)
		}
		if len(want.Objects) != 3 || len(want.DNS) != 1 || len(want.Revisions) != 2 || len(want.Events) != 2 {
			t.Errorf("the unit's API has %d objects, %d DNS records, %d revisions and %d events; want 3, 1, 2 and 2", len(want.Objects), len(want.DNS), len(want.Revisions), len(want.Events))
		}
		noSecret(t)
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "scale-unit.png", shot)

		// An updated unit lists what its last pass created and applied again.
		err = chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/unit/tenant-0010/eu-west-2/web"),
			waitFor(`document.body.dataset.shown === "unit?tenant-0010/eu-west-2/web"`, 20*time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		apply := eval[[]string](ctx, t, `Array.from(document.querySelectorAll("#unit-apply [data-change]")).map((e) => e.dataset.change + ": " + Array.from(e.querySelectorAll("li")).map((li) => li.textContent).join(", "))`)
		if diff := cmp.Diff([]string{"created: ConfigMap/tenant-0010/web-config", "applied: Service/tenant-0010/web, Deployment/tenant-0010/web"}, apply); diff != "" {
			t.Errorf("last apply of an updated unit (-want +got):\n%s", diff)
		}
	})

	t.Run("app view", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/apps"),
			waitFor(`document.body.dataset.shown === "apps?" && document.querySelectorAll("#apps tbody tr").length > 0`, 20*time.Second),
		)
		if err != nil {
			t.Fatalf("load the apps view: %v", err)
		}
		timing(t, "apps view at 1,200 placements")
		var want []string
		for _, a := range s.Apps() {
			for _, r := range a.Regions {
				var sources, revisions []string
				for _, c := range r.Sources {
					sources = append(sources, c.Value)
				}
				for _, c := range r.Revisions {
					revisions = append(revisions, c.Value)
				}
				want = append(want, fmt.Sprintf("%s %s %d %s %s", a.Name, r.Region, r.Units, strings.Join(sources, ","), strings.Join(revisions, ",")))
			}
		}
		got := eval[[]string](ctx, t, `Array.from(document.querySelectorAll("#apps tbody tr")).map((tr) => [tr.dataset.app, tr.dataset.region, tr.querySelector("td.n").textContent,
  Array.from(tr.querySelectorAll("[data-source]")).map((e) => e.dataset.source).join(","), Array.from(tr.querySelectorAll("[data-revision]")).map((e) => e.dataset.revision).join(",")].join(" "))`)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("apps (-want +got):\n%s", diff)
		}
		text := eval[string](ctx, t, `document.getElementById("apps").innerText`)
		if !strings.Contains(text, scaleSource) || !strings.Contains(text, commit2.Subject) {
			t.Errorf("the apps view does not say the chart and version (%q) and the revision's subject", scaleSource)
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "scale-apps.png", shot)
	})

	t.Run("history", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/history"),
			waitFor(`document.body.dataset.shown === "history?" && document.querySelectorAll("#history tbody tr").length > 0`, 20*time.Second),
		)
		if err != nil {
			t.Fatalf("load the history: %v", err)
		}
		timing(t, "history at 1,200 placements")
		var want []string
		for _, p := range s.History() {
			var regions []string
			for _, r := range p.Regions {
				regions = append(regions, r.Name+" "+r.State)
			}
			want = append(want, fmt.Sprintf("%s | %s — %s | %.1fs | %t | %s | %d", p.Revision[:12], p.Subject, p.Author, p.DurationSeconds, p.Converged, strings.Join(regions, ","), p.Placements))
		}
		got := eval[[]string](ctx, t, `Array.from(document.querySelectorAll("#history tbody tr")).map((tr) => [tr.children[1].textContent, tr.children[2].textContent, tr.children[3].textContent,
  tr.querySelector(".outcome").dataset.converged, Array.from(tr.querySelectorAll(".region-outcomes .badge")).map((b) => b.textContent).join(","), tr.children[6].firstChild.textContent.trim()].join(" | "))`)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		if len(want) != 3 {
			t.Errorf("the history has %d passes; the test fed 3", len(want))
		}
		noSecret(t)
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "scale-history.png", shot)
	})

	t.Run("a unit from the list, and back", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/?tenant=tenant-0042"),
			waitFor(`document.body.dataset.shown === "overview?tenant=tenant-0042"`, 20*time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		eval[bool](ctx, t, `document.querySelector('#units tr[data-unit="tenant-0042/us-east-1/web"] a').click() === undefined`)
		if err := chromedp.Do(ctx, waitFor(`document.body.dataset.shown === "unit?tenant-0042/us-east-1/web"`, 10*time.Second)); err != nil {
			t.Fatalf("a click on the unit did not open its page: %v", err)
		}
		if state := eval[string](ctx, t, `document.querySelector('#unit-facts dd[data-fact="state"] .state').textContent`); state != "Failed" {
			t.Errorf("the unit page says %q; want Failed", state)
		}
		eval[bool](ctx, t, `history.back() === undefined`)
		waitShown(ctx, t)
		if hash := eval[string](ctx, t, `location.hash`); hash != "#/?tenant=tenant-0042" {
			t.Errorf("back from the unit page: %q; want the tenant's overview", hash)
		}
	})

	t.Run("an addon, an unknown unit and one app", func(t *testing.T) {
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/unit/addon:eu-west-2/ingress"),
			waitFor(`document.body.dataset.shown === "unit?addon:eu-west-2/ingress"`, 20*time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		if kind := eval[string](ctx, t, `document.querySelector('#unit-facts dd[data-fact="kind"]').textContent`); kind != "platform addon" {
			t.Errorf("the addon's page says kind %q", kind)
		}
		err = chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/unit/nobody/eu-west-2/web"),
			waitFor(`document.body.dataset.shown === "unit?nobody/eu-west-2/web"`, 20*time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		if missing := eval[bool](ctx, t, `!document.getElementById("unit-missing").hidden && document.getElementById("unit-facts").childElementCount === 0`); !missing {
			t.Error("the page of a unit the daemon does not know does not say so")
		}
		err = chromedp.Do(ctx,
			chromedp.Navigate(srv.URL+"/#/app/web"),
			waitFor(`document.body.dataset.shown === "apps?web"`, 20*time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		if apps := eval[[]string](ctx, t, `[...new Set(Array.from(document.querySelectorAll("#apps tbody tr")).map((tr) => tr.dataset.app))]`); !slices.Equal(apps, []string{"web"}) {
			t.Errorf("#/app/web shows apps %v; want web only", apps)
		}
	})

	// A thousand tenants: the overview still fits a screen. Only measured here;
	// the views are compared with the API at 400 tenants above.
	t.Run("1,000 tenants", func(t *testing.T) {
		big := scaleStoreOf(t, 1000, Options{})
		bigSrv := httptest.NewServer(big.Handler())
		defer bigSrv.Close()
		for _, path := range []string{"/api/v1/status", "/api/v1/summary"} {
			plain, gz := apiSize(t, bigSrv, path)
			t.Logf("API size at %d placements: %-20s %9d bytes, %7d gzipped", big.Status().Counts.Placements, path, plain, gz)
		}
		err := chromedp.Do(ctx,
			chromedp.Navigate(bigSrv.URL+"/"),
			waitFor(`document.body.dataset.shown === "overview?"`, 30*time.Second),
		)
		if err != nil {
			t.Fatal(err)
		}
		timing(t, "overview at 3,000 placements (1,000 tenants)")
		if diff := cmp.Diff(wantCells(big.Summary(Filter{})), eval[map[string]string](ctx, t, shownCells)); diff != "" {
			t.Errorf("heatmap (-want +got):\n%s", diff)
		}
		box := eval[map[string]float64](ctx, t, `(() => { const r = document.getElementById("heatmap").getBoundingClientRect(); return {height: r.height, bottom: r.bottom + window.scrollY}; })()`)
		t.Logf("the heatmap of 1,000 tenants × 3 regions is %.0f px high and ends %.0f px from the top of the page (window 1400×1000)", box["height"], box["bottom"])
		if box["bottom"] > 1000 {
			t.Errorf("the heatmap ends %.0f px down the page; want the fleet on one 1000 px screen", box["bottom"])
		}
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		saveScreenshot(t, "scale-1000-tenants.png", shot)
	})

	// Chromium logs the answers the test asked for on purpose: a unit the daemon
	// does not know (404), and the events of the addon, whose objects the test's
	// reader does not know (502). Anything else is a problem of the page.
	var unexpected []string
	for _, p := range problems() {
		if strings.Contains(p, "Failed to load resource") && (strings.Contains(p, "/api/v1/units/nobody/") || strings.Contains(p, "/api/v1/events/nobody/") || strings.Contains(p, "/api/v1/events/addon:eu-west-2/ingress")) {
			continue
		}
		unexpected = append(unexpected, p)
	}
	if len(unexpected) > 0 {
		t.Errorf("the page logged problems:\n%s", strings.Join(unexpected, "\n"))
	}
}
