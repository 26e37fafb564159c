package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/backoff"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/inventory"
	"meridian.dev/meridian/reconciler/live"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/sources"
)

// AllowMassDeletionTrailer is plan.AllowMassDeletionTrailer, the commit message
// trailer that lets one revision through the mass-deletion guard.
const AllowMassDeletionTrailer = plan.AllowMassDeletionTrailer

// Defaults of RunOptions.
const (
	DefaultRetryMin        = 10 * time.Second
	DefaultRetryMax        = 5 * time.Minute
	DefaultShutdownTimeout = time.Minute
	DefaultDriftInterval   = 10 * time.Minute
	// DefaultRequestTimeout bounds each request to a region's API server when its
	// kubeconfig sets no timeout, so that a region that stopped answering fails the
	// pass there instead of hanging it.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultKubeAPIQPS and DefaultKubeAPIBurst are the request rate Meridian allows
	// itself against each region's API server, shared by all its clients there.
	DefaultKubeAPIQPS   = 200
	DefaultKubeAPIBurst = 400
)

// SnapshotHolder keeps a snapshot's directory on disk while it is in use;
// *sources.Git is one. release may be called more than once.
type SnapshotHolder interface {
	Hold(s *sources.Snapshot) (release func())
}

// RunOptions configure Run.
type RunOptions struct {
	// Poller fetches the fleet repository on its clock (interval, webhook trigger,
	// backoff after fetch errors). Required; with Once only its Source is used.
	Poller *sources.Poller
	// Snapshots holds the snapshot in use, so retention does not remove it while it
	// is rendered or retried. Nil holds nothing.
	Snapshots SnapshotHolder
	// Renderer renders snapshots; it keeps its cache across passes. Required.
	Renderer *render.Renderer
	// Kubeconfig is the kubeconfig file holding the context each Region names. Empty
	// means client-go's default loading rules (KUBECONFIG, ~/.kube/config).
	Kubeconfig string
	// Access reaches the regions that are not a context of Kubeconfig: those whose
	// kubeconfig is in a Secret of the management cluster, and EKS clusters.
	Access Access
	// NewCluster builds a region's write side from its rest.Config. Nil means an
	// apply.Applier whose inventory is kept in that region's cluster.
	NewCluster func(region string, cfg *rest.Config) (Cluster, error)
	// Connected, when set, is told each region's rest.Config (a copy) whenever the
	// region's write side is built anew, for what reads the regions on the side,
	// such as the dashboard's events of a unit. Called from Run's goroutine.
	Connected func(region string, cfg *rest.Config)
	// HealthTimeout bounds how long a wave waits for health; zero means the
	// Reconciler's default.
	HealthTimeout time.Duration
	// KubeAPIQPS and KubeAPIBurst bound the requests made to each region's API
	// server: one token bucket per region, shared by Meridian's own client, every
	// tenant's, the inventory's and the health reads, so the region sees at most
	// this rate however many tenants it holds. Zero means DefaultKubeAPIQPS and
	// DefaultKubeAPIBurst.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// RetryMin and RetryMax bound the backoff (with jitter) before a pass that
	// failed is run again on the same snapshot; zero means DefaultRetryMin and
	// DefaultRetryMax.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout bounds how long a pass in flight may go on once ctx is done;
	// zero means DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// DriftInterval is how often, between polls, the current revision is checked for
	// drift (Reconciler.CheckDrift); zero means DefaultDriftInterval, negative never.
	DriftInterval time.Duration
	// Route53 is where the fleet's latency records and health checks are kept (the
	// zone fleet.yaml spec.dns names). Nil leaves DNS alone.
	Route53 dns.Route53API
	// DNS tunes the Route53 applier (rate limit, retries, polling); HostedZoneID
	// and Fleet are taken from the fleet.
	DNS dns.Options
	// DNSObserved, when set, is called with every endpoint the last publish left
	// in the zone and Route53's health of its check: after each publish of the
	// replica that writes Route53, and whenever a check's health changes between
	// passes (read by a dns.Follower on that replica). From any goroutine, one
	// call at a time.
	DNSObserved func([]DNSEndpointHealth)
	// DNSPolls is the budget of GetHealthCheckStatus requests a second with
	// which the health checks are followed between passes (with DNSObserved);
	// zero means dns.DefaultPollsPerSecond, negative not at all.
	DNSPolls float64
	// DNSPokes names placements whose health a watch saw change: their checks
	// are read before the others'. Nil: none.
	DNSPokes <-chan fleet.UnitID
	// Once fetches once and runs one pass, then returns.
	Once bool
	// Passed, when set, is called after every pass with its report, from Run's
	// goroutine.
	Passed func(*Report)
	// DNSRefreshed, when set, is called from Run's goroutine after each look the
	// Route53 writer takes at the health reports between passes (every
	// DNSRefresh), whether it published or not; tests wait for it.
	DNSRefreshed func()
	// Accepted, when set, is called with every new revision whose fleet is valid,
	// before its pass; Refused with every revision refused, and its errors (each
	// naming its file and line); FetchFailed with every failed fetch. All from
	// Run's goroutine.
	Accepted    func(*sources.Snapshot)
	Refused     func(*sources.Snapshot, []error)
	FetchFailed func(error)
	// DriftChecked, when set, is called after every drift check with its report,
	// from Run's goroutine.
	DriftChecked func(*DriftReport)
	// Log receives what the daemon does. Nil discards it.
	Log *slog.Logger
	// Ownership, when set, limits the daemon to the tenants this replica owns, so
	// that several replicas share the fleet (reconciler/shard). Nil owns them all.
	// With Route53, only the replica whose Hold owns DNSWriter writes it.
	Ownership Ownership
	// Health shares placement health between replicas, so that the one writing
	// Route53 publishes every tenant's placements; *shard.Manager is one.
	// Required with Ownership and Route53.
	Health HealthBoard
	// DNSRefresh is how often the replica writing Route53 reads the others'
	// health reports, and publishes when they changed; zero means
	// DefaultDNSRefresh.
	DNSRefresh time.Duration
	// Clock drives the retry backoff, the drift ticker and the shutdown grace
	// period; nil means the real clock. Tests pass a fake one to step through them.
	Clock clock.WithTickerAndDelayedExecution
	// PollHealth reads health from the API servers at every pass, polling, as
	// Meridian did before it watched: no watch is started (nor with Once, whose
	// one pass would gain nothing from them). By default (false)
	// each region's objects are watched (package reconciler/live), health and
	// inventories are read from the watches, and a pass that changes nothing
	// makes no request (docs/health.md).
	PollHealth bool
	// HealthChanged, when set, is told each time the watches see a unit's health
	// change between passes (its state or reason), at most once a second per
	// unit, from the region's goroutine; only units this replica applied and
	// waited for are followed. Ignored with PollHealth.
	HealthChanged func(unit fleet.UnitID, h apply.Health)
}

