package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/fleetgen"
)

// FluxSide is Flux's run on the same fleet, in the same invocation as Meridian's.
type FluxSide struct {
	// Versions are the controllers' releases.
	Versions map[string]string `json:"versions"`
	// CreatedSeconds: from the root Kustomization created to every placement's
	// Deployment created (Side.CreatedSeconds); ReadySeconds to every
	// Deployment ready; FluxReadySeconds to every Kustomization and HelmRelease
	// Ready.
	CreatedSeconds   float64 `json:"createdSeconds"`
	ReadySeconds     float64 `json:"readySeconds,omitempty"`
	FluxReadySeconds float64 `json:"fluxReadySeconds"`
	// CPUSeconds is the three controllers' CPU time until every object was Ready.
	CPUSeconds float64 `json:"cpuSeconds"`
	// PeakRSSMiB is each controller's VmHWM over the whole run; PeakRSSSumMiB
	// their sum (at least the peak of the three together).
	PeakRSSMiB    map[string]float64 `json:"peakRSSMiB"`
	PeakRSSSumMiB float64            `json:"peakRSSSumMiB"`
	// ClientRequests are the controllers' requests to the regions (through the
	// counting proxies), ManagementRequests those to the management API server,
	// until every object was Ready.
	ClientRequests     map[string]int `json:"clientRequests"`
	ManagementRequests map[string]int `json:"managementRequests"`
	// Objects counts the Kustomizations (the root included) and HelmReleases.
	Kustomizations int `json:"kustomizations"`
	HelmReleases   int `json:"helmReleases"`
	// NoOpCommit is a commit that changes no placement, fetched on a trigger.
	NoOpCommit *FluxCycle `json:"noOpCommit,omitempty"`
	// Incremental are trigger-to-applied latencies of one tenant's change.
	Incremental []Incremental `json:"incremental,omitempty"`
	Note        string        `json:"note,omitempty"`
}

// FluxCycle is what a cycle of Flux cost: from the trigger until every
// Kustomization applied the new commit, and 3 s more.
type FluxCycle struct {
	Seconds            float64        `json:"seconds"`
	CPUSeconds         float64        `json:"cpuSeconds"`
	ClientRequests     map[string]int `json:"clientRequests"`
	ManagementRequests map[string]int `json:"managementRequests"`
	KubernetesWrites   int            `json:"kubernetesWrites"`
}

// fluxReading is the counters of Flux at one moment.
type fluxReading struct {
	at           time.Time
	client, mgmt map[string]int
	cpu          float64
}

func (e *env) readFlux(c *cluster, p *fluxPeer) (fluxReading, error) {
	r := fluxReading{at: time.Now(), client: map[string]int{}, mgmt: p.proxy.Counts.Snapshot()}
	for _, reg := range c.regions {
		for k, v := range reg.Proxy.Counts.Snapshot() {
			r.client[k] += v
		}
	}
	var err error
	r.cpu, err = p.cpu()
	return r, err
}

func fluxCycle(before, after fluxReading) *FluxCycle {
	c := &FluxCycle{
		Seconds:            after.at.Sub(before.at).Seconds(),
		CPUSeconds:         after.cpu - before.cpu,
		ClientRequests:     Diff(before.client, after.client),
		ManagementRequests: Diff(before.mgmt, after.mgmt),
	}
	c.KubernetesWrites = Writes(c.ClientRequests)
	return c
}

