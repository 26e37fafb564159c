package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"meridian.dev/meridian/internal/testenv/fleetgen"
	"meridian.dev/meridian/internal/testenv/gitserver"
	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/internal/testenv/testbed"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/helm"
	"meridian.dev/meridian/render/secrets"
)

// zone is the synthetic fleet's DNS zone (fleetgen's).
const zone = "fleet.example.com"

// env is what the harness keeps across fleet sizes.
type env struct {
	o        *options
	repo     string
	dir      string
	tools    *Tools
	progress io.Writer
	git      *gitserver.Server
}

func (e *env) start(ctx context.Context) error {
	git, err := gitserver.Start(ctx, gitserver.Options{})
	if err != nil {
		return err
	}
	e.git = git
	return nil
}

func (e *env) close() {
	if e.git != nil {
		_ = e.git.Close()
	}
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "bench: "+format+"\n", args...)
}

// benchRegion is one local region as the harness reaches it: directly as admin, and
// through the counting proxy that Meridian and the baseline use.
type benchRegion struct {
	Name   string
	Config *rest.Config
	Proxy  *Proxy
}

// cluster is a fresh set of local regions with their proxies and a tracker.
type cluster struct {
	tb         *testbed.Testbed
	regions    []*benchRegion
	tracker    *Tracker
	kubeconfig string
}

// startCluster starts empty regions named as fleetgen names them.
func (e *env) startCluster(ctx context.Context, dir string) (*cluster, error) {
	var names []string
	for i := range e.o.regions {
		names = append(names, fleetgen.RegionName(i))
	}
	tb, err := testbed.Start(ctx, testbed.Options{Names: names, Workloads: e.o.workloads, Dir: dir, Progress: e.progress})
	if err != nil {
		return nil, err
	}
	c := &cluster{tb: tb}
	configs := map[string]*rest.Config{}
	for _, r := range tb.Regions {
		p, err := StartProxy(r.Config)
		if err != nil {
			c.close()
			return nil, err
		}
		c.regions = append(c.regions, &benchRegion{Name: r.Name, Config: r.Config, Proxy: p})
		configs[r.Name] = r.Config
	}
	c.kubeconfig = filepath.Join(dir, "proxied-kubeconfig")
	if err := writeProxyKubeconfig(c.kubeconfig, c.regions); err != nil {
		c.close()
		return nil, err
	}
	if c.tracker, err = StartTracker(ctx, configs); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *cluster) close() {
	if c.tracker != nil {
		c.tracker.Stop()
	}
	for _, r := range c.regions {
		r.Proxy.Close()
	}
	_ = c.tb.Stop()
}

// regionNames are the regions' names.
func (c *cluster) regionNames() []string {
	var out []string
	for _, r := range c.regions {
		out = append(out, r.Name)
	}
	return out
}

// counters is a reading of every counter a scenario is measured by.
type counters struct {
	at        time.Time
	client    map[string]int
	apiserver map[string]int
	route53   map[string]int
	cpu       float64
	passes    int
}

func (e *env) read(ctx context.Context, c *cluster, r53 *route53test.Server, d *Daemon) (counters, error) {
	cs := counters{at: time.Now(), client: map[string]int{}, apiserver: map[string]int{}, route53: map[string]int{}}
	for _, r := range c.regions {
		for k, v := range r.Proxy.Counts.Snapshot() {
			cs.client[k] += v
		}
		m, err := APIServerRequests(ctx, r.Config)
		if err != nil {
			return cs, err
		}
		for k, v := range m {
			cs.apiserver[k] += v
		}
	}
	if r53 != nil {
		for _, call := range r53.Calls() {
			cs.route53[call.Operation]++
		}
	}
	if d != nil {
		cpu, err := CPUSeconds(d.PID())
		if err != nil {
			return cs, err
		}
		cs.cpu = cpu
		cs.passes = d.Passes()
	}
	return cs, nil
}

