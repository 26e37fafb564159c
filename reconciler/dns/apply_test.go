package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"
	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/route53test"
)

// env is a Route53 test server, the real SDK client against it, and an applier.
type env struct {
	srv     *route53test.Server
	client  *route53.Client
	zoneID  string
	applier *Applier
}

// newEnv starts a server with the fleet zone. The SDK client is configured
// explicitly (nothing from the environment) and does not retry by itself, so the
// applier's own retries are what is tested.
func newEnv(t *testing.T, srvOpts route53test.Options, opts Options) *env {
	t.Helper()
	if srvOpts.RateScale == 0 {
		srvOpts.RateScale = 100
	}
	srv := route53test.NewServer(srvOpts)
	t.Cleanup(srv.Close)
	client := route53.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:   srv.Client(),
		Retryer:      func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }) },
	})
	zoneID := srv.CreateZone("fleet.example.com")
	opts.HostedZoneID, opts.Fleet = zoneID, "acme"
	// The server enforces Route53's documented rates a hundred times faster, and
	// the applier keeps to them a hundred times faster.
	if opts.RateScale == 0 {
		opts.RateScale = srvOpts.RateScale
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 10 * time.Millisecond
	}
	if opts.BaseBackoff == 0 {
		opts.BaseBackoff, opts.MaxBackoff = time.Millisecond, 20*time.Millisecond
	}
	return &env{srv: srv, client: client, zoneID: zoneID, applier: NewApplier(client, opts)}
}

// cycle is one reconcile pass: read, plan, apply. It returns the plan.
func (e *env) cycle(t *testing.T, model *fleet.Model, healthy func(fleet.UnitID) bool) Changes {
	t.Helper()
	ctx := context.Background()
	cur, err := e.applier.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ch := Plan(Desired(model, healthy), cur)
	if err := e.applier.Apply(ctx, ch); err != nil {
		t.Fatalf("apply %s: %v", ch, err)
	}
	return ch
}

// owned lists the fleet's records (not the zone's SOA and NS) and health checks.
func (e *env) owned(t *testing.T) (records, checks []string) {
	t.Helper()
	cur, err := e.applier.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range cur.Records {
		if r.Type != "SOA" && r.Type != "NS" {
			records = append(records, r.ID())
		}
	}
	for _, h := range cur.HealthChecks {
		checks = append(checks, h.Unit().String()+" "+h.Spec.Path)
	}
	slices.Sort(records)
	slices.Sort(checks)
	return records, checks
}

