package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// Results is everything one harness run measured; it is written as JSON and as a
// table.
type Results struct {
	Machine   Machine `json:"machine"`
	Workloads bool    `json:"workloads"`
	// BaselineParallelism is the xargs -P of the scripted baseline.
	BaselineParallelism int     `json:"baselineParallelism"`
	Sizes               []*Size `json:"sizes"`
	// Route53RateScale is -route53-rate-scale: every Route53 rate and burst, of
	// the test server and of Meridian, multiplied by it.
	Route53RateScale float64 `json:"route53RateScale"`
	// DaemonGoMemLimit is -daemon-gomemlimit, the daemon's GOMEMLIMIT, or empty.
	DaemonGoMemLimit string `json:"daemonGoMemLimit,omitempty"`
	// DaemonGoGC is -daemon-gogc, the daemon's GOGC, or empty.
	DaemonGoGC string `json:"daemonGoGC,omitempty"`
	// Scale is how the costs grow across Sizes (ScaleOf), kept current as sizes
	// finish.
	Scale *Scale `json:"scale,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs     int    `json:"cpus"`
	MemoryGB int    `json:"memoryGiB"`
	CPUModel string `json:"cpuModel"`
	Go       string `json:"go"`
}

// Size is one fleet size's results.
type Size struct {
	Tenants    int `json:"tenants"`
	Regions    int `json:"regions"`
	Apps       int `json:"apps"`
	Placements int `json:"placements"`
	// Units counts namespace units too, over all regions.
	Units int `json:"units"`

	Render   *RenderResult `json:"render,omitempty"`
	Meridian *Side         `json:"meridian,omitempty"`
	Baseline *Side         `json:"baseline,omitempty"`
	// Flux is the Flux peer on the same fleet (-peer flux).
	Flux *FluxSide `json:"flux,omitempty"`
	// NoOpPoll is a webhook-triggered poll that finds the same commit; NoOpCommit a
	// new commit that changes no placement (a README edit): a full pass.
	NoOpPoll   *Cycle `json:"noOpPoll,omitempty"`
	NoOpCommit *Cycle `json:"noOpCommit,omitempty"`
	// Incremental are the webhook-to-applied latencies of one tenant's value
	// changed, one per repetition.
	Incremental []Incremental `json:"incremental,omitempty"`
	// DNS is the dns scenario.
	DNS *DNSResult `json:"dns,omitempty"`
}

// RenderResult is in-process render throughput with Meridian's render package.
type RenderResult struct {
	ColdSeconds     float64 `json:"coldSeconds"`
	ColdPerSecond   float64 `json:"coldPlacementsPerSecond"`
	WarmSeconds     float64 `json:"warmSeconds"`
	WarmPerSecond   float64 `json:"warmPlacementsPerSecond"`
	ColdRenders     int     `json:"coldRenders"`
	WarmRenders     int     `json:"warmRenders"`
	BaselineSeconds float64 `json:"baselineRenderSeconds,omitempty"`
}

// Side is the cold convergence of Meridian or the baseline.
type Side struct {
	// AppliedSeconds: empty regions to every placement applied.
	AppliedSeconds float64 `json:"appliedSeconds"`
	// CreatedSeconds: to every placement's Deployment created, as the
	// regions' watches see it (Meridian and Flux alike).
	CreatedSeconds float64 `json:"createdSeconds,omitempty"`
	// ReadySeconds: to every Deployment ready (with workloads only).
	ReadySeconds float64 `json:"readySeconds,omitempty"`
	// PassSeconds: Meridian's first pass finished, DNS included.
	PassSeconds float64 `json:"passSeconds,omitempty"`
	CPUSeconds  float64 `json:"cpuSeconds"`
	// PeakRSSMiB is Meridian's VmHWM over the whole run.
	PeakRSSMiB float64 `json:"peakRSSMiB,omitempty"`
	// Requests by verb: at the client (counting proxy) and at the API servers.
	ClientRequests    map[string]int `json:"clientRequests"`
	APIServerRequests map[string]int `json:"apiServerRequests"`
	Route53Calls      map[string]int `json:"route53Calls,omitempty"`
	// Note says how the figure was taken when it is not plain (a sample).
	Note string `json:"note,omitempty"`
}

// Cycle is what a no-op cycle cost.
type Cycle struct {
	Seconds           float64        `json:"seconds"`
	Renders           int            `json:"renders"`
	Passes            int            `json:"passes"`
	CPUSeconds        float64        `json:"cpuSeconds"`
	ClientRequests    map[string]int `json:"clientRequests"`
	APIServerRequests map[string]int `json:"apiServerRequests"`
	Route53Calls      map[string]int `json:"route53Calls"`
	KubernetesWrites  int            `json:"kubernetesWrites"`
	Route53Changes    int            `json:"route53ChangeCalls"`
}

// Incremental is one incremental change.
type Incremental struct {
	// AppliedSeconds is webhook to the changed Deployment applied in every region
	// of the tenant; PassSeconds to the daemon's pass finished.
	AppliedSeconds float64 `json:"appliedSeconds"`
	PassSeconds    float64 `json:"passSeconds"`
}

// route53Changes counts the Route53 calls that change something.
func route53Changes(calls map[string]int) int {
	n := 0
	for op, c := range calls {
		if strings.HasPrefix(op, "Change") || strings.HasPrefix(op, "Create") || strings.HasPrefix(op, "Update") || strings.HasPrefix(op, "Delete") {
			n += c
		}
	}
	return n
}

// medianApplied is the median webhook-to-applied latency.
func medianApplied(inc []Incremental) float64 {
	if len(inc) == 0 {
		return math.NaN()
	}
	v := make([]float64, len(inc))
	for i, x := range inc {
		v[i] = x.AppliedSeconds
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// WriteJSON writes the results to path.
func (r *Results) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// WriteTable writes the results as tables for people.
func (r *Results) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "machine: %d CPUs, %d GiB, %s; %s\n", r.Machine.CPUs, r.Machine.MemoryGB, r.Machine.CPUModel, r.Machine.Go)
	mode := "API servers only (applied)"
	if r.Workloads {
		mode = "with kwok (applied and Ready)"
	}
	fmt.Fprintf(w, "regions: %s; scripted baseline: xargs -P %d; Route53 rates ×%g\n\n", mode, r.BaselineParallelism, r.Route53RateScale)
	for _, s := range r.Sizes {
		fmt.Fprintf(w, "== %d tenants × %d regions × %d apps = %d placements (%d units with namespaces)\n", s.Tenants, s.Regions, s.Apps, s.Placements, s.Units)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "measure\tMeridian\tbaseline\tbaseline ÷ Meridian")
		m, b := s.Meridian, s.Baseline
		row := func(name string, mv, bv float64, unit string) {
			ms, bs, ratio := "—", "—", "—"
			if m != nil && mv > 0 {
				ms = fmt.Sprintf("%.2f %s", mv, unit)
			}
			if b != nil && bv > 0 {
				bs = fmt.Sprintf("%.2f %s", bv, unit)
			}
			if m != nil && b != nil && mv > 0 && bv > 0 {
				ratio = fmt.Sprintf("%.1f×", bv/mv)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, ms, bs, ratio)
		}
		get := func(sd *Side, f func(*Side) float64) float64 {
			if sd == nil {
				return 0
			}
			return f(sd)
		}
		row("cold: applied", get(m, func(x *Side) float64 { return x.AppliedSeconds }), get(b, func(x *Side) float64 { return x.AppliedSeconds }), "s")
		if r.Workloads {
			row("cold: Ready", get(m, func(x *Side) float64 { return x.ReadySeconds }), get(b, func(x *Side) float64 { return x.ReadySeconds }), "s")
		}
		row("cold: CPU", get(m, func(x *Side) float64 { return x.CPUSeconds }), get(b, func(x *Side) float64 { return x.CPUSeconds }), "s")
		row("cold: API requests (client)", float64(total(get2(m))), float64(total(get2(b))), "")
		if m != nil {
			fmt.Fprintf(tw, "cold: first pass incl. DNS\t%.2f s\t\t\n", m.PassSeconds)
			fmt.Fprintf(tw, "peak RSS\t%.0f MiB\t\t\n", m.PeakRSSMiB)
		}
		if s.Render != nil {
			row("render: cold", s.Render.ColdSeconds, s.Render.BaselineSeconds, "s")
			fmt.Fprintf(tw, "render: cold throughput\t%.0f placements/s\t\t\n", s.Render.ColdPerSecond)
			fmt.Fprintf(tw, "render: warm throughput\t%.0f placements/s (%d renders)\t\t\n", s.Render.WarmPerSecond, s.Render.WarmRenders)
		}
		tw.Flush()
		for _, c := range []struct {
			name string
			c    *Cycle
		}{{"no-op poll (same commit)", s.NoOpPoll}, {"no-op commit (nothing rendered changes)", s.NoOpCommit}} {
			if c.c == nil {
				continue
			}
			fmt.Fprintf(w, "%s: %d passes, %d renders, %d Kubernetes writes, %d Route53 change calls, %.2f CPU s; client requests %s; API server requests %s; Route53 calls %s\n",
				c.name, c.c.Passes, c.c.Renders, c.c.KubernetesWrites, c.c.Route53Changes, c.c.CPUSeconds, counts(c.c.ClientRequests), counts(c.c.APIServerRequests), counts(c.c.Route53Calls))
		}
		if len(s.Incremental) > 0 {
			var parts []string
			for _, x := range s.Incremental {
				parts = append(parts, fmt.Sprintf("%.2f s (pass %.2f s)", x.AppliedSeconds, x.PassSeconds))
			}
			fmt.Fprintf(w, "incremental, webhook to applied: median %.2f s; runs %s\n", medianApplied(s.Incremental), strings.Join(parts, ", "))
		}
		writeFluxTable(w, s)
		if d := s.DNS; d != nil {
			fmt.Fprintf(w, "dns (%d endpoints, rates ×%g): first pass %.1f s, floor %.1f s (%s), %.3f×; calls %s, %d throttled; no-op pass %.1f s, %d change calls, reads %s (one listing: %d)\n",
				d.Endpoints, d.RateScale, d.FirstSeconds, d.FloorSeconds, d.FloorOperation, d.Ratio, counts(d.FirstCalls), d.Throttled, d.NoOpSeconds, d.NoOpChanges, counts(d.NoOpCalls), d.ListingCalls)
		}
		if m != nil && m.Note != "" {
			fmt.Fprintf(w, "Meridian: %s\n", m.Note)
		}
		if b != nil && b.Note != "" {
			fmt.Fprintf(w, "baseline: %s\n", b.Note)
		}
		fmt.Fprintln(w)
	}
	if sc := ScaleOf(r.Sizes); sc != nil && len(sc.PerSize) > 1 {
		sc.Write(w)
	}
}

func get2(s *Side) map[string]int {
	if s == nil {
		return nil
	}
	return s.ClientRequests
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// counts formats counts as "GET 3, LIST 1", or "none".
func counts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
