package reconciler_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/plan"
)

// dnsFixture is TestRun's fixture with a Route53 test server holding the fleet's
// zone, and an ingress per region that answers Route53's health checks from the
// region's Deployments.
type dnsFixture struct {
	*fixture
	r53    *route53test.Server
	client *route53.Client
	zoneID string
	// ips are the regions' load balancer addresses.
	ips map[string]string
	// portalPort is where every region's load balancer serves portal.
	portalPort int
	// events records Route53 changes and prunes, in order.
	events *events
	// checkUpdated, when set, is called before each UpdateHealthCheck reaches
	// Route53.
	checkUpdated func(in *route53.UpdateHealthCheckInput)
}

var dnsRegions = []string{"us-east-1", "eu-west-2", "ap-northeast-2"}

// dnsRateScale speeds up Route53's rates, in the test server and the daemon alike.
const dnsRateScale = 100

func newDNSFixture(t *testing.T) *dnsFixture {
	t.Helper()
	f := &dnsFixture{fixture: newFixture(t), ips: map[string]string{}, events: &events{}}
	// Clients ask from us-east-1: nearest is us-east-1, then eu-west-2, then
	// ap-northeast-2. A 10-second check is probed every 100ms.
	// Route53's documented rates are enforced a hundred times faster, and the
	// daemon keeps to them a hundred times faster.
	f.r53 = route53test.NewServer(route53test.Options{ProbeScale: 0.01, RateScale: dnsRateScale, ClientRegion: "us-east-1", SyncDelay: 50 * time.Millisecond})
	t.Cleanup(f.r53.Close)
	f.zoneID = f.r53.CreateZone("fleet.example.com")
	f.client = route53.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(f.r53.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
		HTTPClient:   f.r53.Client(),
		Retryer:      func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }) },
	})

	// Every region's load balancer has its own loopback address; portal (HTTPS) and
	// api (HTTP) have a port each, the same in every region.
	var apiPort int
	portalPort := &f.portalPort
	for i, region := range dnsRegions {
		ip, err := testbed.LoopbackAddr(i)
		if err != nil {
			t.Skip(err)
		}
		f.ips[region] = ip
		routes := map[string]testbed.Backend{}
		for _, tenant := range []string{"trucking", "charging-stations-ca", "logistics-eu", "freight"} {
			for _, app := range []string{"portal", "api"} {
				routes[app+"."+tenant+"."+region+".fleet.example.com"] = testbed.Backend{Namespace: tenant, Deployment: app}
			}
		}
		for _, l := range []struct {
			port *int
			tls  bool
		}{{portalPort, true}, {&apiPort, false}} {
			in, err := f.tb.Region(region).ServeIngress(net.JoinHostPort(ip, strconv.Itoa(*l.port)), l.tls, func(host string) (testbed.Backend, bool) { b, ok := routes[host]; return b, ok })
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(in.Close)
			_, port, _ := net.SplitHostPort(in.Addr)
			*l.port, _ = strconv.Atoi(port)
		}
	}

	files := map[string]string{
		"fleet.yaml": replace(t, file(t, "fleet.yaml"), "Z0EXAMPLE0000000", f.zoneID),
		"apps/portal/app.yaml": replace(t, replace(t, file(t, "apps/portal/app.yaml"), "port: 443", "port: "+strconv.Itoa(f.portalPort)),
			"intervalSeconds: 30\n      failureThreshold: 3", "intervalSeconds: 10\n      failureThreshold: 2"),
		"apps/api/app.yaml": replace(t, replace(t, file(t, "apps/api/app.yaml"), "port: 80", "port: "+strconv.Itoa(apiPort)),
			"intervalSeconds: 30\n      failureThreshold: 3", "intervalSeconds: 10\n      failureThreshold: 2"),
	}
	for _, region := range dnsRegions {
		name := "regions/" + region + ".yaml"
		content := file(t, name)
		start := strings.Index(content, "  endpoint:")
		end := strings.Index(content, "  values:")
		files[name] = content[:start] + "  endpoint:\n    type: A\n    target: " + f.ips[region] + "\n" + content[end:]
	}
	f.push(t, "DNS: the local zone and load balancers", files)
	return f
}

