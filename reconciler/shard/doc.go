// Package shard lets several replicas of the daemon share one fleet without two
// of them ever applying the same placement at once.
//
// Tenants hash into a fixed number of shards (Of). Shards are spread over the
// live replicas by rendezvous hashing (Owner), so a replica that joins or leaves
// moves only the shards it gains or had. Membership is a Lease per replica in the
// management cluster, renewed by its replica; the live replicas are those whose
// Lease changed within the lease duration.
//
// Hashing alone is not enough: two replicas can briefly disagree on who is live.
// So a replica applies a shard's tenants only while it holds that shard's Lease,
// and gives a Lease up only once the pass that uses it has finished. A Lease is
// taken over only when its holder released it, or when it has not changed for a
// whole lease duration as seen by the taker's own clock; the holder stops writing
// (its fenced context ends) a margin before that can happen. One replica, elected
// with client-go's leader election on another Lease, also removes the Leases of
// replicas that went away. See docs/ha.md for the argument in full.
//
// With Options.DNS one more Lease, <name>-dns, is kept like a shard's: its
// holder is the one replica that writes Route53 (a Hold's owns(DNSWriter)). The
// replicas share what their passes found of their placements' health in a
// ConfigMap each (ReportHealth), which the writer reads (Health).
package shard