func exampleModel(t *testing.T) *fleet.Model {
	t.Helper()
	m, err := fleet.LoadDir(filepath.Join("..", "..", "fleet-example"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestApplyFleetExample(t *testing.T) {
	e := newEnv(t, route53test.Options{SyncDelay: 30 * time.Millisecond}, Options{})
	m := exampleModel(t)
	e.cycle(t, m, allHealthy)
	// The checks the cycle created are known as the fleet's: reading the zone
	// again reads no tags.
	tags := e.srv.Count("ListTagsForResources")
	if _, err := e.applier.Current(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Count("ListTagsForResources") - tags; n != 0 {
		t.Errorf("reading the zone after creating the checks made %d ListTagsForResources calls, want 0", n)
	}

	records, checks := e.owned(t)
	var wantRecords, wantChecks []string
	for _, ep := range Desired(m, allHealthy) {
		typ := "A"
		if ep.Target.Type == fleet.EndpointCNAME {
			typ = "CNAME"
		}
		wantRecords = append(wantRecords,
			fmt.Sprintf("%s CNAME [%s]", ep.Global, ep.Region),
			fmt.Sprintf("%s%s TXT [%s]", RegistryPrefix, ep.Global, ep.Region),
			fmt.Sprintf("%s %s", ep.Regional, typ),
			fmt.Sprintf("%s%s TXT", RegistryPrefix, ep.Regional))
		wantChecks = append(wantChecks, ep.Unit().String()+" /healthz")
	}
	slices.Sort(wantRecords)
	slices.Sort(wantChecks)
	if len(wantChecks) < 5 {
		t.Fatalf("fleet-example has %d exposed placements; the test expects several", len(wantChecks))
	}
	if diff := cmp.Diff(wantRecords, records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantChecks, checks); diff != "" {
		t.Errorf("health checks (-want +got):\n%s", diff)
	}

	// Every latency record carries a health check of the fleet, the alias ones
	// evaluate target health.
	cur, _ := e.applier.Current(context.Background())
	ids := map[string]bool{}
	for _, h := range cur.HealthChecks {
		ids[h.ID] = true
	}
	for _, r := range cur.Records {
		if r.SetIdentifier != "" && r.Type != "TXT" && !ids[r.HealthCheckID] {
			t.Errorf("%s uses health check %q, not one of the fleet's", r, r.HealthCheckID)
		}
		if r.Alias != nil && !r.Alias.EvaluateTargetHealth {
			t.Errorf("%s does not evaluate target health", r)
		}
	}

	// A second cycle changes nothing and makes no change calls; the fleet's
	// health checks are known by now, so their tags are not read again.
	changes, creates, tagReads := e.srv.Count("ChangeResourceRecordSets"), e.srv.Count("CreateHealthCheck"), e.srv.Count("ListTagsForResources")
	if ch := e.cycle(t, m, allHealthy); !ch.Empty() {
		t.Errorf("second cycle planned changes:\n%s", strings.Join(ch.Lines(), "\n"))
	}
	if n := e.srv.Count("ChangeResourceRecordSets") - changes; n != 0 {
		t.Errorf("second cycle made %d ChangeResourceRecordSets calls, want 0", n)
	}
	if n := e.srv.Count("CreateHealthCheck") - creates; n != 0 {
		t.Errorf("second cycle made %d CreateHealthCheck calls, want 0", n)
	}
	if n := e.srv.Count("ListTagsForResources") - tagReads; n != 0 {
		t.Errorf("second cycle made %d ListTagsForResources calls, want 0", n)
	}

	// A placement turns unhealthy: its latency and regional records are withdrawn;
	// its check goes one cycle later, once no record uses it.
	sick := "trucking/us-east-1/portal"
	notSick := func(id fleet.UnitID) bool { return id.String() != sick }
	e.cycle(t, m, notSick)
	records, checks = e.owned(t)
	for _, r := range records {
		if strings.HasPrefix(r, "portal.trucking.fleet.example.com A [us-east-1]") || strings.HasPrefix(r, "portal.trucking.us-east-1.") {
			t.Errorf("record %s of unhealthy %s not withdrawn", r, sick)
		}
	}
	if !slices.Contains(checks, sick+" /healthz") {
		t.Errorf("health check of %s deleted in the cycle that withdrew its record", sick)
	}
	e.cycle(t, m, notSick)
	if _, checks = e.owned(t); slices.Contains(checks, sick+" /healthz") {
		t.Errorf("health check of %s left behind after its record was withdrawn", sick)
	}

	// A changed health path updates the checks in place: no delete, no create.
	for _, a := range m.Apps {
		if a.Spec.Expose != nil {
			a.Spec.Expose.HealthCheck.Path = "/ready"
		}
	}
	updates, deletes, creates := e.srv.Count("UpdateHealthCheck"), e.srv.Count("DeleteHealthCheck"), e.srv.Count("CreateHealthCheck")
	e.cycle(t, m, notSick)
	if got, want := e.srv.Count("UpdateHealthCheck")-updates, len(wantChecks)-1; got != want {
		t.Errorf("UpdateHealthCheck calls = %d, want %d", got, want)
	}
	if n := e.srv.Count("DeleteHealthCheck") - deletes; n != 0 {
		t.Errorf("a path change made %d DeleteHealthCheck calls", n)
	}
	if n := e.srv.Count("CreateHealthCheck") - creates; n != 0 {
		t.Errorf("a path change made %d CreateHealthCheck calls", n)
	}
	if _, checks = e.owned(t); len(checks) == 0 || !strings.HasSuffix(checks[0], " /ready") {
		t.Errorf("health checks after the path change: %v", checks)
	}

	// Every tenant removed: nothing of the fleet is left after two cycles.
	m.Tenants = nil
	e.cycle(t, m, allHealthy)
	e.cycle(t, m, allHealthy)
	if records, checks = e.owned(t); len(records)+len(checks) != 0 {
		t.Errorf("left behind after every tenant was removed: %v %v", records, checks)
	}
}

func TestApplyLeavesUnownedRecordsAlone(t *testing.T) {
	e := newEnv(t, route53test.Options{}, Options{})
	ctx := context.Background()
	foreign := &types.ResourceRecordSet{Name: aws.String("portal.trucking.fleet.example.com"), Type: types.RRTypeCname, TTL: aws.Int64(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("legacy.example.net")}}}
	if _, err := e.client.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(e.zoneID),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionCreate, ResourceRecordSet: foreign}}}}); err != nil {
		t.Fatal(err)
	}
	m := exampleModel(t)
	ch := e.cycle(t, m, allHealthy)
	var clashes []string
	for _, c := range ch.Clashes {
		clashes = append(clashes, c.Unit.String()+" "+c.Name)
	}
	want := []string{
		"trucking/ap-northeast-2/portal portal.trucking.fleet.example.com",
		"trucking/eu-west-2/portal portal.trucking.fleet.example.com",
		"trucking/us-east-1/portal portal.trucking.fleet.example.com",
	}
	if diff := cmp.Diff(want, clashes); diff != "" {
		t.Errorf("clashes (-want +got):\n%s", diff)
	}
	out, err := e.client.ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(e.zoneID),
		StartRecordName: aws.String("portal.trucking.fleet.example.com"), MaxItems: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := fromSDK(out.ResourceRecordSets[0]); !got.equal(fromSDK(*foreign)) {
		t.Errorf("the unowned record became %s", got)
	}
	// Removing every tenant withdraws the fleet's records and keeps the foreign one.
	m.Tenants = nil
	e.cycle(t, m, allHealthy)
	e.cycle(t, m, allHealthy)
	records, checks := e.owned(t)
	if diff := cmp.Diff([]string{"portal.trucking.fleet.example.com CNAME"}, records); diff != "" || len(checks) > 0 {
		t.Errorf("after removing every tenant (-want +got):\n%s checks %v", diff, checks)
	}
}