// once runs `meridian run --once` with Route53.
func (f *dnsFixture) once(t *testing.T) (*reconciler.Report, error) {
	t.Helper()
	opts := f.options()
	opts.Once = true
	opts.Route53 = recordingAPI{Route53API: f.client, events: f.events, checkUpdated: f.checkUpdated}
	opts.DNS = dns.Options{RateScale: dnsRateScale, PollInterval: 20 * time.Millisecond}
	opts.NewCluster = func(region string, cfg *rest.Config) (reconciler.Cluster, error) {
		c, err := realCluster(cfg)
		return recordingCluster{Cluster: c, events: f.events}, err
	}
	var report *reconciler.Report
	opts.Passed = func(r *reconciler.Report) { report = r }
	err := reconciler.Run(t.Context(), opts)
	return report, err
}

// published lists the placements with records in the zone, and those with health
// checks, as Route53 reports them through the SDK.
func (f *dnsFixture) published(t *testing.T) (records, checks []string) {
	t.Helper()
	cur, err := dns.NewApplier(f.client, dns.Options{HostedZoneID: f.zoneID, Fleet: "acme", RateScale: dnsRateScale}).Current(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range cur.HealthChecks {
		checks = append(checks, h.Unit().String())
	}
	slices.Sort(checks)
	for u := range cur.Published() {
		records = append(records, u.String())
	}
	slices.Sort(records)
	return records, checks
}

// answer waits until name resolves to want's address, and fails with the last
// answer otherwise.
func (f *dnsFixture) answer(t *testing.T, name, wantRegion string) {
	t.Helper()
	want := f.ips[wantRegion]
	deadline := time.Now().Add(30 * time.Second)
	got := ""
	for time.Now().Before(deadline) {
		if got = resolve(t, f.r53.DNSAddr, name); got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s answers %q, want %s's %s", name, got, wantRegion, want)
}

// exposed are the exposed placements (portal and api) among units.
func exposed(units map[string][]string) []string {
	var out []string
	for _, list := range units {
		for _, u := range list {
			if strings.HasSuffix(u, "/portal") || strings.HasSuffix(u, "/api") {
				out = append(out, u)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestDNS(t *testing.T) {
	f := newDNSFixture(t)
	ctx := t.Context()

	want := exposed(exampleUnits)
	t.Run("every exposed placement gets records and a health check once healthy", func(t *testing.T) {
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(report.DNS.Withdrawn.Records); n != 0 {
			t.Errorf("the first pass withdrew %d record groups from an empty zone", n)
		}
		records, checks := f.published(t)
		if diff := cmp.Diff(want, records); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, checks); diff != "" {
			t.Errorf("health checks (-want +got):\n%s", diff)
		}
		f.answer(t, "portal.trucking.fleet.example.com", "us-east-1")
		f.answer(t, "api.logistics-eu.fleet.example.com", "eu-west-2")
		f.answer(t, "portal.trucking.ap-northeast-2.fleet.example.com", "ap-northeast-2")
	})
	if t.Failed() {
		return
	}

	freight := strings.ReplaceAll(file(t, "tenants/charging-stations-ca.yaml"), "charging-stations-ca", "freight")
	freight = freight[:strings.Index(freight, "  regions:")] + "  regions: [eu-west-2, ap-northeast-2]\n  apps:\n    - name: portal\n"
	t.Run("a tenant added in git gets records in each of its regions", func(t *testing.T) {
		f.push(t, "freight: a new tenant", map[string]string{"tenants/freight.yaml": freight})
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, "freight/ap-northeast-2/portal", "freight/eu-west-2/portal")
		slices.Sort(want)
		records, checks := f.published(t)
		if diff := cmp.Diff(want, records); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, checks); diff != "" {
			t.Errorf("health checks (-want +got):\n%s", diff)
		}
		if got := len(report.DNS.Published.HealthChecks); got != 2 {
			t.Errorf("the pass created or updated %d health checks, want freight's 2: %v", got, report.DNS.Published.Lines())
		}
		f.answer(t, "portal.freight.fleet.example.com", "eu-west-2")
	})

	t.Run("an app made unhealthy in one region moves the DNS answer to another", func(t *testing.T) {
		replicas := *f.deployment(t, "eu-west-2", "freight", "portal").Spec.Replicas
		f.scale(t, "eu-west-2", "freight", "portal", 0)
		f.answer(t, "portal.freight.fleet.example.com", "ap-northeast-2")
		f.scale(t, "eu-west-2", "freight", "portal", replicas)
		f.answer(t, "portal.freight.fleet.example.com", "eu-west-2")
	})

	t.Run("a changed health path updates the check only once the pods serving it are ready", func(t *testing.T) {
		// The new path comes with a new image: Route53 must not probe /livez before
		// the pods that serve it are ready, or it would fail the placement over.
		portal := replace(t, file(t, "apps/portal/app.yaml"), "port: 443", "port: "+strconv.Itoa(f.portalPort))
		portal = replace(t, portal, "intervalSeconds: 30\n      failureThreshold: 3", "intervalSeconds: 10\n      failureThreshold: 2")
		portal = replace(t, portal, "path: /healthz", "path: /livez")
		portal = replace(t, portal, "    replicas: 2\n", "    replicas: 2\n    image: {tag: \"6.7.1\"}\n")
		f.push(t, "portal: /livez, served from podinfo 6.7.1", map[string]string{"apps/portal/app.yaml": portal})

		var mu sync.Mutex
		var updates []string
		f.checkUpdated = func(in *route53.UpdateHealthCheckInput) {
			// portal.<tenant>.<region>.fleet.example.com
			parts := strings.Split(aws.ToString(in.FullyQualifiedDomainName), ".")
			state := "unreadable"
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d, err := kubernetes.NewForConfigOrDie(f.tb.Region(parts[2]).Config).AppsV1().Deployments(parts[1]).Get(ctx, parts[0], metav1.GetOptions{})
			if err == nil {
				state = rollout(d)
			}
			mu.Lock()
			defer mu.Unlock()
			updates = append(updates, aws.ToString(in.ResourcePath)+" "+parts[1]+"/"+parts[2]+"/"+parts[0]+": "+state)
		}
		defer func() { f.checkUpdated = nil }()
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		if !report.DNS.Withdrawn.Empty() {
			t.Errorf("the withdrawal changed Route53: %v", report.DNS.Withdrawn.Lines())
		}
		var want []string
		for _, u := range records(t, f) {
			if id := strings.Split(u, "/"); id[2] == "portal" {
				want = append(want, "/livez "+u+": image 6.7.1, every replica updated and ready")
			}
		}
		mu.Lock()
		got := slices.Sorted(slices.Values(updates))
		mu.Unlock()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("health checks updated, with their Deployment's rollout at that moment (-want +got):\n%s", diff)
		}
	})

	t.Run("a region drained in git withdraws its records and keeps its workloads", func(t *testing.T) {
		before := f.inventories(t)
		f.push(t, "drain eu-west-2", map[string]string{"fleet.yaml": replace(t, replace(t, file(t, "fleet.yaml"), "Z0EXAMPLE0000000", f.zoneID), "drain: []", "drain: [eu-west-2]")})
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		for _, rr := range report.Regions {
			for _, ch := range rr.Changes.Changes {
				if ch.Action != plan.Unchanged {
					t.Errorf("draining changed a workload: %s %s", ch.Action, ch.Unit)
				}
			}
		}
		want = slices.DeleteFunc(want, func(u string) bool { return strings.Contains(u, "/eu-west-2/") })
		records, checks := f.published(t)
		if diff := cmp.Diff(want, records); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, checks); diff != "" {
			t.Errorf("health checks (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(before, f.inventories(t)); diff != "" {
			t.Errorf("inventories (-want +got):\n%s", diff)
		}
		f.checkLive(t, before, "")
		f.answer(t, "portal.freight.fleet.example.com", "ap-northeast-2")
		f.answer(t, "api.trucking.fleet.example.com", "us-east-1")
	})

	t.Run("a tenant removed leaves no record or health check behind and touches nothing it does not own", func(t *testing.T) {
		// Someone else's record and health check in the same zone and account.
		if _, err := f.client.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(f.zoneID), ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{
			Action: types.ChangeActionCreate,
			ResourceRecordSet: &types.ResourceRecordSet{Name: aws.String("www.fleet.example.com"), Type: types.RRTypeA, TTL: aws.Int64(300),
				ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.80")}}},
		}}}}); err != nil {
			t.Fatal(err)
		}
		other, err := f.client.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("someone-else"), HealthCheckConfig: &types.HealthCheckConfig{
			Type: types.HealthCheckTypeTcp, IPAddress: aws.String("192.0.2.80"), Port: aws.Int32(443)}})
		if err != nil {
			t.Fatal(err)
		}

		f.push(t, "remove the freight tenant\n\nMeridian-Allow-Mass-Deletion: true", map[string]string{"tenants/freight.yaml": ""})
		// Route53 refusing the withdrawal holds the removal where freight has
		// records: nothing of it is pruned in ap-northeast-2. eu-west-2 is drained
		// (above), so freight has no record there to withdraw, and its removal
		// there goes ahead (the canary wave, before ap-northeast-2's).
		before := f.inventories(t)
		f.r53.FailNext("ChangeResourceRecordSets", "AccessDenied", 1)
		if _, err := f.once(t); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
			t.Fatalf("the pass with Route53 refusing the withdrawal: %v, want an AccessDenied error", err)
		}
		after := f.inventories(t)
		if diff := cmp.Diff(before["ap-northeast-2"], after["ap-northeast-2"]); diff != "" {
			t.Errorf("ap-northeast-2's inventories after Route53 refused (-want +got):\n%s", diff)
		}
		for u := range after["eu-west-2"] {
			if strings.HasPrefix(u, "freight/") {
				t.Errorf("eu-west-2: %s not pruned, though it had no record to withdraw", u)
			}
		}
		f.checkLive(t, after, "")
		f.answer(t, "portal.freight.fleet.example.com", "ap-northeast-2")

		f.events.reset()
		if _, err := f.once(t); err != nil {
			t.Fatal(err)
		}
		want = slices.DeleteFunc(want, func(u string) bool { return strings.HasPrefix(u, "freight/") })
		records, checks := f.published(t)
		if diff := cmp.Diff(want, records); diff != "" {
			t.Errorf("records (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, checks); diff != "" {
			t.Errorf("health checks (-want +got):\n%s", diff)
		}
		// Freight's records were withdrawn, and INSYNC, before its workloads were pruned.
		got := f.events.list()
		insync := slices.Index(got, "insync")
		prune := slices.IndexFunc(got, func(e string) bool { return strings.HasPrefix(e, "prune freight/") })
		if insync < 0 || prune < 0 || insync > prune || !strings.Contains(strings.Join(got[:insync], "\n"), "DELETE portal.freight.fleet.example.com") {
			t.Errorf("events, want freight's records deleted and INSYNC before any prune:\n%s", strings.Join(got, "\n"))
		}
		out, err := f.client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(f.zoneID), StartRecordName: aws.String("www.fleet.example.com"), MaxItems: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ResourceRecordSets) != 1 || aws.ToString(out.ResourceRecordSets[0].Name) != "www.fleet.example.com." {
			t.Errorf("someone else's record is gone: %+v", out.ResourceRecordSets)
		}
		if _, err := f.client.GetHealthCheck(ctx, &route53.GetHealthCheckInput{HealthCheckId: other.HealthCheck.Id}); err != nil {
			t.Errorf("someone else's health check: %v", err)
		}
		if resolve(t, f.r53.DNSAddr, "portal.freight.fleet.example.com") != "" {
			t.Error("portal.freight.fleet.example.com still resolves")
		}
	})

	t.Run("a pass with nothing to change makes no Route53 change call", func(t *testing.T) {
		ops := []string{"ChangeResourceRecordSets", "CreateHealthCheck", "UpdateHealthCheck", "DeleteHealthCheck", "ChangeTagsForResource"}
		count := func() map[string]int {
			out := map[string]int{}
			for _, op := range ops {
				out[op] = f.r53.Count(op)
			}
			return out
		}
		before := count()
		listed, checksListed := f.r53.Count("ListResourceRecordSets"), f.r53.Count("ListHealthChecks")
		report, err := f.once(t)
		if err != nil {
			t.Fatal(err)
		}
		if !report.DNS.Withdrawn.Empty() || !report.DNS.Published.Empty() {
			t.Errorf("plans: %v %v", report.DNS.Withdrawn.Lines(), report.DNS.Published.Lines())
		}
		if diff := cmp.Diff(before, count()); diff != "" {
			t.Errorf("Route53 change calls (-before +after):\n%s", diff)
		}
		// One listing of the zone and of the health checks; no throttling.
		if n := f.r53.Count("ListResourceRecordSets") - listed; n != 1 {
			t.Errorf("the pass made %d ListResourceRecordSets calls, want 1", n)
		}
		if n := f.r53.Count("ListHealthChecks") - checksListed; n != 1 {
			t.Errorf("the pass made %d ListHealthChecks calls, want 1", n)
		}
		if n := f.r53.Throttled(); n != 0 {
			t.Errorf("Route53 throttled %d requests of the daemon", n)
		}
	})
}

