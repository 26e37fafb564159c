package reconciler

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/apply"
	"meridian.dev/meridian/reconciler/dns"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/sources"
)

// Cluster is the write side of one region, as a pass uses it.
type Cluster interface {
	// Inventories lists every unit Meridian applied in the region. An error means the
	// region cannot be read now; the pass then changes nothing there.
	Inventories(ctx context.Context) ([]plan.Inventory, error)
	// Apply applies a unit's objects and records them in the unit's inventory, next
	// to the objects prev recorded: nothing is deleted here.
	Apply(ctx context.Context, unit *render.Unit, prev *plan.Inventory) error
	// Prune carries out a change's deletions: it deletes the objects of ch.Delete,
	// releases the adopted objects of ch.Release, and takes them out of the unit's
	// inventory; when the unit itself left the fleet (plan.Prune), its inventory
	// goes too.
	Prune(ctx context.Context, ch plan.Change) error
	// Wait waits until the unit's objects are healthy, and says why they are not
	// when it gives up, with the state it last read (meaningless when
	// apply.HealthUnknown says the objects could not be read).
	Wait(ctx context.Context, unit *render.Unit, timeout time.Duration) (apply.State, error)
	// Claim says what applying a unit would take over of what exists in the region
	// and prev, its inventory, does not record: the objects it would adopt, or the
	// refusal applying would meet. It changes nothing.
	Claim(ctx context.Context, unit *render.Unit, prev *plan.Inventory) ([]plan.ObjectRef, error)
	// Drift lists the unit's objects whose live state differs, in the fields Meridian
	// applies, from what applying the unit would write; it changes nothing.
	Drift(ctx context.Context, unit *render.Unit) ([]apply.Drift, error)
}

// Renderer renders snapshots; *render.Renderer is one.
type Renderer interface {
	// Render renders every unit of snap that filter selects. A unit that fails is
	// in the result's Errors, never in its Units; an error means nothing rendered.
	Render(ctx context.Context, snap render.Snapshot, filter render.Filter) (*render.Result, error)
}

// DNS is the Route53 side of a pass; *dns.Applier is one.
type DNS interface {
	// Current reads what the zone holds that the plan needs.
	Current(ctx context.Context) (dns.State, error)
	// Apply carries out a plan and returns once Route53 is INSYNC with it.
	Apply(ctx context.Context, ch dns.Changes) error
}

