package route53test

import (
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Bucket is a token bucket: Burst requests at once, refilled at Rate a second.
type Bucket struct {
	Burst float64
	Rate  float64
}

// Limits are the quotas the server enforces, as Route53 documents them for an
// account (DocumentedLimits). Requests over a rate are refused with Throttling
// ("Rate exceeded"), a change to a zone still processing the previous one with
// PriorRequestNotComplete, and entities over a quota with Route53's errors.
type Limits struct {
	// Account is the bucket every request of the account draws on.
	Account Bucket
	// Operations are the buckets of the operations that have their own quota;
	// a request draws on both its operation's bucket and Account's.
	Operations map[string]Bucket
	// DefaultOperation is the bucket of every other operation.
	DefaultOperation Bucket
	// MaxHealthChecks is the account's health-check quota
	// (MAX_HEALTH_CHECKS_BY_OWNER); CreateHealthCheck beyond it is refused with
	// TooManyHealthChecks.
	MaxHealthChecks int
	// MaxRecordSetsPerZone is a zone's record-set quota (MAX_RRSETS_BY_ZONE); a
	// batch that would exceed it is refused with InvalidChangeBatch.
	MaxRecordSetsPerZone int
	// ChangeProcessing is how long a zone takes to process a
	// ChangeResourceRecordSets: another change to the zone that arrives
	// meanwhile (from a second writer) is refused with PriorRequestNotComplete.
	ChangeProcessing time.Duration
}

// DocumentedLimits are Route53's quotas for a new account, from its
// developer guide ("Throttling for Amazon Route 53 API requests" and "Quotas"):
// the account's requests in one bucket of 50 refilled at 10 a second, each
// operation in its own bucket as well (50 at 10 a second unless listed:
// CreateHealthCheck 50 at 0.5, DeleteHealthCheck 15 at 3, GetHealthCheckStatus 4
// at 1), 200 health checks and 10,000 record sets per zone. ChangeProcessing,
// which Route53 does not publish, is 20ms.
func DocumentedLimits() Limits {
	return Limits{
		Account: Bucket{Burst: 50, Rate: 10},
		Operations: map[string]Bucket{
			"CreateHealthCheck":    {Burst: 50, Rate: 0.5},
			"DeleteHealthCheck":    {Burst: 15, Rate: 3},
			"GetHealthCheckStatus": {Burst: 4, Rate: 1},
		},
		DefaultOperation:     Bucket{Burst: 50, Rate: 10},
		MaxHealthChecks:      200,
		MaxRecordSetsPerZone: 10000,
		ChangeProcessing:     20 * time.Millisecond,
	}
}

// tokens is a bucket's state.
type tokens struct {
	Bucket
	have float64
	at   time.Time
}

// refill brings the bucket to now.
func (t *tokens) refill(now time.Time) {
	if t.at.IsZero() {
		t.have, t.at = t.Burst, now
		return
	}
	t.have = math.Min(t.Burst, t.have+now.Sub(t.at).Seconds()*t.Rate)
	t.at = now
}

// throttleLocked takes a token from the account's and op's buckets, or refuses
// the request with Throttling when either is empty; s.mu is held.
func (s *Server) throttleLocked(op string) *apiError {
	now := time.Now()
	if s.buckets == nil {
		s.buckets = map[string]*tokens{}
	}
	get := func(key string, b Bucket) *tokens {
		t, ok := s.buckets[key]
		if !ok {
			b.Burst *= s.opts.RateScale
			b.Rate *= s.opts.RateScale
			t = &tokens{Bucket: b}
			s.buckets[key] = t
		}
		t.refill(now)
		return t
	}
	b, ok := s.limits.Operations[op]
	if !ok {
		b = s.limits.DefaultOperation
	}
	account, own := get("", s.limits.Account), get(op, b)
	if account.have < 1 || own.have < 1 {
		s.throttled++
		return errorf(http.StatusBadRequest, "Throttling", "Rate exceeded")
	}
	account.have--
	own.have--
	return nil
}

// Throttled returns how many requests the server refused with Throttling
// because of its rate limits (injected faults not counted).
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// SetMaxHealthChecks changes the account's health-check quota, as a quota
// increase would.
func (s *Server) SetMaxHealthChecks(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits.MaxHealthChecks = n
}

type limitXML struct {
	Type  string `xml:"Type"`
	Value int64  `xml:"Value"`
}

func (s *Server) getAccountLimit(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var value, count int
	switch t := r.PathValue("type"); t {
	case "MAX_HEALTH_CHECKS_BY_OWNER":
		value, count = s.limits.MaxHealthChecks, len(s.checks)
	case "MAX_HOSTED_ZONES_BY_OWNER":
		value, count = 500, len(s.zones)
	default:
		return 0, nil, invalidInput("Invalid account limit type %q: this test server knows MAX_HEALTH_CHECKS_BY_OWNER and MAX_HOSTED_ZONES_BY_OWNER", t)
	}
	return 0, struct {
		XMLName xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetAccountLimitResponse"`
		Limit   limitXML `xml:"Limit"`
		Count   int64    `xml:"Count"`
	}{Limit: limitXML{Type: r.PathValue("type"), Value: int64(value)}, Count: int64(count)}, nil
}

func (s *Server) getHostedZoneLimit(r *http.Request, _ []byte) (int, any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, err := s.zoneLocked(r.PathValue("id"))
	if err != nil {
		return 0, nil, err
	}
	if t := r.PathValue("type"); t != "MAX_RRSETS_BY_ZONE" {
		return 0, nil, invalidInput("Invalid hosted zone limit type %q: this test server knows MAX_RRSETS_BY_ZONE", t)
	}
	return 0, struct {
		XMLName xml.Name `xml:"https://route53.amazonaws.com/doc/2013-04-01/ GetHostedZoneLimitResponse"`
		Limit   limitXML `xml:"Limit"`
		Count   int64    `xml:"Count"`
	}{Limit: limitXML{Type: "MAX_RRSETS_BY_ZONE", Value: int64(s.limits.MaxRecordSetsPerZone)}, Count: int64(len(z.records))}, nil
}

// tooManyHealthChecks is Route53's refusal of a check over the account's quota.
func tooManyHealthChecks(max int) *apiError {
	return errorf(http.StatusBadRequest, "TooManyHealthChecks", "This AWS account has reached its limit of %d health checks; delete some or request a higher limit.", max)
}

// priorRequestNotComplete is Route53's refusal of a change to a zone still
// processing the previous one.
func priorRequestNotComplete() *apiError {
	return errorf(http.StatusBadRequest, "PriorRequestNotComplete", "The request was rejected because Route 53 was still processing a prior request.")
}

// recordSetLimit is the refusal of a batch that would exceed the zone's quota.
func recordSetLimit(max int) string {
	return fmt.Sprintf("Tried to create resource record sets beyond the hosted zone's limit of %d record sets; delete some or request a higher limit.", max)
}
