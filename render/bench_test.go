package render

import (
	"runtime"
	"testing"

	"meridian.dev/meridian/internal/testenv/fleetgen"
)

// BenchmarkRenderSynthetic renders a synthetic fleet of 100 tenants × 3 regions ×
// 4 apps (1,200 placements, Helm and Kustomize, SOPS secrets): cold is a new Renderer
// per iteration, warm renders the same snapshot again with a filled cache. Compare
// the two placements/s figures of one run. heap reports the live heap, per
// placement, that a Renderer's cache holds after a cold pass (cache-B/placement)
// and that the units of one more pass hold beside it (units-B/placement).
func BenchmarkRenderSynthetic(b *testing.B) {
	spec := fleetgen.Spec{Tenants: 100, Regions: 3, Apps: 4, Example: exampleDir, Secrets: true}
	dir := b.TempDir()
	if err := fleetgen.Write(dir, spec); err != nil {
		b.Fatal(err)
	}
	snap := loadSnapshot(b, dir, "rev")
	placements := float64(spec.Placements())

	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			res := renderOK(b, newTestRenderer(b, true), snap, Filter{})
			if res.Renders != spec.Placements() {
				b.Fatalf("rendered %d, want %d", res.Renders, spec.Placements())
			}
		}
		b.ReportMetric(placements*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
	})
	b.Run("warm", func(b *testing.B) {
		r := newTestRenderer(b, true)
		renderOK(b, r, snap, Filter{})
		for b.Loop() {
			if res := renderOK(b, r, snap, Filter{}); res.Renders != 0 {
				b.Fatalf("warm render rendered %d placements", res.Renders)
			}
		}
		b.ReportMetric(placements*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
	})
	b.Run("heap", func(b *testing.B) {
		var cache, units uint64
		for b.Loop() {
			base := liveHeap()
			r := newTestRenderer(b, true)
			renderOK(b, r, snap, Filter{})
			withCache := liveHeap()
			res := renderOK(b, r, snap, Filter{})
			withUnits := liveHeap()
			runtime.KeepAlive(r)
			runtime.KeepAlive(res)
			cache, units = withCache-base, withUnits-withCache
		}
		b.ReportMetric(float64(cache)/placements, "cache-B/placement")
		b.ReportMetric(float64(units)/placements, "units-B/placement")
	})
}

// liveHeap returns the bytes of the heap's live objects after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
