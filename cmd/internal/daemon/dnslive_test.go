package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/reconciler/status"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

// TestDNSHealthIsLiveBetweenPasses runs the daemon on fleet-example with its
// regions in memory and Route53 through the real SDK client against the Route53
// test server, whose checkers probe each region's endpoint (a local HTTP server
// per region answering for each placement by Host). When one placement's
// endpoint starts failing, the status API and the meridian_dns_endpoint_healthy
// metric say so within seconds, without a pass; and again when it recovers.
func TestDNSHealthIsLiveBetweenPasses(t *testing.T) {
	// Each region's endpoint: an A record at its own loopback address, all on
	// one port, answering 503 for the placements marked down.
	var mu sync.Mutex
	down := map[string]bool{} // regional names
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		mu.Lock()
		defer mu.Unlock()
		if down[host] {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	regions := map[string]string{"us-east-1": "127.0.0.71", "eu-west-2": "127.0.0.72", "ap-northeast-2": "127.0.0.73"}
	port := 0
	for _, name := range []string{"us-east-1", "eu-west-2", "ap-northeast-2"} {
		l, err := net.Listen("tcp", net.JoinHostPort(regions[name], fmt.Sprint(port)))
		if err != nil {
			t.Skipf("cannot listen on %s: %v", regions[name], err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		srv := &http.Server{Handler: handler, ReadHeaderTimeout: time.Second}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}

	// Checks probe every 30 s × 0.005 = 150 ms; Route53's rates run 20 times
	// faster on both sides, the follower's budget of 0.5 reads a second with them.
	const rateScale = 20
	r53 := route53test.NewServer(route53test.Options{ProbeScale: 0.005, RateScale: rateScale})
	t.Cleanup(r53.Close)
	zoneID := r53.CreateZone("fleet.example.com")
	client := route53.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(r53.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "not-a-secret", ""),
		HTTPClient:   r53.Client(),
		Retryer:      func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }) },
	})

	dir := fleetCopy(t, zoneID, regions, port)
	keys, err := secrets.KeysFromFiles(filepath.Join(dir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(threeContexts), 0o600); err != nil {
		t.Fatal(err)
	}

	store := status.New(status.Options{})
	passes := make(chan *reconciler.Report, 10)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- reconciler.Run(ctx, reconciler.RunOptions{
			Poller:        &sources.Poller{Source: snapshotOf{dir}, Interval: time.Hour},
			Renderer:      render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)}),
			Kubeconfig:    kubeconfig,
			NewCluster:    func(string, *rest.Config) (reconciler.Cluster, error) { return &memCluster{}, nil },
			DriftInterval: -1,
			Route53:       client,
			DNS:           dns.Options{RateScale: rateScale, PollInterval: 10 * time.Millisecond, BaseBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond},
			DNSObserved:   func(eps []reconciler.DNSEndpointHealth) { store.ObserveDNS(dnsEndpoints(eps)) },
			Passed:        func(r *reconciler.Report) { store.ObservePass(r, r.Duration); passes <- r },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case r := <-passes:
		if err := r.Err(); err != nil {
			t.Fatalf("the first pass: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no pass within 60 s")
	}

	// patience bounds each wait below; it is not a speed target (a busy machine
	// delays the probes), so it is generous, and the times taken are logged.
	const patience = time.Minute
	const metric = `meridian_dns_endpoint_healthy{addon="",app="portal",kind="placement",region="us-east-1",tenant="trucking"}`
	within := func(what string, d time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > d {
				t.Fatalf("not within %s: %s", d, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(start)
	}
	metricIs := func(v string) func() bool {
		return func() bool { return scrape(t, store)[metric] == v }
	}
	apiHealthy := func() (healthy, found bool) {
		rec := httptest.NewRecorder()
		store.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
		var st status.Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatalf("the status API: %v", err)
		}
		for _, p := range st.Placements {
			for _, e := range p.DNS {
				if e.Tenant == "trucking" && e.Region == "us-east-1" && e.App == "portal" {
					return e.Healthy, true
				}
			}
		}
		return false, false
	}
	within("the published endpoint healthy in the metric", patience, metricIs("1"))
	if h, ok := apiHealthy(); !ok || !h {
		t.Fatalf("the status API shows trucking/us-east-1/portal's endpoint healthy=%v (found %v), want healthy", h, ok)
	}

	mu.Lock()
	down["portal.trucking.us-east-1.fleet.example.com"] = true
	mu.Unlock()
	took := within("the failing endpoint unhealthy in the metric", patience, metricIs("0"))
	t.Logf("unhealthy in the metric %s after the endpoint failed", took.Round(time.Millisecond))
	if h, ok := apiHealthy(); !ok || h {
		t.Errorf("the status API shows the failing endpoint healthy=%v (found %v), want unhealthy", h, ok)
	}
	// Only that endpoint: the same app of the same tenant in another region is healthy.
	if got := scrape(t, store)[`meridian_dns_endpoint_healthy{addon="",app="portal",kind="placement",region="eu-west-2",tenant="trucking"}`]; got != "1" {
		t.Errorf("trucking/eu-west-2/portal: %q, want 1", got)
	}

	mu.Lock()
	delete(down, "portal.trucking.us-east-1.fleet.example.com")
	mu.Unlock()
	took = within("the recovered endpoint healthy in the metric", patience, metricIs("1"))
	t.Logf("healthy again in the metric %s after the endpoint recovered", took.Round(time.Millisecond))

	select {
	case <-passes:
		t.Error("a pass ran: the health must be seen between passes")
	default:
	}
}

