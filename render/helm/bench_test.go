package helm

import (
	"context"
	"testing"
)

// BenchmarkRenderLocalChart renders fleet-example's portal chart: reading the chart
// through the snapshot root, loading, rendering and parsing, as every placement does.
func BenchmarkRenderLocalChart(b *testing.B) {
	r := newRenderer(b, Options{})
	req := exampleRequests(fleetExample(b))["portal"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDigestLocalChart digests the same chart, which a render cache does before
// every render it may skip.
func BenchmarkDigestLocalChart(b *testing.B) {
	r := newRenderer(b, Options{})
	req := exampleRequests(fleetExample(b))["portal"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Digest(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
