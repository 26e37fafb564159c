package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"time"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/internal/testenv/route53test"
	"meridian.dev/meridian/reconciler/dns"
)

// DNSResult is the "dns" scenario: Meridian's Route53 applier, in process,
// publishing every exposed placement of the fleet into an empty zone of a
// Route53 test server that enforces Route53's documented rates
// (route53test.DocumentedLimits, every bucket scaled by RateScale), then a pass
// with nothing to change.
type DNSResult struct {
	// RateScale multiplies every documented rate and burst, on the server and in
	// the applier alike; 1 is Route53's own.
	RateScale float64 `json:"rateScale"`
	// Endpoints are the exposed placements published.
	Endpoints int `json:"endpoints"`
	// FirstSeconds is the first pass: read the zone, plan, apply, INSYNC.
	FirstSeconds float64 `json:"firstSeconds"`
	// FloorSeconds is the least time the server's rates allow for the requests
	// the first pass had to make (FloorOperation's bucket, or the account's),
	// and Ratio FirstSeconds over it; 0 when the floor is 0 (a fleet small
	// enough for every bucket's burst), where no ratio means anything.
	FloorSeconds   float64 `json:"floorSeconds"`
	FloorOperation string  `json:"floorOperation"`
	Ratio          float64 `json:"ratio"`
	// FirstCalls are the first pass's answered requests by operation; Throttled
	// the requests the server refused for its rates.
	FirstCalls map[string]int `json:"firstCalls"`
	Throttled  int            `json:"throttled"`
	// NoOpSeconds, NoOpCalls and NoOpChanges are the pass with nothing to change.
	NoOpSeconds float64        `json:"noOpSeconds"`
	NoOpCalls   map[string]int `json:"noOpCalls"`
	NoOpChanges int            `json:"noOpChangeCalls"`
	// ListingCalls are the reads one listing of the zone and of the health
	// checks needs at Route53's page sizes (300 record sets, 100 checks).
	ListingCalls int `json:"listingCalls"`
}

// dnsScenario runs the "dns" scenario on the fleet's model.
func (e *env) dnsScenario(ctx context.Context, f *Fleet) (*DNSResult, error) {
	scale := e.o.route53Scale
	if scale <= 0 {
		scale = 1
	}
	limits := route53test.DocumentedLimits()
	limits.MaxHealthChecks = 5000 // raised for the fleet, as AWS raises it on request
	r53 := route53test.NewServer(route53test.Options{ProbeScale: 1000, Limits: &limits, RateScale: scale})
	defer r53.Close()
	zoneID := r53.CreateZone(f.Model.Fleet.Spec.DNS.Zone)
	// The applier's own credentials: the Route53 test server accepts any.
	for _, kv := range [][2]string{{"AWS_ACCESS_KEY_ID", "BENCH"}, {"AWS_SECRET_ACCESS_KEY", "bench-only-not-a-secret"}} {
		os.Setenv(kv[0], kv[1])
	}
	os.Unsetenv("AWS_CA_BUNDLE")
	client, err := dns.NewRoute53Client(ctx, dns.ClientOptions{Region: "us-east-1", Endpoint: r53.URL})
	if err != nil {
		return nil, err
	}
	a := dns.NewApplier(client, dns.Options{HostedZoneID: zoneID, Fleet: f.Model.Fleet.Metadata.Name, RateScale: scale})
	desired := dns.Desired(f.Model, func(fleet.UnitID) bool { return true })
	res := &DNSResult{RateScale: scale, Endpoints: len(desired)}
	pass := func() (dns.Changes, time.Duration, map[string]int, error) {
		before := len(r53.Calls())
		start := time.Now()
		cur, err := a.Current(ctx)
		if err != nil {
			return dns.Changes{}, 0, nil, err
		}
		ch := dns.Plan(desired, cur)
		if !ch.Empty() {
			err = a.Apply(ctx, ch)
		}
		took := time.Since(start)
		calls := map[string]int{}
		for _, c := range r53.Calls()[before:] {
			if c.Error == "" {
				calls[c.Operation]++
			}
		}
		return ch, took, calls, err
	}
	e.logf("dns: publishing %d endpoints at %g× Route53's documented rates", len(desired), scale)
	_, took, calls, err := pass()
	if err != nil {
		return nil, fmt.Errorf("dns: first pass: %w", err)
	}
	res.FirstSeconds, res.FirstCalls, res.Throttled = took.Seconds(), calls, r53.Throttled()
	res.FloorSeconds, res.FloorOperation = floor(limits, scale, calls)
	res.Ratio = ratio(res.FirstSeconds, res.FloorSeconds)
	e.logf("dns: first pass %.1f s; the rates allow no less than %.1f s (%s): %.3f×", res.FirstSeconds, res.FloorSeconds, res.FloorOperation, res.Ratio)

	ch, took, calls, err := pass()
	if err != nil {
		return res, fmt.Errorf("dns: no-op pass: %w", err)
	}
	if !ch.Empty() {
		return res, fmt.Errorf("dns: the pass after the first planned changes: %s", ch.String())
	}
	res.NoOpSeconds, res.NoOpCalls, res.NoOpChanges = took.Seconds(), calls, route53Changes(calls)
	res.ListingCalls = pages(4*len(desired)+2, 300) + pages(len(desired), 100) // with the zone's SOA and NS
	e.logf("dns: no-op pass %.1f s, %d change calls, reads %v (one listing: %d)", res.NoOpSeconds, res.NoOpChanges, calls, res.ListingCalls)
	return res, nil
}

// ratio is first over floor, or 0 when floor is 0: JSON has no +Inf.
func ratio(first, floor float64) float64 {
	if floor <= 0 {
		return 0
	}
	return first / floor
}

// floor is the least time the limits (scaled) allow for calls: for each
// bucket, the requests beyond its burst at its refill rate; the largest
// bucket's time, and its name.
func floor(l route53test.Limits, scale float64, calls map[string]int) (float64, string) {
	wait := func(n int, b route53test.Bucket) float64 {
		return math.Max(0, float64(n)-b.Burst*scale) / (b.Rate * scale)
	}
	total := 0
	best, name := 0.0, ""
	for _, op := range slices.Sorted(maps.Keys(calls)) {
		n := calls[op]
		total += n
		b, ok := l.Operations[op]
		if !ok {
			b = l.DefaultOperation
		}
		if t := wait(n, b); t > best {
			best, name = t, op
		}
	}
	if t := wait(total, l.Account); t > best {
		best, name = t, "the account"
	}
	return best, name
}

func pages(n, size int) int { return max(1, (n+size-1)/size) }
