package sources

import (
	"context"
	"log/slog"
	"time"

	"meridian.dev/meridian/internal/backoff"
)

// Defaults of a Poller.
const (
	DefaultPollInterval = time.Minute
	DefaultMinBackoff   = time.Second
)

// Update is the result of one fetch of a Poller: a snapshot, possibly
// Unchanged, or an error, in which case the previous snapshot stays valid.
type Update struct {
	// Snapshot is the fetched snapshot, nil when Err is set.
	Snapshot *Snapshot
	// Err is the fetch error: see Transient and the sentinel errors.
	Err error
}

// Poller calls Fetch on a clock: at once when started, then every Interval
// (with ±10% jitter so many daemons do not fetch in step), at once whenever
// Trigger is signalled, and after a transient error with exponential backoff
// and jitter, from MinBackoff up to MaxBackoff. A permanent error (refused
// credentials, an untrusted commit, a missing reference) waits a full
// Interval: retrying sooner would not help. Fetch itself is the unit; the
// Poller only adds the clock.
type Poller struct {
	// Source is fetched. Required.
	Source Fetcher
	// Interval is the time between fetches; zero means DefaultPollInterval.
	Interval time.Duration
	// Trigger, when not nil, makes the poller fetch at once, such as
	// Webhook.Trigger().
	Trigger <-chan struct{}
	// MinBackoff is the first wait after a transient error; zero means
	// DefaultMinBackoff. MaxBackoff caps the wait; zero means Interval.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives a line per failed fetch. Nil discards them.
	Logger *slog.Logger
}

// Watch starts polling and returns the channel every fetch's Update is sent
// on, unchanged snapshots included. Polling waits for each Update to be
// received. The channel is closed when ctx is done.
func (p *Poller) Watch(ctx context.Context) <-chan Update {
	out := make(chan Update)
	go func() {
		defer close(out)
		p.run(ctx, out)
	}()
	return out
}

func (p *Poller) run(ctx context.Context, out chan<- Update) {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	minBackoff := p.MinBackoff
	if minBackoff <= 0 {
		minBackoff = DefaultMinBackoff
	}
	maxBackoff := p.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = interval
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-p.Trigger:
		}
		snap, err := p.Source.Fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- Update{Snapshot: snap, Err: err}:
		case <-ctx.Done():
			return
		}
		var wait time.Duration
		switch {
		case err == nil:
			failures = 0
			wait = backoff.Jitter(interval, 0.1)
		case Transient(err):
			failures++
			wait = backoff.Exponential(minBackoff, maxBackoff, failures)
			log.Warn("fetch failed; retrying", "err", err, "retryIn", wait.Round(time.Millisecond), "failures", failures)
		default:
			failures = 0
			wait = backoff.Jitter(interval, 0.1)
			log.Error("fetch failed; keeping the last good revision", "err", err, "retryIn", wait.Round(time.Millisecond))
		}
		timer.Reset(wait)
	}
}
