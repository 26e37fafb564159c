package reconciler

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
)

// Cluster is the write side of one region, as a pass uses it.
type Cluster interface {
	// Inventories lists every unit Meridian applied in the region. An error means the
	// region cannot be read now; the pass then changes nothing there.
	Inventories(ctx context.Context) ([]plan.Inventory, error)
	// Apply applies a unit's objects and records them in the unit's inventory, next
	// to the objects prev recorded: nothing is deleted here.
	Apply(ctx context.Context, unit *render.Unit, prev *plan.Inventory) error
	// Prune deletes objects of a unit and takes them out of its inventory; gone says
	// the unit itself left the fleet, so its inventory goes too.
	Prune(ctx context.Context, unit string, objects []plan.ObjectRef, gone bool) error
	// Wait waits until the unit's objects are healthy, and says why they are not
	// when it gives up.
	Wait(ctx context.Context, unit *render.Unit, timeout time.Duration) error
	// Drift lists the unit's objects whose live state differs, in the fields Meridian
	// applies, from what applying the unit would write; it changes nothing.
	Drift(ctx context.Context, unit *render.Unit) ([]apply.Drift, error)
}

// Options configure a Reconciler.
type Options struct {
	// Renderer renders snapshots; its cache makes unchanged placements free.
	Renderer *render.Renderer
	// Clusters are the regions' write sides, by region name. A region of the fleet
	// without one is reported as unreachable.
	Clusters map[string]Cluster
	// HealthTimeout bounds how long a wave waits for its regions to become healthy.
	HealthTimeout time.Duration
	// DNS publishes healthy exposed placements in the fleet's Route53 zone; nil
	// leaves DNS alone.
	DNS *dns.Applier
	// Log receives what each pass does.
	Log *slog.Logger
}

// Reconciler applies snapshots to regions.
type Reconciler struct {
	opts Options
}

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	if opts.HealthTimeout == 0 {
		opts.HealthTimeout = 5 * time.Minute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{opts: opts}
}

// Report is what one pass did.
type Report struct {
	// Revision is the snapshot's revision.
	Revision string
	// RenderErrors are the units that failed to render; they were left as they are.
	RenderErrors []*render.UnitError
	// Regions holds each region's outcome, by name.
	Regions map[string]*RegionReport
	// Waves are the waves in order, with whether they completed.
	Waves []WaveReport
	// Stopped says why the revision did not reach every wave, or is empty.
	Stopped string
	// DNS is what the pass did in Route53; nil when DNS is not configured.
	DNS *DNSReport
	// Duration is how long the pass took, rendering included; RenderDuration how
	// long rendering took.
	Duration, RenderDuration time.Duration
	// Renders counts the placements rendered, not served from the render cache:
	// only what the revision changed.
	Renders int
}

// WaveReport is one wave's outcome.
type WaveReport struct {
	Name    string
	Regions []string
	// Healthy is true when every region of the wave applied and became healthy.
	Healthy bool
	// Skipped is true when an earlier wave stopped the revision.
	Skipped bool
}

// RegionReport is one region's outcome.
type RegionReport struct {
	// Changes is the region's plan.
	Changes plan.ChangeSet
	// Err is why the region did not converge, or nil.
	Err error
	// Unhealthy maps units that did not become healthy to the reason.
	Unhealthy map[string]string
	// Healthy records, for each unit whose health the pass read, whether it is
	// healthy. A unit it could not tell (not applied, or the region stopped
	// answering) is absent.
	Healthy map[string]bool
}

