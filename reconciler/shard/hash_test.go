package shard

import (
	"fmt"
	"testing"
)

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("meridian-7f9c4-%c%c", 'a'+i%26, 'k'+i/26)
	}
	return out
}

func owners(shards int, ms []string) []string {
	out := make([]string, shards)
	for s := range out {
		out[s] = Owner(s, ms)
	}
	return out
}

// TestOwnerBalance checks that shards spread evenly: with 256 shards no member of
// 2 to 8 gets more than 1.5× or less than 0.5× its fair share.
func TestOwnerBalance(t *testing.T) {
	const shards = 256
	for n := 2; n <= 8; n++ {
		count := map[string]int{}
		for _, o := range owners(shards, members(n)) {
			count[o]++
		}
		fair := float64(shards) / float64(n)
		lo, hi := shards, 0
		for _, m := range members(n) {
			lo, hi = min(lo, count[m]), max(hi, count[m])
		}
		t.Logf("%d members: shards per member between %d and %d (fair %.1f)", n, lo, hi, fair)
		if float64(hi) > 1.5*fair || float64(lo) < 0.5*fair {
			t.Errorf("%d members: shards per member between %d and %d, want within [%.0f, %.0f]", n, lo, hi, 0.5*fair, 1.5*fair)
		}
	}
}

// TestOwnerMovesOnlyWhatItMust checks minimal movement: a member that joins takes
// shards only for itself, and a member that leaves gives away only its own.
func TestOwnerMovesOnlyWhatItMust(t *testing.T) {
	const shards = 256
	for n := 1; n <= 6; n++ {
		before := owners(shards, members(n))
		grown := members(n + 1)
		joined := grown[n]
		after := owners(shards, grown)
		moved := 0
		for s := range shards {
			if before[s] != after[s] {
				moved++
				if after[s] != joined {
					t.Errorf("join of %s: shard %d moved from %s to %s, want it to move only to the new member", joined, s, before[s], after[s])
				}
			}
		}
		t.Logf("%d→%d members: %d of %d shards moved (ideal %d)", n, n+1, moved, shards, shards/(n+1))
		if moved == 0 {
			t.Errorf("join of %s: no shard moved", joined)
		}

		// The member that leaves is one in the middle, not the newest.
		gone := grown[n/2]
		var left []string
		for _, m := range grown {
			if m != gone {
				left = append(left, m)
			}
		}
		back := owners(shards, left)
		for s := range shards {
			if after[s] != back[s] && after[s] != gone {
				t.Errorf("leave of %s: shard %d moved from %s to %s, though its owner stayed", gone, s, after[s], back[s])
			}
			if back[s] == gone {
				t.Errorf("leave of %s: shard %d still owned by it", gone, s)
			}
		}
	}
}

// TestOfSpreadsTenants checks that tenants spread over the shards and that Of is
// stable: the same name, the same shard.
func TestOfSpreadsTenants(t *testing.T) {
	const shards, tenants = 32, 3200
	count := make([]int, shards)
	for i := range tenants {
		name := fmt.Sprintf("tenant-%04d", i)
		s := Of(name, shards)
		if s != Of(name, shards) {
			t.Fatalf("Of(%q) is not stable", name)
		}
		count[s]++
	}
	lo, hi := tenants, 0
	for _, c := range count {
		lo, hi = min(lo, c), max(hi, c)
	}
	t.Logf("%d tenants in %d shards: between %d and %d per shard (fair %d)", tenants, shards, lo, hi, tenants/shards)
	if lo < 60 || hi > 140 {
		t.Errorf("tenants per shard between %d and %d, want within [60, 140]", lo, hi)
	}
	if got := Owner(3, nil); got != "" {
		t.Errorf("Owner with no members = %q, want empty", got)
	}
}