// resolve asks the test server's DNS for name's A records.
func resolve(t *testing.T, addr, name string) string {
	t.Helper()
	got, err := route53test.LookupA(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// events is an ordered log of what a pass did to Route53 and the regions.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.log)
}

func (e *events) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = nil
}

// recordingAPI logs record changes and their INSYNC, and calls checkUpdated (when
// set) before a health check is updated.
type recordingAPI struct {
	dns.Route53API
	events       *events
	checkUpdated func(in *route53.UpdateHealthCheckInput)
}

func (r recordingAPI) UpdateHealthCheck(ctx context.Context, in *route53.UpdateHealthCheckInput, opts ...func(*route53.Options)) (*route53.UpdateHealthCheckOutput, error) {
	if r.checkUpdated != nil {
		r.checkUpdated(in)
	}
	return r.Route53API.UpdateHealthCheck(ctx, in, opts...)
}

func (r recordingAPI) ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	out, err := r.Route53API.ChangeResourceRecordSets(ctx, in, opts...)
	if err == nil {
		for _, c := range in.ChangeBatch.Changes {
			r.events.add(fmt.Sprintf("%s %s", c.Action, aws.ToString(c.ResourceRecordSet.Name)))
		}
	}
	return out, err
}

func (r recordingAPI) GetChange(ctx context.Context, in *route53.GetChangeInput, opts ...func(*route53.Options)) (*route53.GetChangeOutput, error) {
	out, err := r.Route53API.GetChange(ctx, in, opts...)
	if err == nil && out.ChangeInfo.Status == types.ChangeStatusInsync {
		r.events.add("insync")
	}
	return out, err
}

