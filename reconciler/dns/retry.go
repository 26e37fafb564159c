package dns

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/aws/smithy-go"

	"meridian.dev/meridian/internal/backoff"
)

// retryable reports Route53's transient refusals: its rate limit and a change
// that is still being processed.
func retryable(err error) bool {
	// A connection that broke mid-request is worth another try; a change that did
	// reach Route53 then shows up in the next cycle's reading of the zone.
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
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

// call runs one Route53 request of operation op under the account's rate limiter
// and op's own, retrying transient refusals with exponential backoff and jitter.
func call[T any](ctx context.Context, a *Applier, op string, f func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		if l := a.opLimiters[op]; l != nil {
			if err := l.Wait(ctx); err != nil {
				return zero, err
			}
		}
		if err := a.limiter.Wait(ctx); err != nil {
			return zero, err
		}
		a.requests.Add(1)
		out, err := f(ctx)
		if err == nil || !retryable(err) || attempt >= a.opts.MaxAttempts {
			return out, err
		}
		d := backoff.Exponential(a.opts.BaseBackoff, a.opts.MaxBackoff, attempt)
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