func TestApplyRetriesThrottlingWithinTheRateLimit(t *testing.T) {
	const rps = 40
	e := newEnv(t, route53test.Options{}, Options{RequestsPerSecond: rps, RateScale: 1})
	e.srv.FailNext("*", "Throttling", 4)
	e.srv.FailNext("ChangeResourceRecordSets", "PriorRequestNotComplete", 2)
	e.srv.FailNext("CreateHealthCheck", "Throttling", 3)
	start := time.Now()
	e.cycle(t, exampleModel(t), allHealthy)
	elapsed := time.Since(start)
	n := len(e.srv.Calls())

	refused := 0
	for _, c := range e.srv.Calls() {
		if c.Error != "" {
			refused++
		}
	}
	if refused != 9 {
		t.Errorf("%d requests refused, want the 9 injected", refused)
	}
	if ch := Plan(Desired(exampleModel(t), allHealthy), mustCurrent(t, e.applier)); !ch.Empty() {
		t.Errorf("not converged after throttling:\n%s", strings.Join(ch.Lines(), "\n"))
	}
	if min := time.Duration(float64(n-1) / rps * float64(time.Second)); elapsed < min {
		t.Errorf("%d requests in %v: faster than %d/s", n, elapsed, rps)
	}
	t.Logf("%d requests (%d refused) in %v at %d/s", n, refused, elapsed, rps)
}