// cycle is what happened between two readings.
func cycle(before, after counters) *Cycle {
	c := &Cycle{
		Seconds:           after.at.Sub(before.at).Seconds(),
		Passes:            after.passes - before.passes,
		CPUSeconds:        after.cpu - before.cpu,
		ClientRequests:    Diff(before.client, after.client),
		APIServerRequests: Diff(before.apiserver, after.apiserver),
		Route53Calls:      Diff(before.route53, after.route53),
	}
	c.KubernetesWrites = Writes(c.ClientRequests)
	c.Route53Changes = route53Changes(c.Route53Calls)
	return c
}

// readyTimeout bounds the wait for every Deployment to be ready: under heavy load
// the controller-manager of a local region can fall behind for good.
const readyTimeout = 5 * time.Minute

// waitReady waits until every Deployment of the fleet is ready and returns when,
// or the zero time and a note when they were not within readyTimeout.
func waitReady(ctx context.Context, c *cluster, deployments int) (time.Time, string, error) {
	wctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	at, err := c.tracker.Wait(wctx, func(t *Tracker) bool {
		total, ready := t.Deployments()
		return total >= deployments && ready == total
	})
	if err != nil && ctx.Err() == nil {
		c.tracker.mu.Lock()
		total, ready := c.tracker.Deployments()
		c.tracker.mu.Unlock()
		return time.Time{}, fmt.Sprintf("%d of %d Deployments ready after waiting %s more; not counted", ready, total, readyTimeout), nil
	}
	return at, "", err
}

// size runs every scenario on a fleet of t tenants.
func (e *env) size(ctx context.Context, tenants int) (*Size, error) {
	spec := fleetgen.Spec{Tenants: tenants, Regions: e.o.regions, Apps: e.o.apps, Example: filepath.Join(e.repo, "fleet-example"), Secrets: true}
	dir := filepath.Join(e.dir, fmt.Sprintf("size-%d", tenants))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	size := &Size{Tenants: tenants, Regions: e.o.regions, Apps: e.o.apps, Placements: spec.Placements(), Units: spec.Placements() + tenants*e.o.regions}
	e.logf("%d tenants × %d regions × %d apps = %d placements", tenants, e.o.regions, e.o.apps, size.Placements)

	// Health checks are created, hardly probed; the account's health-check quota
	// was raised for the fleet (a new account's 200 would refuse it).
	limits := route53test.DocumentedLimits()
	limits.MaxHealthChecks = 5000
	r53 := route53test.NewServer(route53test.Options{ProbeScale: 1000, Limits: &limits, RateScale: e.o.route53Scale})
	defer r53.Close()
	zoneID := r53.CreateZone(zone)
	repoName := fmt.Sprintf("fleet-%d.git", tenants)
	if _, err := e.git.CreateRepo(repoName); err != nil {
		return nil, err
	}
	f, err := writeFleet(ctx, filepath.Join(dir, "fleet"), spec, zoneID, e.git.URL(repoName))
	if err != nil {
		return nil, err
	}
	keyFile := filepath.Join(e.repo, "fleet-example", "demo-age-key.txt")

	if e.o.scenarios["render"] {
		e.logf("render throughput (in process)")
		if size.Render, err = renderThroughput(ctx, f, keyFile, filepath.Join(dir, "charts")); err != nil {
			return size, err
		}
		e.logf("render: cold %.2f s (%d renders), warm %.2f s (%d renders)", size.Render.ColdSeconds, size.Render.ColdRenders, size.Render.WarmSeconds, size.Render.WarmRenders)
	}
	if e.o.scenarios["baseline"] {
		if size.Baseline, err = e.baseline(ctx, f, dir, keyFile, size); err != nil {
			return size, err
		}
	}
	if e.o.scenarios["cold"] {
		if err := e.meridian(ctx, f, dir, keyFile, r53, size); err != nil {
			return size, err
		}
	}
	if e.o.peer == "flux" {
		if err := e.flux(ctx, f, dir, keyFile, size); err != nil {
			return size, err
		}
	}
	if e.o.scenarios["profile"] {
		if err := e.profile(ctx, f, dir, keyFile, r53); err != nil {
			return size, err
		}
	}
	if e.o.scenarios["dns"] {
		if size.DNS, err = e.dnsScenario(ctx, f); err != nil {
			return size, err
		}
	}
	return size, nil
}

