// Package plan computes, as pure data, what one reconcile pass would change in one
// region: for every unit (a placement, or a tenant's namespace) whether it is created,
// updated, left unchanged or pruned, and which objects leave with it. It decides
// nothing by talking to a cluster, so every rule that protects users — never prune
// after a failure, hold mass deletions — is a table test here.
package plan
