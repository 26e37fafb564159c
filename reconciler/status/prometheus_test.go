package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"meridian.dev/meridian/internal/testenv/syncbuf"
)

const dashboardFile = "../../deploy/grafana/meridian-dashboard.json"

// panel is what the tests read of a Grafana panel.
type panel struct {
	Title   string  `json:"title"`
	Type    string  `json:"type"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// dashboardQueries returns every query of the dashboard by panel title, with
// Grafana's variables replaced as Grafana would with every tenant and region
// selected.
func dashboardQueries(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := strings.NewReplacer("$__rate_interval", "20s", "$__interval", "5s", "$__range", "5m", "$tenant", ".*", "$region", ".*")
	out := map[string][]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, target := range p.Targets {
				if target.Expr == "" {
					t.Errorf("panel %q has a target without expr", p.Title)
					continue
				}
				expr := vars.Replace(target.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("panel %q: a variable the test does not know in %s", p.Title, target.Expr)
				}
				out[p.Title] = append(out[p.Title], expr)
			}
		}
	}
	walk(d.Panels)
	return out
}

func TestDashboardCoversTheMetrics(t *testing.T) {
	queries := dashboardQueries(t)
	var all []string
	for _, qs := range queries {
		all = append(all, qs...)
	}
	text := strings.Join(all, "\n")
	for _, metric := range []string{
		"meridian_placement_sync_state", "meridian_revision_info", "meridian_placement_revision_info",
		"meridian_placement_last_sync_timestamp_seconds", "meridian_pass_duration_seconds_bucket",
		"meridian_render_duration_seconds_bucket", "meridian_placement_drifted_objects", "meridian_dns_endpoint_healthy",
		"meridian_route53_requests_total", "meridian_route53_throttles_total", "meridian_git_fetch_failures_total",
		"meridian_held_deletions",
	} {
		if !regexp.MustCompile(`\b` + metric + `\b`).MatchString(text) {
			t.Errorf("no panel of %s shows %s", dashboardFile, metric)
		}
	}
}

// TestDashboardQueriesInPrometheus runs Debian's Prometheus against the handler,
// fed a realistic day, and runs every query of the Grafana dashboard: each must
// succeed and return data.
func TestDashboardQueriesInPrometheus(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian: apt-get install prometheus); skipping the dashboard queries against a real Prometheus")
	}
	f := loadExampleFleet(t)
	s := New(Options{})
	feedExample(s, f)
	target := httptest.NewServer(s.Handler())
	defer target.Close()

	// Keep the daemon busy while Prometheus scrapes, so that rates and quantiles
	// have something to show.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < 400; i++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			r := f.troubledReport()
			if i%2 == 0 {
				r = f.readyReport(rev2)
			}
			s.ObserveRender(time.Duration(200+i%7*100)*time.Millisecond, i%3)
			s.ObservePass(r, time.Duration(20+i%5*10)*time.Second)
			s.ObservePass(f.troubledReport(), 5*time.Minute)
			s.ObserveDrift(f.driftReport(rev2))
			s.Route53Request("ChangeResourceRecordSets", i%3 == 0)
			s.Route53Request("GetChange", false)
			if i%4 == 0 {
				s.ObserveFetchFailure(errors.New("fetch: connection reset by peer"))
				s.ObserveRefused(Commit{Revision: fmt.Sprintf("%040d", i), Subject: "typo"}, []error{errors.New(`tenants/acme.yaml:3: unknown field "regoins"`)})
			}
		}
	})
	var once sync.Once
	quiet := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer quiet()

	prom := startPrometheus(t, bin, strings.TrimPrefix(target.URL, "http://"))
	// Wait until Prometheus has scraped the target several times.
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := prom.query(`count_over_time(up{job="meridian"}[1m]) >= 5 and up{job="meridian"} == 1`)
		if err == nil && len(res) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus did not scrape the handler: %v %v\n%s", res, err, prom.logs())
		}
		time.Sleep(500 * time.Millisecond)
	}

	queries := dashboardQueries(t)
	n := 0
	for _, title := range slices.Sorted(maps.Keys(queries)) {
		for _, q := range queries[title] {
			n++
			res, err := prom.query(q)
			switch {
			case err != nil:
				t.Errorf("panel %q: %s: %v", title, q, err)
			case len(res) == 0:
				t.Errorf("panel %q: %s: no data", title, q)
			case allNaN(res):
				t.Errorf("panel %q: %s: only NaN", title, q)
			}
		}
	}
	if n < 15 {
		t.Errorf("%d dashboard queries; want every panel's", n)
	}
	t.Logf("%d dashboard queries answered by %s", n, bin)

	// Prometheus counts placements as the API does: tenant × region × app, not
	// the namespace units and addons. The passes stop first (a unit that left
	// the fleet comes and goes with them), and the check waits for a scrape of
	// what they left.
	quiet()
	c := s.Status().Counts
	for kind, want := range map[string]int{KindPlacement: c.Placements, KindNamespace: c.Namespaces} {
		q := `sum(meridian_placement_sync_state{kind="` + kind + `"})`
		var got string
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
			res, err := prom.query(q)
			if err != nil || len(res) != 1 {
				t.Fatalf("%s: %v %v", q, res, err)
			}
			if got, _ = res[0].Value[1].(string); got == strconv.Itoa(want) {
				break
			}
		}
		if got != strconv.Itoa(want) || want == 0 {
			t.Errorf("%s = %s; want %d, as /api/v1/status counts", q, got, want)
		}
	}
}

// promServer is a Prometheus server the test started.
type promServer struct {
	url    string
	stderr *syncbuf.Buffer
}

// startPrometheus runs the binary with its data in a temporary directory,
// scraping target every second; it is stopped when the test ends.
func startPrometheus(t *testing.T, bin, target string) *promServer {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: meridian\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	p := &promServer{url: "http://" + addr, stderr: &syncbuf.Buffer{}}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus is not ready after 30s: %v\n%s", err, p.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query runs an instant query and returns its series.
func (p *promServer) query(q string) ([]sample, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Status, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	switch body.Data.ResultType {
	case "vector":
		var out []sample
		err := json.Unmarshal(body.Data.Result, &out)
		return out, err
	case "scalar":
		var v [2]any
		err := json.Unmarshal(body.Data.Result, &v)
		return []sample{{Value: v}}, err
	}
	return nil, fmt.Errorf("unexpected result type %q", body.Data.ResultType)
}

func (p *promServer) logs() string { return p.stderr.String() }

// allNaN reports whether every value of the answer is NaN.
func allNaN(res []sample) bool {
	for _, s := range res {
		v, _ := s.Value[1].(string)
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) {
			return false
		}
	}
	return true
}
