// Package gotool builds the upstream CLIs that Meridian is measured or checked
// against (helm, sops, kubectl, kustomize) from the Go module proxy, at the
// versions a go.mod of this repository pins, and keeps the binaries in a cache
// outside the checkout so that a second run does not build them again.
//
// A program is built in a temporary module holding a copy of that go.mod and
// go.sum, so the versions are exactly those the repository uses and its own
// go.mod is never touched. The bench (its scripted baseline) and the render
// conformance suite (helm template and kustomize build) share it and its cache.
package gotool
