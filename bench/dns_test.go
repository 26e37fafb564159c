package main

import (
	"path/filepath"
	"testing"

	"meridian.dev/meridian/internal/testenv/route53test"
)

// A small fleet's first pass fits in every bucket's burst: its floor is 0, and
// the results are still written, with no ratio.
func TestDNSRatioOfAZeroFloor(t *testing.T) {
	if got := ratio(2, 4); got != 0.5 {
		t.Errorf("ratio(2, 4) = %g, want 0.5", got)
	}
	floor, _ := floor(route53test.DocumentedLimits(), 1, map[string]int{"CreateHealthCheck": 2, "ChangeResourceRecordSets": 1})
	if floor != 0 {
		t.Fatalf("floor of three requests within the bursts: %g s, want 0", floor)
	}
	d := &DNSResult{FirstSeconds: 0.2, FloorSeconds: floor, Ratio: ratio(0.2, floor)}
	if d.Ratio != 0 {
		t.Errorf("ratio over a zero floor: %g, want 0", d.Ratio)
	}
	r := &Results{Sizes: []*Size{{DNS: d}}}
	if err := r.WriteJSON(filepath.Join(t.TempDir(), "results.json")); err != nil {
		t.Errorf("results with a zero floor not written: %v", err)
	}
}

func TestDNSFloor(t *testing.T) {
	first := map[string]int{"CreateHealthCheck": 900, "ChangeTagsForResource": 900, "ChangeResourceRecordSets": 8,
		"ListHealthChecks": 1, "ListResourceRecordSets": 1, "GetAccountLimit": 1, "GetHostedZoneLimit": 1}
	for _, tt := range []struct {
		scale, want float64
		bucket      string
	}{
		{1, 1700, "CreateHealthCheck"}, // (900 − 50) ÷ 0.5
		{10, 80, "CreateHealthCheck"},  // (900 − 500) ÷ 5
		{2, 800, "CreateHealthCheck"},  // (900 − 100) ÷ 1
		{20, 4.06, "the account"},      // creates within their burst: (1,812 − 1,000) ÷ 200
	} {
		got, bucket := floor(route53test.DocumentedLimits(), tt.scale, first)
		if got != tt.want || bucket != tt.bucket {
			t.Errorf("×%g: %g s (%s), want %g s (%s)", tt.scale, got, bucket, tt.want, tt.bucket)
		}
	}
	// Many cheap requests: the account's bucket is the bound.
	if got, bucket := floor(route53test.DocumentedLimits(), 1, map[string]int{"GetChange": 500, "ListResourceRecordSets": 500}); got != 95 || bucket != "the account" {
		t.Errorf("1,000 reads: %g s (%s), want 95 s (the account)", got, bucket)
	}
	if got := pages(3602, 300); got != 13 {
		t.Errorf("3,602 record sets take %d pages, want 13", got)
	}
}
