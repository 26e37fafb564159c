// Package openapi checks rendered objects against the OpenAPI v3 schemas of the
// Kubernetes version of the region they go to, without reaching a cluster: the
// schemas are bundled, read once from a real kube-apiserver of each bundled version
// (see TestRegenerate), and custom resources are checked against the
// openAPIV3Schema of CustomResourceDefinitions rendered in the same fleet.
//
// Validation itself is kube-openapi's, the schema validator kube-apiserver uses for
// custom resources, with two additions that make it match what an apiserver does
// with built-in kinds: an object may not hold fields its schema does not declare
// (unless the schema preserves unknown fields), and a null value means "unset".
package openapi
