package shard

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/inventory"
)

// dnsRateScale runs Route53's documented rates twice as fast, in the test server
// and in every replica alike.
const dnsRateScale = 2

// route53Env is a Route53 test server holding the fleet's zone, shared by every
// replica as one AWS account is, and a log of every replica's Route53 writes.
type route53Env struct {
	srv    *route53test.Server
	client *route53.Client
	zoneID string
	// path is the portal's health-check path the next revision pushes.
	path string

	mu     sync.Mutex
	writes []dnsWrite
	// killAfter counts down the writes still allowed before the writer is
	// killed; killed receives its name. Zero disarms it.
	killAfter int
	killed    chan string
	// passes are the replicas' passes as they ended; refreshes when the
	// Route53 writer finished a look at the health reports between passes.
	passes    []passEnd
	refreshes []time.Time
}

// passEnd is a replica's pass, as it ended; writer when it wrote Route53.
type passEnd struct {
	replica, revision string
	writer            bool
	at                time.Time
}

// dnsWrite is one Route53 write call of a replica, from its start to its end.
type dnsWrite struct {
	replica, call string
	start, end    time.Time
}

func newRoute53Env(t *testing.T) *route53Env {
	t.Helper()
	srv := route53test.NewServer(route53test.Options{ProbeScale: 1000, RateScale: dnsRateScale})
	t.Cleanup(srv.Close)
	return &route53Env{
		srv: srv, zoneID: srv.CreateZone("fleet.example.com"), path: "/healthz", killed: make(chan string, 1),
		client: route53.NewFromConfig(aws.Config{
			Region:       "us-east-1",
			BaseEndpoint: aws.String(srv.URL),
			Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "test-secret-key", ""),
			HTTPClient:   srv.Client(),
			Retryer:      func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 }) },
		}),
	}
}