// fleetRenderer is a new Renderer of f's work tree at its head, with the
// decryptor of keyFile's keys it renders with.
func fleetRenderer(ctx context.Context, f *Fleet, keyFile, chartsDir string) (*render.Renderer, render.Snapshot, *secrets.Decryptor, error) {
	keys, err := secrets.KeysFromFiles(keyFile)
	if err != nil {
		return nil, render.Snapshot{}, nil, err
	}
	charts, err := helm.New(helm.Options{CacheDir: chartsDir})
	if err != nil {
		return nil, render.Snapshot{}, nil, err
	}
	rev, err := f.Head(ctx)
	if err != nil {
		return nil, render.Snapshot{}, nil, err
	}
	dec := secrets.NewDecryptor(keys)
	return render.New(render.Options{Helm: charts, Decryptor: dec}), render.Snapshot{Dir: f.Dir, Revision: rev, Model: f.Model}, dec, nil
}

// renderThroughput renders the fleet with Meridian's render package, cold (a new
// Renderer) and warm (the same snapshot again).
func renderThroughput(ctx context.Context, f *Fleet, keyFile, chartsDir string) (*RenderResult, error) {
	r, snap, _, err := fleetRenderer(ctx, f, keyFile, chartsDir)
	if err != nil {
		return nil, err
	}
	out := &RenderResult{}
	n := float64(f.Spec.Placements())
	start := time.Now()
	res, err := r.Render(ctx, snap, render.Filter{})
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	out.ColdSeconds, out.ColdRenders = time.Since(start).Seconds(), res.Renders
	out.ColdPerSecond = n / out.ColdSeconds
	start = time.Now()
	if res, err = r.Render(ctx, snap, render.Filter{}); err != nil {
		return nil, err
	}
	out.WarmSeconds, out.WarmRenders = time.Since(start).Seconds(), res.Renders
	out.WarmPerSecond = n / out.WarmSeconds
	return out, nil
}

// baseline runs the scripted pipeline on fresh regions.
func (e *env) baseline(ctx context.Context, f *Fleet, dir, keyFile string, size *Size) (*Side, error) {
	e.logf("baseline: starting empty regions")
	c, err := e.startCluster(ctx, filepath.Join(dir, "regions-baseline"))
	if err != nil {
		return nil, err
	}
	defer c.close()
	b, err := NewBaseline(f, filepath.Join(dir, "baseline"), c.kubeconfig, keyFile, e.tools, e.o.parallelism)
	if err != nil {
		return nil, err
	}
	var sample []string
	if e.o.sample > 1 {
		for i, p := range b.Placements {
			if i%e.o.sample == 0 {
				sample = append(sample, p)
			}
		}
	}
	before, err := e.read(ctx, c, nil, nil)
	if err != nil {
		return nil, err
	}
	e.logf("baseline: %d namespaces, %d placements with xargs -P %d", len(b.Namespaces), len(b.Placements), e.o.parallelism)
	start := time.Now()
	run, err := b.Run(ctx, sample)
	if err != nil {
		return nil, err
	}
	side := &Side{AppliedSeconds: run.Seconds, CPUSeconds: run.CPUSeconds}
	if sample != nil {
		scale := float64(len(b.Placements)+len(b.Namespaces)) / float64(run.Jobs)
		side.Note = fmt.Sprintf("ran %d of %d placements (every %dth) and all %d namespaces in %.1f s; times scaled by %.2f, the ratio of jobs",
			len(sample), len(b.Placements), e.o.sample, len(b.Namespaces), run.Seconds, scale)
		side.AppliedSeconds *= scale
		side.CPUSeconds *= scale
	}
	e.logf("baseline: applied in %.1f s", side.AppliedSeconds)
	if e.o.workloads && sample == nil {
		ready, note, err := waitReady(ctx, c, size.Placements)
		if err != nil {
			return nil, err
		}
		if note != "" {
			side.Note = "Ready: " + note
			e.logf("baseline: %s", note)
		} else {
			side.ReadySeconds = since(start, ready)
			e.logf("baseline: Ready in %.1f s", side.ReadySeconds)
		}
	}
	after, err := e.read(ctx, c, nil, nil)
	if err != nil {
		return nil, err
	}
	side.ClientRequests = Diff(before.client, after.client)
	side.APIServerRequests = Diff(before.apiserver, after.apiserver)
	return side, nil
}