// DNSWriter is the name an Ownership's owns answers true for when the replica
// holds the Route53 writer's Lease for the pass; no tenant can have it
// (shard.DNSWriter).
const DNSWriter = "@route53"

// DefaultDNSRefresh is how often the Route53 writer looks for new health reports.
const DefaultDNSRefresh = 10 * time.Second

// HealthBoard shares what each replica's passes found of its placements'
// health; *shard.Manager is one.
type HealthBoard interface {
	// ReportHealth replaces this replica's report: placements of revision found
	// healthy (true) or not (false); those not read are left out.
	ReportHealth(ctx context.Context, revision string, healthy map[fleet.UnitID]bool) error
	// Health returns every replica's reports of revision merged, the newest
	// winning; an absent placement is of unknown health.
	Health(ctx context.Context, revision string) (map[fleet.UnitID]bool, error)
}

// Access reaches the regions that are not a context of Meridian's kubeconfig. A
// nil field makes the regions that need it fail, each with the reason, while the
// others go on.
type Access struct {
	// Secrets reads the kubeconfigs of regions whose spec.cluster.secretRef names
	// a Secret in the management cluster; *access.Secrets is one.
	Secrets KubeconfigSecrets
	// EKS reaches regions whose spec.cluster.eks names an EKS cluster;
	// *access.EKS is one.
	EKS EKSClusters
}

// KubeconfigSecrets reads kubeconfigs kept in Secrets of the management cluster.
type KubeconfigSecrets interface {
	// Kubeconfig reads the Secret afresh on every call, so a rotated Secret is
	// used from the next pass, and returns the REST configuration of the
	// kubeconfig under ref.Key. Its errors name the Secret and the key, never
	// the Secret's content.
	Kubeconfig(ctx context.Context, ref fleet.SecretRef) (*rest.Config, error)
}

// EKSClusters reaches Amazon EKS clusters with IAM.
type EKSClusters interface {
	// Config returns the REST configuration of the cluster: its endpoint and CA
	// as the EKS API describes them, and a WrapTransport that sets a bearer
	// token refreshed before it expires. For one cluster it returns the same
	// token source every time, so configurations of an unchanged cluster are
	// equal but for that function.
	Config(ctx context.Context, cluster fleet.EKSCluster, awsRegion string) (*rest.Config, error)
}

// Ownership says which tenants a replica may change; *shard.Manager is one.
type Ownership interface {
	// Hold pins the tenants this replica owns now, for one pass or drift check:
	// they stay its own until release is called. owns reports whether a tenant is
	// one of them, and owns(DNSWriter) whether this replica writes Route53. fenced is ctx, ended early when ownership can no longer be
	// proven; the pass writes nothing after that.
	Hold(ctx context.Context) (owns func(tenant string) bool, fenced context.Context, release func())
	// Changed receives a value when the owned tenants changed; the daemon then runs
	// a pass of its current revision, to apply the tenants it gained.
	Changed() <-chan struct{}
}