// Err summarises a report's failures, or returns nil when the revision reached every
// region healthy with nothing held.
func (r *Report) Err() error {
	var problems []string
	if len(r.RenderErrors) > 0 {
		problems = append(problems, fmt.Sprintf("%d units failed to render", len(r.RenderErrors)))
	}
	for _, name := range slices.Sorted(maps.Keys(r.Regions)) {
		rr := r.Regions[name]
		switch {
		case rr.Err != nil:
			problems = append(problems, name+": "+rr.Err.Error())
		case len(rr.Unhealthy) > 0:
			problems = append(problems, fmt.Sprintf("%s: %d units not healthy", name, len(rr.Unhealthy)))
		case rr.Changes.Held != "":
			problems = append(problems, name+": deletions held: "+rr.Changes.Held)
		}
	}
	if r.Stopped != "" {
		problems = append(problems, r.Stopped)
	}
	if r.DNS != nil && r.DNS.Err != nil {
		problems = append(problems, "dns: "+r.DNS.Err.Error())
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("revision %s: %s", shortRevision(r.Revision), strings.Join(problems, "; "))
}

// RunOnce renders snap and brings every region to it, wave by wave. allowMassDeletion
// lets this revision through the mass-deletion guard. It returns an error only when
// nothing could be attempted (the snapshot could not be rendered at all); what
// happened in each region is in the Report.
func (r *Reconciler) RunOnce(ctx context.Context, snap render.Snapshot, allowMassDeletion bool) (*Report, error) {
	start := time.Now()
	res, err := r.opts.Renderer.Render(ctx, snap, render.Filter{})
	if err != nil {
		return nil, err
	}
	report := &Report{Revision: snap.Revision, RenderErrors: res.Errors, Regions: map[string]*RegionReport{}, RenderDuration: time.Since(start), Renders: res.Renders}
	for _, e := range res.Errors {
		r.opts.Log.Error("render failed; the unit is left as it is", "unit", e.Unit, "error", e.Err)
	}
	byRegion := map[string][]*render.Unit{}
	for _, u := range res.Units {
		byRegion[u.Region] = append(byRegion[u.Region], u)
	}
	failed := map[string][]string{}
	for _, id := range res.Failed() {
		parts := strings.Split(id, "/")
		failed[parts[1]] = append(failed[parts[1]], id)
	}
	// Errors from the API server may quote the values they refuse: whatever reaches
	// the report and the logs is redacted first.
	redact := secrets.NewRedactor(secretValues(res))
	limits := plan.Limits{
		MaxDeletePercent:  maxDeletePercent(snap.Model.Fleet),
		AllowMassDeletion: allowMassDeletion,
		NoPrune:           len(res.Errors) > 0,
	}
	// DNS leaves first: records of placements that are going away are withdrawn,
	// and INSYNC, before any workload is deleted. If that fails, nothing is.
	// Reading the zone takes seconds at Route53's request rate, so it runs while
	// the regions apply; only their deletions wait for it.
	withdrawn := func() error { return nil }
	if r.opts.DNS != nil {
		report.DNS = &DNSReport{}
		done := make(chan error, 1)
		go func() { done <- r.withdraw(ctx, snap.Model, report.DNS) }()
		withdrawn = sync.OnceValue(func() error {
			err := <-done
			if err != nil {
				report.DNS.Err = err
				r.opts.Log.Error("DNS records could not be withdrawn; nothing is deleted in this pass", "error", err)
			}
			return err
		})
		defer withdrawn() // returns only once the withdrawal did
	}

	for _, wave := range waves(snap.Model) {
		if report.Stopped != "" {
			report.Waves = append(report.Waves, WaveReport{Name: wave.Name, Regions: wave.Regions, Skipped: true})
			continue
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, region := range wave.Regions {
			wg.Go(func() {
				rr := r.region(ctx, region, byRegion[region], failed[region], limits, withdrawn, redact)
				mu.Lock()
				report.Regions[region] = rr
				mu.Unlock()
			})
		}
		wg.Wait()
		healthy := true
		for _, region := range wave.Regions {
			if rr := report.Regions[region]; rr.Err != nil || len(rr.Unhealthy) > 0 {
				healthy = false
			}
		}
		report.Waves = append(report.Waves, WaveReport{Name: wave.Name, Regions: wave.Regions, Healthy: healthy})
		if !healthy {
			report.Stopped = fmt.Sprintf("wave %s is not healthy, so revision %s does not go on to later waves", wave.Name, shortRevision(snap.Revision))
			r.opts.Log.Warn("rollout stopped", "wave", wave.Name, "revision", snap.Revision)
		}
	}
	if report.DNS != nil && withdrawn() == nil {
		if err := r.publish(ctx, snap.Model, report.Regions, report.DNS); err != nil {
			report.DNS.Err = err
			r.opts.Log.Error("DNS records could not be published", "error", err)
		}
	}
	return report, nil
}

// applyConcurrency is how many units of a region are applied at once.
const applyConcurrency = 8

// region runs one region's pass. withdrawn waits until the records of what is
// going away left DNS, and says whether they did: the region's deletions wait
// for it, and are held when it failed.
func (r *Reconciler) region(ctx context.Context, region string, units []*render.Unit, failed []string, limits plan.Limits, withdrawn func() error, redact *secrets.Redactor) *RegionReport {
	rr := &RegionReport{Unhealthy: map[string]string{}, Healthy: map[string]bool{}}
	log := r.opts.Log.With("region", region)
	cluster, ok := r.opts.Clusters[region]
	if !ok {
		rr.Err = fmt.Errorf("region %s has no cluster configured; add it to Meridian's configuration", region)
		return rr
	}
	applied, err := cluster.Inventories(ctx)
	if err != nil {
		rr.Err = fmt.Errorf("read inventory: %w", err)
		log.Error("region unreachable; nothing changed there", "error", err)
		return rr
	}
	desired := make([]plan.Desired, len(units))
	unitByID := map[string]*render.Unit{}
	for i, u := range units {
		desired[i] = plan.Desired{Unit: u.ID(), Digest: u.Digest, Objects: u.Objects}
		unitByID[u.ID()] = u
	}
	rr.Changes = plan.Calculate(region, desired, applied, failed, limits)
	if !rr.Changes.Empty() {
		log.Info("plan", "changes", rr.Changes.String())
	}
	prune := rr.Changes.Held == ""

	// Namespace units first: a tenant's namespace and service account must exist
	// before its placements are applied as that service account.
	changes := slices.Clone(rr.Changes.Changes)
	slices.SortStableFunc(changes, func(a, b plan.Change) int { return strings.Count(a.Unit, "/") - strings.Count(b.Unit, "/") })
	// Each unit has an inventory of its own, so units are applied side by side:
	// first every namespace unit, then the placements, applyConcurrency at a time.
	// A unit's apply is a dozen requests one after another; one unit at a time
	// left the region idle between them.
	var (
		mu        sync.Mutex
		applyErrs []string
		toWait    []*render.Unit
	)
	applyAll := func(changes []plan.Change) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, applyConcurrency)
		for _, ch := range changes {
			switch ch.Action {
			case plan.Create, plan.Update:
				u := unitByID[ch.Unit]
				sem <- struct{}{}
				wg.Go(func() {
					defer func() { <-sem }()
					err := cluster.Apply(ctx, u, ch.Applied)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						applyErrs = append(applyErrs, fmt.Sprintf("%s: %s", ch.Unit, redact.RedactString(err.Error())))
						return
					}
					toWait = append(toWait, u)
				})
			case plan.Unchanged:
				mu.Lock()
				toWait = append(toWait, unitByID[ch.Unit])
				mu.Unlock()
			}
		}
		wg.Wait()
	}
	split := slices.IndexFunc(changes, func(ch plan.Change) bool { return strings.Count(ch.Unit, "/") > 1 })
	if split < 0 {
		split = len(changes)
	}
	applyAll(changes[:split]) // a placement is applied as the service account its namespace unit creates
	applyAll(changes[split:])
	slices.Sort(applyErrs)
	// Deletions come last — placements before namespaces — and only when every apply
	// of the pass succeeded, nothing is held and DNS no longer points at them.
	if prune && len(applyErrs) == 0 && rr.Changes.Deletions() > 0 && withdrawn() != nil {
		rr.Changes.Held = "DNS records could not be withdrawn, and nothing is deleted because something failed"
		prune = false
	}
	if prune && len(applyErrs) == 0 {
		for _, ch := range slices.Backward(changes) {
			if len(ch.Delete) == 0 {
				continue
			}
			if err := cluster.Prune(ctx, ch.Unit, ch.Delete, ch.Action == plan.Prune); err != nil {
				applyErrs = append(applyErrs, fmt.Sprintf("%s: prune: %s", ch.Unit, redact.RedactString(err.Error())))
			}
		}
	}
	if len(applyErrs) > 0 {
		// The region failed this pass whatever its health; waiting would only hold
		// the pass (and the other regions' next revision) for the health timeout
		// when the region is unreachable. Its health stays unknown until the retry.
		rr.Err = fmt.Errorf("%s", strings.Join(applyErrs, "; "))
		return rr
	}

	var wg sync.WaitGroup
	for _, u := range toWait {
		wg.Go(func() {
			err := cluster.Wait(ctx, u, r.opts.HealthTimeout)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rr.Unhealthy[u.ID()] = redact.RedactString(err.Error())
			}
			if !apply.HealthUnknown(err) {
				rr.Healthy[u.ID()] = err == nil
			}
		})
	}
	wg.Wait()
	return rr
}

