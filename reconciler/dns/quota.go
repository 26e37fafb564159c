package dns

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"meridian.dev/meridian/fleet"
)

// Records a published endpoint holds in its zone: its latency and regional
// record sets, each with its registry record.
const recordsPerEndpoint = 4

// Quota is one Route53 limit: what the fleet needs of it against what the
// account or zone allows, read before anything is created.
type Quota struct {
	// Name is "health checks" (the account's MAX_HEALTH_CHECKS_BY_OWNER) or
	// "record sets" (the zone's MAX_RRSETS_BY_ZONE).
	Name string `json:"name"`
	// Limit is the account's or zone's limit; zero when it could not be read.
	Limit int64 `json:"limit"`
	// Others counts what uses the limit and is not the fleet's: other health
	// checks of the account, other record sets of the zone (its SOA and NS
	// included).
	Others int64 `json:"others"`
	// Needed is what the fleet needs with every exposed placement published.
	Needed int64 `json:"needed"`
}

// Fits reports whether the fleet fits in what the limit leaves it (or the limit
// is unknown).
func (q Quota) Fits() bool { return q.Limit == 0 || q.Others+q.Needed <= q.Limit }

// Left is what the limit leaves the fleet.
func (q Quota) Left() int64 { return max(0, q.Limit-q.Others) }

// String is the quota in one line, with what to do when the fleet does not fit.
func (q Quota) String() string {
	if q.Limit == 0 {
		return fmt.Sprintf("%s: the fleet needs %d; the limit could not be read (route53:GetAccountLimit, route53:GetHostedZoneLimit)", q.Name, q.Needed)
	}
	s := fmt.Sprintf("%s: the fleet needs %d of %d allowed (%d used by others)", q.Name, q.Needed, q.Limit, q.Others)
	if !q.Fits() {
		fix := "ask AWS to raise MAX_RRSETS_BY_ZONE for the zone"
		if q.Name == QuotaHealthChecks {
			fix = "ask AWS to raise MAX_HEALTH_CHECKS_BY_OWNER, or set spec.dns.healthChecks: perAppRegion in fleet.yaml"
		}
		s += fmt.Sprintf(": %d over; placements beyond it are not published; %s", q.Others+q.Needed-q.Limit, fix)
	}
	return s
}

// The quotas' names.
const (
	QuotaHealthChecks = "health checks"
	QuotaRecordSets   = "record sets"
)

// Quotas are the fleet's needs against Route53's limits.
type Quotas struct {
	HealthChecks Quota `json:"healthChecks"`
	RecordSets   Quota `json:"recordSets"`
}

// Needs is what endpoints (the fleet's exposed placements, all published) need
// of Route53's limits against what s shows the account and zone allow.
func Needs(endpoints []Endpoint, s State) Quotas {
	checks := map[string]bool{}
	for _, e := range endpoints {
		checks[e.checkKey()] = true
	}
	owned := 0
	p := newPlanner(s)
	for _, r := range s.Records {
		if isRegistry(r) {
			if f, _, ok := parseRegistry(r.Values); ok && f == s.Fleet {
				owned++
			}
			continue
		}
		if _, ok := p.owners[setKey(r.Name, r.SetIdentifier)]; ok {
			owned++
		}
	}
	return Quotas{
		HealthChecks: Quota{Name: QuotaHealthChecks, Limit: s.HealthCheckLimit, Others: int64(max(0, s.AccountHealthChecks-len(s.HealthChecks))), Needed: int64(len(checks))},
		RecordSets:   Quota{Name: QuotaRecordSets, Limit: s.RecordSetLimit, Others: int64(len(s.Records) - owned), Needed: int64(recordsPerEndpoint * len(endpoints))},
	}
}

// OverQuota is an endpoint a plan leaves unpublished because creating it would
// go over a Route53 limit.
type OverQuota struct {
	// Unit is the placement.
	Unit fleet.UnitID
	// Quota is the limit it would go over.
	Quota Quota
}

// String says so in one line.
func (o OverQuota) String() string {
	return fmt.Sprintf("over quota %s: not published; %s", o.Unit, o.Quota)
}

