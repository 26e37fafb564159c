// Package daemon is what `meridian run` does: it builds the reconciler's
// dependencies from the configuration file (the git source and its webhooks,
// SOPS keys, Helm, Route53, the status store and the HTTP server in front of
// it, the shards of several replicas) and runs the reconciler until its context
// is done.
//
// It is wiring, like the rest of cmd/, kept in a package of its own so that
// both binaries run the same daemon: cmd/meridian's run command, and the demo
// of cmd/meridian-dev, which runs it in its own process next to the test
// environments the production binary must not link.
package daemon
