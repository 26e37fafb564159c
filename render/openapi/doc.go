// Package openapi checks what a fleet renders before any cluster sees it: every
// object against the OpenAPI v3 schema of the Kubernetes version of its region,
// custom resources against the openAPIV3Schema of CustomResourceDefinitions
// rendered in the same fleet, and a tenant app's objects against the tenant
// policy (its namespace; cluster-scoped kinds only where the app allows them) and
// for Secrets filled from plain values (CheckRendered). UsePlaceholders lets a
// fleet render without the keys of its SOPS files, for validation in CI.
//
// The schemas are bundled and need no network: each was read once from a real
// kube-apiserver of its version (see TestRegenerate and docs/validate.md).
// Validation itself is kube-openapi's, the schema validator kube-apiserver uses for
// custom resources, with two additions that make it match what kube-apiserver does
// with built-in kinds under strict field validation: an object may not hold fields
// its schema does not declare (unless the schema preserves unknown fields), and a
// null value means "unset". TestValidateAgreesWithAPIServer checks that a real
// kube-apiserver refuses the same objects.
package openapi
