package main

import (
	"testing"

	"meridian.dev/meridian/internal/testenv/route53test"
)

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
