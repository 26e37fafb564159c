package status

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render/secrets"
)

// A fleet at the scale of issue #19: scaleTenants tenants in the three regions of
// scaleRegions, each running one app ("web") in each, so 1,200 placements, plus a
// namespace unit per tenant and region and an addon per region.
const scaleTenants = 400

var (
	scaleRegions = []string{"us-east-1", "eu-west-2", "ap-northeast-2"}
	scaleSource  = "chart apps/web/chart (web 1.4.2)"
)

func scaleTenant(i int) string { return fmt.Sprintf("tenant-%04d", i) }

// scaleObjects are the rendered objects of a tenant's web placement.
func scaleObjects(tenant string) []*unstructured.Unstructured {
	obj := func(apiVersion, kind, name string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(tenant)
		u.SetName(name)
		return u
	}
	return []*unstructured.Unstructured{
		obj("v1", "ConfigMap", "web-config"), obj("v1", "Service", "web"), obj("apps/v1", "Deployment", "web"),
	}
}

// scaleReport is a pass of rev over the whole scale fleet. With trouble, some
// units fail as a bad day would have it: every 37th tenant's web fails its
// rollout in us-east-1, every 53rd is still progressing in eu-west-2, and one
// fails to render in ap-northeast-2; every 10th tenant's web is updated (its
// ConfigMap is new), the others unchanged.
func scaleReport(rev string, trouble bool) *reconciler.Report {
	return scaleReportOf(scaleTenants, rev, trouble)
}

// scaleReportOf is scaleReport with tenants tenants.
func scaleReportOf(tenants int, rev string, trouble bool) *reconciler.Report {
	r := &reconciler.Report{Revision: rev, Regions: map[string]*reconciler.RegionReport{}, Renders: tenants / 10 * len(scaleRegions)}
	for i, region := range scaleRegions {
		r.Waves = append(r.Waves, reconciler.WaveReport{Name: fmt.Sprintf("wave-%d", i+1), Regions: []string{region}, Healthy: true})
		rr := &reconciler.RegionReport{Changes: plan.ChangeSet{Region: region}, Units: map[fleet.UnitID]*reconciler.UnitResult{}}
		addon := fleet.AddonUnit(region, "ingress")
		rr.Changes.Changes = append(rr.Changes.Changes, plan.Change{Unit: addon, Action: plan.Unchanged})
		rr.Units[addon] = &reconciler.UnitResult{Action: plan.Unchanged, Health: reconciler.Healthy}
		for t := range tenants {
			tenant := scaleTenant(t)
			ns := fleet.UnitID{Tenant: tenant, Region: region}
			rr.Changes.Changes = append(rr.Changes.Changes, plan.Change{Unit: ns, Action: plan.Unchanged})
			rr.Units[ns] = &reconciler.UnitResult{Action: plan.Unchanged, Health: reconciler.Healthy}

			web := fleet.UnitID{Tenant: tenant, Region: region, App: "web"}
			objects := scaleObjects(tenant)
			applied := &plan.Inventory{Unit: web, Revision: rev1}
			for _, o := range objects[1:] {
				applied.Objects = append(applied.Objects, plan.RefOf(o))
			}
			ch := plan.Change{Unit: web, Action: plan.Unchanged, Applied: applied,
				Desired: &plan.Desired{Unit: web, Objects: objects, Source: scaleSource}}
			res := &reconciler.UnitResult{Action: plan.Unchanged, Health: reconciler.Healthy}
			if t%10 == 0 {
				ch.Action, res.Action = plan.Update, plan.Update
			}
			if trouble {
				switch {
				case region == "us-east-1" && t%37 == 5:
					res.Health, res.HealthErr = reconciler.Unhealthy, errors.New("Deployment/"+tenant+"/web: failed: ProgressDeadlineExceeded: ReplicaSet \"web-7c9f\" has timed out progressing")
				case region == "eu-west-2" && t%53 == 7:
					res.Health, res.HealthErr = reconciler.Progressing, errors.New("Deployment/"+tenant+"/web: not ready after 5m0s: Available: 1/2 replicas")
				case region == "ap-northeast-2" && t == 11:
					ch.Action, ch.Desired = plan.Keep, nil
					res = &reconciler.UnitResult{Action: plan.Keep}
				}
			}
			rr.Changes.Changes = append(rr.Changes.Changes, ch)
			rr.Units[web] = res
		}
		r.Regions[region] = rr
	}
	return r
}

// scaleStore is a Store that saw the scale fleet run rev1, then rev2 with
// trouble, and the DNS records of every placement (those failing in us-east-1
// unhealthy).
func scaleStore(t testing.TB, opts Options) *Store {
	t.Helper()
	return scaleStoreOf(t, scaleTenants, opts)
}

