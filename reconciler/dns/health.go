package dns

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"golang.org/x/time/rate"

	"meridian.dev/meridian/fleet"
)

// healthyShare is Route53's rule: a health check is healthy when more than 18%
// of its checkers report it healthy.
const healthyShare = 0.18

// CheckStatus is Route53's view of one health check, as GetHealthCheckStatus
// reports its checkers' last observations.
type CheckStatus struct {
	// Healthy is Route53's decision: more than 18% of the checkers report
	// success.
	Healthy bool
	// Report is a failing checker's report when the check is not healthy (else
	// a succeeding one's), e.g. "Failure: HTTP Status Code 503, Service
	// Unavailable".
	Report string
	// At is when it was read.
	At time.Time
}

// CheckStatus reads a health check's status, paced by Route53's own rate of
// GetHealthCheckStatus (a burst of 4, then 1 a second, for the whole account)
// as well as the account's.
func (a *Applier) CheckStatus(ctx context.Context, id string) (CheckStatus, error) {
	out, err := call(ctx, a, "GetHealthCheckStatus", func(ctx context.Context) (*route53.GetHealthCheckStatusOutput, error) {
		return a.api.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
	})
	if err != nil {
		return CheckStatus{}, fmt.Errorf("health check %s: reading its status: %w", id, err)
	}
	st := CheckStatus{At: time.Now()}
	ok := 0
	var good, bad string
	for _, o := range out.HealthCheckObservations {
		if o.StatusReport == nil {
			continue
		}
		s := aws.ToString(o.StatusReport.Status)
		if strings.HasPrefix(s, "Success") {
			ok++
			good = s
		} else {
			bad = s
		}
	}
	n := len(out.HealthCheckObservations)
	st.Healthy = n > 0 && float64(ok) > healthyShare*float64(n)
	st.Report = good
	if !st.Healthy && bad != "" {
		st.Report = bad
	}
	return st, nil
}

// HealthCheckIDs returns the health check each published endpoint's latency
// record uses, by placement, as this applier last read the zone (Current) and
// wrote it since (Apply).
func (a *Applier) HealthCheckIDs() map[fleet.UnitID]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.checkIDs)
}

// noteChecksLocked records the health checks of the latency records in s; a.mu is held.
func (a *Applier) noteChecksLocked(s State) {
	p := newPlanner(s)
	a.checkIDs = map[fleet.UnitID]string{}
	for _, r := range s.Records {
		if r.HealthCheckID == "" || isRegistry(r) {
			continue
		}
		if o, ok := p.owners[setKey(r.Name, r.SetIdentifier)]; ok {
			a.checkIDs[o.key] = r.HealthCheckID
		}
	}
}

// noteBatchLocked records the health checks of the latency records a batch
// wrote or deleted; a.mu is held.
func (a *Applier) noteBatchLocked(batch []RecordGroup, ids map[fleet.UnitID]string) {
	if a.checkIDs == nil {
		a.checkIDs = map[fleet.UnitID]string{}
	}
	for _, g := range batch {
		for _, c := range g.Changes {
			r := c.Record
			if isRegistry(r) {
				continue
			}
			if !c.HealthCheck.IsZero() {
				r.HealthCheckID = ids[c.HealthCheck]
			}
			switch {
			case c.Action == Delete && r.HealthCheckID != "" && a.checkIDs[g.Unit] == r.HealthCheckID:
				delete(a.checkIDs, g.Unit)
			case c.Action != Delete && r.HealthCheckID != "":
				a.checkIDs[g.Unit] = r.HealthCheckID
			}
		}
	}
}

// DefaultPollsPerSecond is a Follower's default budget: half of Route53's rate
// of GetHealthCheckStatus (1 a second per account), a tenth of Meridian's
// default request rate.
const DefaultPollsPerSecond = 0.5

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// PollsPerSecond is the Follower's budget of GetHealthCheckStatus requests,
	// at most Route53's 1 a second; default DefaultPollsPerSecond. Scaled by the
	// applier's RateScale.
	PollsPerSecond float64
	// Changed is called, from Run's goroutine, when a followed check's health
	// changed, or was first read as not healthy.
	Changed func()
	// Watch is how long a poked placement's check stays watched: read again
	// every WatchEvery, before the round-robin, since Route53 decides only
	// after the check's interval × failure threshold; default 3 minutes
	// (Route53's slowest: 30 s × 3, twice) and 5 s (a watched check takes at
	// most 2 of every 5 polls at the default budget).
	Watch, WatchEvery time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Follower follows Route53's health checks of the published endpoints between
