package dns

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/aws/smithy-go"
)

// retryable reports Route53's transient refusals: its rate limit and a change
// that is still being processed.
func retryable(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "Throttling", "ThrottlingException", "PriorRequestNotComplete":
		return true
	}
	return false
}

// errorCode is the Route53 error code of err, or empty.
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// call runs one Route53 request under the rate limiter, retrying transient refusals
// with exponential backoff and full jitter.
func call[T any](ctx context.Context, a *Applier, f func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		if err := a.limiter.Wait(ctx); err != nil {
			return zero, err
		}
		a.requests.Add(1)
		out, err := f(ctx)
		if err == nil || !retryable(err) || attempt >= a.opts.MaxAttempts {
			return out, err
		}
		backoff := a.opts.MaxBackoff
		if attempt < 20 {
			backoff = min(a.opts.BaseBackoff<<(attempt-1), a.opts.MaxBackoff)
		}
		d := time.Duration(rand.Int64N(int64(backoff) + 1))
		a.opts.Logger.Debug("route53 refused a request for now; retrying", "error", errorCode(err), "attempt", attempt, "wait", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, ctx.Err()
		case <-t.C:
		}
	}
}