// secretValues are the values a pass must never show: those decrypted in this pass,
// and every value of the Secrets it applies (cached units were decrypted earlier).
func secretValues(res *render.Result) []string {
	values := slices.Clone(res.SecretValues())
	for _, u := range res.Units {
		for _, o := range u.Objects {
			if o.GetKind() != "Secret" || o.GroupVersionKind().Group != "" {
				continue
			}
			if m, ok := o.Object["stringData"].(map[string]any); ok {
				values = append(values, secrets.Leaves(m)...)
			}
			data, _ := o.Object["data"].(map[string]any)
			for _, v := range data {
				if enc, ok := v.(string); ok {
					if plain, err := base64.StdEncoding.DecodeString(enc); err == nil && len(plain) >= secrets.MinSecretLen {
						values = append(values, string(plain))
					}
				}
			}
		}
	}
	return values
}

// Wave is a set of regions rolled out together.
type Wave struct {
	Name    string
	Regions []string
}

// waves returns the fleet's rollout waves, or one wave of every region.
func waves(m *fleet.Model) []Wave {
	if len(m.Fleet.Spec.Waves) == 0 {
		all := Wave{Name: "all"}
		for _, r := range m.Regions {
			all.Regions = append(all.Regions, r.Metadata.Name)
		}
		return []Wave{all}
	}
	out := make([]Wave, len(m.Fleet.Spec.Waves))
	for i, w := range m.Fleet.Spec.Waves {
		out[i] = Wave{Name: w.Name, Regions: w.Regions}
	}
	return out
}

func maxDeletePercent(f *fleet.Fleet) int {
	if p := f.Spec.Safety.MaxDeletePercent; p != nil {
		return *p
	}
	return fleet.DefaultMaxDeletePercent
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
