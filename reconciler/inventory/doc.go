// Package inventory keeps, in each region's own cluster, what Meridian applied there:
// for every unit (a tenant's namespace, or a placement) the references of the objects
// it applied, the render digest and the revision. A daemon that restarts, or a second
// one taking over, reads it back with List and so prunes exactly what Meridian
// created — never less, never anything else.
//
// One ConfigMap per unit lives in the namespace meridian-system (created on the first
// write). Its name is derived from the unit ID with a hash suffix, so any ID fits and
// two IDs never share an object; it carries the label meridian.dev/inventory=v1 so
// List finds every entry; its data key inventory.json holds the plan.Inventory as
// JSON. Inventories hold references and digests only, never object contents, so no
// secret ever reaches them.
//
// Every Put and Delete is a single write of one object, guarded by its
// resourceVersion: a Store remembers the version it last read (List, Get) or wrote
// (Put) for each unit, and after a List it knows the units it did not return are
// absent. It writes against what it knows, so an entry changed behind its back — by
// another daemon, or a person — is a conflict error rather than a lost update. After
// any failed write the Store forgets that unit's version, and the next Put starts
// from what the cluster holds.
//
// # Crash safety
//
// The applier (package reconciler/apply) writes a unit's inventory around each apply
// so that a daemon killed at any instant leaves no object it created unknown to the
// inventory:
//
//  1. Before applying, when the unit adds objects, it records the union of the
//     objects already recorded and those about to be applied, under the previous
//     digest. Killed during the apply, the next daemon finds every object that may
//     exist, and since the digest is the old one it applies the unit again.
//  2. After the apply, it records the new digest with the new objects plus those of
//     the previous inventory the unit no longer renders. Killed now, the next daemon
//     plans the unit unchanged and deletes the leftovers.
//  3. After pruning the leftovers, it records exactly the new objects and digest.
//
// Each step is one atomic write, so the recorded set only ever grows before objects
// are created and only shrinks after they are deleted. A unit that leaves the fleet
// is pruned first and its inventory deleted last, so an interrupted prune is resumed
// from the same inventory.
package inventory