func TestApplyGivesUpAfterMaxAttempts(t *testing.T) {
	e := newEnv(t, route53test.Options{}, Options{MaxAttempts: 3})
	e.srv.FailNext("ListResourceRecordSets", "Throttling", 3)
	_, err := e.applier.Current(context.Background())
	want := "route53 zone " + e.zoneID + ": listing record sets: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "Throttling") ||
		!strings.HasSuffix(err.Error(), "; check the hosted zone id in fleet.yaml and Meridian's permissions") {
		t.Errorf("error = %v, want %q... Throttling ...", err, want)
	}
	if n := e.srv.Count("ListResourceRecordSets"); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func mustCurrent(t *testing.T, a *Applier) State {
	t.Helper()
	s, err := a.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// manyTenants is a fleet of n tenants with one exposed app in one region reached
// through an A record.
func manyTenants(n int, ip string, port int, regions ...string) *fleet.Model {
	api := &fleet.App{Metadata: fleet.ObjectMeta{Name: "api"}}
	api.Spec.Expose = &fleet.Expose{Subdomain: "api", Port: port, Protocol: "HTTP",
		HealthCheck: fleet.HealthCheck{Path: "/healthz", IntervalSeconds: 10, FailureThreshold: 1}}
	m := &fleet.Model{Fleet: &fleet.Fleet{Metadata: fleet.ObjectMeta{Name: "acme"}}, Apps: []*fleet.App{api}}
	m.Fleet.Spec.DNS = fleet.DNS{Zone: "fleet.example.com"}
	for i, r := range regions {
		reg := &fleet.Region{Metadata: fleet.ObjectMeta{Name: r}}
		reg.Spec.AWSRegion = r
		reg.Spec.Endpoint = fleet.Endpoint{Type: fleet.EndpointA, Target: ip}
		if i > 0 {
			reg.Spec.Endpoint.Target = fmt.Sprintf("127.0.0.%d", 2+i)
		}
		m.Regions = append(m.Regions, reg)
	}
	slices.SortFunc(m.Regions, func(a, b *fleet.Region) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) }) // the model keeps them sorted
	for i := range n {
		tn := &fleet.Tenant{Metadata: fleet.ObjectMeta{Name: fmt.Sprintf("t%03d", i)}}
		tn.Spec.Regions = regions
		tn.Spec.Apps = []fleet.TenantApp{{Name: "api"}}
		m.Tenants = append(m.Tenants, tn)
	}
	return m
}

func TestApplySplitsBatchesOverTheRecordLimit(t *testing.T) {
	limits := route53test.DocumentedLimits()
	limits.MaxHealthChecks = 300 // an account whose quota was raised
	e := newEnv(t, route53test.Options{Limits: &limits}, Options{})
	m := manyTenants(300, "127.0.0.1", 1, "us-east-1") // 300 endpoints × 4 records
	ch := e.cycle(t, m, allHealthy)
	records := 0
	for _, g := range ch.Records {
		for _, c := range g.Changes {
			n, _ := size(c)
			records += n
		}
	}
	if records <= MaxBatchRecords {
		t.Fatalf("the plan has %d records; the test needs more than %d", records, MaxBatchRecords)
	}
	batches, err := e.applier.batches(ch.Records)
	if err != nil || len(batches) < 2 {
		t.Fatalf("%d records packed into %d batches (%v), want several", records, len(batches), err)
	}
	if n := e.srv.Count("ChangeResourceRecordSets"); n != len(batches) {
		t.Errorf("%d records took %d ChangeResourceRecordSets calls, want %d", records, n, len(batches))
	}
	if got, _ := e.owned(t); len(got) != 1200 {
		t.Errorf("%d records in the zone, want 1200", len(got))
	}
}

func TestBatchesRefuseAGroupOverTheLimit(t *testing.T) {
	a := NewApplier(nil, Options{MaxBatchRecords: 2})
	g := RecordGroup{Unit: fleet.UnitID{Tenant: "t", Region: "r", App: "a"}, Changes: []RecordChange{{Action: Upsert, Record: Record{Name: "a.example.com", Type: "A", TTL: 60, Values: []string{"192.0.2.1"}}}, {Action: Create, Record: Record{Name: "b.example.com", Type: "TXT", TTL: 60, Values: []string{`"x"`}}}}}
	_, err := a.batches([]RecordGroup{g})
	want := "route53 records of t/r/a: 3 records, 21 characters exceed one batch's limit; shorten the records"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

// target is an app's endpoint in one region: an HTTP server on its own loopback
// address whose health answer can flip.
type target struct {
	status atomic.Int32
}

func (tg *target) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(int(tg.status.Load()))
}