// Run adds the clock around RunOnce. It consumes the Poller's updates and, for each
// new revision, loads the fleet, connects to its regions and runs a pass. A revision
// whose fleet files are not valid is reported (every error with its file and line)
// and not applied: the last good revision keeps being served. A pass that did not
// bring every region to the revision is run again on the same snapshot with
// backoff and jitter, so an unreachable region catches up once it returns.
//
// When ctx is done, a pass in flight goes on (for at most ShutdownTimeout) so that
// no apply is cut short, and Run returns nil. With Once, Run fetches once, runs one
// pass and returns an error when the fetch, the fleet or the pass failed.
func Run(ctx context.Context, opts RunOptions) error {
	if opts.Poller == nil || opts.Poller.Source == nil {
		return errors.New("run: no source to fetch the fleet repository from")
	}
	if opts.Renderer == nil {
		return errors.New("run: no renderer")
	}
	if opts.Ownership != nil && opts.Once {
		return errors.New("run: several replicas (ha) cannot run once; remove ha from the configuration or --once")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryMin)
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.DriftInterval == 0 {
		opts.DriftInterval = DefaultDriftInterval
	}
	if opts.NewCluster == nil {
		opts.NewCluster = regionCluster(opts.Log, opts.KubeAPIQPS, opts.KubeAPIBurst, opts.HealthTimeout, watching{on: !opts.PollHealth && !opts.Once, changed: opts.HealthChanged})
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Ownership != nil && opts.Route53 != nil && opts.Health == nil {
		return errors.New("run: several replicas (ha) with Route53 need a health board to share placement health")
	}
	if opts.DNSRefresh <= 0 {
		opts.DNSRefresh = DefaultDNSRefresh
	}
	d := &daemon{opts: opts, log: opts.Log, clock: opts.Clock, clusters: map[string]builtCluster{}}
	d.live.observe, d.live.log = opts.DNSObserved, opts.Log
	d.live.refresh, d.live.clock = opts.DNSRefresh, opts.Clock
	if b, ok := opts.Health.(DNSHealthBoard); ok && opts.Ownership != nil {
		d.live.board = b
	}
	d.live.writing.Store(opts.Ownership == nil)
	defer d.release()
	defer d.closeClusters()
	if opts.Once {
		return d.once(ctx)
	}
	if opts.Route53 != nil && opts.DNSObserved != nil {
		fctx, cancel := context.WithCancel(ctx)
		wait := d.live.start(fctx, opts.DNSPolls, opts.DNSPokes)
		defer func() { cancel(); wait() }()
	}
	return d.loop(ctx)
}

// daemon is the state Run keeps between passes.
type daemon struct {
	opts  RunOptions
	log   *slog.Logger
	clock clock.WithTickerAndDelayedExecution
	// loader loads each revision, parsing only the files that changed.
	loader fleet.Loader

	// current is the last good revision: valid fleet files, loaded.
	current *revision
	// clusters are the region write sides built so far, by region.
	clusters map[string]builtCluster
	// dns is the Route53 applier of the fleet's zone, kept across passes so that
	// its rate limit holds; nil until a fleet with a zone is served.
	dns               *dns.Applier
	dnsZone, dnsFleet string
	// dnsHealth is the health the last publish of this replica planned from,
	// when it writes Route53 among several replicas.
	dnsHealth map[fleet.UnitID]bool
	// live reports DNS health between passes.
	live dnsLive
}

// revision is a snapshot with its loaded fleet.
type revision struct {
	snap    *sources.Snapshot
	model   *fleet.Model
	release func()
	// first is the one tenant the revision changed since the one before it
	// (ChangedTenant), for its first pass; "" after it.
	first string
}

// builtCluster is a region's write side, how the Region file said to reach it
// and the configuration it was built from (without its WrapTransport, which
// cannot be compared: the access says which token source it is).
type builtCluster struct {
	access  fleet.ClusterAccess
	cfg     *rest.Config
	cluster Cluster
}

// withoutTransport is cfg without its WrapTransport: an EKS region's token source,
// which EKSClusters keeps one of per cluster.
func withoutTransport(cfg *rest.Config) *rest.Config {
	if cfg.WrapTransport == nil {
		return cfg
	}
	c := rest.CopyConfig(cfg)
	c.WrapTransport = nil
	return c
}

func (d *daemon) release() {
	if d.current != nil {
		d.current.release()
	}
}

// closeClusters stops every region's watches, when Run returns.
func (d *daemon) closeClusters() {
	for name, b := range d.clusters {
		closeCluster(b.cluster)
		delete(d.clusters, name)
	}
}

// closeCluster stops what a region's write side runs in the background (its
// watches), if anything.
func closeCluster(c Cluster) {
	if cl, ok := c.(interface{ Close() }); ok {
		cl.Close()
	}
}

// once is --once: one fetch and one pass.
func (d *daemon) once(ctx context.Context) error {
	snap, err := d.opts.Poller.Source.Fetch(ctx)
	if err != nil {
		return err
	}
	if err := d.accept(snap); err != nil {
		return err
	}
	report, err := d.pass(ctx)
	if err != nil {
		return err
	}
	return report.Err()
}

// loop is the daemon: new revisions from the poller, retries after failed passes.
func (d *daemon) loop(ctx context.Context) error {
	updates := d.opts.Poller.Watch(ctx)
	retry := d.clock.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	failures := 0
	var driftTick <-chan time.Time
	var ownership <-chan struct{}
	if d.opts.Ownership != nil {
		ownership = d.opts.Ownership.Changed()
	}
	if d.opts.DriftInterval > 0 {
		ticker := d.clock.NewTicker(d.opts.DriftInterval)
		defer ticker.Stop()
		driftTick = ticker.C()
	}
	var dnsTick <-chan time.Time
	if d.opts.Ownership != nil && d.opts.Route53 != nil {
		ticker := d.clock.NewTicker(d.opts.DNSRefresh)
		defer ticker.Stop()
		dnsTick = ticker.C()
	}

	for {
		select {
		case <-ownership:
			if d.current == nil {
				continue
			}
			d.log.Info("owned tenants changed; running a pass", "revision", d.current.snap.Revision)
		case <-dnsTick:
			if d.current != nil && ctx.Err() == nil {
				d.refreshDNS(ctx)
			}
			continue
		case <-driftTick:
			if ctx.Err() != nil {
				d.log.Info("shutting down")
				return nil
			}
			if d.current != nil {
				d.checkDrift(ctx)
			}
			continue
		case <-ctx.Done():
			d.log.Info("shutting down")
			return nil
		case u, ok := <-updates:
			if !ok {
				d.log.Info("shutting down")
				return nil
			}
			if u.Err != nil {
				// The poller logs fetch errors and retries them; the last good
				// revision stays in place.
				if d.opts.FetchFailed != nil {
					d.opts.FetchFailed(u.Err)
				}
				continue
			}
			if u.Snapshot.Unchanged && d.current != nil && d.current.snap.Revision == u.Snapshot.Revision {
				continue
			}
			if err := d.accept(u.Snapshot); err != nil {
				continue
			}
			retry.Stop()
			failures = 0
		case <-retry.C():
			d.log.Info("retrying the last pass", "revision", d.current.snap.Revision, "attempt", failures+1)
		}
		if ctx.Err() != nil {
			d.log.Info("shutting down")
			return nil
		}

		report, err := d.pass(ctx)
		if err == nil && !report.needsRetry() {
			failures = 0
			continue
		}
		failures++
		wait := backoff.Exponential(d.opts.RetryMin, d.opts.RetryMax, failures)
		if err == nil {
			err = report.Err()
		}
		d.log.Warn("pass did not converge; retrying", "revision", d.current.snap.Revision, "error", err, "retryIn", wait.Round(time.Millisecond), "failures", failures)
		retry.Reset(wait)
	}
}

// accept loads a fetched snapshot's fleet and makes it the current revision. When
// the fleet is not valid it logs every error and keeps the current revision.
func (d *daemon) accept(snap *sources.Snapshot) error {
	release := func() {}
	if d.opts.Snapshots != nil {
		release = d.opts.Snapshots.Hold(snap)
	}
	model, err := d.loader.Load(snap.Dir, snap.Files)
	if err != nil {
		release()
		log := d.log.With("revision", snap.Revision, "subject", snap.Commit.Subject)
		kept := "none"
		if d.current != nil {
			kept = d.current.snap.Revision
		}
		var list fleet.ErrorList
		errs := []error{err}
		if errors.As(err, &list) {
			errs = errs[:0]
			for _, e := range list {
				log.Error("invalid fleet file", "error", e.Error())
				errs = append(errs, e)
			}
			err = fmt.Errorf("revision %s: the fleet is not valid (%d errors); nothing applied", sources.ShortRevision(snap.Revision), len(list))
		} else {
			err = fmt.Errorf("revision %s: %w", sources.ShortRevision(snap.Revision), err)
		}
		log.Error("revision refused; keeping the last good revision", "error", err, "serving", kept)
		if d.opts.Refused != nil {
			d.opts.Refused(snap, errs)
		}
		return err
	}
	var first string
	if d.current != nil {
		first = ChangedTenant(d.current.model, model)
	}
	d.release()
	d.current = &revision{snap: snap, model: model, release: release, first: first}
	if d.opts.Accepted != nil {
		d.opts.Accepted(snap)
	}
	d.log.Info("new revision", "revision", snap.Revision, "ref", snap.Ref, "subject", snap.Commit.Subject, "author", snap.Commit.Author.Name)
	return nil
}

// pass runs RunOnce on the current revision. It is not cut short by ctx: once ctx
// is done the pass has ShutdownTimeout to finish.
func (d *daemon) pass(ctx context.Context) (*Report, error) {
	passCtx, done := d.passContext(ctx)
	defer done()
	passCtx, model, clusters, owns, release := d.owned(passCtx, d.current.model)
	defer release()
	cur := d.current
	allow := AllowsMassDeletion(cur.snap.Commit)
	if allow {
		d.log.Warn("the commit allows mass deletion for this revision", "revision", cur.snap.Revision, "trailer", AllowMassDeletionTrailer)
	}
	opts := Options{
		Renderer:      d.opts.Renderer,
		Clusters:      clusters,
		HealthTimeout: d.opts.HealthTimeout,
		DNS:           d.dnsApplier(cur.model),
		FirstTenant:   cur.first,
		Log:           d.log,
	}
	cur.first = "" // a retry finds the tenant's units applied
	board := d.sharedDNS(passCtx, &opts, owns)
	r := New(opts)
	start := d.clock.Now()
	report, err := r.RunOnce(passCtx, render.Snapshot{Dir: cur.snap.Dir, Revision: cur.snap.Revision, Model: model}, allow)
	if err != nil {
		d.log.Error("pass failed", "revision", cur.snap.Revision, "error", err, "duration", d.clock.Since(start).Round(time.Millisecond))
		return nil, err
	}
	report.Duration = d.clock.Since(start)
	d.reportHealth(passCtx, report, board)
	if report.DNS != nil && report.DNS.Endpoints != nil { // nil on a replica that does not write Route53
		d.live.published(report.DNS.Endpoints)
	}
	attrs := []any{"revision", cur.snap.Revision, "duration", report.Duration.Round(time.Millisecond), "rendered", report.Renders}
	for _, w := range report.Waves {
		for _, region := range w.Regions {
			if rr, ok := report.Regions[region]; ok {
				attrs = append(attrs, region, rr.Changes.String())
			}
		}
	}
	if perr := report.Err(); perr != nil {
		d.log.Warn("pass finished with problems", append(attrs, "error", perr)...)
	} else {
		d.log.Info("pass finished", attrs...)
	}
	if d.opts.Passed != nil {
		d.opts.Passed(report)
	}
	return report, nil
}

// checkDrift runs CheckDrift on the current revision. Like a pass, it is not cut
// short by ctx, so that a correction in flight finishes.
func (d *daemon) checkDrift(ctx context.Context) {
	passCtx, done := d.passContext(ctx)
	defer done()
	passCtx, model, clusters, _, release := d.owned(passCtx, d.current.model)
	defer release()
	cur := d.current
	r := New(Options{
		Renderer:      d.opts.Renderer,
		Clusters:      clusters,
		HealthTimeout: d.opts.HealthTimeout,
		Log:           d.log,
	})
	start := d.clock.Now()
	var count apply.DriftCount
	report, err := r.CheckDrift(apply.WithDriftCount(passCtx, &count), render.Snapshot{Dir: cur.snap.Dir, Revision: cur.snap.Revision, Model: model})
	if err != nil {
		d.log.Error("drift check failed", "revision", cur.snap.Revision, "error", err)
		return
	}
	attrs := []any{"revision", cur.snap.Revision, "duration", d.clock.Since(start).Round(time.Millisecond), "driftedObjects", report.Objects(),
		"watchedObjects", count.Watched(), "dryRunObjects", count.DryRun()}
	for _, name := range slices.Sorted(maps.Keys(report.Regions)) {
		rd := report.Regions[name]
		attrs = append(attrs, name, fmt.Sprintf("drifted=%d corrected=%d reported=%d", rd.Objects, len(rd.Corrected), len(rd.Reported)))
	}
	if err := report.Err(); err != nil {
		d.log.Warn("drift check finished with problems", append(attrs, "error", err)...)
	} else {
		d.log.Info("drift check finished", attrs...)
	}
	if d.opts.DriftChecked != nil {
		d.opts.DriftChecked(report)
	}
}

// owned limits a pass to the tenants this replica owns (all of them without
// Ownership): the model keeps only those tenants, and each region's write side
// lists only their inventories (so the others' units are neither pruned nor
// counted by the mass-deletion guard) and refuses to write for any other. The
// returned context ends when ownership can no longer be proven; release is called
// once the pass wrote its last.
func (d *daemon) owned(ctx context.Context, m *fleet.Model) (context.Context, *fleet.Model, map[string]Cluster, func(string) bool, func()) {
	clusters := d.regions(ctx, m)
	if d.opts.Ownership == nil {
		return ctx, m, clusters, func(string) bool { return true }, func() {}
	}
	owns, fenced, release := d.opts.Ownership.Hold(ctx)
	for _, b := range d.clusters {
		// Units another replica took over are no longer followed here.
		if r, ok := b.cluster.(interface{ Retain(func(fleet.UnitID) bool) }); ok {
			oc := ownedCluster{owns: owns}
			r.Retain(func(id fleet.UnitID) bool { return oc.unit(id) == nil })
		}
	}
	part := *m
	part.Tenants = slices.DeleteFunc(slices.Clone(m.Tenants), func(t *fleet.Tenant) bool { return !owns(t.Metadata.Name) })
	part.Addons = slices.DeleteFunc(slices.Clone(m.Addons), func(a *fleet.Addon) bool { return !owns(addonShard(a.Metadata.Name)) })
	for name, cl := range clusters {
		clusters[name] = ownedCluster{Cluster: cl, owns: owns}
	}
	return fenced, &part, clusters, owns, release
}

// ownedCluster is a region's write side limited to the tenants a replica owns.
type ownedCluster struct {
	Cluster
	owns func(tenant string) bool
}

// addonShard is the name an addon is sharded by among replicas, as a tenant is by
// its own name; the colon keeps it apart from every tenant's.
func addonShard(addon string) string { return "addon:" + addon }

func (c ownedCluster) unit(id fleet.UnitID) error {
	if id.IsAddon() {
		if !c.owns(addonShard(id.Addon)) {
			return fmt.Errorf("%s: addon %s is not owned by this replica; left to its owner", id, id.Addon)
		}
		return nil
	}
	if !c.owns(id.Tenant) {
		return fmt.Errorf("%s: tenant %s is not owned by this replica; left to its owner", id, id.Tenant)
	}
	return nil
}

func (c ownedCluster) Inventories(ctx context.Context) ([]plan.Inventory, error) {
	invs, err := c.Cluster.Inventories(ctx)
	return slices.DeleteFunc(invs, func(inv plan.Inventory) bool { return c.unit(inv.Unit) != nil }), err
}

func (c ownedCluster) Apply(ctx context.Context, u *render.Unit, prev *plan.Inventory) error {
	if err := c.unit(u.ID()); err != nil {
		return err
	}
	return c.Cluster.Apply(ctx, u, prev)
}

func (c ownedCluster) Prune(ctx context.Context, ch plan.Change) error {
	if err := c.unit(ch.Unit); err != nil {
		return err
	}
	return c.Cluster.Prune(ctx, ch)
}

// passContext returns the context of one pass: not canceled with ctx, but given
// ShutdownTimeout to finish once ctx is done.
func (d *daemon) passContext(ctx context.Context) (context.Context, func()) {
	passCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer clock.Timer
	stop := context.AfterFunc(ctx, func() {
		d.log.Info("shutdown requested; letting the pass in flight finish", "timeout", d.opts.ShutdownTimeout)
		mu.Lock()
		timer = d.clock.AfterFunc(d.opts.ShutdownTimeout, cancel)
		mu.Unlock()
	})
	return passCtx, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel()
	}
}

