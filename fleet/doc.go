// Package fleet holds the fleet model: the versioned file kinds a platform team commits
// (Fleet, Region, App, Tenant in meridian.dev/v1alpha1), their strict loading from a
// repository snapshot, their validation, and their expansion into placements — one per
// tenant × region × app, each with its merged values.
//
// Loading never stops at the first problem: every file is read and every error is
// collected, each naming the file and line and saying how to fix it, so that one run of
// `meridian validate` shows a fleet author everything that is wrong.
//
// The format is documented for users in docs/fleet-format.md; the JSON Schemas under
// schema/ are generated from the types in this package (go test -run TestSchemas -update).
package fleet
