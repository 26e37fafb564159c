// Package dns publishes Meridian's placements in Route53: it turns the exposed
// placements that are deployed and healthy into Endpoints, plans as pure data what
// Route53 must change for them (Plan), and carries the plan out through the narrow
// Route53API (Applier.Apply), reading back only what Meridian owns (Applier.Current).
//
// Every endpoint gets a Route53 health check, a latency record at its global name
// <subdomain>.<tenant>.<zone> (SetIdentifier = fleet region, Region = AWS region) and
// a simple record at its regional name <subdomain>.<tenant>.<region>.<zone>.
// Ownership is recorded in Route53 itself: a TXT registry record at
// _meridian.<name>, with the same SetIdentifier and routing as the record it marks,
// and health-check tags. Only owned records and checks are ever changed or deleted;
// a desired name held by anything else is a Clash, reported and left alone.
//
// Records leave before health checks: a check is deleted only when Route53 shows no
// record using it, which is a later cycle than the one that withdrew its record.
// docs/dns.md describes the names, the registry and the lifecycle.
package dns