// meridian runs the daemon on fresh regions: cold convergence, then no-op cycles and
// incremental changes on the same daemon.
func (e *env) meridian(ctx context.Context, f *Fleet, dir, keyFile string, r53 *route53test.Server, size *Size) error {
	e.logf("meridian: starting empty regions")
	c, err := e.startCluster(ctx, filepath.Join(dir, "regions-meridian"))
	if err != nil {
		return err
	}
	defer c.close()
	ddir := filepath.Join(dir, "daemon")
	if err := os.MkdirAll(ddir, 0o755); err != nil {
		return err
	}
	health := readyTimeout
	if !e.o.workloads {
		health = time.Second // nothing becomes ready without controllers
	}
	before, err := e.read(ctx, c, r53, nil)
	if err != nil {
		return err
	}
	d, err := StartDaemon(DaemonOptions{Binary: e.tools.Meridian, Dir: ddir, RepoURL: f.Remote, Kubeconfig: c.kubeconfig, KeyFile: keyFile, Route53URL: r53.URL, HealthTimeout: health, KubeQPS: e.o.kubeQPS, Route53RateScale: e.o.route53Scale, GoMemLimit: e.o.goMemLimit, GoGC: e.o.goGC})
	if err != nil {
		return err
	}
	defer d.Stop()
	e.logf("meridian: daemon started (log %s)", d.log)
	side := &Side{}
	size.Meridian = side
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	applied, err := c.tracker.Wait(wctx, func(t *Tracker) bool { return t.Applied() >= size.Units })
	if err != nil {
		return fmt.Errorf("meridian: waiting for every unit applied: %w\n%s", err, d.LogTail(20))
	}
	side.AppliedSeconds = since(d.Start, applied)
	e.logf("meridian: applied in %.1f s", side.AppliedSeconds)
	c.tracker.mu.Lock()
	created, all := c.tracker.Created(size.Placements)
	c.tracker.mu.Unlock()
	if all {
		side.CreatedSeconds = since(d.Start, created)
	}
	if e.o.workloads {
		ready, note, err := waitReady(wctx, c, size.Placements)
		if err != nil {
			return err
		}
		if note != "" {
			side.Note = "Ready: " + note
			e.logf("meridian: %s", note)
		} else {
			side.ReadySeconds = since(d.Start, ready)
			e.logf("meridian: Ready in %.1f s", side.ReadySeconds)
		}
		passed, err := d.WaitReady(wctx)
		if err != nil {
			return err
		}
		side.PassSeconds = since(d.Start, passed)
		e.logf("meridian: first pass (DNS included) in %.1f s", side.PassSeconds)
	} else if _, err := d.WaitLog(wctx, "pass finished with problems", 0); err != nil {
		return err
	}
	after, err := e.read(ctx, c, r53, d)
	if err != nil {
		return err
	}
	side.CPUSeconds = after.cpu
	side.ClientRequests = Diff(before.client, after.client)
	side.APIServerRequests = Diff(before.apiserver, after.apiserver)
	side.Route53Calls = Diff(before.route53, after.route53)

	if e.o.scenarios["noop"] && e.o.workloads {
		if err := e.noop(ctx, f, c, r53, d, size); err != nil {
			return err
		}
	}
	if e.o.scenarios["incremental"] && e.o.workloads {
		for i := range e.o.repeat {
			inc, err := e.incremental(ctx, f, c, d, i)
			if err != nil {
				return err
			}
			size.Incremental = append(size.Incremental, inc)
		}
	}
	if side.PeakRSSMiB, err = PeakRSSMiB(d.PID()); err != nil {
		return err
	}
	return d.Exited()
}