// passes, within a request budget: Route53 answers GetHealthCheckStatus once a
// second for the whole account, so polling every check every few seconds does
// not scale (900 checks are 15 minutes of that budget). It polls first the
// checks of the placements it is poked about (whose health a watch just saw
// change), then the others round-robin: a poked check is read within a poll or
// two, any other within (checks ÷ PollsPerSecond).
type Follower struct {
	opts FollowerOptions

	mu    sync.Mutex
	pokes []fleet.UnitID
	// watched are the poked placements still watched: until when, and when
	// their check was last read.
	watched map[fleet.UnitID]watch
	last    string // the check the round-robin read last
	status  map[string]CheckStatus
	wake    chan struct{}
}

// NewFollower returns a Follower; Run starts it.
func NewFollower(opts FollowerOptions) *Follower {
	if opts.PollsPerSecond <= 0 {
		opts.PollsPerSecond = DefaultPollsPerSecond
	}
	if opts.Watch <= 0 {
		opts.Watch = 3 * time.Minute
	}
	if opts.WatchEvery <= 0 {
		opts.WatchEvery = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Follower{opts: opts, status: map[string]CheckStatus{}, watched: map[fleet.UnitID]watch{}, wake: make(chan struct{}, 1)}
}

// watch is a poked placement's watch.
type watch struct{ until, read time.Time }

// Poke asks for the health check of a placement's endpoint to be read next: a
// watch saw the placement's health change, and Route53's checkers will see it
// within their interval × threshold. Safe from any goroutine.
func (f *Follower) Poke(unit fleet.UnitID) {
	f.mu.Lock()
	if !slices.Contains(f.pokes, unit) {
		f.pokes = append(f.pokes, unit)
	}
	f.watched[unit] = watch{until: f.opts.Now().Add(f.opts.Watch)}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Status returns the last status read of a health check.
func (f *Follower) Status(id string) (CheckStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.status[id]
	return s, ok
}

// Run polls until ctx is done. applier returns the applier to poll through,
// or nil while this replica does not write Route53 (it then polls nothing).
func (f *Follower) Run(ctx context.Context, applier func() *Applier) {
	var limiter *rate.Limiter
	for ctx.Err() == nil {
		a := applier()
		if a == nil {
			f.idle(ctx, time.Second)
			continue
		}
		if limiter == nil {
			limiter = rate.NewLimiter(rate.Limit(f.opts.PollsPerSecond*a.opts.RateScale), 1)
		}
		// Wait for the budget before choosing, so that a poke arriving during
		// the wait is read next rather than behind a check already chosen.
		if err := limiter.Wait(ctx); err != nil {
			return
		}
		id, ok := f.next(a.HealthCheckIDs())
		if !ok {
			f.idle(ctx, time.Second)
			continue
		}
		st, err := a.CheckStatus(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				a.opts.Logger.Warn("Route53 health check status not read; the next round reads it again", "error", err)
			}
			continue
		}
		f.mu.Lock()
		prev, seen := f.status[id]
		f.status[id] = st
		f.mu.Unlock()
		if (seen && prev.Healthy != st.Healthy) || (!seen && !st.Healthy) {
			a.opts.Logger.Info("Route53 health check changed", "id", id, "healthy", st.Healthy, "report", st.Report)
			if f.opts.Changed != nil {
				f.opts.Changed()
			}
		}
	}
}

// idle waits for a poke, d, or ctx.
func (f *Follower) idle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-f.wake:
	case <-t.C:
	}
}

// next picks the check to read: a poked placement's first; then a watched
// one's not read for WatchEvery (the longest waiting first); else the one
// after the last in the round-robin (by check ID), over the checks ids holds.
func (f *Follower) next(ids map[fleet.UnitID]string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.opts.Now()
	for len(f.pokes) > 0 {
		unit := f.pokes[0]
		f.pokes = f.pokes[1:]
		if id, ok := ids[unit]; ok {
			f.watched[unit] = watch{until: f.watched[unit].until, read: now}
			return id, true
		}
	}
	var due fleet.UnitID
	for unit, w := range f.watched {
		_, ok := ids[unit]
		switch {
		case !ok || now.After(w.until):
			delete(f.watched, unit)
		case now.Sub(w.read) >= f.opts.WatchEvery && (due.IsZero() || w.read.Before(f.watched[due].read)):
			due = unit
		}
	}
	if !due.IsZero() {
		f.watched[due] = watch{until: f.watched[due].until, read: now}
		return ids[due], true
	}
	if len(ids) == 0 {
		return "", false
	}
	all := slices.Sorted(maps.Values(ids))
	all = slices.Compact(all)
	// Forget the checks no endpoint uses any more.
	for id := range f.status {
		if _, ok := slices.BinarySearch(all, id); !ok {
			delete(f.status, id)
		}
	}
	i, _ := slices.BinarySearch(all, f.last+"\x00")
	if i >= len(all) {
		i = 0
	}
	f.last = all[i]
	return f.last, true
}
