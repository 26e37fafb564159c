// Package apply is the write side of one region: it applies rendered units into the
// region's cluster with server-side apply (fluxcd/pkg/ssa) under the single field
// manager "meridian", records what it applied in the region's inventory
// (reconciler/inventory) so a restarted daemon prunes correctly, prunes only objects
// that are still Meridian's, reports each unit's health from kstatus, and finds
// drift with server-side dry-runs.
//
// Tenant isolation is enforced by the API server, not only by render: a placement's
// namespaced objects are written impersonating the tenant's ServiceAccount
// (system:serviceaccount:<tenant>:meridian-tenant), which the tenant's namespace unit
// binds to a Role in that namespace alone. A manifest aimed at another namespace is
// refused by RBAC.
//
// One unit's pass, as the daemon drives it with a plan.Change:
//
//	res, err := applier.Apply(ctx, unit, change.Applied) // records intent, applies, records the result
//	if err == nil && len(res.Leftover) > 0 && deletionsAllowed {
//		err = applier.Prune(ctx, unit.ID(), res.Leftover)
//		if err == nil {
//			err = store.Put(ctx, res.Inventory)
//		}
//	}
//	health, err := applier.Wait(ctx, res.Inventory.Objects, timeout)
//
// and for a unit that left the fleet: Prune every object of its inventory, then
// delete the inventory. Region packages these steps in the shape a reconcile pass
// drives them (reconciler.Cluster). Errors are *Error values naming the object; IsTransient tells
// the failures to retry with backoff from those to report.
package apply
