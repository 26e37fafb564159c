package reconciler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
	"meridian.dev/meridian/render/secrets"
	"meridian.dev/meridian/sources"
)

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
	// Redactor removes the revision's decrypted values from text that did not
	// pass through the reconciler (the status redacts Kubernetes events with it).
	Redactor *secrets.Redactor
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
	// Err is why the region could not be planned at all (it has no cluster, or
	// what it holds could not be read), or nil. When set, nothing was written
	// there and Units is empty.
	Err error
	// Units holds the outcome of every unit of Changes.
	Units map[fleet.UnitID]*UnitResult
}

// Health is what a pass learned of a unit's health.
type Health int

// The healths of a unit.
const (
	// HealthUnknown: the pass did not read it (the unit was not applied, or its
	// region stopped answering).
	HealthUnknown Health = iota
	// Healthy: every object of the unit reached its desired state.
	Healthy
	// Progressing: some object was still on its way when the health timeout ran out.
	Progressing
	// Unhealthy: some object failed (a Deployment past its progress deadline) or is
	// missing.
	Unhealthy
)

// String is the health's name, for logs.
func (h Health) String() string {
	switch h {
	case HealthUnknown:
		return "unknown"
	case Healthy:
		return "healthy"
	case Progressing:
		return "progressing"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("Health(%d)", int(h))
}

// UnitResult is what a pass did to one unit.
type UnitResult struct {
	// Action is what the plan said to do.
	Action plan.Action
	// Err is why applying or pruning the unit failed, or nil: a *UnitError whose
	// message is redacted and whose causes (an *apply.Error, ...) unwrap.
	Err error
	// Pruned reports that the unit's deletions (Change.Delete) were carried out:
	// for a unit that left the fleet, that it is gone.
	Pruned bool
	// Health is the unit's health after the pass, when it was read.
	Health Health
	// HealthErr says why the unit did not become healthy: it is Progressing or
	// Unhealthy, or its health could not be read (HealthUnknown). Nil when Healthy
	// or not waited for. Its message is redacted.
	HealthErr error
}

// UnitError is why one unit's step of a pass failed. Its message starts with the
// unit.
type UnitError struct {
	// Unit is the unit.
	Unit fleet.UnitID
	// Step is what failed: StepApply, StepPrune or StepCorrect.
	Step Step
	// Err is the cause.
	Err error
}

// Step is a step of a pass that acts on one unit.
type Step string

// The steps a UnitError names.
const (
	StepApply   Step = "apply"
	StepPrune   Step = "prune"
	StepDrift   Step = "drift check"
	StepCorrect Step = "correct drift"
)

// Error reads "unit: cause" for an apply, "unit: step: cause" for the others.
func (e *UnitError) Error() string {
	if e.Step == StepApply || e.Step == StepDrift {
		return e.Unit.String() + ": " + e.Err.Error()
	}
	return e.Unit.String() + ": " + string(e.Step) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *UnitError) Unwrap() error { return e.Err }

// unitErrors returns the Err of each unit that has one, in unit order.
func unitErrors(units map[fleet.UnitID]*UnitResult) []error {
	var out []error
	for _, id := range slices.SortedFunc(maps.Keys(units), fleet.UnitID.Compare) {
		if err := units[id].Err; err != nil {
			out = append(out, err)
		}
	}
	return out
}

// RegionProblems lists "region: error" on one line for every region whose err is
// not nil, in the order of region names: the summaries of a drift check and a plan.
func RegionProblems[R any](regions map[string]R, err func(R) error) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(regions)) {
		if e := err(regions[name]); e != nil {
			out = append(out, name+": "+OneLine(e))
		}
	}
	return out
}

// Failed reports whether applying or pruning some unit failed.
func (rr *RegionReport) Failed() bool {
	for _, u := range rr.Units {
		if u.Err != nil {
			return true
		}
	}
	return false
}

