// Package reconciler brings every region to a revision of the fleet: it renders the
// snapshot, plans each region's pass as data (package plan), applies, prunes and
// waits for health region by region in rollout waves, and reports what it did.
//
// RunOnce is the unit: one pass over one snapshot, which tests call directly. The
// daemon (package cmd/meridian's run) adds the clock, webhooks and drift checks
// around it. Regions are independent: one that cannot be reached is reported and
// retried, and does not slow the others of its wave; but a wave that is not healthy
// stops the revision from reaching later waves.
package reconciler
