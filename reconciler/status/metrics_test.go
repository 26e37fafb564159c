package status

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/dns"
)

func TestMetricsFollowPrometheusNaming(t *testing.T) {
	f := loadExampleFleet(t)
	s := New(Options{Now: newClock().Now})
	feedExample(s, f)
	problems, err := testutil.GatherAndLint(s.metrics.registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "meridian_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}

	// Labels are bounded: units (tenant, region, app, addon), a fixed set of
	// values (kind, state, operation, result), and a revision on info metrics only.
	allowed := map[string]bool{"tenant": true, "region": true, "app": true, "addon": true, "kind": true, "state": true, "operation": true, "result": true}
	mfs, err := s.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "meridian_") {
			continue
		}
		seen++
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !allowed[l.GetName()] && (l.GetName() != "revision" || !strings.HasSuffix(mf.GetName(), "_info")) {
					t.Errorf("%s has label %s", mf.GetName(), l.GetName())
				}
			}
		}
	}
	if seen < 14 {
		t.Errorf("%d meridian_ metrics; want at least 14", seen)
	}
}

func TestMetricsOfTheExampleDay(t *testing.T) {
	f := loadExampleFleet(t)
	clock := newClock()
	s := New(Options{Now: clock.Now})
	feedExample(s, f)
	at := float64(clock.Now().Unix())

	tests := []struct {
		name, want string
	}{{
		name: "meridian_placement_sync_state",
		want: `
# HELP meridian_placement_sync_state The placement's sync state: 1 for its current state, 0 for the others (Ready, Progressing, Failed, Held, RenderFailed, Unknown). app is empty for a tenant's namespace; an addon's unit has its name in addon, and tenant and app empty; kind is placement (tenant × region × app), namespace or addon.
# TYPE meridian_placement_sync_state gauge
meridian_placement_sync_state{addon="",app="portal",kind="placement",region="ap-northeast-2",state="Failed",tenant="trucking"} 1
meridian_placement_sync_state{addon="",app="portal",kind="placement",region="ap-northeast-2",state="Held",tenant="trucking"} 0
meridian_placement_sync_state{addon="",app="portal",kind="placement",region="ap-northeast-2",state="Progressing",tenant="trucking"} 0
meridian_placement_sync_state{addon="",app="portal",kind="placement",region="ap-northeast-2",state="Ready",tenant="trucking"} 0
meridian_placement_sync_state{addon="",app="portal",kind="placement",region="ap-northeast-2",state="RenderFailed",tenant="trucking"} 0
meridian_placement_sync_state{addon="",app="portal",kind="placement",region="ap-northeast-2",state="Unknown",tenant="trucking"} 0
`,
	}, {
		name: "meridian_held_deletions",
		want: `
# HELP meridian_held_deletions Objects whose deletion the last pass held in the region (mass-deletion guard, or an earlier failure).
# TYPE meridian_held_deletions gauge
meridian_held_deletions{region="ap-northeast-2"} 0
meridian_held_deletions{region="eu-west-2"} 0
meridian_held_deletions{region="us-east-1"} 2
`,
	}, {
		name: "meridian_revision_info",
		want: `
# HELP meridian_revision_info The revision in use: the last one accepted; always 1.
# TYPE meridian_revision_info gauge
meridian_revision_info{revision="` + rev2 + `"} 1
`,
	}, {
		name: "meridian_git_fetch_failures_total",
		want: `
# HELP meridian_git_fetch_failures_total Failed fetches of the fleet repository.
# TYPE meridian_git_fetch_failures_total counter
meridian_git_fetch_failures_total 1
`,
	}, {
		name: "meridian_passes_total",
		want: `
# HELP meridian_passes_total Reconcile passes, by result: converged (every region healthy at the revision, nothing held) or problems.
# TYPE meridian_passes_total counter
meridian_passes_total{result="converged"} 1
meridian_passes_total{result="problems"} 1
`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if tt.name == "meridian_placement_sync_state" {
				// One placement is compared whole; the others are counted.
				got, err := testutil.GatherAndCount(s.metrics.registry, tt.name)
				if err != nil {
					t.Fatal(err)
				}
				if n := (len(f.allUnits()) + 1) * len(States); got != n {
					t.Errorf("%d sync state series; want %d (every placement × every state)", got, n)
				}
				body := scrape(t, s)
				for _, line := range strings.Split(strings.TrimSpace(want), "\n") {
					if !strings.Contains(body, line+"\n") {
						t.Errorf("/metrics lacks %s", line)
					}
				}
				return
			}
			if err := testutil.GatherAndCompare(s.metrics.registry, strings.NewReader(want), tt.name); err != nil {
				t.Error(err)
			}
		})
	}

	t.Run("one state per placement", func(t *testing.T) {
		counts := map[string]float64{}
		mfs, err := s.metrics.registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "meridian_placement_sync_state" {
				continue
			}
			for _, m := range mf.GetMetric() {
				key := ""
				for _, l := range m.GetLabel() {
					if l.GetName() != "state" {
						key += l.GetValue() + "/"
					}
				}
				counts[key] += m.GetGauge().GetValue()
			}
		}
		for unit, n := range counts {
			if n != 1 {
				t.Errorf("%s: %v states at 1; want exactly one", unit, n)
			}
		}
	})

	t.Run("route53 operations are bounded", func(t *testing.T) {
		s.Route53Request("ListHostedZonesByVPC-made-up", true)
		if got := testutil.ToFloat64(s.metrics.route53Requests.WithLabelValues("other")); got != 1 {
			t.Errorf("requests{operation=other} = %v; want 1", got)
		}
		if got := testutil.ToFloat64(s.metrics.route53Throttles.WithLabelValues("ChangeResourceRecordSets")); got != 1 {
			t.Errorf("throttles{operation=ChangeResourceRecordSets} = %v; want 1", got)
		}
		if got := testutil.ToFloat64(s.metrics.route53Requests.WithLabelValues("ChangeResourceRecordSets")); got != 2 {
			t.Errorf("requests{operation=ChangeResourceRecordSets} = %v; want 2", got)
		}
	})

	t.Run("per placement values", func(t *testing.T) {
		body := scrape(t, s)
		for _, line := range []string{
			`meridian_placement_drifted_objects{addon="",app="portal",kind="placement",region="us-east-1",tenant="logistics-eu"} 2`,
			`meridian_placement_drifted_objects{addon="",app="api",kind="placement",region="us-east-1",tenant="trucking"} 0`,
			`meridian_dns_endpoint_healthy{addon="",app="portal",kind="placement",region="ap-northeast-2",tenant="trucking"} 0`,
			`meridian_dns_endpoint_healthy{addon="",app="portal",kind="placement",region="eu-west-2",tenant="trucking"} 1`,
			`meridian_placement_revision_info{addon="",app="worker",kind="placement",region="us-east-1",revision="` + rev1 + `",tenant="charging-stations-ca"} 1`,
			`meridian_placement_last_sync_timestamp_seconds{addon="",app="portal",kind="placement",region="eu-west-2",tenant="trucking"} ` + strconv.FormatFloat(at, 'g', -1, 64),
			`meridian_pass_duration_seconds_count 2`,
			`meridian_render_duration_seconds_count 2`,
			`meridian_placements_rendered_total 16`,
			`meridian_placement_sync_state{addon="",app="",kind="namespace",region="eu-west-2",state="Ready",tenant="trucking"} 1`,
		} {
			if !strings.Contains(body, line+"\n") {
				t.Errorf("/metrics lacks %s", line)
			}
		}
	})

	t.Run("a pruned placement leaves the metrics", func(t *testing.T) {
		r := f.readyReport(rev2)
		eu := r.Regions["eu-west-2"]
		eu.Changes.Changes = eu.Changes.Changes[:len(eu.Changes.Changes)-1]
		gone := f.units["eu-west-2"][len(f.units["eu-west-2"])-1]
		delete(eu.Units, gone)
		s.ObservePass(r, time.Second)
		if body := scrape(t, s); strings.Contains(body, `app="`+gone.App+`",region="eu-west-2",state="Ready",tenant="`+gone.Tenant+`"`) {
			t.Errorf("%s is still in the metrics after it left", gone)
		}
	})
}