// Problem is why the region did not converge on its own terms: the region's Err,
// or every unit failure joined (each a *UnitError), or nil. Unhealthy units and
// held deletions are not failures of the pass; see Unhealthy and Changes.Held.
func (rr *RegionReport) Problem() error {
	if rr.Err != nil {
		return rr.Err
	}
	return errors.Join(unitErrors(rr.Units)...)
}

// Unhealthy returns the units the pass waited for that did not become healthy
// (those with a HealthErr), sorted.
func (rr *RegionReport) Unhealthy() []fleet.UnitID {
	var out []fleet.UnitID
	for id, u := range rr.Units {
		if u.HealthErr != nil {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, fleet.UnitID.Compare)
	return out
}

// converged reports that the region applied its plan and every unit it waited
// for became healthy: the revision may go on to the next wave. A failed prune does
// not count against it: what runs is what the revision says, and an object the API
// server refuses to delete must not hold the rest of the fleet (see settled).
func (rr *RegionReport) converged() bool {
	if rr.Err != nil {
		return false
	}
	for _, u := range rr.Units {
		if (u.Err != nil && !isPruneError(u.Err)) || u.HealthErr != nil {
			return false
		}
	}
	return true
}

// settled reports that the region converged and nothing failed, prunes included:
// a pass that did not settle is retried with backoff.
func (rr *RegionReport) settled() bool {
	return rr.converged() && !rr.Failed()
}

// isPruneError reports whether a unit's error is that of its prune step.
func isPruneError(err error) bool {
	var ue *UnitError
	return errors.As(err, &ue) && ue.Step == StepPrune
}

// NamespaceFailedError is why a placement was not applied: its tenant's namespace
// unit failed in the same pass, so the namespace may be missing, or not the
// tenant's.
type NamespaceFailedError struct {
	// Namespace is the namespace unit that failed.
	Namespace fleet.UnitID
}

// Error says what the placement waits for.
func (e *NamespaceFailedError) Error() string {
	return "not applied: its namespace unit " + e.Namespace.String() + " failed; it is applied once that unit is"
}

// DependencyError is why a unit was not applied: a unit it depends on in the
// same region (an addon, which every tenant unit waits for, or a dependsOn) is
// not healthy there. The unit is left as it is — never deleted — and applied in a
// later pass once the dependency is healthy.
type DependencyError struct {
	// Dependency is the unit waited for.
	Dependency fleet.UnitID
	// Reason says what the dependency is: failed, not healthy, not rendered.
	Reason string
}

// Error says what the unit waits for.
func (e *DependencyError) Error() string {
	return "not applied: it waits for " + e.Dependency.String() + ", which " + e.Reason + "; it is applied once that unit is healthy"
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
		problem, unhealthy := rr.Problem(), rr.Unhealthy()
		switch {
		case problem != nil:
			problems = append(problems, name+": "+OneLine(problem))
		case len(unhealthy) > 0:
			problems = append(problems, fmt.Sprintf("%s: %d units not healthy", name, len(unhealthy)))
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
	return fmt.Errorf("revision %s: %s", sources.ShortRevision(r.Revision), strings.Join(problems, "; "))
}

// needsRetry reports whether running the same revision again may get further: a
// region failed or was not healthy, units failed to render (a chart repository or
// a key service may be back), or a wave stopped. Held deletions alone are not
// retried: they wait for a commit that allows them.
func (r *Report) needsRetry() bool {
	if len(r.RenderErrors) > 0 || r.Stopped != "" || (r.DNS != nil && r.DNS.Err != nil) {
		return true
	}
	for _, rr := range r.Regions {
		if !rr.settled() {
			return true
		}
	}
	return false
}

// OneLine is err's message on one line, for summaries: the errors of a joined
// error (errors.Join) separated by "; ".
func OneLine(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts := make([]string, 0, len(j.Unwrap()))
		for _, e := range j.Unwrap() {
			parts = append(parts, e.Error())
		}
		return strings.Join(parts, "; ")
	}
	return err.Error()
}
