package shard

import (
	"hash/fnv"
	"strconv"
)

// Of returns the shard of a tenant among n shards. It depends on the tenant's name
// and n only, so every replica, of any version, agrees on it.
func Of(tenant string, n int) int {
	return int(mix(sum(tenant)) % uint64(n))
}

// Owner returns the member that owns shard s by rendezvous hashing: the member with
// the highest score for the shard. Every replica that sees the same members picks
// the same owner; when a member joins it takes only the shards it now scores
// highest on, and when one leaves only its shards move. Empty members own nothing.
func Owner(s int, members []string) string {
	var best string
	var bestScore uint64
	for _, m := range members {
		score := mix(sum(m + "/" + strconv.Itoa(s)))
		if best == "" || score > bestScore || (score == bestScore && m < best) {
			best, bestScore = m, score
		}
	}
	return best
}

// sum is FNV-1a, 64 bits.
func sum(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// mix is the SplitMix64 finaliser: it spreads FNV's nearby outputs for nearby
// inputs ("shard-1", "shard-2") over the whole range.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
