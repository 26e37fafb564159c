package backoff

import (
	"testing"
	"time"
)

// TestExponentialAndJitter checks the bounds of the random waits.
func TestExponentialAndJitter(t *testing.T) {
	for n := 1; n <= 8; n++ {
		want := min(time.Second<<(n-1), 10*time.Second)
		for range 200 {
			if d := Exponential(time.Second, 10*time.Second, n); d < want/2 || d > want {
				t.Fatalf("Exponential after %d failures = %v, want within [%v, %v]", n, d, want/2, want)
			}
		}
	}
	for range 200 {
		if d := Jitter(time.Minute, 0.1); d < 54*time.Second || d > 66*time.Second {
			t.Fatalf("Jitter(1m, 10%%) = %v, want within [54s, 66s]", d)
		}
	}
}