// dnsApplier returns the Route53 applier of the model's zone, or nil when no
// Route53 is configured. It is rebuilt only when the zone or the fleet's name
// changes.
func (d *daemon) dnsApplier(m *fleet.Model) DNS {
	if d.opts.Route53 == nil {
		return nil // a nil interface, not a nil *dns.Applier: the pass leaves DNS alone
	}
	zone, name := m.Fleet.Spec.DNS.HostedZoneID, m.Fleet.Metadata.Name
	if d.dns == nil || d.dnsZone != zone || d.dnsFleet != name {
		opts := d.opts.DNS
		opts.HostedZoneID, opts.Fleet = zone, name
		if opts.Logger == nil {
			opts.Logger = d.log.With("component", "dns")
		}
		d.dns, d.dnsZone, d.dnsFleet = dns.NewApplier(d.opts.Route53, opts), zone, name
		d.live.applier.Store(d.dns)
	}
	return d.dns
}

// Clusters connects to every region of the model as Run does: through the
// contexts of kubeconfig (empty: the default loading rules), or through acc for
// regions whose kubeconfig is in a Secret or that are EKS clusters. A region
// that cannot be reached as configured gets a Cluster whose every call fails
// with the reason, so that only that region fails.
func Clusters(ctx context.Context, m *fleet.Model, kubeconfig string, acc Access, log *slog.Logger) map[string]Cluster {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &daemon{opts: RunOptions{Kubeconfig: kubeconfig, Access: acc, NewCluster: regionCluster(log, 0, 0, 0, watching{})}, log: log, clusters: map[string]builtCluster{}}
	return d.regions(ctx, m)
}

