// Package status keeps one in-memory model of every unit of the fleet — its
// sync state, the revision and commit it runs, its rollout wave, its last error,
// its drift and the health of its DNS endpoints — and shows it to people and
// machines: Prometheus metrics at /metrics, a JSON API under /api/v1/ (the whole
// status, a summary with a tenants × regions heatmap, a unit's detail and its
// Kubernetes events, the apps, the history of passes) and a web dashboard at /,
// all read-only and served by Store.Handler.
//
// A placement is a tenant's app in a region; the Store also keeps the tenants'
// namespace units and the addons, and every count tells the three kinds apart
// (Counts, the kind label of the metrics).
//
// The daemon feeds a Store: ObserveRevision and ObserveRefused when a fetched
// revision is accepted or refused, ObservePass after every reconcile pass,
// ObserveDrift after every drift check, ObserveFetchFailure when the git fetch
// fails, and ObserveDNS and Route53Request from the Route53 code. The history of
// passes outlives the process through Options.History (HistoryFile,
// HistoryConfigMap), saved in the background until Close. The states of placements are derived from the reconciler's
// Report (see DeriveStates), so the logs, the metrics and the dashboard tell one
// story.
//
// Every string the Store keeps goes through a secrets.Redactor when it has one,
// even though the reconciler redacts its errors already, and so does every
// Kubernetes event it reads from a region; ObservePass takes each pass's
// (reconciler.Report.Redactor), and no event is shown before: nothing the Store
// shows may carry a decrypted value.
package status
