package shard

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/syncbuf"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/reconciler"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

const (
	testNamespace = "meridian-system"
	testTenants   = 12
	testRegions   = 2
	testShards    = 16
	testLease     = 4 * time.Second
	// applyDelay widens every apply, so that two replicas applying one placement
	// at once could not miss each other.
	applyDelay = 100 * time.Millisecond
)

// event is one write of a replica to a unit, from the moment it was attempted to
// the moment it returned.
type event struct {
	replica    string
	unit       fleet.UnitID
	start, end time.Time
}

// writes records every replica's writes to the regions.
type writes struct {
	mu     sync.Mutex
	events []*event
}

func (w *writes) begin(replica string, unit fleet.UnitID) *event {
	e := &event{replica: replica, unit: unit, start: time.Now()}
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
	return e
}

func (w *writes) end(e *event) {
	w.mu.Lock()
	e.end = time.Now()
	w.mu.Unlock()
}

// since returns the writes begun at or after t, copied.
func (w *writes) since(t time.Time) []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event
	for _, e := range w.events {
		if !e.start.Before(t) {
			out = append(out, *e)
		}
	}
	return out
}

// overlaps lists every pair of writes to one unit by two replicas whose intervals
// intersect; a write still in flight lasts until now.
func overlaps(events []event) []string {
	byUnit := map[fleet.UnitID][]event{}
	for _, e := range events {
		byUnit[e.unit] = append(byUnit[e.unit], e)
	}
	var out []string
	for unit, es := range byUnit {
		for i, a := range es {
			for _, b := range es[i+1:] {
				aEnd, bEnd := a.end, b.end
				if aEnd.IsZero() {
					aEnd = time.Now()
				}
				if bEnd.IsZero() {
					bEnd = time.Now()
				}
				if a.replica != b.replica && a.start.Before(bEnd) && b.start.Before(aEnd) {
					out = append(out, fmt.Sprintf("%s: %s [%s, %s] and %s [%s, %s]", unit,
						a.replica, a.start.Format("15:04:05.000"), aEnd.Format("15:04:05.000"),
						b.replica, b.start.Format("15:04:05.000"), bEnd.Format("15:04:05.000")))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// appliers maps each unit to the replicas that wrote it.
func appliers(events []event) map[fleet.UnitID][]string {
	out := map[fleet.UnitID][]string{}
	for _, e := range events {
		if !slices.Contains(out[e.unit], e.replica) {
			out[e.unit] = append(out[e.unit], e.replica)
		}
	}
	return out
}

// recorder is a region's write side that records every write. Health is not
// this test's subject: the regions run no workloads, so Wait reports healthy.
type recorder struct {
	reconciler.Cluster
	replica string
	writes  *writes
	dead    *atomic.Bool
}

var errKilled = errors.New("the replica was killed")

func (r recorder) Apply(ctx context.Context, u *render.Unit, prev *plan.Inventory) error {
	if r.dead.Load() {
		return errKilled
	}
	e := r.writes.begin(r.replica, u.ID())
	defer r.writes.end(e)
	time.Sleep(applyDelay)
	if r.dead.Load() {
		// Killed during the apply: a killed process finishes nothing. (Units are
		// applied side by side, so without this every unit a pass had started
		// would still be written after the kill.)
		return errKilled
	}
	return r.Cluster.Apply(ctx, u, prev)
}

func (r recorder) Prune(ctx context.Context, ch plan.Change) error {
	if r.dead.Load() {
		return errKilled
	}
	e := r.writes.begin(r.replica, ch.Unit)
	defer r.writes.end(e)
	return r.Cluster.Prune(ctx, ch)
}

func (r recorder) Wait(context.Context, *render.Unit, time.Duration) (apply.State, error) {
	return apply.Ready, nil
}

// everything is an Ownership that owns every tenant: replicas without fencing.
type everything struct{}

func (everything) Hold(ctx context.Context) (func(string) bool, context.Context, func()) {
	return func(string) bool { return true }, ctx, func() {}
}
func (everything) Changed() <-chan struct{} { return nil }

// harness is testbed regions (the first also the management cluster), a git
// server with a synthetic fleet, and replicas of the daemon in this process.
type harness struct {
	tb     *testbed.Testbed
	client kubernetes.Interface
	work   *gitserver.Workdir
	url    string
	writes *writes
	logs   *syncbuf.Buffer
	// dns, when set, gives every replica started afterwards Route53.
	dns *route53Env
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx := t.Context()
	tb := testbed.New(t, testbed.Options{Regions: testRegions})
	client := kubernetes.NewForConfigOrDie(tb.Regions[0].Config)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := gitserver.New(t, gitserver.Options{})
	if _, err := srv.CreateRepo("fleet.git"); err != nil {
		t.Fatal(err)
	}
	work, err := srv.Clone(ctx, "fleet.git")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{tb: tb, client: client, work: work, url: srv.URL("fleet.git"), writes: &writes{}, logs: &syncbuf.Buffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replicas' log:\n%s", h.logs.String())
		}
	})
	return h
}

// pushFleet commits the synthetic fleet, with logFormat in fleet.yaml's values so
// that a new value changes every placement, and returns the commit.
func (h *harness) pushFleet(t *testing.T, logFormat string) string {
	t.Helper()
	dir := t.TempDir()
	if err := fleetgen.Write(dir, fleetgen.Spec{Tenants: testTenants, Regions: testRegions, Apps: 1, Example: "../../fleet-example"}); err != nil {
		t.Fatal(err)
	}
	fleetFile := filepath.Join(dir, "fleet.yaml")
	data, err := os.ReadFile(fleetFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fleetFile, []byte(strings.Replace(string(data), "logFormat: json", "logFormat: "+logFormat, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if h.dns != nil {
		h.dns.edit(t, dir)
	}
	if err := h.work.CopyTree(dir); err != nil {
		t.Fatal(err)
	}
	rev, err := h.work.Commit(t.Context(), "fleet "+logFormat)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.work.Push(t.Context()); err != nil {
		t.Fatal(err)
	}
	return rev
}

// replica is one daemon, with its own git cache, renderer and Leases.
type replica struct {
	name string
	mgr  *Manager
	dead atomic.Bool
	// dnsView is the DNS health the replica's dashboard was last given, by
	// placement (with Route53).
	dnsView atomic.Pointer[map[string]bool]
	cancel  context.CancelFunc
	done    sync.WaitGroup
}

// start starts a replica; own nil means a shard Manager of its own.
func (h *harness) start(t *testing.T, name string, own reconciler.Ownership) *replica {
	t.Helper()
	r := &replica{name: name}
	log := slog.New(slog.NewJSONHandler(h.logs, nil)).With("replica", name)
	cache := t.TempDir()
	t.Cleanup(func() {
		// Snapshots are read-only; make them writable so the directory can go.
		_ = filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	git, err := sources.NewGit(sources.GitOptions{URL: h.url, Ref: sources.Ref{Branch: "main"}, CacheDir: cache, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	charts, err := helm.New(helm.Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	r.cancel = cancel
	if own == nil {
		r.mgr, err = New(Options{Client: h.client, Namespace: testNamespace, Identity: name, Shards: testShards, LeaseDuration: testLease, Log: log, DNS: h.dns != nil})
		if err != nil {
			t.Fatal(err)
		}
		own = r.mgr
		r.done.Go(func() {
			if err := r.mgr.Run(ctx); err != nil {
				t.Errorf("%s: shard manager: %v", name, err)
			}
		})
	}
	r.done.Go(func() {
		opts := reconciler.RunOptions{
			Poller:     &sources.Poller{Source: git, Interval: 500 * time.Millisecond, Logger: log},
			Snapshots:  git,
			Renderer:   render.New(render.Options{Helm: charts, Decryptor: secrets.NewDecryptor(nil)}),
			Kubeconfig: h.tb.Kubeconfig,
			NewCluster: func(region string, cfg *rest.Config) (reconciler.Cluster, error) {
				store, err := inventory.NewStore(cfg)
				if err != nil {
					return nil, err
				}
				a, err := apply.New(cfg, apply.Options{Inventory: store, Logger: log.With("region", region)})
				if err != nil {
					return nil, err
				}
				return recorder{Cluster: a.Region(), replica: name, writes: h.writes, dead: &r.dead}, nil
			},
			HealthTimeout:   10 * time.Second,
			RetryMin:        500 * time.Millisecond,
			RetryMax:        2 * time.Second,
			ShutdownTimeout: 5 * time.Second,
			DriftInterval:   -1,
			Ownership:       own,
			Log:             log,
		}
		if h.dns != nil {
			h.dns.options(&opts, name, r)
		}
		err := reconciler.Run(ctx, opts)
		if err != nil {
			t.Errorf("%s: run: %v", name, err)
		}
	})
	t.Cleanup(r.stop)
	return r
}

// stop shuts the replica down as SIGTERM does: the pass in flight finishes, then
// its Leases are given up.
func (r *replica) stop() {
	r.cancel()
	r.done.Wait()
}

// kill stops the replica as SIGKILL does: it writes nothing more and gives
// nothing up; its Leases expire.
func (r *replica) kill() {
	r.dead.Store(true)
	if r.mgr != nil {
		r.mgr.abandon.Store(true)
	}
	r.cancel()
	r.done.Wait()
}

// expectedUnits are the units of the synthetic fleet.
func expectedUnits() []fleet.UnitID {
	var out []fleet.UnitID
	for i := range testTenants {
		for j := range testRegions {
			tenant, region := fleetgen.TenantName(i), fleetgen.RegionName(j)
			out = append(out, fleet.NamespaceUnit(tenant, region), fleet.UnitID{Tenant: tenant, Region: region, App: fleetgen.AppName(0)})
		}
	}
	slices.SortFunc(out, fleet.UnitID.Compare)
	return out
}

// waitConverged waits until every unit has its inventory in every region, and
// every placement's records rev (a namespace unit a revision leaves unchanged
// keeps the revision that last changed it).
func (h *harness) waitConverged(t *testing.T, rev string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var missing []fleet.UnitID
	for time.Since(start) < timeout {
		missing = missing[:0]
		at := map[fleet.UnitID]string{}
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
				at[inv.Unit] = inv.Revision
			}
		}
		for _, u := range expectedUnits() {
			if got, ok := at[u]; !ok || (!u.IsNamespace() && got != rev) {
				missing = append(missing, u)
			}
		}
		if len(missing) == 0 {
			return time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("after %s, %d units not at revision %s: %v", timeout, len(missing), rev[:12], missing)
	return 0
}

// waitOneLeader waits until exactly one of ms leads. A leader lost (cut off or
// killed) is replaced a lease duration after its last renewal, so there is a
// moment with none; two at once is an error at any time.
func waitOneLeader(t *testing.T, timeout time.Duration, ms ...*Manager) {
	t.Helper()
	start := time.Now()
	for {
		var leaders []string
		for _, m := range ms {
			if m.Leader() {
				leaders = append(leaders, m.opts.Identity)
			}
		}
		if len(leaders) > 1 {
			t.Fatalf("%v lead at once", leaders)
		}
		if len(leaders) == 1 {
			t.Logf("%s leads, %s after the check began", leaders[0], time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("no leader among %d replicas after %s", len(ms), timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitBalanced waits until the managers agree that they are the members, and
// every shard is owned by exactly the manager hashing gives it to.
func waitBalanced(t *testing.T, timeout time.Duration, ms ...*Manager) time.Duration {
	t.Helper()
	var names []string
	for _, m := range ms {
		names = append(names, m.opts.Identity)
	}
	slices.Sort(names)
	start := time.Now()
	var problem string
	for time.Since(start) < timeout {
		problem = ""
		owner := map[int]string{}
		for _, m := range ms {
			if got := m.Members(); !slices.Equal(got, names) {
				problem = fmt.Sprintf("%s sees members %v", m.opts.Identity, got)
			}
			for _, s := range m.Owned() {
				if o, ok := owner[s]; ok {
					t.Fatalf("shard %d owned by %s and %s at once", s, o, m.opts.Identity)
				}
				owner[s] = m.opts.Identity
			}
		}
		for s := range ms[0].opts.Shards {
			if want := Owner(s, names); owner[s] != want && problem == "" {
				problem = fmt.Sprintf("shard %d owned by %q, want %s", s, owner[s], want)
			}
		}
		if problem == "" {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after %s the shards are not balanced: %s", timeout, problem)
	return 0
}

// checkOwners checks that each unit written in events was written by exactly
// one replica, the one hashing gives its tenant to among members, and returns
// how many units each replica wrote.
func checkOwners(t *testing.T, events []event, members []string) map[string]int {
	t.Helper()
	slices.Sort(members)
	per := map[string]int{}
	for unit, by := range appliers(events) {
		tenant := unit.Tenant
		want := Owner(Of(tenant, testShards), members)
		if len(by) != 1 || by[0] != want {
			t.Errorf("%s written by %v, want by %s alone", unit, by, want)
		}
		per[by[0]]++
	}
	return per
}

// TestReplicasShareTheFleet runs replicas of the daemon against two testbed
// regions: every placement is written by exactly one replica, never by two at
// once; a replica that joins takes its share; a killed replica's tenants are
// taken over once its Leases expire.
func TestReplicasShareTheFleet(t *testing.T) {
	h := newHarness(t)
	a := h.start(t, "replica-a", nil)
	b := h.start(t, "replica-b", nil)
	t.Logf("two replicas balanced in %s", waitBalanced(t, 30*time.Second, a.mgr, b.mgr).Round(time.Millisecond))

	t1 := time.Now()
	rev1 := h.pushFleet(t, "json")
	took := h.waitConverged(t, rev1, 2*time.Minute)
	per := checkOwners(t, h.writes.since(t1), []string{a.name, b.name})
	t.Logf("revision 1: %d units converged in %s; written per replica %v", len(expectedUnits()), took.Round(time.Millisecond), per)

	c := h.start(t, "replica-c", nil)
	t.Logf("a third replica joined; balanced in %s; owned shards a=%v b=%v c=%v", waitBalanced(t, 30*time.Second, a.mgr, b.mgr, c.mgr).Round(time.Millisecond),
		a.mgr.Owned(), b.mgr.Owned(), c.mgr.Owned())
	t2 := time.Now()
	rev2 := h.pushFleet(t, "rev2")
	took = h.waitConverged(t, rev2, 2*time.Minute)
	per = checkOwners(t, h.writes.since(t2), []string{a.name, b.name, c.name})
	t.Logf("revision 2: converged in %s; written per replica %v", took.Round(time.Millisecond), per)
	if per[c.name] == 0 {
		t.Errorf("the replica that joined wrote nothing: %v", per)
	}

	// Kill b while it applies revision 3.
	t3 := time.Now()
	rev3 := h.pushFleet(t, "rev3")
	deadline := time.Now().Add(time.Minute)
	for !slices.ContainsFunc(h.writes.since(t3), func(e event) bool { return e.replica == b.name }) {
		if time.Now().After(deadline) {
			t.Fatal("replica b did not start applying revision 3")
		}
		time.Sleep(10 * time.Millisecond)
	}
	bShards := b.mgr.Owned()
	killed := time.Now()
	b.kill()
	// The moment a and c between them hold every shard b held.
	var leasesTaken time.Duration
	for leasesTaken == 0 {
		held := append(a.mgr.Owned(), c.mgr.Owned()...)
		if !slices.ContainsFunc(bShards, func(s int) bool { return !slices.Contains(held, s) }) {
			leasesTaken = time.Since(killed)
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("30s after the kill, a and c hold %v of b's shards %v", held, bShards)
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.waitConverged(t, rev3, 2*time.Minute)
	took = time.Since(killed)
	var first, last time.Time
	taken := map[fleet.UnitID]bool{}
	for _, e := range h.writes.since(killed) {
		tenant := e.unit.Tenant
		if e.replica == b.name || Owner(Of(tenant, testShards), []string{a.name, b.name, c.name}) != b.name {
			continue
		}
		taken[e.unit] = true
		if first.IsZero() || e.start.Before(first) {
			first = e.start
		}
		if e.end.After(last) {
			last = e.end
		}
	}
	if len(taken) == 0 {
		t.Fatal("no unit of the killed replica's tenants was written by another replica")
	}
	takeover := first.Sub(killed)
	t.Logf("replica b killed: its %d shards held by the others %s after the kill; %d of its units taken over, the first written %s after the kill, all %s after (lease duration %s); revision 3 converged (seen) %s after the kill",
		len(bShards), leasesTaken.Round(time.Millisecond), len(taken), takeover.Round(time.Millisecond), last.Sub(killed).Round(time.Millisecond), testLease, took.Round(time.Millisecond))
	// The Leases expire a lease duration after their last renewal, before the
	// kill; the others notice within a renew period (the slack is for a loaded
	// machine). Their pass then renders and applies.
	if limit := testLease + 2*testLease/5 + 500*time.Millisecond; leasesTaken > limit {
		t.Errorf("b's shards taken over after %s, want at most %s", leasesTaken.Round(time.Millisecond), limit)
	}
	// The others take b's shards one by one, so a unit of a shard taken early may
	// be written before the last shard is taken; none before any Lease of b's
	// could have expired.
	if leasesTaken < testLease*2/3 || takeover < testLease*2/3 {
		t.Errorf("b's shards taken over after %s, its tenants written after %s: before its Leases could have expired", leasesTaken.Round(time.Millisecond), takeover.Round(time.Millisecond))
	}
	if limit := testLease + 10*time.Second; takeover > limit {
		t.Errorf("b's tenants first written by another replica %s after the kill, want at most %s", takeover.Round(time.Millisecond), limit)
	}
	waitBalanced(t, 30*time.Second, a.mgr, c.mgr)

	if o := overlaps(h.writes.since(time.Time{})); len(o) > 0 {
		t.Errorf("%d writes of one unit by two replicas at once:\n%s", len(o), strings.Join(o, "\n"))
	}
	t.Logf("%d writes checked, no overlap", len(h.writes.since(time.Time{})))

	waitOneLeader(t, 10*time.Second, a.mgr, c.mgr)
}

// TestOverlapIsCaughtWithoutFencing runs two replicas that each believe they own
// every tenant: the overlap check must catch them writing one unit at once. It
// shows that TestReplicasShareTheFleet's check can fail.
func TestOverlapIsCaughtWithoutFencing(t *testing.T) {
	h := newHarness(t)
	h.start(t, "replica-a", everything{})
	h.start(t, "replica-b", everything{})
	rev := h.pushFleet(t, "json")
	h.waitConverged(t, rev, 2*time.Minute)
	o := overlaps(h.writes.since(time.Time{}))
	if len(o) == 0 {
		t.Fatal("no overlap found between two replicas that both write every unit")
	}
	t.Logf("%d overlapping writes found, as expected; the first: %s", len(o), o[0])
	by := appliers(h.writes.since(time.Time{}))
	two := 0
	for _, u := range slices.SortedFunc(maps.Keys(by), fleet.UnitID.Compare) {
		if len(by[u]) == 2 {
			two++
		}
	}
	t.Logf("%d of %d units written by both replicas", two, len(by))
}