// regions returns the write side of every region of the model. A region that cannot
// be reached as configured gets a Cluster that reports why, so that only that
// region fails; the others go on.
func (d *daemon) regions(ctx context.Context, m *fleet.Model) map[string]Cluster {
	out := map[string]Cluster{}
	for name, b := range d.clusters {
		if m.Region(name) == nil {
			// The region left the fleet: its watches stop.
			closeCluster(b.cluster)
			delete(d.clusters, name)
		}
	}
	for _, region := range m.Regions {
		name := region.Metadata.Name
		cl, err := d.region(ctx, region)
		if err != nil {
			d.log.Error("region cannot be reached; nothing changes there", "region", name, "error", err)
			if b, ok := d.clusters[name]; ok {
				closeCluster(b.cluster)
			}
			delete(d.clusters, name)
			out[name] = unreachable{err}
			continue
		}
		out[name] = cl
	}
	return out
}

// region builds, or reuses, a region's write side. Its configuration is read
// afresh (the kubeconfig file, the Secret, the EKS cluster's description), and
// the write side is rebuilt only when that configuration changed.
func (d *daemon) region(ctx context.Context, region *fleet.Region) (Cluster, error) {
	name := region.Metadata.Name
	cfg, via, err := d.regionConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRequestTimeout
	}
	key := withoutTransport(cfg)
	if b, ok := d.clusters[name]; ok && reflect.DeepEqual(b.access, region.Spec.Cluster) && reflect.DeepEqual(b.cfg, key) {
		return b.cluster, nil
	}
	cl, err := d.opts.NewCluster(name, cfg)
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", name, err)
	}
	if b, ok := d.clusters[name]; ok {
		closeCluster(b.cluster) // its configuration changed: its watches go with it
	}
	d.clusters[name] = builtCluster{access: region.Spec.Cluster, cfg: key, cluster: cl}
	d.log.Info("connected to region", append(via, "region", name, "server", cfg.Host)...)
	if d.opts.Connected != nil {
		d.opts.Connected(name, rest.CopyConfig(cfg))
	}
	return cl, nil
}