// scrape reads the store's metrics, by series.
func scrape(t *testing.T, store *status.Store) map[string]string {
	t.Helper()
	rec := httptest.NewRecorder()
	store.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := map[string]string{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			out[line[:i]] = line[i+1:]
		}
	}
	return out
}

// fleetCopy copies fleet-example, with the test zone, each region's endpoint
// an A record at its address and the exposed apps served over HTTP on port.
func fleetCopy(t *testing.T, zoneID string, regions map[string]string, port int) string {
	t.Helper()
	src, err := filepath.Abs("../../../fleet-example")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "fleet")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	edit := func(name string, f func(string) string) {
		t.Helper()
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out := f(string(b))
		if out == string(b) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	edit("fleet.yaml", func(s string) string { return strings.Replace(s, "Z0EXAMPLE0000000", zoneID, 1) })
	for name, addr := range regions {
		edit("regions/"+name+".yaml", func(s string) string {
			var out []string
			skipping := false
			for _, line := range strings.Split(s, "\n") {
				switch {
				case strings.HasPrefix(line, "  endpoint:"):
					out = append(out, "  endpoint:", "    type: A", "    target: "+addr)
					skipping = true
					continue
				case skipping && strings.HasPrefix(line, "    "):
					continue
				}
				skipping = false
				out = append(out, line)
			}
			return strings.Join(out, "\n")
		})
	}
	edit("apps/portal/app.yaml", func(s string) string {
		return strings.Replace(strings.Replace(s, "port: 443", fmt.Sprint("port: ", port), 1), "protocol: HTTPS", "protocol: HTTP", 1)
	})
	edit("apps/api/app.yaml", func(s string) string { return strings.Replace(s, "port: 80\n", fmt.Sprint("port: ", port, "\n"), 1) })
	return dir
}

// snapshotOf fetches a directory as the fleet repository's head.
type snapshotOf struct{ dir string }

func (s snapshotOf) Fetch(context.Context) (*sources.Snapshot, error) {
	return &sources.Snapshot{Dir: s.dir, Revision: "0123456789abcdef0123456789abcdef01234567", Commit: sources.Commit{Subject: "fleet-example"}}, nil
}

// memCluster is a region in memory whose units are healthy once applied.
type memCluster struct {
	mu   sync.Mutex
	invs []plan.Inventory
}

func (c *memCluster) Inventories(context.Context) ([]plan.Inventory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]plan.Inventory(nil), c.invs...), nil
}

func (c *memCluster) Apply(_ context.Context, u *render.Unit, _ *plan.Inventory) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := plan.DesiredOf(u)
	c.invs = append(c.invs, plan.Inventory{Unit: d.Unit, Digest: d.Digest})
	return nil
}

func (c *memCluster) Prune(context.Context, plan.Change) error { return nil }

func (c *memCluster) Wait(context.Context, *render.Unit, time.Duration) (apply.State, error) {
	return apply.Ready, nil
}

func (c *memCluster) Claim(context.Context, *render.Unit, *plan.Inventory) ([]plan.ObjectRef, error) {
	return nil, nil
}

func (c *memCluster) Drift(context.Context, *render.Unit) ([]apply.Drift, error) { return nil, nil }

// threeContexts is a kubeconfig with a context for each region of
// fleet-example; the server is never contacted.
const threeContexts = `apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: nobody
  user: {token: none}
contexts:
- name: us-east-1
  context: {cluster: nowhere, user: nobody}
- name: eu-west-2
  context: {cluster: nowhere, user: nobody}
- name: ap-northeast-2
  context: {cluster: nowhere, user: nobody}
`
