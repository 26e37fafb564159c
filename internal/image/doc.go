// Package image builds Meridian's container image without a container daemon:
// a multi-architecture OCI image index (linux/amd64, linux/arm64) of the static
// meridian binary, made with go-containerregistry.
//
// Each platform's image has two layers: a base that every platform shares (CA
// certificates taken from a Go module, not from the build machine, and
// /etc/passwd and /etc/group naming the nonroot user 65532) and the binary at
// /usr/local/bin/meridian, the entrypoint. There is no shell. The image runs as
// 65532:65532 and carries the OCI labels version, revision, source and created.
//
// The build is reproducible: the binary is built with -trimpath, without VCS
// stamping and with its version and commit set at link time; every timestamp
// (files, history, config, SBOM) is the time given, usually the commit's; tar
// entries are written in a fixed order with fixed modes and owners; and gzip
// writes no name or time. The same commit gives the same index digest.
//
// Every platform image has an SBOM: an SPDX 2.3 JSON document of the modules
// its binary links, read from the binary's build information, attached as an
// OCI 1.1 artifact whose subject is that image (a referrer), so registries that
// serve the referrers API, and layouts, keep it with the image.
//
// The package is used by `meridian-dev image` (make image) and its tests; the
// meridian binary does not link it.
package image
