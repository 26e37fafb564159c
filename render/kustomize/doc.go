// Package kustomize builds an app's Kustomize directory from a repository snapshot,
// safely: nothing is fetched over the network, no program runs, and nothing outside
// the snapshot is read.
//
// A build is kustomize's own (sigs.k8s.io/kustomize/api) reading only through
// snapshotFS, a file system that resolves every path, symlinks included, refuses
// anything outside the snapshot root, never writes, and records every file read and
// symlink followed. Before kustomize runs, a policy walk over the kustomization and
// everything it refers to refuses remote bases and files, exec, container and Go
// plugins, KRM functions, Helm chart inflation and paths that leave the snapshot,
// because kustomize fetches http(s) files and clones git URLs itself, before any
// file system is asked. Every refusal matches ErrRefused; every error names the
// kustomization file and says what to change.
//
// After the build, Flux-style variables (${var}, ${var:=default}) are substituted
// into each object. The Result lists the objects in a deterministic order and the
// files and symlinks the build depended on, so a caller can cache a build by a
// digest of exactly those.
package kustomize