// regionConfig reads how to reach a region, and says how for the log (never a
// credential).
func (d *daemon) regionConfig(ctx context.Context, region *fleet.Region) (*rest.Config, []any, error) {
	access := region.Spec.Cluster
	switch {
	case access.SecretRef != nil:
		ref := *access.SecretRef
		at := region.Source.Position("spec.cluster.secretRef")
		if d.opts.Access.Secrets == nil {
			return nil, nil, fmt.Errorf("%s: spec.cluster.secretRef: Meridian has no access to a management cluster to read Secret %s/%s from; give it one (management in the configuration file, docs/regions.md)",
				at, ref.Namespace, ref.Name)
		}
		cfg, err := d.opts.Access.Secrets.Kubeconfig(ctx, ref)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: spec.cluster.secretRef: %w", at, err)
		}
		return cfg, []any{"secret", ref.Namespace + "/" + ref.Name, "key", ref.Key}, nil
	case access.EKS != nil:
		eks := *access.EKS
		at := region.Source.Position("spec.cluster.eks")
		if d.opts.Access.EKS == nil {
			return nil, nil, fmt.Errorf("%s: spec.cluster.eks: Meridian was started without AWS access to EKS clusters; give it one (eks in the configuration file, docs/regions.md)", at)
		}
		awsRegion := eks.AWSRegion(region.Spec)
		cfg, err := d.opts.Access.EKS.Config(ctx, eks, awsRegion)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: spec.cluster.eks: %w", at, err)
		}
		return cfg, []any{"eks", eks.Name, "awsRegion", awsRegion, "roleARN", eks.RoleARN}, nil
	case access.KubeconfigContext != "":
		cfg, err := d.restConfig(access.KubeconfigContext)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: kubeconfig context %q: %w; add the context to Meridian's kubeconfig or correct spec.cluster.kubeconfigContext",
				region.Source.Position("spec.cluster.kubeconfigContext"), access.KubeconfigContext, err)
		}
		return cfg, []any{"context", access.KubeconfigContext}, nil
	}
	return nil, nil, fmt.Errorf("%s: spec.cluster: says neither kubeconfigContext, secretRef nor eks; set one so Meridian can reach the cluster",
		region.Source.Position("spec.cluster"))
}