// recordingCluster logs prunes.
type recordingCluster struct {
	reconciler.Cluster
	events *events
}

func (r recordingCluster) Prune(ctx context.Context, ch plan.Change) error {
	r.events.add("prune " + ch.Unit.String())
	return r.Cluster.Prune(ctx, ch)
}

// records lists the placements with records in the zone.
func records(t *testing.T, f *dnsFixture) []string {
	t.Helper()
	r, _ := f.published(t)
	return r
}

// rollout says which image a portal Deployment runs and how far its rollout is,
// as "image 6.7.1, every replica updated and ready" or "image 6.7.1, 1 of 2
// replicas updated and ready"; "rolling out" while the controller
// has not seen its latest spec.
func rollout(d *appsv1.Deployment) string {
	if d.Status.ObservedGeneration < d.Generation {
		return "rolling out"
	}
	image := d.Spec.Template.Spec.Containers[0].Image
	image = image[strings.LastIndex(image, ":")+1:]
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	ready := min(d.Status.UpdatedReplicas, d.Status.ReadyReplicas)
	if d.Status.Replicas != d.Status.UpdatedReplicas {
		ready = 0 // old pods are still there
	}
	if ready == replicas {
		return "image " + image + ", every replica updated and ready"
	}
	return fmt.Sprintf("image %s, %d of %d replicas updated and ready", image, ready, replicas)
}