func serveOn(t *testing.T, addr string, h http.Handler) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l
}

func lookup(t *testing.T, addr, name string) string {
	t.Helper()
	got, err := route53test.LookupA(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestDNSAnswersTheNearestHealthyRegion(t *testing.T) {
	east, west := &target{}, &target{}
	east.status.Store(200)
	west.status.Store(200)
	l := serveOn(t, "127.0.0.2:0", east)
	port := l.Addr().(*net.TCPAddr).Port
	serveOn(t, fmt.Sprintf("127.0.0.3:%d", port), west)

	// Clients are nearest to eu-west-2 (127.0.0.3), then us-east-1 (127.0.0.2).
	e := newEnv(t, route53test.Options{ProbeScale: 0.005, ClientRegion: "eu-central-1"}, Options{})
	m := manyTenants(1, "127.0.0.2", port, "us-east-1", "eu-west-2")
	e.cycle(t, m, allHealthy)

	name := "api.t000.fleet.example.com"
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		got := ""
		for time.Now().Before(deadline) {
			if got = lookup(t, e.srv.DNSAddr, name); got == want {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s answers %q, want %q", name, got, want)
	}
	waitFor("127.0.0.3")
	west.status.Store(500)
	waitFor("127.0.0.2")
	west.status.Store(200)
	waitFor("127.0.0.3")
	if got := lookup(t, e.srv.DNSAddr, "api.t000.us-east-1.fleet.example.com"); got != "127.0.0.2" {
		t.Errorf("the regional name answers %q, want 127.0.0.2", got)
	}

	// Draining eu-west-2 in fleet.yaml withdraws its record: clients go east.
	m.Fleet.Spec.DNS.Drain = []string{"eu-west-2"}
	e.cycle(t, m, allHealthy)
	waitFor("127.0.0.2")
}

func TestApplyReportsAFailedBatch(t *testing.T) {
	e := newEnv(t, route53test.Options{}, Options{})
	e.srv.FailNext("ChangeResourceRecordSets", "InvalidInput", 1)
	m := manyTenants(1, "127.0.0.1", 1, "us-east-1")
	cur := mustCurrent(t, e.applier)
	err := e.applier.Apply(context.Background(), Plan(Desired(m, allHealthy), cur))
	want := "route53 zone " + e.zoneID + ": batch 1: 4 changes from CREATE api.t000.fleet.example.com CNAME [us-east-1]: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "; the batch was not applied, and the next cycle plans again from what Route53 holds") {
		t.Errorf("error = %v, want %q...", err, want)
	}
	var apiErr interface{ ErrorCode() string }
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidInput" {
		t.Errorf("error does not wrap the Route53 error: %v", err)
	}
	// The next cycle converges: the check created in the failed cycle is reused.
	e.cycle(t, m, allHealthy)
	if _, checks := e.owned(t); len(checks) != 1 {
		t.Errorf("health checks after the retry: %v, want one", checks)
	}
}

// A record group that waits for a health check the change set does not create
// is reported, not dropped in silence.
func TestApplyReportsAGroupWaitingForAMissingCheck(t *testing.T) {
	e := newEnv(t, route53test.Options{}, Options{})
	m := manyTenants(1, "127.0.0.1", 1, "us-east-1")
	ch := Plan(Desired(m, allHealthy), mustCurrent(t, e.applier))
	if len(ch.HealthChecks) != 1 {
		t.Fatalf("plan creates %d health checks, want 1", len(ch.HealthChecks))
	}
	ch.HealthChecks = nil
	err := e.applier.Apply(context.Background(), ch)
	unit := fleet.UnitID{Tenant: "t000", Region: "us-east-1", App: "api"}.String()
	if err == nil || !strings.Contains(err.Error(), unit+": records not written: they use the health check of "+unit) {
		t.Errorf("error = %v, want one naming %s and its missing check", err, unit)
	}
}

func TestApplyPacesOperationsToRoute53sOwnRates(t *testing.T) {
	// CreateHealthCheck refills at a tenth of the account's rate (Route53: 0.5/s
	// against 10/s), here 4/s after a burst of 2: the applier keeps to it and is
	// never throttled, while every other request goes at the account's rate.
	limits := route53test.DocumentedLimits()
	limits.Operations["CreateHealthCheck"] = route53test.Bucket{Burst: 2, Rate: 4}
	e := newEnv(t, route53test.Options{Limits: &limits, RateScale: 1},
		Options{RequestsPerSecond: 10, OperationRates: map[string]OperationRate{"CreateHealthCheck": {PerSecond: 4, Burst: 2}}})
	start := time.Now()
	ch := e.cycle(t, exampleModel(t), allHealthy)
	elapsed := time.Since(start)
	if e.srv.Throttled() != 0 {
		t.Errorf("the server throttled %d requests", e.srv.Throttled())
	}
	created := e.srv.Count("CreateHealthCheck")
	if created != len(ch.HealthChecks) {
		t.Errorf("%d CreateHealthCheck calls for %d checks", created, len(ch.HealthChecks))
	}
	if min := time.Duration(float64(created-2) / 4 * float64(time.Second)); elapsed < min {
		t.Errorf("%d health checks created in %v, faster than 4/s after 2", created, elapsed)
	}
	t.Logf("%d health checks created in %v", created, elapsed)
}

func TestApplyStaysWithinTheHealthCheckQuota(t *testing.T) {
	limits := route53test.DocumentedLimits()
	limits.MaxHealthChecks = 5
	e := newEnv(t, route53test.Options{Limits: &limits}, Options{})
	m := manyTenants(8, "127.0.0.1", 1, "us-east-1") // 8 endpoints
	ch := e.cycle(t, m, allHealthy)
	if got := ch.Quotas.HealthChecks; got != (Quota{Name: QuotaHealthChecks, Limit: 5, Needed: 8}) {
		t.Errorf("health-check quota %+v", got)
	}
	if len(ch.OverQuota) != 3 {
		t.Errorf("%d endpoints over quota, want 3: %v", len(ch.OverQuota), ch.Lines())
	}
	for _, c := range e.srv.Calls() {
		if c.Error != "" {
			t.Errorf("Route53 refused %s: %s", c.Operation, c.Error)
		}
	}
	records, checks := e.owned(t)
	if len(checks) != 5 || len(records) != 5*4 {
		t.Errorf("%d checks and %d records published, want 5 and 20", len(checks), len(records))
	}
	// Once AWS raises the limit, a new applier (limits are read once an hour)
	// publishes the rest.
	e.srv.SetMaxHealthChecks(50)
	e.applier = NewApplier(e.client, e.applier.opts)
	if ch := e.cycle(t, m, allHealthy); len(ch.OverQuota) != 0 {
		t.Errorf("still over quota: %v", ch.OverQuota)
	}
	if _, checks := e.owned(t); len(checks) != 8 {
		t.Errorf("%d checks after the quota was raised, want 8", len(checks))
	}
}

func TestQuotasReadsTheLimits(t *testing.T) {
	limits := route53test.DocumentedLimits()
	limits.MaxHealthChecks, limits.MaxRecordSetsPerZone = 4, 30
	e := newEnv(t, route53test.Options{Limits: &limits}, Options{})
	q, err := e.applier.Quotas(context.Background(), manyTenants(8, "127.0.0.1", 1, "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	want := Quotas{
		HealthChecks: Quota{Name: QuotaHealthChecks, Limit: 4, Needed: 8},
		RecordSets:   Quota{Name: QuotaRecordSets, Limit: 30, Others: 2, Needed: 32}, // the zone's SOA and NS
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("quotas (-want +got):\n%s", diff)
	}
	if q.HealthChecks.Fits() || q.RecordSets.Fits() {
		t.Errorf("the fleet fits: %v", q)
	}
	for _, op := range []string{"GetAccountLimit", "GetHostedZoneLimit"} {
		if n := e.srv.Count(op); n != 1 {
			t.Errorf("%d %s calls, want 1", n, op)
		}
	}
	// The limits are read once an hour, not on every pass.
	if _, err := e.applier.Current(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Count("GetAccountLimit"); n != 1 {
		t.Errorf("%d GetAccountLimit calls after a second reading, want 1", n)
	}
}
