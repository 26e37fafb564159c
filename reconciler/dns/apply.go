package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"golang.org/x/time/rate"

	"meridian.dev/meridian/fleet"
)

// Route53's limits of one ChangeResourceRecordSets request; an UPSERT counts twice.
const (
	MaxBatchRecords = 1000
	MaxBatchChars   = 32000
)

// Options configure an Applier. Zero values take the defaults noted.
type Options struct {
	// HostedZoneID is the fleet's zone (fleet.yaml dns.hostedZoneID).
	HostedZoneID string
	// Fleet is the fleet's name, which scopes ownership.
	Fleet string
	// RequestsPerSecond limits every Route53 request this applier makes; default 5,
	// within Route53's per-account quota (5 a second in its older documentation, a
	// bucket of 50 refilled at 10 a second in its current one).
	RequestsPerSecond float64
	// OperationRates pace the operations whose own Route53 quota is below the
	// account's; nil means DocumentedOperationRates.
	OperationRates map[string]OperationRate
	// RateScale multiplies RequestsPerSecond and OperationRates with their
	// bursts; default 1. Tests that run a Route53 test server faster than AWS
	// scale both alike.
	RateScale float64
	// MaxAttempts of one request refused with Throttling or PriorRequestNotComplete;
	// default 8.
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the jittered exponential backoff between
	// attempts; default 200ms and 10s.
	BaseBackoff, MaxBackoff time.Duration
	// PollInterval between GetChange calls while a batch is PENDING; default 2s.
	PollInterval time.Duration
	// MaxBatchRecords and MaxBatchChars split record changes into batches; default
	// Route53's limits.
	MaxBatchRecords, MaxBatchChars int
	// Logger receives progress; default discards.
	Logger *slog.Logger
}

// OperationRate is Route53's own request rate of one operation, below the
// account's: a token bucket of Burst requests refilled at PerSecond.
type OperationRate struct {
	PerSecond float64
	Burst     int
}

// DocumentedOperationRates are the Route53 operations Meridian uses whose documented rate is
// below the account's ("Throttling for Amazon Route 53 API requests"): only these
// are paced apart, every other request is paced by RequestsPerSecond alone.
// Creating 900 health checks therefore takes 50 at once and then 2 s each.
var DocumentedOperationRates = map[string]OperationRate{
	"CreateHealthCheck":    {PerSecond: 0.5, Burst: 50},
	"DeleteHealthCheck":    {PerSecond: 3, Burst: 15},
	"GetHealthCheckStatus": {PerSecond: 1, Burst: 4},
}

// Applier reads what a fleet owns in Route53 and applies plans to it.
type Applier struct {
	api        Route53API
	opts       Options
	limiter    *rate.Limiter
	opLimiters map[string]*rate.Limiter
	requests   atomic.Int64

	mu        sync.Mutex
	fleetTags map[string]map[string]string // the tags of the fleet's health checks, by ID
	// checkLimit and recordLimit are the account's and the zone's limits, read
	// at limitsAt.
	checkLimit, recordLimit int64
	limitsAt                time.Time
	// checkIDs are the health checks the latency records use, by placement.
	checkIDs map[fleet.UnitID]string
}