// flux runs the Flux peer on fresh regions: cold convergence, a no-op commit and
// one-tenant changes, as meridian does for the daemon.
func (e *env) flux(ctx context.Context, f *Fleet, dir, keyFile string, size *Size) error {
	e.logf("flux: building the controllers")
	bins, err := buildFlux(ctx, e.progress)
	if err != nil {
		return err
	}
	side := &FluxSide{Versions: map[string]string{}}
	for _, c := range fluxControllers {
		side.Versions[c.Name] = c.Version
	}
	size.Flux = side
	e.logf("flux: writing flux/ into the fleet")
	ff, err := writeFluxTree(ctx, f, keyFile, filepath.Join(dir, "flux-charts"), true)
	if err != nil {
		return err
	}
	if err := f.Commit(ctx, "flux: the fleet as Flux objects"); err != nil {
		return err
	}
	head, err := f.Head(ctx)
	if err != nil {
		return err
	}
	side.Kustomizations, side.HelmReleases = len(ff.Kustomizations)+1, len(ff.HelmReleases)
	objects := side.Kustomizations + side.HelmReleases

	e.logf("flux: starting empty regions and a management API server")
	c, err := e.startCluster(ctx, filepath.Join(dir, "regions-flux"))
	if err != nil {
		return err
	}
	defer c.close()
	p, err := e.startFlux(ctx, bins, c, filepath.Join(dir, "flux"), keyFile)
	if err != nil {
		return err
	}
	defer p.close()
	// The controllers' peak RSS is read however the cycles below end (before
	// p.close stops them): one that times out still leaves the cold figures and
	// the memory measured.
	defer func() {
		rss, err := p.peakRSS()
		if err != nil {
			e.logf("flux: peak RSS not read: %v", err)
			return
		}
		side.PeakRSSMiB, side.PeakRSSSumMiB = rss, 0
		for _, v := range rss {
			side.PeakRSSSumMiB += v
		}
	}()
	before, err := e.readFlux(c, p)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := p.start(ctx, f.Remote); err != nil {
		return err
	}
	e.logf("flux: %d Kustomizations and %d HelmReleases", side.Kustomizations, side.HelmReleases)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	var created time.Time
	if _, err := c.tracker.Wait(wctx, func(t *Tracker) bool {
		at, all := t.Created(size.Placements)
		created = at
		return all || p.exited() != nil
	}); err != nil {
		return fmt.Errorf("flux: waiting for every Deployment created: %w", err)
	}
	if err := p.exited(); err != nil {
		return err
	}
	side.CreatedSeconds = since(start, created)
	e.logf("flux: every Deployment created in %.1f s", side.CreatedSeconds)
	if e.o.workloads {
		ready, note, err := waitReady(wctx, c, size.Placements)
		if err != nil {
			return err
		}
		if note != "" {
			side.Note = "Ready: " + note
		} else {
			side.ReadySeconds = since(start, ready)
			e.logf("flux: every Deployment ready in %.1f s", side.ReadySeconds)
		}
	}
	fluxReady, err := p.waitFluxReady(wctx, objects, head, 30*time.Minute)
	if err != nil {
		return err
	}
	side.FluxReadySeconds = since(start, fluxReady)
	e.logf("flux: every Kustomization and HelmRelease Ready in %.1f s", side.FluxReadySeconds)
	after, err := e.readFlux(c, p)
	if err != nil {
		return err
	}
	side.CPUSeconds = after.cpu - before.cpu
	side.ClientRequests = Diff(before.client, after.client)
	side.ManagementRequests = Diff(before.mgmt, after.mgmt)

	if e.o.scenarios["noop"] {
		if side.NoOpCommit, err = e.fluxNoOp(ctx, f, c, p, objects); err != nil {
			return err
		}
	}
	if e.o.scenarios["incremental"] && e.o.workloads {
		for i := range e.o.repeat {
			inc, err := e.fluxIncremental(ctx, f, c, p, keyFile, filepath.Join(dir, "flux-charts"), objects, i)
			if err != nil {
				return err
			}
			side.Incremental = append(side.Incremental, inc)
		}
	}
	return p.exited()
}

// fluxCycleTimeout bounds how long a no-op commit or a one-tenant change may take
// Flux to reach every object Ready at the commit: at 1,200 placements on two
// cores a no-op commit took it more than 10 minutes.
const fluxCycleTimeout = 30 * time.Minute

// fluxNoOp measures a commit that changes no placement (a comment in
// fleet.yaml): every Kustomization applies the new commit.
func (e *env) fluxNoOp(ctx context.Context, f *Fleet, c *cluster, p *fluxPeer, objects int) (*FluxCycle, error) {
	const settle = 3 * time.Second
	if err := appendFile(filepath.Join(f.Dir, "fleet.yaml"), "# a comment for Flux: nothing rendered changes\n"); err != nil {
		return nil, err
	}
	if err := f.Commit(ctx, "a comment"); err != nil {
		return nil, err
	}
	head, err := f.Head(ctx)
	if err != nil {
		return nil, err
	}
	time.Sleep(settle)
	before, err := e.readFlux(c, p)
	if err != nil {
		return nil, err
	}
	if err := p.trigger(ctx); err != nil {
		return nil, err
	}
	done, err := p.waitFluxReady(ctx, objects, head, fluxCycleTimeout)
	if err != nil {
		return nil, err
	}
	time.Sleep(settle)
	after, err := e.readFlux(c, p)
	if err != nil {
		return nil, err
	}
	cy := fluxCycle(before, after)
	e.logf("flux: no-op commit: every Kustomization at it in %.2f s; %d writes, %.2f CPU s", done.Sub(before.at).Seconds(), cy.KubernetesWrites, cy.CPUSeconds)
	return cy, nil
}

