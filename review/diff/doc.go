// Package diff compares two rendered revisions of a fleet repository and reports what
// a pull request would do: per tenant, region and app the objects added, changed and
// removed, with a unified YAML diff of each; the DNS names, latency records and health
// checks that appear, change or go; and, per region, whether the mass-deletion guard
// would hold the revision's deletions.
//
// Compare is pure: it takes two render results with their fleet models and returns a
// Report, data that Text, Markdown and JSON format for terminals, pull-request
// comments and bots. Decrypted values never reach a Report: Secrets are compared
// key by key through digests and shown only as "added", "changed" or "removed", every
// object is redacted before it is printed, and every string a formatter writes passes
// a Redactor of all secret values of both revisions once more.
//
// The revision annotation (meridian.dev/revision) differs on every object between
// two revisions and is left out of comparisons and diffs.
package diff
