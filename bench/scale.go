package main

import (
	"fmt"
	"io"
	"math"
)

// Issue #21's scale targets, against which ScaleOf's ratios are reported.
const (
	// targetCPURatio bounds the cold CPU per placement at the largest size
	// against the size nearest referencePlacements.
	targetCPURatio = 1.1
	// targetIncrementalRatio bounds a one-tenant change's median latency at the
	// largest size against the smallest's.
	targetIncrementalRatio = 1.5
	// targetIncrementalSeconds bounds that latency itself at the largest size.
	targetIncrementalSeconds = 0.5
	// targetPeakRSSMiB bounds the daemon's peak RSS at the largest size.
	targetPeakRSSMiB = 400
	// referencePlacements is the size the CPU per placement is compared with.
	referencePlacements = 300
)

// Scale is how Meridian's costs grow across the sizes of one invocation: the
// ratios issue #21 sets targets for.
type Scale struct {
	// PerSize is each size's cold CPU per placement.
	PerSize []SizeCost `json:"perSize"`
	// Largest, Reference and Smallest are the placements of the sizes compared:
	// the largest, the one nearest 300, the smallest.
	Largest   int `json:"largestPlacements"`
	Reference int `json:"referencePlacements"`
	Smallest  int `json:"smallestPlacements"`
	// CPURatio is the cold CPU per placement at Largest ÷ at Reference; 0 when
	// either has no CPU figure or they are the same size.
	CPURatio float64 `json:"cpuPerPlacementRatio"`
	// IncrementalSeconds is the median one-tenant change at Largest, webhook to
	// applied in the tenant's regions; IncrementalRatio that ÷ Smallest's (0
	// when either has no incremental runs or they are the same size).
	IncrementalSeconds float64 `json:"incrementalSeconds"`
	IncrementalRatio   float64 `json:"incrementalRatio"`
	// PeakRSSMiB is the daemon's peak RSS at Largest.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
}

// SizeCost is one size's cold CPU per placement.
type SizeCost struct {
	Placements int `json:"placements"`
	// CPUMillisPerPlacement is the daemon's CPU from its start to its first pass
	// finished (DNS included), per placement.
	CPUMillisPerPlacement float64 `json:"cpuMillisPerPlacement"`
}

// ScaleOf computes the scale figures of sizes; nil when no size ran Meridian.
func ScaleOf(sizes []*Size) *Scale {
	var ran []*Size
	for _, s := range sizes {
		if s.Meridian != nil && s.Placements > 0 {
			ran = append(ran, s)
		}
	}
	if len(ran) == 0 {
		return nil
	}
	sc := &Scale{}
	largest, smallest, reference := ran[0], ran[0], ran[0]
	for _, s := range ran {
		sc.PerSize = append(sc.PerSize, SizeCost{Placements: s.Placements, CPUMillisPerPlacement: cpuPerPlacement(s) * 1000})
		if s.Placements > largest.Placements {
			largest = s
		}
		if s.Placements < smallest.Placements {
			smallest = s
		}
		if abs(s.Placements-referencePlacements) < abs(reference.Placements-referencePlacements) {
			reference = s
		}
	}
	sc.Largest, sc.Smallest, sc.Reference = largest.Placements, smallest.Placements, reference.Placements
	if c, r := cpuPerPlacement(largest), cpuPerPlacement(reference); largest != reference && c > 0 && r > 0 {
		sc.CPURatio = c / r
	}
	if len(largest.Incremental) > 0 {
		sc.IncrementalSeconds = medianApplied(largest.Incremental)
		if largest != smallest && len(smallest.Incremental) > 0 {
			sc.IncrementalRatio = sc.IncrementalSeconds / medianApplied(smallest.Incremental)
		}
	}
	sc.PeakRSSMiB = largest.Meridian.PeakRSSMiB
	return sc
}

// cpuPerPlacement is a size's cold CPU seconds per placement.
func cpuPerPlacement(s *Size) float64 {
	return s.Meridian.CPUSeconds / float64(s.Placements)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// Write writes the figures with their targets, one line each.
func (sc *Scale) Write(w io.Writer) {
	fmt.Fprintln(w, "scale (issue #21's targets):")
	for _, c := range sc.PerSize {
		fmt.Fprintf(w, "  cold CPU per placement at %d placements: %.2f ms\n", c.Placements, c.CPUMillisPerPlacement)
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "missed"
	}
	if sc.CPURatio > 0 {
		fmt.Fprintf(w, "  CPU per placement at %d ÷ at %d: %.2f× (target ≤ %g×: %s)\n", sc.Largest, sc.Reference, sc.CPURatio, targetCPURatio, verdict(sc.CPURatio <= targetCPURatio))
	}
	if sc.IncrementalSeconds > 0 && !math.IsNaN(sc.IncrementalSeconds) {
		fmt.Fprintf(w, "  one-tenant change at %d: median %.2f s from the webhook (target ≤ %g s: %s)\n", sc.Largest, sc.IncrementalSeconds, targetIncrementalSeconds, verdict(sc.IncrementalSeconds <= targetIncrementalSeconds))
	}
	if sc.IncrementalRatio > 0 {
		fmt.Fprintf(w, "  one-tenant change at %d ÷ at %d: %.2f× (target ≤ %g×: %s)\n", sc.Largest, sc.Smallest, sc.IncrementalRatio, targetIncrementalRatio, verdict(sc.IncrementalRatio <= targetIncrementalRatio))
	}
	if sc.PeakRSSMiB > 0 {
		fmt.Fprintf(w, "  peak RSS at %d: %.0f MiB (target ≤ %d MiB: %s)\n", sc.Largest, sc.PeakRSSMiB, targetPeakRSSMiB, verdict(sc.PeakRSSMiB <= targetPeakRSSMiB))
	}
}