// NewApplier returns an Applier for one fleet's hosted zone.
func NewApplier(api Route53API, opts Options) *Applier {
	if opts.RequestsPerSecond <= 0 {
		opts.RequestsPerSecond = 5
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 8
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.MaxBatchRecords <= 0 {
		opts.MaxBatchRecords = MaxBatchRecords
	}
	if opts.MaxBatchChars <= 0 {
		opts.MaxBatchChars = MaxBatchChars
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.RateScale <= 0 {
		opts.RateScale = 1
	}
	a := &Applier{api: api, opts: opts, limiter: rate.NewLimiter(rate.Limit(opts.RequestsPerSecond*opts.RateScale), max(1, int(opts.RateScale))),
		opLimiters: map[string]*rate.Limiter{}}
	if opts.OperationRates == nil {
		opts.OperationRates = DocumentedOperationRates
	}
	for op, r := range opts.OperationRates {
		// 5% under Route53's rate and one under its burst: a request reaches
		// Route53 a varying while after it left, and one that arrives early
		// should not find the bucket empty.
		a.opLimiters[op] = rate.NewLimiter(rate.Limit(0.95*r.PerSecond*opts.RateScale), max(1, int(float64(r.Burst)*opts.RateScale)-1))
	}
	return a
}

// Requests counts the Route53 requests made so far, retries included.
func (a *Applier) Requests() int64 { return a.requests.Load() }

// Apply carries out a plan: health checks created and updated, record groups
// written in batches within Route53's limits, each batch waited INSYNC, then
// unused health checks deleted. A failure is reported and the rest carried on,
// except that records needing a check that failed are skipped; the next cycle
// plans again from what Route53 holds.
func (a *Applier) Apply(ctx context.Context, ch Changes) error {
	// Record groups are written while the health checks are created: a group
	// is ready once every check it needs exists, and every full batch of ready
	// groups goes at once, so that writing the records overlaps the pacing of
	// the creations (CreateHealthCheck refills at 0.5 a second) instead of
	// following it.
	var errs []error
	if _, err := a.batches(ch.Records); err != nil {
		errs = append(errs, err) // a group too large for any batch; left out below
	}
	pending := make([]int, len(ch.Records)) // checks each group still waits for
	skipped := make([]bool, len(ch.Records))
	byCheck := map[fleet.UnitID][]int{}
	var ready []int
	for i, g := range ch.Records {
		if r, c := groupSize(g); r > a.opts.MaxBatchRecords || c > a.opts.MaxBatchChars {
			skipped[i] = true
			continue
		}
		for _, c := range g.Changes {
			if u := c.HealthCheck; !u.IsZero() && !slices.Contains(byCheck[u], i) {
				byCheck[u] = append(byCheck[u], i)
				pending[i]++
			}
		}
		if pending[i] == 0 {
			ready = append(ready, i)
		}
	}
	// A group waiting for a check the change set neither creates nor updates
	// would never be ready: say so rather than drop it in silence.
	checked := map[fleet.UnitID]bool{}
	for _, h := range ch.HealthChecks {
		checked[h.Unit()] = true
	}
	for i, g := range ch.Records {
		for _, c := range g.Changes {
			if u := c.HealthCheck; !u.IsZero() && !checked[u] && !skipped[i] {
				skipped[i] = true
				errs = append(errs, fmt.Errorf("%s: records not written: they use the health check of %s, which the change set does not create; the next cycle plans again", g.Unit, u))
			}
		}
	}
	ids := map[fleet.UnitID]string{}
	n := 0
	submit := func(all bool) {
		slices.Sort(ready)
		groups := make([]RecordGroup, len(ready))
		for j, i := range ready {
			groups[j] = ch.Records[i]
		}
		batches, _ := a.batches(groups)
		if !all && len(batches) < 2 {
			return
		}
		if !all {
			// The last batch may not be full yet: keep its groups ready.
			last := len(batches) - 1
			ready = ready[len(ready)-len(batches[last]):]
			batches = batches[:last]
		} else {
			ready = nil
		}
		for _, b := range batches {
			n++
			if err := a.applyBatch(ctx, b, ids); err != nil {
				errs = append(errs, fmt.Errorf("route53 zone %s: batch %d: %w", a.opts.HostedZoneID, n, err))
			}
		}
	}
	results := make(chan checkResult, len(ch.HealthChecks)) // creations never wait for a batch
	var checkErrs []error
	go func() {
		checkErrs = a.applyChecks(ctx, ch.HealthChecks, results)
		close(results)
	}()
	for r := range results {
		if r.id != "" {
			ids[r.unit] = r.id
		}
		for _, i := range byCheck[r.unit] {
			if r.id == "" {
				skipped[i] = true // records needing a check that failed wait for the next cycle
			}
			if pending[i]--; pending[i] == 0 && !skipped[i] {
				ready = append(ready, i)
			}
		}
		submit(false)
	}
	submit(true)
	errs = append(checkErrs, errs...)
	for _, h := range ch.DeleteHealthChecks {
		_, err := call(ctx, a, "DeleteHealthCheck", func(ctx context.Context) (*route53.DeleteHealthCheckOutput, error) {
			return a.api.DeleteHealthCheck(ctx, &route53.DeleteHealthCheckInput{HealthCheckId: aws.String(h.ID)})
		})
		switch {
		case errorCode(err) == "NoSuchHealthCheck":
		case errorCode(err) == "HealthCheckInUse":
			errs = append(errs, fmt.Errorf("health check %s (%s): still used by a record Meridian does not own: %w; remove that record's HealthCheckId, the check is deleted on the next cycle", h.ID, h.Unit(), err))
		case err != nil:
			errs = append(errs, fmt.Errorf("health check %s (%s): deleting: %w; the next cycle retries", h.ID, h.Unit(), err))
		default:
			a.opts.Logger.Info("deleted health check", "placement", h.Unit(), "id", h.ID)
		}
	}
	return errors.Join(errs...)
}

// checkConcurrency is how many health checks Apply creates or updates at once:
// the rate limiters pace them, and one at a time left a first pass bound by
// each request's round trip rather than by Route53's rates.
const checkConcurrency = 8

// checkResult is one health check created or updated: its unit and id, or
// an empty id when it failed.
type checkResult struct {
	unit fleet.UnitID
	id   string
}

// applyChecks creates (and tags) or updates the plan's health checks,
// checkConcurrency at a time, sends each result as it comes, and returns the
// errors in the plan's order.
func (a *Applier) applyChecks(ctx context.Context, checks []HealthCheckChange, results chan<- checkResult) []error {
	errs := make([]error, len(checks))
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkConcurrency)
	for i, h := range checks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			id, err := a.applyCheck(ctx, h)
			errs[i] = err
			results <- checkResult{unit: h.Unit(), id: id}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
}

// applyCheck creates (and tags) or updates one health check and returns its id.
func (a *Applier) applyCheck(ctx context.Context, h HealthCheckChange) (string, error) {
	if h.Action == UpdateCheck {
		s := h.Spec
		in := &route53.UpdateHealthCheckInput{
			HealthCheckId: aws.String(h.ID), HealthCheckVersion: aws.Int64(h.Version),
			FullyQualifiedDomainName: aws.String(s.FQDN), Port: aws.Int32(int32(s.Port)),
			ResourcePath: aws.String(s.Path), FailureThreshold: aws.Int32(int32(s.FailureThreshold)),
		}
		if s.IPAddress != "" {
			in.IPAddress = aws.String(s.IPAddress)
		}
		_, err := call(ctx, a, "UpdateHealthCheck", func(ctx context.Context) (*route53.UpdateHealthCheckOutput, error) {
			return a.api.UpdateHealthCheck(ctx, in)
		})
		if err != nil {
			return "", fmt.Errorf("health check %s (%s): updating to %s: %w; if it changed since it was read, the next cycle plans again", h.ID, h.Unit(), s, err)
		}
		a.opts.Logger.Info("updated health check", "placement", h.Unit(), "id", h.ID, "spec", s.String())
		return h.ID, nil
	}
	var id string
	for gen := 0; ; gen++ {
		ref := h.CallerReference
		if gen > 0 {
			ref += "-" + strconv.Itoa(gen)
		}
		out, err := call(ctx, a, "CreateHealthCheck", func(ctx context.Context) (*route53.CreateHealthCheckOutput, error) {
			return a.api.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(ref), HealthCheckConfig: checkConfig(h.Spec)})
		})
		if errorCode(err) == "HealthCheckAlreadyExists" && gen < 9 {
			continue // the reference belonged to a check deleted earlier: take the next one
		}
		if err != nil {
			return "", fmt.Errorf("health check %s: creating %s: %w; check the app's expose settings and Route53's health-check quota", h.Unit(), h.Spec, err)
		}
		id = aws.ToString(out.HealthCheck.Id)
		break
	}
	_, err := call(ctx, a, "ChangeTagsForResource", func(ctx context.Context) (*route53.ChangeTagsForResourceOutput, error) {
		return a.api.ChangeTagsForResource(ctx, &route53.ChangeTagsForResourceInput{
			ResourceType: types.TagResourceTypeHealthcheck, ResourceId: aws.String(id),
			AddTags: []types.Tag{
				{Key: aws.String(TagFleet), Value: aws.String(h.Fleet)},
				{Key: aws.String(TagTenant), Value: aws.String(h.Tenant)},
				{Key: aws.String(TagApp), Value: aws.String(h.App)},
				{Key: aws.String(TagRegion), Value: aws.String(h.Region)},
			},
		})
	})
	if err != nil {
		return "", fmt.Errorf("health check %s (%s): tagging it as the fleet's: %w; until tagged Meridian does not own it, and the next cycle creates it again idempotently and tags it", id, h.Unit(), err)
	}
	a.mu.Lock()
	if a.fleetTags == nil {
		a.fleetTags = map[string]map[string]string{}
	}
	a.fleetTags[id] = map[string]string{TagFleet: h.Fleet, TagTenant: h.Tenant, TagApp: h.App, TagRegion: h.Region}
	a.mu.Unlock()
	a.opts.Logger.Info("created health check", "placement", h.Unit(), "id", id, "spec", h.Spec.String())
	return id, nil
}