// edit points the synthetic fleet at the test server's zone and gives the
// portal the current health-check path.
func (e *route53Env) edit(t *testing.T, dir string) {
	t.Helper()
	for file, repl := range map[string][2]string{
		"fleet.yaml":           {"Z0EXAMPLE0000000", e.zoneID},
		"apps/portal/app.yaml": {"path: /healthz", "path: " + e.path},
	} {
		p := filepath.Join(dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), repl[0]) {
			t.Fatalf("%s: no %q to replace", file, repl[0])
		}
		if err := os.WriteFile(p, []byte(strings.Replace(string(data), repl[0], repl[1], 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// options gives a replica Route53, through a client that records its writes and
// stops writing once the replica is killed.
func (e *route53Env) options(opts *reconciler.RunOptions, name string, r *replica) {
	opts.Route53 = &replicaRoute53{Route53API: e.client, env: e, replica: name, dead: &r.dead}
	opts.DNS = dns.Options{RateScale: dnsRateScale, PollInterval: 50 * time.Millisecond, BaseBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}
	opts.Health = r.mgr
	opts.DNSRefresh = 500 * time.Millisecond
	opts.Passed = func(report *reconciler.Report) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.passes = append(e.passes, passEnd{replica: name, revision: report.Revision, at: time.Now(),
			writer: report.DNS != nil && report.DNS.Endpoints != nil})
	}
	opts.DNSRefreshed = func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.refreshes = append(e.refreshes, time.Now())
	}
	opts.DNSObserved = func(eps []reconciler.DNSEndpointHealth) {
		view := map[string]bool{}
		for _, e := range eps {
			view[e.Unit().String()] = e.Healthy
		}
		r.dnsView.Store(&view)
	}
}

// afterReport waits until owner's pass of revision ended (its health report
// written), the Route53 writer's pass of revision ended, and the writer then
// finished two looks at the reports, the second begun after both: whatever the
// writer would withdraw from those reports, it has withdrawn by then.
func (e *route53Env) afterReport(t *testing.T, revision, owner string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		e.mu.Lock()
		var reported, written time.Time
		for _, p := range e.passes {
			if p.revision != revision {
				continue
			}
			if p.replica == owner && reported.IsZero() {
				reported = p.at
			}
			if p.writer && written.IsZero() {
				written = p.at
			}
		}
		looks := 0
		if !reported.IsZero() && !written.IsZero() {
			for _, at := range e.refreshes {
				if at.After(reported) && at.After(written) {
					looks++
				}
			}
		}
		e.mu.Unlock()
		if looks >= 2 {
			t.Logf("the writer looked at %s's report twice, %s after the removal was held", owner, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s: %s's pass of %s ended at %v, the writer's at %v, and %d looks at the reports since", owner, revision, reported, written, looks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// arm kills the replica that makes the n-th Route53 write from now, right after
// that write.
func (e *route53Env) arm(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.killAfter = n
}

// since returns the writes begun at or after t.
func (e *route53Env) since(t time.Time) []dnsWrite {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []dnsWrite
	for _, w := range e.writes {
		if !w.start.Before(t) {
			out = append(out, w)
		}
	}
	return out
}

// replicaRoute53 is one replica's Route53 client: every write is recorded, and a
// killed replica writes nothing more.
type replicaRoute53 struct {
	dns.Route53API
	env     *route53Env
	replica string
	dead    *atomic.Bool
}

// write records a write call around f and, when it is the one the test armed,
// kills the replica right after it, as SIGKILL between two requests would.
func write[T any](r *replicaRoute53, call string, f func() (T, error)) (T, error) {
	var zero T
	if r.dead.Load() {
		return zero, errKilled
	}
	start := time.Now()
	out, err := f()
	e := r.env
	e.mu.Lock()
	e.writes = append(e.writes, dnsWrite{replica: r.replica, call: call, start: start, end: time.Now()})
	if e.killAfter > 0 {
		e.killAfter--
		if e.killAfter == 0 {
			r.dead.Store(true)
			e.killed <- r.replica
		}
	}
	e.mu.Unlock()
	return out, err
}

func (r *replicaRoute53) ChangeResourceRecordSets(ctx context.Context, in *route53.ChangeResourceRecordSetsInput, opts ...func(*route53.Options)) (*route53.ChangeResourceRecordSetsOutput, error) {
	var actions []string
	for _, c := range in.ChangeBatch.Changes {
		actions = append(actions, string(c.Action)+" "+aws.ToString(c.ResourceRecordSet.Name))
	}
	return write(r, "ChangeResourceRecordSets "+strings.Join(actions, ", "), func() (*route53.ChangeResourceRecordSetsOutput, error) {
		return r.Route53API.ChangeResourceRecordSets(ctx, in, opts...)
	})
}

func (r *replicaRoute53) CreateHealthCheck(ctx context.Context, in *route53.CreateHealthCheckInput, opts ...func(*route53.Options)) (*route53.CreateHealthCheckOutput, error) {
	return write(r, "CreateHealthCheck "+aws.ToString(in.CallerReference), func() (*route53.CreateHealthCheckOutput, error) {
		return r.Route53API.CreateHealthCheck(ctx, in, opts...)
	})
}

func (r *replicaRoute53) ChangeTagsForResource(ctx context.Context, in *route53.ChangeTagsForResourceInput, opts ...func(*route53.Options)) (*route53.ChangeTagsForResourceOutput, error) {
	return write(r, "ChangeTagsForResource "+aws.ToString(in.ResourceId), func() (*route53.ChangeTagsForResourceOutput, error) {
		return r.Route53API.ChangeTagsForResource(ctx, in, opts...)
	})
}

func (r *replicaRoute53) UpdateHealthCheck(ctx context.Context, in *route53.UpdateHealthCheckInput, opts ...func(*route53.Options)) (*route53.UpdateHealthCheckOutput, error) {
	return write(r, "UpdateHealthCheck "+aws.ToString(in.HealthCheckId), func() (*route53.UpdateHealthCheckOutput, error) {
		return r.Route53API.UpdateHealthCheck(ctx, in, opts...)
	})
}

func (r *replicaRoute53) DeleteHealthCheck(ctx context.Context, in *route53.DeleteHealthCheckInput, opts ...func(*route53.Options)) (*route53.DeleteHealthCheckOutput, error) {
	return write(r, "DeleteHealthCheck "+aws.ToString(in.HealthCheckId), func() (*route53.DeleteHealthCheckOutput, error) {
		return r.Route53API.DeleteHealthCheck(ctx, in, opts...)
	})
}

// published waits until the zone holds every placement of the synthetic fleet
// with exactly one health check probing path, and the account no other health
// check (none duplicated, none left untagged).
func (e *route53Env) published(t *testing.T, path string, timeout time.Duration) time.Duration {
	t.Helper()
	var want []string
	for i := range testTenants {
		for j := range testRegions {
			want = append(want, fleet.UnitID{Tenant: fleetgen.TenantName(i), Region: fleetgen.RegionName(j), App: "portal"}.String())
		}
	}
	slices.Sort(want)
	start := time.Now()
	var problem string
	for time.Since(start) < timeout {
		problem = e.check(t, want, path)
		if problem == "" {
			return time.Since(start)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("after %s Route53 does not hold the fleet with health path %s: %s", timeout, path, problem)
	return 0
}

// check says what the zone and the account lack or have too much of, or "".
func (e *route53Env) check(t *testing.T, want []string, path string) string {
	t.Helper()
	cur, err := dns.NewApplier(e.client, dns.Options{HostedZoneID: e.zoneID, Fleet: "synthetic", RateScale: dnsRateScale}).Current(t.Context())
	if err != nil {
		return err.Error()
	}
	var records, checks []string
	for u := range cur.Published() {
		records = append(records, u.String())
	}
	slices.Sort(records)
	if !slices.Equal(records, want) {
		return fmt.Sprintf("records of %v", records)
	}
	for _, h := range cur.HealthChecks {
		if h.Spec.Path != path {
			return fmt.Sprintf("health check %s of %s probes %s", h.ID, h.Unit(), h.Spec.Path)
		}
		checks = append(checks, h.Unit().String())
	}
	slices.Sort(checks)
	if !slices.Equal(checks, want) {
		return fmt.Sprintf("health checks of %v", checks)
	}
	all, err := e.client.ListHealthChecks(t.Context(), &route53.ListHealthChecksInput{})
	if err != nil {
		return err.Error()
	}
	if len(all.HealthChecks) != len(want) {
		return fmt.Sprintf("%d health checks in the account, %d of them the fleet's", len(all.HealthChecks), len(cur.HealthChecks))
	}
	return ""
}

// TestReplicasShareRoute53 runs three replicas of the daemon with one Route53:
// exactly one writes it at a time, publishing every tenant's placements whichever
// replica applied them. The writer is killed in the middle of publishing, three
// times (while it creates and tags the health checks, then twice while it
// updates them to a new path): each time another replica takes over once the
// writer's Lease expired and finishes the job, leaving no duplicate or untagged
// health check, and no record of a healthy placement is ever withdrawn.
func TestReplicasShareRoute53(t *testing.T) {
	h := newHarness(t)
	h.dns = newRoute53Env(t)
	r53 := h.dns
	replicas := map[string]*replica{}
	for _, name := range []string{"replica-a", "replica-b", "replica-c"} {
		replicas[name] = h.start(t, name, nil)
	}
	managers := func() []*Manager {
		var out []*Manager
		for _, r := range replicas {
			out = append(out, r.mgr)
		}
		return out
	}
	t.Logf("three replicas balanced in %s", waitBalanced(t, 30*time.Second, managers()...).Round(time.Millisecond))

	begin := time.Now()
	next := 'd'
	for round := range 3 {
		r53.path = fmt.Sprintf("/healthz-%d", round)
		// Kill the writer after a random one of its first writes of the round: the
		// first round creates 24 checks, each followed by its tagging, and writes
		// 96 records, and its writer is killed right after a CreateHealthCheck,
		// before the check is tagged (an odd write); the others update 24 checks.
		n := 1 + rand.IntN(20)
		if round == 0 {
			n = 1 + 2*rand.IntN(10)
		}
		r53.arm(n)
		pushed := time.Now()
		rev := h.pushFleet(t, fmt.Sprintf("round-%d", round))
		var victim string
		select {
		case victim = <-r53.killed:
		case <-time.After(90 * time.Second):
			t.Fatalf("round %d: no replica made %d Route53 writes in 90s", round, n)
		}
		killed := time.Now()
		replicas[victim].kill()
		delete(replicas, victim)
		name := fmt.Sprintf("replica-%c", next)
		next++
		replicas[name] = h.start(t, name, nil)
		r53.published(t, r53.path, 60*time.Second)
		t.Logf("round %d (revision %s): the DNS writer %s killed after %d writes, %s after the push; Route53 complete %s after the kill; %s started",
			round, rev[:12], victim, n, killed.Sub(pushed).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), name)
	}

	// One writer at a time: no two replicas' Route53 writes overlap.
	writes := r53.since(begin)
	writers := map[string]int{}
	for i, a := range writes {
		writers[a.replica]++
		for _, b := range writes[i+1:] {
			if a.replica != b.replica && a.start.Before(b.end) && b.start.Before(a.end) {
				t.Errorf("Route53 written by %s (%s) and %s (%s) at once", a.replica, a.call, b.replica, b.call)
			}
		}
		// Every placement stayed healthy: nothing was ever withdrawn.
		if strings.Contains(a.call, "DELETE ") || strings.HasPrefix(a.call, "DeleteHealthCheck") {
			t.Errorf("%s withdrew a healthy placement: %s", a.replica, a.call)
		}
	}
	if len(writers) < 3 {
		t.Errorf("Route53 written by %v: want the first writer and the two that took over", writers)
	}
	t.Logf("%d Route53 writes by %v; %d requests throttled by the server, and retried", len(writes), writers, r53.srv.Throttled())
}

// TestReplicasKeepHeldRemovalsInRoute53 runs two replicas of the daemon with one
// Route53 and removes a tenant from the fleet. Without the mass-deletion
// trailer the replica that owns the tenant holds its removal, and the tenant
// keeps its workloads and its DNS records, whichever replica writes Route53.
// With the trailer, that replica reports the tenant's placements going, the
// writer withdraws their records, and the replica then deletes them.
func TestReplicasKeepHeldRemovalsInRoute53(t *testing.T) {
	h := newHarness(t)
	h.dns = newRoute53Env(t)
	r53 := h.dns
	a, b := h.start(t, "replica-a", nil), h.start(t, "replica-b", nil)
	waitBalanced(t, 30*time.Second, a.mgr, b.mgr)
	h.pushFleet(t, "json")
	r53.published(t, r53.path, 60*time.Second)

	gone := fleetgen.TenantName(testTenants - 1)
	var staying, removed []string
	for i := range testTenants {
		for j := range testRegions {
			u := fleet.UnitID{Tenant: fleetgen.TenantName(i), Region: fleetgen.RegionName(j), App: "portal"}.String()
			if fleetgen.TenantName(i) == gone {
				removed = append(removed, u)
			} else {
				staying = append(staying, u)
			}
		}
	}
	slices.Sort(staying)
	inventories := func() (units []string) {
		for _, r := range h.tb.Regions {
			store, err := inventory.NewStore(r.Config)
			if err != nil {
				t.Fatal(err)
			}
			list, err := store.List(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			for _, inv := range list {
				if inv.Unit.Tenant == gone {
					units = append(units, inv.Unit.String())
				}
			}
		}
		return units
	}
	held := func() int { return strings.Count(h.logs.String(), "tenant namespace "+gone+"/") }
	push := func(message string) (revision string) {
		t.Helper()
		if err := h.work.RemoveFiles("tenants/"+gone+".yaml", "tenants/"+gone+".secrets.sops.yaml"); err != nil {
			t.Fatal(err)
		}
		revision, err := h.work.Commit(t.Context(), message)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.work.Push(t.Context()); err != nil {
			t.Fatal(err)
		}
		return revision
	}
	owner := a
	if slices.Contains(b.mgr.Owned(), Of(gone, testShards)) {
		owner = b
	}

	rev := push("remove " + gone)
	// The owner's pass holds the removal; the writer's pass and its refreshes
	// (every 0.5 s here) in the meantime must keep the tenant's records.
	deadline := time.Now().Add(60 * time.Second)
	for held() < testRegions {
		if time.Now().After(deadline) {
			t.Fatalf("the removal of %s was not held in each region within 60s", gone)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Assert once the writer had its chance to withdraw them: its pass of the
	// revision ended, and two of its looks at the reports (the second begun
	// after the first ended) came after that and after the owner's report.
	r53.afterReport(t, rev, owner.name)
	all := slices.Sorted(slices.Values(append(slices.Clone(staying), removed...)))
	if problem := r53.check(t, all, r53.path); problem != "" {
		t.Errorf("a held removal lost its DNS records: %s", problem)
	}
	if got := inventories(); len(got) != 2*testRegions {
		t.Errorf("%s's units while its removal is held: %v, want its %d", gone, got, 2*testRegions)
	}

	if err := h.work.WriteFiles(map[string]string{"README.md": "allowed\n"}); err != nil {
		t.Fatal(err)
	}
	push("remove " + gone + ", allowed\n\nMeridian-Allow-Mass-Deletion: true")
	start := time.Now()
	for len(inventories()) > 0 || r53.check(t, staying, r53.path) != "" {
		if time.Since(start) > 90*time.Second {
			t.Fatalf("after 90s: %s's units %v; Route53: %s", gone, inventories(), r53.check(t, staying, r53.path))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("the allowed removal: records withdrawn and units deleted %s after the push", time.Since(start).Round(time.Millisecond))
}

// TestReplicasShareDNSHealth runs three replicas with one Route53: only the
// writer reads the health checks, and every replica's dashboard is given every
// published endpoint with the health the writer read.
func TestReplicasShareDNSHealth(t *testing.T) {
	h := newHarness(t)
	h.dns = newRoute53Env(t)
	r53 := h.dns
	var replicas []*replica
	for _, name := range []string{"replica-a", "replica-b", "replica-c"} {
		replicas = append(replicas, h.start(t, name, nil))
	}
	waitBalanced(t, 30*time.Second, replicas[0].mgr, replicas[1].mgr, replicas[2].mgr)
	h.pushFleet(t, "json")
	r53.published(t, r53.path, 60*time.Second)

	want := map[string]bool{}
	for i := range testTenants {
		for j := range testRegions {
			want[fleet.UnitID{Tenant: fleetgen.TenantName(i), Region: fleetgen.RegionName(j), App: "portal"}.String()] = true
		}
	}
	start := time.Now()
	for {
		var wrong []string
		for _, r := range replicas {
			if v := r.dnsView.Load(); v == nil || !maps.Equal(*v, want) {
				n := 0
				if v != nil {
					n = len(*v)
				}
				wrong = append(wrong, fmt.Sprintf("%s shows %d endpoints", r.name, n))
			}
		}
		if len(wrong) == 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after 30s, not every replica shows the %d endpoints healthy: %v", len(want), wrong)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("every replica shows the %d endpoints %s after Route53 held them", len(want), time.Since(start).Round(time.Millisecond))
	if n := r53.srv.Count("GetHealthCheckStatus"); n == 0 {
		t.Error("nobody read the health checks' status")
	}
}