// restConfig reads the kubeconfig's context afresh, so that rotated credentials
// are picked up on the next pass.
func (d *daemon) restConfig(context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if d.opts.Kubeconfig != "" {
		rules.ExplicitPath = d.opts.Kubeconfig
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
}

// watching says whether regionCluster's write sides watch their regions, and
// whom they tell of health changes between passes.
type watching struct {
	on      bool
	changed func(fleet.UnitID, apply.Health)
}

// regionCluster is RegionCluster for Run: every region with the same options.
func regionCluster(log *slog.Logger, qps float32, burst int, hookTimeout time.Duration, w watching) func(region string, cfg *rest.Config) (Cluster, error) {
	return func(region string, cfg *rest.Config) (Cluster, error) {
		return RegionCluster(region, cfg, ClusterOptions{
			Log: log, KubeAPIQPS: qps, KubeAPIBurst: burst, HookTimeout: hookTimeout,
			Watch: w.on, HealthChanged: w.changed,
		})
	}
}

// ClusterOptions configure RegionCluster.
type ClusterOptions struct {
	// Log receives what the region's write side does; nil discards.
	Log *slog.Logger
	// KubeAPIQPS and KubeAPIBurst bound the requests to the region's API server
	// (see RunOptions); zero means the defaults.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// HookTimeout bounds each Helm hook; zero means the Applier's default.
	HookTimeout time.Duration
	// Watch watches the region's objects and inventories, so that health and
	// inventories are read from the watches (see RunOptions.PollHealth); the
	// returned Cluster then has a Close method that stops them.
	Watch bool
	// HealthChanged, with Watch, is told each change of a waited-for unit's health
	// between passes (see RunOptions.HealthChanged).
	HealthChanged func(fleet.UnitID, apply.Health)
}

// RegionCluster builds a region's write side as Run does: an Applier with the
// region's inventory store, both drawing on one rate limit; with o.Watch, the
// region's objects and inventories are watched (docs/health.md).
func RegionCluster(region string, cfg *rest.Config, o ClusterOptions) (Cluster, error) {
	if o.KubeAPIQPS <= 0 {
		o.KubeAPIQPS = DefaultKubeAPIQPS
	}
	if o.KubeAPIBurst <= 0 {
		o.KubeAPIBurst = DefaultKubeAPIBurst
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.RateLimiter == nil {
		// Copies of cfg share the limiter: the store's, the applier's, each
		// tenant's client and the watches all draw on this one.
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(o.KubeAPIQPS, max(o.KubeAPIBurst, 1))
	}
	store, err := inventory.NewStore(cfg)
	if err != nil {
		return nil, err
	}
	rlog := o.Log.With("region", region)
	opts := apply.Options{Inventory: store, Logger: rlog, HookTimeout: o.HookTimeout}
	if !o.Watch {
		a, err := apply.New(cfg, opts)
		if err != nil {
			return nil, err
		}
		return a.Region(), nil
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, err
	}
	objects, err := live.New(cfg, mapper, live.Options{Logger: rlog})
	if err != nil {
		return nil, err
	}
	opts.Live = objects
	a, err := apply.New(cfg, opts)
	if err != nil {
		objects.Stop()
		return nil, err
	}
	if err := store.Watch(); err != nil {
		objects.Stop()
		return nil, err
	}
	r := a.Region()
	if o.HealthChanged != nil {
		r.Observe(o.HealthChanged, 0)
	}
	return watchedRegion{Region: r, objects: objects, store: store}, nil
}

// watchedRegion is a region's write side that watches the region: its objects
// (live.Cache) and its inventories. Close stops the watches.
type watchedRegion struct {
	*apply.Region
	objects *live.Cache
	store   *inventory.Store
}

// Close stops following health, then the watches.
func (w watchedRegion) Close() {
	w.Region.Close()
	w.objects.Stop()
	w.store.Stop()
}

// unreachable is the write side of a region that cannot be reached as configured:
// every call fails with the reason, so the pass reports it for that region alone.
type unreachable struct{ err error }

func (u unreachable) Inventories(context.Context) ([]plan.Inventory, error) { return nil, u.err }
func (u unreachable) Apply(context.Context, *render.Unit, *plan.Inventory) error {
	return u.err
}
func (u unreachable) Prune(context.Context, plan.Change) error {
	return u.err
}
func (u unreachable) Wait(context.Context, *render.Unit, time.Duration) (apply.State, error) {
	return "", u.err
}
func (u unreachable) Claim(context.Context, *render.Unit, *plan.Inventory) ([]plan.ObjectRef, error) {
	return nil, u.err
}
func (u unreachable) Drift(context.Context, *render.Unit) ([]apply.Drift, error) {
	return nil, u.err
}

// AllowsMassDeletion reports whether a commit's message carries the trailer
// "Meridian-Allow-Mass-Deletion: true" in its last paragraph (the key is matched
// regardless of case, as git does).
func AllowsMassDeletion(c sources.Commit) bool {
	body := strings.TrimSpace(c.Body)
	if body == "" {
		return false
	}
	paragraphs := strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n\n")
	for _, line := range strings.Split(paragraphs[len(paragraphs)-1], "\n") {
		key, value, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(key), AllowMassDeletionTrailer) && strings.TrimSpace(value) == "true" {
			return true
		}
	}
	return false
}
