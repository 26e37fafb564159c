// Package status keeps one in-memory model of every placement of the fleet — its
// sync state, the revision and commit it runs, its rollout wave, its last error,
// its drift and the health of its DNS endpoints — and shows it to people and
// machines: Prometheus metrics at /metrics, a JSON API at /api/v1/status and a
// web dashboard at /, all read-only and served by Store.Handler.
//
// The daemon feeds a Store: ObserveRevision and ObserveRefused when a fetched
// revision is accepted or refused, ObservePass after every reconcile pass,
// ObserveDrift after every drift check, ObserveFetchFailure when the git fetch
// fails, and ObserveDNS and Route53Request from the Route53 code. The states of
// placements are derived from the reconciler's Report (see DeriveStates), so the
// logs, the metrics and the dashboard tell one story.
//
// Every string the Store keeps goes through a secrets.Redactor when it has one,
// even though the reconciler redacts its errors already: nothing the Store shows
// may carry a decrypted value.
package status
