package reconciler_test

import (
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

// requests counts the requests a client makes to an API server, but watches: a
// watch held open is not a request a pass makes.
type requests struct {
	mu   sync.Mutex
	seen []string
}

func (c *requests) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if q := req.URL.Query().Get("watch"); q != "true" && q != "1" {
				c.mu.Lock()
				c.seen = append(c.seen, req.Method+" "+req.URL.Path)
				c.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	})
	return cfg
}

// take returns the requests seen since the last call, sorted.
func (c *requests) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.seen
	c.seen = nil
	sort.Strings(out)
	return out
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// healthChange is one call of HealthChanged.
type healthChange struct {
	unit fleet.UnitID
	h    apply.Health
}

// TestWatchedRegion checks health from watches on a real region: a pass that
// changes nothing makes no request once the watches run (and a polling one does,
// so the count can fail), and a workload made unavailable behind Meridian's back,
// then restored, is seen within seconds without a pass, in a few updates.
func TestWatchedRegion(t *testing.T) {
	tb := testbed.New(t, testbed.Options{Regions: 1, Workloads: true})
	ctx := t.Context()
	region := tb.Regions[0].Name
	dir := t.TempDir()
	if err := fleetgen.Write(dir, fleetgen.Spec{Tenants: 2, Regions: 1, Apps: 2, Example: exampleDir}); err != nil {
		t.Fatal(err)
	}
	model, err := fleet.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := secrets.KeysFromFiles(filepath.Join(exampleDir, "demo-age-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	renderer := render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(keys)})
	snap := render.Snapshot{Dir: dir, Revision: "0123456789abcdef0123456789abcdef01234567", Model: model}

	var watched requests
	changes := make(chan healthChange, 1000)
	cl, err := reconciler.RegionCluster(region, watched.wrap(tb.Regions[0].Config), reconciler.ClusterOptions{
		Watch:         true,
		HealthChanged: func(id fleet.UnitID, h apply.Health) { changes <- healthChange{id, h} },
	})
	if err != nil {
		t.Fatal(err)
	}
	closer, ok := cl.(interface{ Close() })
	if !ok {
		t.Fatal("a watching region has no Close")
	}
	t.Cleanup(closer.Close)
	r := reconciler.New(reconciler.Options{Renderer: renderer, Clusters: map[string]reconciler.Cluster{region: cl}, HealthTimeout: healthTimeout})
	pass := func(t *testing.T, r *reconciler.Reconciler) *reconciler.Report {
		t.Helper()
		rep, err := r.RunOnce(ctx, snap, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(); err != nil {
			t.Fatalf("pass: %v", err)
		}
		return rep
	}
	start := time.Now()
	rep := pass(t, r)
	units := len(rep.Regions[region].Units)
	t.Logf("first pass: %d units applied and Ready in %s, %d requests", units, time.Since(start).Round(time.Millisecond), len(watched.take()))
	if units != 2*2+2 {
		t.Fatalf("%d units, want 6 (2 tenants × 2 apps, 2 namespaces)", units)
	}

	t.Run("a pass that changes nothing makes no request", func(t *testing.T) {
		pass(t, r) // the watches see the first pass's writes
		watched.take()
		start := time.Now()
		rep := pass(t, r)
		elapsed := time.Since(start)
		if got := watched.take(); len(got) != 0 {
			t.Errorf("a no-op pass made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
		}
		for id, u := range rep.Regions[region].Units {
			if u.Action != plan.Unchanged || u.Health != reconciler.Healthy {
				t.Errorf("%s: %s, %s; want unchanged and healthy", id, u.Action, u.Health)
			}
		}

		// The same pass polling health, on a region write side that does not
		// watch, for comparison: it reads every object and every inventory.
		var polled requests
		pcl, err := reconciler.RegionCluster(region, polled.wrap(tb.Regions[0].Config), reconciler.ClusterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pr := reconciler.New(reconciler.Options{Renderer: renderer, Clusters: map[string]reconciler.Cluster{region: pcl}, HealthTimeout: healthTimeout})
		pass(t, pr)
		polled.take()
		pstart := time.Now()
		pass(t, pr)
		pelapsed := time.Since(pstart)
		got := polled.take()
		if len(got) == 0 {
			t.Error("a polling no-op pass made no request: the count sees nothing")
		}
		t.Logf("no-op pass of %d units: watching 0 requests in %s; polling %d requests in %s", units, elapsed.Round(time.Millisecond), len(got), pelapsed.Round(time.Millisecond))
	})

	t.Run("a drift check that finds nothing makes no request", func(t *testing.T) {
		// check runs a drift check with r and returns the requests counted by c;
		// last counts how it read the objects.
		var last apply.DriftCount
		check := func(t *testing.T, r *reconciler.Reconciler, c *requests) []string {
			t.Helper()
			c.take()
			last = apply.DriftCount{}
			rep, err := r.CheckDrift(apply.WithDriftCount(ctx, &last), snap)
			if err != nil {
				t.Fatal(err)
			}
			if err := rep.Err(); err != nil {
				t.Fatalf("drift check: %v", err)
			}
			if n := rep.Objects(); n != 0 {
				t.Errorf("%d drifted objects, want none", n)
			}
			return c.take()
		}
		dryRuns := func(got []string) int {
			n := 0
			for _, r := range got {
				if strings.HasPrefix(r, "PATCH ") {
					n++
				}
			}
			return n
		}
		// untilNone checks until a check makes no request (the watches caught
		// up with the last writes), then once more: it stays at none.
		untilNone := func(t *testing.T, r *reconciler.Reconciler, c *requests) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				got := check(t, r, c)
				if len(got) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("a drift check finding nothing made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
				}
				time.Sleep(time.Second)
			}
			start := time.Now()
			if got := check(t, r, c); len(got) != 0 {
				t.Errorf("the next drift check made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
			}
			if last.Watched() == 0 || last.DryRun() != 0 {
				t.Errorf("the check counted %d objects watched and %d dry-run, want all watched", last.Watched(), last.DryRun())
			}
			t.Logf("a drift check of %d units (%d objects) finding nothing: 0 requests in %s", units, last.Watched(), time.Since(start).Round(time.Millisecond))
		}
		untilNone(t, r, &watched)

		// A daemon just started has recorded nothing of Meridian's applies: its
		// first check dry-runs every object, and records what they showed.
		var fresh requests
		fcl, err := reconciler.RegionCluster(region, fresh.wrap(tb.Regions[0].Config), reconciler.ClusterOptions{Watch: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fcl.(interface{ Close() }).Close)
		fr := reconciler.New(reconciler.Options{Renderer: renderer, Clusters: map[string]reconciler.Cluster{region: fcl}, HealthTimeout: healthTimeout})
		got := check(t, fr, &fresh)
		if dryRuns(got) == 0 {
			t.Fatalf("the first drift check of a fresh region dry-ran nothing:\n%s", strings.Join(got, "\n"))
		}
		if last.DryRun() != int64(dryRuns(got)) || last.Watched() != 0 {
			t.Errorf("the first check of a fresh region counted %d objects watched and %d dry-run, want %d dry-run", last.Watched(), last.DryRun(), dryRuns(got))
		}
		t.Logf("first drift check of a fresh region: %d requests, %d of them dry runs", len(got), dryRuns(got))
		// The second reads the watches, which start then (the first had nothing
		// to compare them with): its only requests are their discovery of the
		// API's groups; no object is read or dry-run. The third makes none.
		for _, r := range check(t, fr, &fresh) {
			if r != "GET /api" && r != "GET /apis" {
				t.Errorf("the second drift check of a fresh region made request %q, want only the watches' discovery", r)
			}
		}
		if got := check(t, fr, &fresh); len(got) != 0 {
			t.Errorf("the third drift check of a fresh region made %d requests, want 0:\n%s", len(got), strings.Join(got, "\n"))
		}

		// The same check on a region that does not watch, for comparison: it
		// dry-runs every object of every unit.
		var polled requests
		pcl, err := reconciler.RegionCluster(region, polled.wrap(tb.Regions[0].Config), reconciler.ClusterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pr := reconciler.New(reconciler.Options{Renderer: renderer, Clusters: map[string]reconciler.Cluster{region: pcl}, HealthTimeout: healthTimeout})
		check(t, pr, &polled)
		got = check(t, pr, &polled)
		if dryRuns(got) == 0 {
			t.Error("a drift check without watches dry-ran nothing: the count sees nothing")
		}
		t.Logf("a drift check of %d units without watches: %d requests, %d of them dry runs", units, len(got), dryRuns(got))
	})

	t.Run("a workload made unavailable between passes is seen without a pass", func(t *testing.T) {
		for len(changes) > 0 {
			<-changes
		}
		cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
		portal := fleet.UnitID{Tenant: fleetgen.TenantName(0), Region: region, App: "portal"}
		deps, err := cs.AppsV1().Deployments(portal.Tenant).List(ctx, metav1.ListOptions{LabelSelector: "meridian.dev/app=portal"})
		if err != nil || len(deps.Items) != 1 {
			t.Fatalf("portal's Deployment: %v (%d found)", err, len(deps.Items))
		}
		name := deps.Items[0].Name
		patch := func(p string) {
			t.Helper()
			if _, err := cs.AppsV1().Deployments(portal.Tenant).Patch(ctx, name, types.StrategicMergePatchType, []byte(p), metav1.PatchOptions{FieldManager: "someone"}); err != nil {
				t.Fatal(err)
			}
		}
		// Pods that no node can take: the rollout never completes.
		patch(`{"spec":{"template":{"spec":{"nodeSelector":{"meridian.dev/no-such-node":"true"}}}}}`)
		seen := await(t, changes, portal, 30*time.Second, func(h apply.Health) bool { return h.State != apply.Ready }, nil)
		if !strings.HasPrefix(seen.h.Reason, "Deployment/"+portal.Tenant+"/"+name+": ") {
			t.Errorf("reason %q, want the Deployment's", seen.h.Reason)
		}
		patch(`{"spec":{"template":{"spec":{"nodeSelector":null}}}}`)
		await(t, changes, portal, time.Minute, func(h apply.Health) bool { return h.State == apply.Ready }, nil)

		// Scaled to zero, the Deployment is Current for kstatus (it has all the
		// replicas it asks for) but serves nothing: Failed.
		scale := func(n int32) {
			t.Helper()
			s, err := cs.AppsV1().Deployments(portal.Tenant).GetScale(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			s.Spec.Replicas = n
			if _, err := cs.AppsV1().Deployments(portal.Tenant).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		want := *deps.Items[0].Spec.Replicas
		scale(0)
		seen = await(t, changes, portal, 30*time.Second, func(h apply.Health) bool { return h.State == apply.Failed }, nil)
		if !strings.Contains(seen.h.Reason, "scaled to 0 replicas outside Meridian") {
			t.Errorf("reason %q, want the Deployment scaled to 0", seen.h.Reason)
		}
		scale(want)
		await(t, changes, portal, time.Minute, func(h apply.Health) bool { return h.State == apply.Ready }, nil)
	})

	t.Run("units another replica took over are no longer followed", func(t *testing.T) {
		retain, ok := cl.(interface{ Retain(func(fleet.UnitID) bool) })
		if !ok {
			t.Fatal("a watching region has no Retain")
		}
		owned := fleetgen.TenantName(1)
		retain.Retain(func(id fleet.UnitID) bool { return id.Tenant == owned })
		for len(changes) > 0 {
			<-changes
		}
		cs := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
		before := map[string]int32{}
		scaleAll := func(n int32) {
			t.Helper()
			for _, tenant := range []string{fleetgen.TenantName(0), owned} {
				s, err := cs.AppsV1().Deployments(tenant).GetScale(ctx, "portal", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					before[tenant] = s.Spec.Replicas
					s.Spec.Replicas = 0
				} else {
					s.Spec.Replicas = before[tenant]
				}
				if _, err := cs.AppsV1().Deployments(tenant).UpdateScale(ctx, "portal", s, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		scaleAll(0)
		kept := fleet.UnitID{Tenant: owned, Region: region, App: "portal"}
		var others []healthChange
		await(t, changes, kept, 30*time.Second, func(h apply.Health) bool { return h.State == apply.Failed }, &others)
		scaleAll(-1) // back to what each had
		await(t, changes, kept, time.Minute, func(h apply.Health) bool { return h.State == apply.Ready }, &others)
		for len(changes) > 0 {
			others = append(others, <-changes)
		}
		for _, c := range others {
			t.Errorf("%s, no longer this replica's, was followed: %s", c.unit, c.h)
		}
		pass(t, r) // the pass waits for every unit again: all are followed again
	})

	t.Run("a region whose watches fail is read, never taken for healthy", func(t *testing.T) {
		if err := tb.KillAPIServer(region); err != nil {
			t.Fatal(err)
		}
		// The watches notice within a second or two; a pass until then answers
		// from what they last saw. Once they failed, the pass reads the API
		// server, and the region fails. A pass that read the inventories
		// before and the health after waits for health it cannot read, and
		// fails its units when the wait times out (short here: the next pass
		// is the one to fail the region).
		short := reconciler.New(reconciler.Options{Renderer: renderer, Clusters: map[string]reconciler.Cluster{region: cl}, HealthTimeout: 5 * time.Second})
		start := time.Now()
		for {
			rep, err := short.RunOnce(ctx, snap, false)
			if err != nil {
				t.Fatal(err)
			}
			rr := rep.Regions[region]
			if rr.Err != nil {
				t.Logf("the region failed %s after its API server stopped: %v", time.Since(start).Round(time.Millisecond), rr.Err)
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatal("30s after its API server stopped, the region still answers from its watches")
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err := tb.StartAPIServer(ctx, region); err != nil {
			t.Fatal(err)
		}
		// The watches list again, and answer again: a no-op pass makes no
		// request once they did.
		deadline := time.Now().Add(time.Minute)
		for {
			rep, err := r.RunOnce(ctx, snap, false)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Err() == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a minute after its API server came back: %v", rep.Err())
			}
			time.Sleep(time.Second)
		}
		eventuallyNoRequests := time.Now().Add(30 * time.Second)
		for {
			watched.take()
			pass(t, r)
			got := watched.take()
			if len(got) == 0 {
				break
			}
			if time.Now().After(eventuallyNoRequests) {
				t.Fatalf("30s after the region came back, a no-op pass still makes %d requests:\n%s", len(got), strings.Join(got, "\n"))
			}
			time.Sleep(time.Second)
		}
	})
}

// await waits for a change of unit's health that ok accepts, and fails the test
// after timeout. It fails too when the unit changed more than a few times: a
// rollout's flurry of events is debounced. Changes of other units are appended to
// others, when not nil.
func await(t *testing.T, changes <-chan healthChange, unit fleet.UnitID, timeout time.Duration, ok func(apply.Health) bool, others *[]healthChange) healthChange {
	t.Helper()
	start := time.Now()
	deadline := time.After(timeout)
	var states []string
	for {
		select {
		case c := <-changes:
			if c.unit != unit {
				if others != nil {
					*others = append(*others, c)
				}
				continue
			}
			states = append(states, c.h.String())
			if ok(c.h) {
				t.Logf("%s seen %s after %s (%d updates: %s)", unit, c.h.State, time.Since(start).Round(time.Millisecond), len(states), strings.Join(states, " | "))
				if len(states) > 10 {
					t.Errorf("%d updates of %s, want a few", len(states), unit)
				}
				return c
			}
		case <-deadline:
			t.Fatalf("%s: not seen after %s; updates: %q", unit, timeout, states)
		}
	}
}