// noop measures a poll that finds the same commit, then a commit that changes no
// placement.
func (e *env) noop(ctx context.Context, f *Fleet, c *cluster, r53 *route53test.Server, d *Daemon, size *Size) error {
	const settle = 3 * time.Second
	fetches := func() int {
		n := 0
		for _, r := range e.git.Requests() {
			if r.Service == "git-upload-pack" && r.Method == "GET" {
				n++
			}
		}
		return n
	}
	time.Sleep(settle)
	before, err := e.read(ctx, c, r53, d)
	if err != nil {
		return err
	}
	n := fetches()
	if err := d.Trigger(ctx); err != nil {
		return err
	}
	for fetches() == n {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(settle)
	after, err := e.read(ctx, c, r53, d)
	if err != nil {
		return err
	}
	size.NoOpPoll = cycle(before, after)
	e.logf("meridian: no-op poll: %d passes, %d writes", size.NoOpPoll.Passes, size.NoOpPoll.KubernetesWrites)

	// A commit that changes no placement: a comment in fleet.yaml.
	if err := appendFile(filepath.Join(f.Dir, "fleet.yaml"), "# a comment: nothing rendered changes\n"); err != nil {
		return err
	}
	if err := f.Commit(ctx, "a comment"); err != nil {
		return err
	}
	before, err = e.read(ctx, c, r53, d)
	if err != nil {
		return err
	}
	passes := d.Passes()
	if err := d.Trigger(ctx); err != nil {
		return err
	}
	if _, err := d.WaitPasses(ctx, passes); err != nil {
		return err
	}
	after, err = e.read(ctx, c, r53, d)
	if err != nil {
		return err
	}
	size.NoOpCommit = cycle(before, after)
	rendered, ok := d.LastPassRendered()
	if !ok {
		return errors.New("no-op commit: the daemon's log has no pass with its renders")
	}
	size.NoOpCommit.Renders = rendered
	e.logf("meridian: no-op commit: %.2f s pass, %d writes", size.NoOpCommit.Seconds, size.NoOpCommit.KubernetesWrites)
	return nil
}

// incremental changes one tenant's portal replicas and measures webhook to applied
// in all its regions, and to the pass finished.
func (e *env) incremental(ctx context.Context, f *Fleet, c *cluster, d *Daemon, i int) (Incremental, error) {
	tenant, app := fleetgen.TenantName(0), fleetgen.AppName(0)
	replicas, err := f.SetReplicas(tenant, app)
	if err != nil {
		return Incremental{}, err
	}
	if err := f.Commit(ctx, fmt.Sprintf("%s: %s replicas %d", tenant, app, replicas)); err != nil {
		return Incremental{}, err
	}
	time.Sleep(time.Second)
	passes := d.Passes()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	if err := d.Trigger(ctx); err != nil {
		return Incremental{}, err
	}
	applied, err := c.tracker.Wait(wctx, func(t *Tracker) bool {
		return t.DeploymentReplicas(c.regionNames(), tenant, app, int32(replicas), false)
	})
	if err != nil {
		return Incremental{}, fmt.Errorf("incremental %d: %w", i, err)
	}
	passed, err := d.WaitPasses(wctx, passes)
	if err != nil {
		return Incremental{}, errors.Join(fmt.Errorf("incremental %d", i), err)
	}
	inc := Incremental{AppliedSeconds: since(start, applied), PassSeconds: since(start, passed)}
	e.logf("meridian: incremental %d: applied in %.2f s, pass %.2f s", i, inc.AppliedSeconds, inc.PassSeconds)
	return inc, nil
}

func appendFile(path, s string) error {
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(s); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// profile runs one cold pass in process on fresh regions under pprof.
func (e *env) profile(ctx context.Context, f *Fleet, dir, keyFile string, r53 *route53test.Server) error {
	e.logf("profile: starting empty regions")
	c, err := e.startCluster(ctx, filepath.Join(dir, "regions-profile"))
	if err != nil {
		return err
	}
	defer c.close()
	pdir := filepath.Join(dir, "profile")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return err
	}
	health := 10 * time.Minute
	if !e.o.workloads {
		health = time.Second
	}
	took, err := profileOnce(ctx, DaemonOptions{Dir: pdir, RepoURL: f.Remote, Kubeconfig: c.kubeconfig, KeyFile: keyFile, Route53URL: r53.URL, HealthTimeout: health, KubeQPS: e.o.kubeQPS, Route53RateScale: e.o.route53Scale}, pdir)
	if err != nil && e.o.workloads {
		return err
	}
	e.logf("profile: one pass in %.1f s; go tool pprof %s", took.Seconds(), filepath.Join(pdir, "cpu.pprof"))
	return nil
}
