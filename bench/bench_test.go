package main

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/fleetgen"
)

func TestVerb(t *testing.T) {
	for _, tc := range []struct {
		method, url, contentType, want string
	}{
		{"GET", "/api/v1/namespaces/t/configmaps/x", "", "GET"},
		{"GET", "/api/v1/namespaces/t/configmaps?labelSelector=a", "", "LIST"},
		{"GET", "/api/v1/namespaces/t", "", "GET"},
		{"GET", "/api/v1/namespaces", "", "LIST"},
		{"GET", "/apis/apps/v1/deployments?watch=true", "", "WATCH"},
		{"GET", "/apis/apps/v1/namespaces/t/deployments/web", "", "GET"},
		{"GET", "/api", "", "DISCOVERY"},
		{"GET", "/apis/apps/v1", "", "DISCOVERY"},
		{"GET", "/openapi/v3", "", "DISCOVERY"},
		{"POST", "/api/v1/namespaces/meridian-system/configmaps", "", "CREATE"},
		{"PUT", "/api/v1/namespaces/meridian-system/configmaps/x", "", "UPDATE"},
		{"PATCH", "/apis/apps/v1/namespaces/t/deployments/web?fieldManager=m", "application/apply-patch+yaml", "APPLY"},
		{"PATCH", "/apis/apps/v1/namespaces/t/deployments/web?dryRun=All", "application/apply-patch+yaml", "DRYRUN-APPLY"},
		{"PATCH", "/apis/apps/v1/namespaces/t/deployments/web", "application/merge-patch+json", "PATCH"},
		{"DELETE", "/api/v1/namespaces/t/services/web", "", "DELETE"},
		{"DELETE", "/api/v1/namespaces/t/services", "", "DELETECOLLECTION"},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := Verb(tc.method, u, tc.contentType); got != tc.want {
			t.Errorf("Verb(%s %s) = %s, want %s", tc.method, tc.url, got, tc.want)
		}
	}
}

func TestWritesAndDiff(t *testing.T) {
	before := map[string]int{"GET": 10, "APPLY": 2, "DRYRUN-APPLY": 1}
	after := map[string]int{"GET": 15, "APPLY": 2, "DRYRUN-APPLY": 4, "CREATE": 1}
	d := Diff(before, after)
	if diff := cmp.Diff(map[string]int{"GET": 5, "DRYRUN-APPLY": 3, "CREATE": 1}, d); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if got := Writes(d); got != 1 {
		t.Errorf("Writes = %d, want 1 (dry runs write nothing)", got)
	}
}

func TestParseRequestTotals(t *testing.T) {
	metrics := `# HELP apiserver_request_total [STABLE] Counter of apiserver requests
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"} 12
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="configmaps",scope="resource",subresource="",verb="POST",version="v1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="All",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 99
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="/metrics",verb="GET",version=""} 2
apiserver_request_duration_seconds_count{verb="GET"} 7
`
	got, err := parseRequestTotals(strings.NewReader(metrics))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"LIST": 12, "CREATE": 3, "DRYRUN-APPLY": 4, "APPLY": 5, "NONRESOURCE": 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseRequestTotals (-want +got):\n%s", diff)
	}
}

