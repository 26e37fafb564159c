package route53test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"
)

func TestRequestRates(t *testing.T) {
	tests := []struct {
		name string
		op   string
		call func(c *route53.Client) error
		// burst is how many requests pass at once.
		burst int
	}{{
		name: "the account's bucket holds 50 requests",
		op:   "ListHealthChecks",
		call: func(c *route53.Client) error {
			_, err := c.ListHealthChecks(t.Context(), &route53.ListHealthChecksInput{})
			return err
		},
		burst: 50,
	}, {
		name: "GetHealthCheckStatus has a bucket of its own of 4",
		op:   "GetHealthCheckStatus",
		call: func(c *route53.Client) error {
			_, err := c.GetHealthCheckStatus(t.Context(), &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String("x")})
			return err
		},
		burst: 4,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t, Options{})
			passed := 0
			for range tt.burst + 5 {
				err := tt.call(c)
				if err == nil || func() bool { code, _ := errorOf(t, err); return code != "Throttling" }() {
					passed++
				}
			}
			if passed != tt.burst {
				t.Errorf("%d of %d requests at once passed, want %d", passed, tt.burst+5, tt.burst)
			}
			if srv.Throttled() != 5 {
				t.Errorf("Throttled() = %d, want 5", srv.Throttled())
			}
		})
	}

	t.Run("a throttled client is let through again at the refill rate", func(t *testing.T) {
		srv, c := newServer(t, Options{Limits: &Limits{Account: Bucket{Burst: 1, Rate: 20}, DefaultOperation: Bucket{Burst: 1, Rate: 20}, MaxHealthChecks: 1, MaxRecordSetsPerZone: 10}})
		list := func() error { _, err := c.ListHealthChecks(t.Context(), &route53.ListHealthChecksInput{}); return err }
		if err := list(); err != nil {
			t.Fatal(err)
		}
		if code, msg := errorOf(t, list()); code != "Throttling" || msg != "Rate exceeded" {
			t.Errorf("second request: %s %q, want Throttling %q", code, msg, "Rate exceeded")
		}
		time.Sleep(60 * time.Millisecond)
		if err := list(); err != nil {
			t.Errorf("after a refill: %v", err)
		}
		if srv.Throttled() != 1 {
			t.Errorf("Throttled() = %d, want 1", srv.Throttled())
		}
	})
}

func TestQuotas(t *testing.T) {
	limits := DocumentedLimits()
	limits.MaxHealthChecks, limits.MaxRecordSetsPerZone = 2, 4 // SOA and NS, and two more
	srv, c := newServer(t, Options{Limits: &limits})
	zone := srv.CreateZone("fleet.example.com")

	create := func(ref string) error {
		_, err := c.CreateHealthCheck(t.Context(), &route53.CreateHealthCheckInput{CallerReference: aws.String(ref),
			HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttp, IPAddress: aws.String("192.0.2.1")}})
		return err
	}
	for _, ref := range []string{"a", "b", "a"} { // the second "a" returns the first check
		if err := create(ref); err != nil {
			t.Fatalf("create %s: %v", ref, err)
		}
	}
	if code, _ := errorOf(t, create("c")); code != "TooManyHealthChecks" {
		t.Errorf("a third check: %s, want TooManyHealthChecks", code)
	}
	limit, err := c.GetAccountLimit(t.Context(), &route53.GetAccountLimitInput{Type: types.AccountLimitTypeMaxHealthChecksByOwner})
	if err != nil {
		t.Fatal(err)
	}
	if got := [2]int64{aws.ToInt64(limit.Limit.Value), limit.Count}; got != [2]int64{2, 2} {
		t.Errorf("GetAccountLimit: value, count = %v, want [2 2]", got)
	}
	srv.SetMaxHealthChecks(3)
	if err := create("c"); err != nil {
		t.Errorf("after a quota increase: %v", err)
	}

	change := func(names ...string) error {
		var changes []types.Change
		for _, n := range names {
			changes = append(changes, types.Change{Action: types.ChangeActionCreate, ResourceRecordSet: ptr(a(n+".fleet.example.com", "192.0.2.1"))})
		}
		_, err := c.ChangeResourceRecordSets(t.Context(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zone), ChangeBatch: &types.ChangeBatch{Changes: changes}})
		return err
	}
	if err := change("one", "two"); err != nil {
		t.Fatal(err)
	}
	err = change("three")
	var batch *types.InvalidChangeBatch
	if !errors.As(err, &batch) || !slices.Contains(batch.Messages, recordSetLimit(4)) {
		t.Errorf("a fifth record set: %v, want InvalidChangeBatch %q", err, recordSetLimit(4))
	}
	zl, err := c.GetHostedZoneLimit(t.Context(), &route53.GetHostedZoneLimitInput{HostedZoneId: aws.String(zone), Type: types.HostedZoneLimitTypeMaxRrsetsByZone})
	if err != nil {
		t.Fatal(err)
	}
	if got := [2]int64{aws.ToInt64(zl.Limit.Value), zl.Count}; got != [2]int64{4, 4} {
		t.Errorf("GetHostedZoneLimit: value, count = %v, want [4 4]", got)
	}
}

func TestConcurrentChangesToAZone(t *testing.T) {
	limits := DocumentedLimits()
	limits.ChangeProcessing = 200 * time.Millisecond
	srv, c := newServer(t, Options{Limits: &limits})
	zone := srv.CreateZone("fleet.example.com")
	var wg sync.WaitGroup
	codes := make([]string, 2)
	for i, name := range []string{"one", "two"} {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 50 * time.Millisecond)
			_, err := c.ChangeResourceRecordSets(t.Context(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zone),
				ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionCreate, ResourceRecordSet: ptr(a(name+".fleet.example.com", "192.0.2.1"))}}}})
			if err != nil {
				codes[i], _ = errorOf(t, err)
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff([]string{"", "PriorRequestNotComplete"}, codes); diff != "" {
		t.Errorf("a change while the zone processes another (-want +got):\n%s", diff)
	}
	// One after the other, both pass.
	_, err := c.ChangeResourceRecordSets(t.Context(), &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zone),
		ChangeBatch: &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionCreate, ResourceRecordSet: ptr(a("two.fleet.example.com", "192.0.2.1"))}}}})
	if err != nil {
		t.Errorf("a change after the zone processed the last: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