// withinQuotas drops from the plan the new endpoints that would take the account
// over its health-check limit or the zone over its record-set limit, last ones
// first, so that Route53 never refuses a create for a quota: what fits is
// published, what does not is reported.
func (p *planner) withinQuotas(q Quotas) {
	s := p.current
	checks := int64(s.AccountHealthChecks)
	records := int64(len(s.Records))
	for _, h := range p.ch.HealthChecks {
		if h.Action == CreateCheck {
			checks++
		}
	}
	for _, g := range p.ch.Records {
		for _, c := range g.Changes {
			switch c.Action {
			case Create:
				records++
			case Delete:
				records--
			}
		}
	}
	overChecks := s.HealthCheckLimit > 0 && checks > s.HealthCheckLimit
	overRecords := s.RecordSetLimit > 0 && records > s.RecordSetLimit
	if !overChecks && !overRecords {
		return
	}
	// The new endpoints, in plan order: those whose groups create records.
	var fresh []fleet.UnitID
	for _, g := range p.ch.Records {
		if slices.ContainsFunc(g.Changes, func(c RecordChange) bool { return c.Action == Create && !isRegistry(c.Record) }) && !slices.Contains(fresh, g.Unit) {
			fresh = append(fresh, g.Unit)
		}
	}
	for i := len(fresh) - 1; i >= 0 && (overChecks || overRecords); i-- {
		u := fresh[i]
		quota := q.RecordSets
		if overChecks {
			quota = q.HealthChecks
		}
		p.ch.OverQuota = append(p.ch.OverQuota, OverQuota{Unit: u, Quota: quota})
		n := len(p.ch.HealthChecks)
		p.ch.HealthChecks = slices.DeleteFunc(p.ch.HealthChecks, func(h HealthCheckChange) bool { return h.Unit() == u && h.Action == CreateCheck })
		checks -= int64(n - len(p.ch.HealthChecks))
		p.ch.Records = slices.DeleteFunc(p.ch.Records, func(g RecordGroup) bool {
			if g.Unit != u || slices.ContainsFunc(g.Changes, func(c RecordChange) bool { return c.Action == Delete }) {
				return false
			}
			for _, c := range g.Changes {
				if c.Action == Create {
					records--
				}
			}
			return true
		})
		overChecks = s.HealthCheckLimit > 0 && checks > s.HealthCheckLimit
		overRecords = s.RecordSetLimit > 0 && records > s.RecordSetLimit
	}
	slices.SortFunc(p.ch.OverQuota, func(a, b OverQuota) int { return a.Unit.Compare(b.Unit) })
}

// limitsTTL is how long the limits read from Route53 are kept: they change only
// when AWS raises them, and each read is a request.
const limitsTTL = time.Hour

// readLimits returns the account's health-check limit and the zone's record-set
// limit, read at most once an hour. A limit that cannot be read (Meridian lacks
// route53:GetAccountLimit or GetHostedZoneLimit) is zero, and logged: planning
// goes on without it, and Route53 refuses what goes over.
func (a *Applier) readLimits(ctx context.Context) (checks, records int64) {
	a.mu.Lock()
	if !a.limitsAt.IsZero() && time.Since(a.limitsAt) < limitsTTL {
		defer a.mu.Unlock()
		return a.checkLimit, a.recordLimit
	}
	a.mu.Unlock()
	acc, err := call(ctx, a, "GetAccountLimit", func(ctx context.Context) (*route53.GetAccountLimitOutput, error) {
		return a.api.GetAccountLimit(ctx, &route53.GetAccountLimitInput{Type: types.AccountLimitTypeMaxHealthChecksByOwner})
	})
	if err == nil && acc.Limit != nil {
		checks = aws.ToInt64(acc.Limit.Value)
	} else {
		a.opts.Logger.Warn("the account's health-check limit could not be read; planning without it", "error", err)
	}
	zone, err := call(ctx, a, "GetHostedZoneLimit", func(ctx context.Context) (*route53.GetHostedZoneLimitOutput, error) {
		return a.api.GetHostedZoneLimit(ctx, &route53.GetHostedZoneLimitInput{HostedZoneId: aws.String(a.opts.HostedZoneID), Type: types.HostedZoneLimitTypeMaxRrsetsByZone})
	})
	if err == nil && zone.Limit != nil {
		records = aws.ToInt64(zone.Limit.Value)
	} else {
		a.opts.Logger.Warn("the zone's record-set limit could not be read; planning without it", "zone", a.opts.HostedZoneID, "error", err)
	}
	a.mu.Lock()
	a.checkLimit, a.recordLimit, a.limitsAt = checks, records, time.Now()
	a.mu.Unlock()
	return checks, records
}

// Quotas reads the zone and the account and returns what model's exposed
// placements, all published, need of Route53's limits against what they allow:
// what `meridian plan` shows before anything is created.
func (a *Applier) Quotas(ctx context.Context, model *fleet.Model) (Quotas, error) {
	cur, err := a.Current(ctx)
	if err != nil {
		return Quotas{}, err
	}
	return Needs(Desired(model, func(fleet.UnitID) bool { return true }), cur), nil
}