// fluxIncremental changes the portal replicas of one tenant (its HelmReleases'
// values in flux/fleet), commits, triggers and measures to the new spec in
// every region of the tenant.
func (e *env) fluxIncremental(ctx context.Context, f *Fleet, c *cluster, p *fluxPeer, keyFile, chartsDir string, objects, i int) (Incremental, error) {
	tenant, app := fleetgen.TenantName(0), fleetgen.AppName(0)
	replicas, err := f.SetReplicas(tenant, app)
	if err != nil {
		return Incremental{}, err
	}
	if f.Model, err = fleet.LoadDir(f.Dir); err != nil {
		return Incremental{}, err
	}
	if _, err := writeFluxTree(ctx, f, keyFile, chartsDir, false); err != nil {
		return Incremental{}, err
	}
	if err := f.Commit(ctx, fmt.Sprintf("%s: %s replicas %d (Flux)", tenant, app, replicas)); err != nil {
		return Incremental{}, err
	}
	head, err := f.Head(ctx)
	if err != nil {
		return Incremental{}, err
	}
	time.Sleep(time.Second)
	wctx, cancel := context.WithTimeout(ctx, fluxCycleTimeout)
	defer cancel()
	start := time.Now()
	if err := p.trigger(ctx); err != nil {
		return Incremental{}, err
	}
	applied, err := c.tracker.Wait(wctx, func(t *Tracker) bool {
		return t.DeploymentReplicas(c.regionNames(), tenant, app, int32(replicas), false) || p.exited() != nil
	})
	if err != nil {
		return Incremental{}, fmt.Errorf("flux incremental %d: %w", i, err)
	}
	if err := p.exited(); err != nil {
		return Incremental{}, err
	}
	// Settled: every object Ready at the new commit before the next change.
	passed, err := p.waitFluxReady(wctx, objects, head, fluxCycleTimeout)
	if err != nil {
		return Incremental{}, err
	}
	inc := Incremental{AppliedSeconds: since(start, applied), PassSeconds: since(start, passed)}
	e.logf("flux: incremental %d: applied in %.2f s, every object Ready at the commit in %.2f s", i, inc.AppliedSeconds, inc.PassSeconds)
	return inc, nil
}

func httpGetOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// writeFluxTable writes Meridian and Flux side by side for one size: each
// measure with the ratio Flux ÷ Meridian where both were taken the same way.
func writeFluxTable(w io.Writer, s *Size) {
	m, fl := s.Meridian, s.Flux
	if m == nil || fl == nil {
		return
	}
	fmt.Fprintf(w, "Flux (%s) on the same fleet: %d Kustomizations, %d HelmReleases\n", fluxVersions(fl), fl.Kustomizations, fl.HelmReleases)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tMeridian\tFlux\tFlux ÷ Meridian")
	row := func(name string, mv, fv float64, format string) {
		// A count of zero is a figure (a no-op with no writes); a time or
		// size of zero was not taken.
		show := func(v float64) string {
			if v > 0 || format == "%.0f" {
				return fmt.Sprintf(format, v)
			}
			return "—"
		}
		ms, fs, ratio := show(mv), show(fv), "—"
		if mv > 0 && fv > 0 {
			ratio = fmt.Sprintf("%.1f×", fv/mv)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, ms, fs, ratio)
	}
	row("cold: every Deployment created", m.CreatedSeconds, fl.CreatedSeconds, "%.2f s")
	row("cold: every Deployment ready", m.ReadySeconds, fl.ReadySeconds, "%.2f s")
	fmt.Fprintf(tw, "cold: done (Meridian: every unit applied; Flux: every object Ready)\t%.2f s\t%.2f s\t\n", m.AppliedSeconds, fl.FluxReadySeconds)
	row("cold: CPU", m.CPUSeconds, fl.CPUSeconds, "%.2f s")
	row("cold: requests to the regions", float64(total(m.ClientRequests)), float64(total(fl.ClientRequests)), "%.0f")
	fmt.Fprintf(tw, "cold: requests to the management API server\t—\t%d\t\n", total(fl.ManagementRequests))
	if s.NoOpCommit != nil && fl.NoOpCommit != nil {
		row("no-op commit: requests to the regions", float64(total(s.NoOpCommit.ClientRequests)), float64(total(fl.NoOpCommit.ClientRequests)), "%.0f")
		row("no-op commit: writes to the regions", float64(s.NoOpCommit.KubernetesWrites), float64(fl.NoOpCommit.KubernetesWrites), "%.0f")
		row("no-op commit: CPU", s.NoOpCommit.CPUSeconds, fl.NoOpCommit.CPUSeconds, "%.2f s")
		fmt.Fprintf(tw, "no-op commit: requests to the management API server\t—\t%d\t\n", total(fl.NoOpCommit.ManagementRequests))
	}
	if len(s.Incremental) > 0 && len(fl.Incremental) > 0 {
		row("one-tenant change: trigger to applied (median)", medianApplied(s.Incremental), medianApplied(fl.Incremental), "%.2f s")
	}
	row("peak RSS (Flux: sum of the controllers')", m.PeakRSSMiB, fl.PeakRSSSumMiB, "%.0f MiB")
	tw.Flush()
	if fl.NoOpCommit != nil {
		fmt.Fprintf(w, "Flux no-op commit: region requests %s; management requests %s\n", counts(fl.NoOpCommit.ClientRequests), counts(fl.NoOpCommit.ManagementRequests))
	}
	if fl.Note != "" {
		fmt.Fprintf(w, "Flux: %s\n", fl.Note)
	}
}

func fluxVersions(fl *FluxSide) string {
	var parts []string
	for _, c := range fluxControllers {
		if v, ok := fl.Versions[c.Name]; ok {
			parts = append(parts, c.Name+" "+v)
		}
	}
	return strings.Join(parts, ", ")
}