// Options configure a Reconciler.
type Options struct {
	// Renderer renders snapshots; its cache makes unchanged placements free.
	Renderer Renderer
	// Clusters are the regions' write sides, by region name. A region of the fleet
	// without one is reported as unreachable.
	Clusters map[string]Cluster
	// HealthTimeout bounds how long a wave waits for its regions to become healthy.
	HealthTimeout time.Duration
	// DNS publishes healthy exposed placements in the fleet's Route53 zone; nil
	// leaves DNS alone.
	DNS DNS
	// DNSFleet is the whole fleet when a pass applies only some of its tenants
	// (several replicas): DNS is planned over every tenant, since one replica
	// writes Route53 for all of them. Nil means the pass's own model.
	DNSFleet *fleet.Model
	// DNSReadOnly is set on a replica that does not hold the Route53 writer's
	// Lease: it writes nothing to Route53. Before deleting anything it reads the
	// zone, and holds its deletions (the pass is retried) while a record of a
	// placement it is about to remove is still there, for the writer to withdraw.
	DNSReadOnly bool
	// DNSTenants reports the tenants whose units this pass applies and prunes,
	// those removed from the fleet included (a replica's owned shards), for the
	// read-only withdrawal check; nil means every tenant.
	DNSTenants func(tenant string) bool
	// DNSHealth is the health of the placements this pass did not read, as the
	// replicas that applied them reported it: known false means unknown, and the
	// placement keeps what it has in Route53. Nil knows nothing.
	DNSHealth func(fleet.UnitID) (healthy, known bool)
	// FirstTenant is the tenant the revision changed, when it changed one only
	// (ChangedTenant): RunOnce applies its units first, before it renders and
	// plans the rest of the fleet (see first). Empty, every unit waits for the
	// whole fleet's plan.
	FirstTenant string
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

// RunOnce renders snap and brings every region to it, wave by wave. allowMassDeletion
// lets this revision through the mass-deletion guard. It returns an error only when
// nothing could be attempted (the snapshot could not be rendered at all); what
// happened in each region is in the Report.
//
// Its steps: when the revision changed one tenant (Options.FirstTenant), apply
// that tenant's units first (see first); render; start reading the zone and withdraw from DNS what no
// region's deletions decide (drained regions, regions gone, placements no longer
// exposed); each wave's regions side by side (plan, apply, and once the
// mass-deletion guard let the region's deletions through, withdraw from DNS the
// records of its placements leaving the fleet, then prune; wait for health),
// stopping at a wave that is not healthy; then publish in DNS what the waves
// found healthy, keeping the records of removals that were held.
func (r *Reconciler) RunOnce(ctx context.Context, snap render.Snapshot, allowMassDeletion bool) (*Report, error) {
	start := time.Now()
	var (
		renders int
		early   map[string]map[fleet.UnitID]plan.Action
	)
	if r.opts.FirstTenant != "" {
		renders, early = r.first(ctx, snap, r.opts.FirstTenant)
	}
	in, err := r.render(ctx, snap, allowMassDeletion)
	if err != nil {
		return nil, err
	}
	report := &Report{Revision: snap.Revision, RenderErrors: in.res.Errors, Regions: map[string]*RegionReport{}, RenderDuration: time.Since(start), Renders: renders + in.res.Renders, Redactor: in.redact}
	for _, e := range in.res.Errors {
		r.opts.Log.Error("render failed; the unit is left as it is", "unit", e.Unit, "error", e.Err)
	}
	dnsModel := snap.Model
	if r.opts.DNSFleet != nil {
		dnsModel = r.opts.DNSFleet
	}
	d := r.startDNS(ctx, dnsModel, regionNames(snap.Model), report)
	if d != nil {
		defer d.wait() // returns only once the zone's read and first withdrawal did
	}
	for _, wave := range waves(snap.Model) {
		report.Waves = append(report.Waves, r.wave(ctx, wave, in, report, d))
	}
	reportFirst(report, early)
	if d != nil && !r.opts.DNSReadOnly && d.wait() == nil {
		if err := d.publish(ctx, report.Regions); err != nil {
			report.DNS.Err = err
			r.opts.Log.Error("DNS records could not be published", "error", err)
		}
	}
	return report, nil
}

// wave runs one wave's regions side by side, unless an earlier wave stopped the
// revision, and stops the revision when the wave is not healthy.
func (r *Reconciler) wave(ctx context.Context, wave Wave, in *rendered, report *Report, d *dnsPass) WaveReport {
	if report.Stopped != "" {
		return WaveReport{Name: wave.Name, Regions: wave.Regions, Skipped: true}
	}
	maps.Copy(report.Regions, eachRegion(wave.Regions, func(region string) *RegionReport {
		return r.region(ctx, region, in, d)
	}))
	healthy := true
	for _, region := range wave.Regions {
		healthy = healthy && report.Regions[region].converged()
	}
	if !healthy {
		report.Stopped = fmt.Sprintf("wave %s is not healthy, so revision %s does not go on to later waves", wave.Name, sources.ShortRevision(in.snap.Revision))
		r.opts.Log.Warn("rollout stopped", "wave", wave.Name, "revision", in.snap.Revision)
	}
	return WaveReport{Name: wave.Name, Regions: wave.Regions, Healthy: healthy}
}

// Wave is a set of regions rolled out together.
type Wave struct {
	Name    string
	Regions []string
}

// waves returns the fleet's rollout waves, or one wave of every region.
func waves(m *fleet.Model) []Wave {
	if len(m.Fleet.Spec.Waves) == 0 {
		return []Wave{{Name: "all", Regions: regionNames(m)}}
	}
	out := make([]Wave, len(m.Fleet.Spec.Waves))
	for i, w := range m.Fleet.Spec.Waves {
		out[i] = Wave{Name: w.Name, Regions: w.Regions}
	}
	return out
}

// regionNames lists the fleet's regions by name, in the model's order.
func regionNames(m *fleet.Model) []string {
	names := make([]string, len(m.Regions))
	for i, r := range m.Regions {
		names[i] = r.Metadata.Name
	}
	return names
}