// scaleStoreOf is scaleStore with tenants tenants.
func scaleStoreOf(t testing.TB, tenants int, opts Options) *Store {
	t.Helper()
	s := New(opts)
	s.ObserveRevision(commit1)
	s.ObservePass(scaleReportOf(tenants, rev1, false), 95*time.Second)
	s.ObserveRevision(commit2)
	s.ObservePass(scaleReportOf(tenants, rev2, true), 4*time.Minute)
	var eps []DNSEndpoint
	for t := range tenants {
		tenant := scaleTenant(t)
		for _, region := range scaleRegions {
			eps = append(eps, DNSEndpoint{Tenant: tenant, Region: region, App: "web", Name: "web." + tenant + ".fleet.example.com",
				Healthy: !(region == "us-east-1" && t%37 == 5), HealthCheckID: "hc-" + tenant + "-" + region})
		}
	}
	s.ObserveDNS(eps)
	return s
}

// generatedAt matches the time a document was taken, which differs between two
// reads.
var generatedAt = regexp.MustCompile(`"generatedAt": "[^"]*"`)

// apiSize reads path from srv and returns its size as sent plain and gzipped.
func apiSize(t testing.TB, srv *httptest.Server, path string) (plain, gzipped int) {
	t.Helper()
	get := func(gz bool) []byte {
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if gz != (resp.Header.Get("Content-Encoding") == "gzip") {
			t.Fatalf("GET %s (gzip %t): Content-Encoding %q", path, gz, resp.Header.Get("Content-Encoding"))
		}
		return b
	}
	p, g := get(false), get(true)
	zr, err := gzip.NewReader(bytes.NewReader(g))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if generatedAt.ReplaceAll(unzipped, nil) == nil || !bytes.Equal(generatedAt.ReplaceAll(unzipped, nil), generatedAt.ReplaceAll(p, nil)) {
		t.Errorf("GET %s: the gzipped answer is not the plain one", path)
	}
	return len(p), len(g)
}

func TestScaleFleetCountsPlacementsAsValidateDoes(t *testing.T) {
	s := scaleStore(t, Options{})
	c := s.Status().Counts
	want := Counts{Placements: 1200, Namespaces: 1200, Addons: 3, Units: 2403}
	if c.Placements != want.Placements || c.Namespaces != want.Namespaces || c.Addons != want.Addons || c.Units != want.Units {
		t.Errorf("counts = %d placements, %d namespaces, %d addons, %d units; want %+v", c.Placements, c.Namespaces, c.Addons, c.Units, want)
	}
	// 11 tenants fail in us-east-1 (5, 42, ..., 375), 8 progress in eu-west-2,
	// one fails to render in ap-northeast-2.
	if got := c.PlacementStates; got[Failed] != 11 || got[Progressing] != 8 || got[RenderFailed] != 1 || got[Ready] != 1180 {
		t.Errorf("placement states = %v; want 11 Failed, 8 Progressing, 1 RenderFailed, 1180 Ready", got)
	}
}

// BenchmarkStatusAPI measures the answers of the status API for the scale fleet:
// their size (plain and gzipped, reported as metrics) and the time to serve them.
func BenchmarkStatusAPI(b *testing.B) {
	s := scaleStore(b, Options{})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	for _, path := range []string{"/api/v1/status", "/api/v1/summary", "/api/v1/summary?state=Failed", "/api/v1/units/tenant-0005/us-east-1/web", "/api/v1/apps"} {
		b.Run(path, func(b *testing.B) {
			plain, gz := apiSize(b, srv, path)
			for b.Loop() {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportMetric(float64(plain), "bytes")
			b.ReportMetric(float64(gz), "gzip-bytes")
		})
	}
}

// scaleEvents stands for a region's Kubernetes events in the browser test: a
// warning of the failing Deployment that carries a secret, which must not reach
// the page.
func scaleEvents(_ context.Context, unit fleet.UnitID, objects, _ []plan.ObjectRef) ([]KubeEvent, error) {
	if len(objects) == 0 {
		return nil, errors.New(unit.String() + ": no objects known")
	}
	at := time.Date(2026, 11, 20, 14, 20, 0, 0, time.UTC)
	return []KubeEvent{
		{Type: "Normal", Reason: "ScalingReplicaSet", Object: "Deployment/" + unit.Tenant + "/web", Message: "Scaled up replica set web-7c9f to 2", Count: 1, Last: at},
		{Type: "Warning", Reason: "BackOff", Object: "Pod/" + unit.Tenant + "/web-7c9f-x2k4p", Message: "Back-off restarting failed container web; env DB_PASSWORD=" + secretValue, Count: 14, Last: at.Add(time.Minute)},
	}, nil
}

// scaleRedactor redacts the secret the tests feed.
func scaleRedactor() *secrets.Redactor { return secrets.NewRedactor([]string{secretValue}) }
