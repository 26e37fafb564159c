// Package backoff computes the waits between retries that every loop of Meridian uses
// (git polling, reconcile passes, Route53 requests), so they all spread apart the
// same way: exponential, capped, with jitter.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Exponential returns the wait after the n-th consecutive failure (n ≥ 1): minWait
// doubled n-1 times and capped at maxWait, of which a random half is waited ("equal
// jitter"), so a wait never drops to zero yet many retrying clients spread apart.
func Exponential(minWait, maxWait time.Duration, n int) time.Duration {
	d := minWait
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Jitter returns d changed by a random fraction within ±frac, so that periodic work
// of many processes does not fall into step.
func Jitter(d time.Duration, frac float64) time.Duration {
	return time.Duration(float64(d) * (1 - frac + 2*frac*rand.Float64()))
}