// scrape returns /metrics in Prometheus' text format.
func scrape(t *testing.T, s *Store) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func TestRoute53QuotasInStatusAndMetrics(t *testing.T) {
	s := New(Options{Now: newClock().Now})
	r := &reconciler.Report{Revision: "0123456789abcdef0123456789abcdef01234567", Regions: map[string]*reconciler.RegionReport{}, DNS: &reconciler.DNSReport{
		Quotas: dns.Quotas{
			HealthChecks: dns.Quota{Name: dns.QuotaHealthChecks, Limit: 200, Others: 12, Needed: 900},
			RecordSets:   dns.Quota{Name: dns.QuotaRecordSets, Limit: 10000, Others: 2, Needed: 3600},
		}}}
	s.ObservePass(r, time.Second)
	want := `
# HELP meridian_route53_quota_limit Route53's limit (health checks of the account, record sets of the zone) as last read; 0 when it could not be read.
# TYPE meridian_route53_quota_limit gauge
meridian_route53_quota_limit{quota="health_checks"} 200
meridian_route53_quota_limit{quota="record_sets"} 10000
# HELP meridian_route53_quota_needed What the fleet needs of the Route53 limit with every exposed placement published.
# TYPE meridian_route53_quota_needed gauge
meridian_route53_quota_needed{quota="health_checks"} 900
meridian_route53_quota_needed{quota="record_sets"} 3600
`
	if err := testutil.GatherAndCompare(s.metrics.registry, strings.NewReader(want), "meridian_route53_quota_limit", "meridian_route53_quota_needed"); err != nil {
		t.Error(err)
	}
	st := s.Status()
	if len(st.Route53Quotas) != 2 || st.Route53Quotas[0].Fits || !st.Route53Quotas[1].Fits {
		t.Fatalf("status quotas %+v", st.Route53Quotas)
	}
	if got, want := st.Route53Quotas[0].Summary, "health checks: the fleet needs 900 of 200 allowed (12 used by others): 712 over"; !strings.HasPrefix(got, want) {
		t.Errorf("summary %q, want it to start with %q", got, want)
	}
}