func TestProcParsers(t *testing.T) {
	cpu, err := parseStatCPU("1234 (meridian run) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 50 0 0 20 0 12 0 100 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 3 {
		t.Errorf("CPU = %v s, want 3 (250 + 50 ticks)", cpu)
	}
	rss, err := parseVmHWM(strings.NewReader("Name:\tmeridian\nVmPeak:\t 900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 100000 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 200 {
		t.Errorf("VmHWM = %v MiB, want 200", rss)
	}
	// And the harness's own process, which must have both.
	if _, err := CPUSeconds(os.Getpid()); err != nil {
		t.Error(err)
	}
	if _, err := PeakRSSMiB(os.Getpid()); err != nil {
		t.Error(err)
	}
}

// TestProxyCounts sends requests through a counting proxy to a TLS server standing
// in for an API server.
func TestProxyCounts(t *testing.T) {
	upstream := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, r.Method+" "+r.URL.Path)
	}))
	defer upstream.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: upstream.Certificate().Raw})
	p, err := StartProxy(&rest.Config{Host: upstream.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	client, err := rest.HTTPClientFor(&rest.Config{Host: p.URL, BearerToken: "token", TLSClientConfig: rest.TLSClientConfig{CAData: p.CAPEM}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/namespaces/t/configmaps/a"},
		{"GET", "/api/v1/namespaces/t/configmaps"},
		{"PUT", "/api/v1/namespaces/t/configmaps/a"},
	} {
		req, _ := http.NewRequestWithContext(context.Background(), r.method, p.URL+r.path, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != r.method+" "+r.path {
			t.Errorf("%s %s through the proxy: %s %q", r.method, r.path, resp.Status, body)
		}
	}
	if diff := cmp.Diff(map[string]int{"GET": 1, "LIST": 1, "UPDATE": 1}, p.Counts.Snapshot()); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestOneTenantFleet generates the smallest fleet, commits it to a local bare
// repository, prepares the baseline's jobs and values, and makes the incremental
// change.
// oneTenantFleet writes a fleet of one tenant in three regions with four apps
// into a temporary directory, pushed to a bare repository beside it.
func oneTenantFleet(t *testing.T) (f *Fleet, dir string) {
	t.Helper()
	dir = t.TempDir()
	remote := filepath.Join(dir, "remote.git")
	if err := (&Fleet{Dir: dir}).git(context.Background(), "init", "--quiet", "--bare", remote); err != nil {
		t.Fatal(err)
	}
	spec := fleetgen.Spec{Tenants: 1, Regions: 3, Apps: 4, Example: "../fleet-example", Secrets: true}
	f, err := writeFleet(context.Background(), filepath.Join(dir, "fleet"), spec, "Z0BENCH", remote)
	if err != nil {
		t.Fatal(err)
	}
	return f, dir
}

func TestOneTenantFleet(t *testing.T) {
	ctx := context.Background()
	f, dir := oneTenantFleet(t)
	if got := len(f.Model.Placements()); got != 12 {
		t.Fatalf("%d placements, want 12", got)
	}
	if f.Model.Fleet.Spec.DNS.HostedZoneID != "Z0BENCH" {
		t.Errorf("hosted zone %q, want the test server's", f.Model.Fleet.Spec.DNS.HostedZoneID)
	}

	tools := &Tools{Sops: "/bin/true", Helm: "/bin/true", Kubectl: "/bin/true"}
	b, err := NewBaseline(f, filepath.Join(dir, "baseline"), "kubeconfig", "key.txt", tools, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantNS := []string{"tenant-000 us-east-1", "tenant-000 eu-west-2", "tenant-000 ap-northeast-2"}
	if diff := cmp.Diff(wantNS, b.Namespaces); diff != "" {
		t.Errorf("namespace jobs (-want +got):\n%s", diff)
	}
	wantJobs := []string{
		"tenant-000 ap-northeast-2 api kustomize base 0",
		"tenant-000 ap-northeast-2 portal helm chart 1",
		"tenant-000 ap-northeast-2 portal-1 helm chart 0",
		"tenant-000 ap-northeast-2 worker helm chart 0",
	}
	if diff := cmp.Diff(wantJobs, b.Placements[:4]); diff != "" {
		t.Errorf("placement jobs (-want +got):\n%s", diff)
	}
	if len(b.Placements) != 12 || b.Decrypts != 3 {
		t.Errorf("%d placement jobs, %d decrypting; want 12, 3 (portal in each region)", len(b.Placements), b.Decrypts)
	}
	values, err := os.ReadFile(filepath.Join(b.Dir, "values", "tenant-000.eu-west-2.portal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"logFormat: json", "regionalHost: portal.tenant-000.eu-west-2.fleet.example.com", "replicas: 1"} {
		if !strings.Contains(string(values), want) {
			t.Errorf("values file lacks %q:\n%s", want, values)
		}
	}

	replicas, err := f.SetReplicas("tenant-000", "portal")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(ctx, "change"); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Model.Placements() {
		if p.App.Metadata.Name == "portal" && p.Values["replicas"] != replicas {
			t.Errorf("%s: replicas %v after the change, want %d", p.ID(), p.Values["replicas"], replicas)
		}
	}
}

func TestTable(t *testing.T) {
	r := &Results{Workloads: true, BaselineParallelism: 4, Sizes: []*Size{
		{Tenants: 1, Regions: 3, Apps: 4, Placements: 12, Units: 15,
			Meridian:    &Side{AppliedSeconds: 2, ReadySeconds: 4, CPUSeconds: 1, ClientRequests: map[string]int{"APPLY": 10}},
			Baseline:    &Side{AppliedSeconds: 10, ReadySeconds: 12, CPUSeconds: 8, ClientRequests: map[string]int{"APPLY": 20}},
			NoOpPoll:    &Cycle{},
			Incremental: []Incremental{{AppliedSeconds: 1}, {AppliedSeconds: 3}, {AppliedSeconds: 2}}},
		{Tenants: 100, Regions: 3, Apps: 4, Placements: 1200, Units: 1500,
			Meridian:    &Side{AppliedSeconds: 20, CPUSeconds: 12, PeakRSSMiB: 250},
			Incremental: []Incremental{{AppliedSeconds: 3}}},
	}}
	var b strings.Builder
	r.WriteTable(&b)
	for _, want := range []string{"2.00 s    10.00 s   5.0×", "median 2.00 s", "no-op poll (same commit): 0 passes",
		"one-tenant change at 1200 ÷ at 12: 1.50×", "CPU per placement at 1200 ÷ at 12: 0.12×", "peak RSS at 1200: 250 MiB"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestLastPassRendered reads the renders of the last finished pass from the
// daemon's log, whether the pass had problems or not.
func TestLastPassRendered(t *testing.T) {
	log := filepath.Join(t.TempDir(), "meridian.log")
	d := &Daemon{log: log}
	if _, ok := d.LastPassRendered(); ok {
		t.Error("a missing log reports a pass")
	}
	lines := `{"level":"INFO","msg":"new revision","revision":"a"}
{"level":"INFO","msg":"pass finished","revision":"a","rendered":1200}
{"level":"WARN","msg":"pass finished with problems","revision":"b","rendered":3,"error":"x"}
{"level":"INFO","msg":"applied","rendered":99}
`
	if err := os.WriteFile(log, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, ok := d.LastPassRendered(); !ok || n != 3 {
		t.Errorf("LastPassRendered() = %d, %v; want 3, true", n, ok)
	}
}

// TestToolModules: every module the baseline's CLIs are built from is where the
// bench looks for it.
func TestToolModules(t *testing.T) {
	for name, dir := range toolModules("..") {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
			t.Errorf("module %s: %v", name, err)
		}
	}
	for _, tool := range cliTools {
		if _, ok := toolModules("..")[tool.module]; !ok {
			t.Errorf("%s is built from module %q, which toolModules does not know", tool.name, tool.module)
		}
	}
}