// size counts a change the way Route53's limits do.
func size(c RecordChange) (records, chars int) {
	w := 1
	if c.Action == Upsert {
		w = 2
	}
	for _, v := range c.Record.Values {
		records++
		chars += len(v)
	}
	return w * records, w * chars
}

// groupSize counts a group the way Route53's limits do.
func groupSize(g RecordGroup) (records, chars int) {
	for _, c := range g.Changes {
		r, ch := size(c)
		records, chars = records+r, chars+ch
	}
	return records, chars
}

// batches packs whole groups into batches within the limits.
func (a *Applier) batches(groups []RecordGroup) ([][]RecordGroup, error) {
	var out [][]RecordGroup
	var cur []RecordGroup
	records, chars := 0, 0
	var errs []error
	for _, g := range groups {
		gr, gc := 0, 0
		for _, c := range g.Changes {
			r, ch := size(c)
			gr, gc = gr+r, gc+ch
		}
		if gr > a.opts.MaxBatchRecords || gc > a.opts.MaxBatchChars {
			errs = append(errs, fmt.Errorf("route53 records of %s: %d records, %d characters exceed one batch's limit; shorten the records", g.Unit, gr, gc))
			continue
		}
		if len(cur) > 0 && (records+gr > a.opts.MaxBatchRecords || chars+gc > a.opts.MaxBatchChars) {
			out = append(out, cur)
			cur, records, chars = nil, 0, 0
		}
		cur = append(cur, g)
		records, chars = records+gr, chars+gc
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, errors.Join(errs...)
}

// applyBatch submits one batch and waits until it is INSYNC.
func (a *Applier) applyBatch(ctx context.Context, batch []RecordGroup, ids map[fleet.UnitID]string) error {
	var changes []types.Change
	var first string
	for _, g := range batch {
		for _, c := range g.Changes {
			r := c.Record
			if !c.HealthCheck.IsZero() {
				if r.HealthCheckID = ids[c.HealthCheck]; r.HealthCheckID == "" {
					return fmt.Errorf("%s: the health check of %s does not exist yet; the batch was not applied", r.ID(), c.HealthCheck)
				}
			}
			if first == "" {
				first = string(c.Action) + " " + r.ID()
			}
			changes = append(changes, types.Change{Action: types.ChangeAction(c.Action), ResourceRecordSet: toSDK(r)})
		}
	}
	out, err := call(ctx, a, "ChangeResourceRecordSets", func(ctx context.Context) (*route53.ChangeResourceRecordSetsOutput, error) {
		return a.api.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
			HostedZoneId: aws.String(a.opts.HostedZoneID),
			ChangeBatch:  &types.ChangeBatch{Comment: aws.String("meridian " + a.opts.Fleet), Changes: changes},
		})
	})
	var invalid *types.InvalidChangeBatch
	if errors.As(err, &invalid) && len(invalid.Messages) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.Join(invalid.Messages, "; "))
	}
	if err != nil {
		return fmt.Errorf("%d changes from %s: %w; the batch was not applied, and the next cycle plans again from what Route53 holds", len(changes), first, err)
	}
	a.opts.Logger.Info("submitted record changes", "changes", len(changes), "change", aws.ToString(out.ChangeInfo.Id))
	a.mu.Lock()
	a.noteBatchLocked(batch, ids)
	a.mu.Unlock()
	return a.waitInSync(ctx, aws.ToString(out.ChangeInfo.Id), out.ChangeInfo.Status)
}

// waitInSync polls GetChange until the change is INSYNC.
func (a *Applier) waitInSync(ctx context.Context, id string, status types.ChangeStatus) error {
	for status != types.ChangeStatusInsync {
		t := time.NewTimer(a.opts.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("change %s: still %s: %w; it completes in Route53 regardless, and the next cycle sees it", id, status, ctx.Err())
		case <-t.C:
		}
		out, err := call(ctx, a, "GetChange", func(ctx context.Context) (*route53.GetChangeOutput, error) {
			return a.api.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(id)})
		})
		if err != nil {
			return fmt.Errorf("change %s: waiting for INSYNC: %w", id, err)
		}
		status = out.ChangeInfo.Status
	}
	return nil
}
