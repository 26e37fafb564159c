package plan

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/render"
)

// ObjectRef identifies an object in a region's cluster.
type ObjectRef struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf returns the reference of an object.
func RefOf(u *unstructured.Unstructured) ObjectRef {
	gvk := u.GroupVersionKind()
	return ObjectRef{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: u.GetNamespace(), Name: u.GetName()}
}

// GroupVersionKind returns the reference's type.
func (r ObjectRef) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// String formats the reference as Kind/namespace/name (or Kind/name).
func (r ObjectRef) String() string {
	if r.Namespace != "" {
		return r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	return r.Kind + "/" + r.Name
}

// Key identifies the object whatever its API version: group, kind, namespace
// and name.
func (r ObjectRef) Key() string {
	return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name
}

// Inventory is what Meridian applied for one unit in one region, as recorded in that
// region's cluster.
type Inventory struct {
	// Unit is the unit; in JSON its text form, tenant/region/app or tenant/region.
	Unit fleet.UnitID `json:"unit"`
	// Digest is the render digest of what was applied.
	Digest string `json:"digest"`
	// Revision is the commit that was applied.
	Revision string `json:"revision"`
	// Objects are every object applied for the unit.
	Objects []ObjectRef `json:"objects"`
	// Adopted are the objects of Objects that existed before Meridian first applied
	// them, taken over because the fleet asked for it (adoptExisting). When they
	// leave the unit they are released, never deleted.
	Adopted []ObjectRef `json:"adopted,omitempty"`
	// Hooks are the Helm hooks' objects Meridian created for the unit and has not
	// deleted since: recorded before each is created, and taken out once its
	// delete policy removed it. They are deleted with the unit, or when the unit no
	// longer renders them.
	Hooks []ObjectRef `json:"hooks,omitempty"`
}

// IsAdopted reports whether the inventory records ref as adopted.
func (inv *Inventory) IsAdopted(ref ObjectRef) bool {
	if inv == nil {
		return false
	}
	return slices.ContainsFunc(inv.Adopted, func(a ObjectRef) bool { return a.Key() == ref.Key() })
}

// Desired is one rendered unit this region should have.
type Desired struct {
	// Unit is the unit.
	Unit fleet.UnitID
	// Digest identifies the rendered objects.
	Digest string
	// Objects are the rendered objects.
	Objects []*unstructured.Unstructured
	// Hooks are the objects of the unit's Helm hooks.
	Hooks []ObjectRef
	// Source is the chart (with its version) or Kustomize directory the objects
	// come from (render.Unit.Source), for the dashboard.
	Source string
}

// DesiredOf is what a rendered unit asks of its region.
func DesiredOf(u *render.Unit) Desired {
	d := Desired{Unit: u.ID(), Digest: u.Digest, Objects: u.Objects, Source: u.Source}
	for _, h := range u.Hooks {
		d.Hooks = append(d.Hooks, RefOf(h.Object))
	}
	return d
}

// Action is what a pass does to one unit.
type Action int

// The actions, in the order a ChangeSet lists them.
const (
	// Create applies a unit the region does not have yet.
	Create Action = iota
	// Update applies a unit whose rendered objects changed.
	Update
	// Unchanged leaves a unit alone: its digest equals the applied one.
	Unchanged
	// Prune deletes a unit that left the fleet.
	Prune
	// Keep leaves a unit that failed to render exactly as it is in the cluster.
	Keep
)

// String is the action's name as logs, metrics and the dashboard show it.
func (a Action) String() string {
	switch a {
	case Create:
		return "create"
	case Update:
		return "update"
	case Unchanged:
		return "unchanged"
	case Prune:
		return "prune"
	case Keep:
		return "keep"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Change is what a pass does to one unit.
type Change struct {
	// Unit is the unit.
	Unit fleet.UnitID
	// Action is what happens to the unit.
	Action Action
	// Desired is the unit to apply (Create, Update, Unchanged).
	Desired *Desired
	// Applied is the unit's inventory, when the region has one.
	Applied *Inventory
	// Delete lists the objects Meridian created that leave the cluster: all of an
	// inventory for Prune, the objects no longer rendered for Update and Unchanged.
	Delete []ObjectRef
	// Release lists the objects that leave the unit but that Meridian adopted
	// (Inventory.Adopted): they stay in the cluster, without Meridian's labels and
	// fields.
	Release []ObjectRef
}

// AllowMassDeletionTrailer is the commit message trailer that lets one revision
// through the mass-deletion guard: a line "Meridian-Allow-Mass-Deletion: true" in
// the last paragraph of the head commit's message. It allows that revision only;
// the next commit is guarded again.
const AllowMassDeletionTrailer = "Meridian-Allow-Mass-Deletion"

// allowIt is how a held message ends: what lets the revision through.
const allowIt = `; to let this revision through, end its commit message with the trailer "` + AllowMassDeletionTrailer + `: true"`

// Limits are the safety limits of a region's pass.
type Limits struct {
	// MaxDeletePercent holds deletions when a pass would delete more than this share
	// of the objects Meridian manages in the region.
	MaxDeletePercent int
	// AllowMassDeletion lets a pass over the limit (and tenant namespace deletions)
	// through; it is given explicitly for one revision (AllowMassDeletionTrailer).
	AllowMassDeletion bool
	// NoPrune forbids every deletion, because something failed upstream (a fetch, a
	// render, a previous apply): nothing is deleted because something failed.
	NoPrune bool
}

// ChangeSet is every change of one region's pass.
type ChangeSet struct {
	// Region is the region the changes are for.
	Region string
	// Changes are sorted by unit.
	Changes []Change
	// Held explains why the pass's deletions are held, or is empty. Held deletions are
	// not carried out; everything else in the change set is.
	Held string
}

// Deletions counts the objects the change set deletes.
func (c ChangeSet) Deletions() int {
	n := 0
	for _, ch := range c.Changes {
		n += len(ch.Delete)
	}
	return n
}

// Releases counts the adopted objects the change set releases.
func (c ChangeSet) Releases() int {
	n := 0
	for _, ch := range c.Changes {
		n += len(ch.Release)
	}
	return n
}

// Count returns how many units get action a.
func (c ChangeSet) Count(a Action) int {
	n := 0
	for _, ch := range c.Changes {
		if ch.Action == a {
			n++
		}
	}
	return n
}

// Empty reports that the pass writes nothing: every unit unchanged or kept.
func (c ChangeSet) Empty() bool {
	for _, ch := range c.Changes {
		if ch.Action != Unchanged && ch.Action != Keep {
			return false
		}
		if len(ch.Delete)+len(ch.Release) > 0 {
			return false
		}
	}
	return true
}

// String summarises the change set in one line for logs.
func (c ChangeSet) String() string {
	parts := []string{}
	for _, a := range []Action{Create, Update, Unchanged, Prune, Keep} {
		if n := c.Count(a); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, a))
		}
	}
	s := c.Region + ": " + strings.Join(parts, ", ")
	if d := c.Deletions(); d > 0 {
		s += fmt.Sprintf("; %d objects to delete", d)
	}
	if n := c.Releases(); n > 0 {
		s += fmt.Sprintf("; %d adopted objects to release", n)
	}
	if c.Held != "" {
		s += "; deletions held: " + c.Held
	}
	return s
}

// Calculate plans one region's pass: desired units against the inventories found in
// the region. failed names units that should exist but did not render this time;
// they are kept as they are, never pruned.
func Calculate(region string, desired []Desired, applied []Inventory, failed []fleet.UnitID, limits Limits) ChangeSet {
	cs := ChangeSet{Region: region}
	inv := map[fleet.UnitID]*Inventory{}
	total := 0
	for i := range applied {
		inv[applied[i].Unit] = &applied[i]
		total += len(applied[i].Objects) + len(applied[i].Hooks)
	}
	wanted := map[fleet.UnitID]bool{}
	for i := range desired {
		d := &desired[i]
		wanted[d.Unit] = true
		ch := Change{Unit: d.Unit, Desired: d, Applied: inv[d.Unit]}
		switch a := inv[d.Unit]; {
		case a == nil:
			ch.Action = Create
		case a.Digest == d.Digest:
			// Objects of an earlier revision whose pruning was held or interrupted
			// are still in the inventory: they leave now.
			ch.Action = Unchanged
			ch.Delete, ch.Release = a.split(leftBehind(a, d))
		default:
			ch.Action = Update
			ch.Delete, ch.Release = a.split(leftBehind(a, d))
		}
		cs.Changes = append(cs.Changes, ch)
	}
	for _, u := range failed {
		if wanted[u] {
			continue
		}
		wanted[u] = true
		cs.Changes = append(cs.Changes, Change{Unit: u, Action: Keep, Applied: inv[u]})
	}
	var namespaceDeleted, crdDeleted fleet.UnitID
	for _, a := range applied {
		if wanted[a.Unit] {
			continue
		}
		ch := Change{Unit: a.Unit, Action: Prune, Applied: inv[a.Unit]}
		ch.Delete, ch.Release = a.split(slices.Concat(a.Objects, a.Hooks))
		cs.Changes = append(cs.Changes, ch)
		if a.Unit.IsNamespace() && slices.ContainsFunc(ch.Delete, isNamespace) {
			namespaceDeleted = a.Unit
		}
	}
	slices.SortFunc(cs.Changes, func(a, b Change) int { return a.Unit.Compare(b.Unit) })
	for _, ch := range cs.Changes {
		// An addon's Namespace or CRD takes everything in it, or every custom
		// resource of its kind (tenants' included), with it: whether the addon
		// leaves or only stops rendering the object.
		if ch.Unit.IsAddon() && slices.ContainsFunc(ch.Delete, isNamespace) && namespaceDeleted.IsZero() {
			namespaceDeleted = ch.Unit
		}
		if ch.Unit.IsAddon() && slices.ContainsFunc(ch.Delete, isCRD) && crdDeleted.IsZero() {
			crdDeleted = ch.Unit
		}
	}

	deletions := cs.Deletions()
	switch {
	case deletions == 0:
	case limits.NoPrune:
		cs.Held = "an earlier step failed, and nothing is deleted because something failed"
	case limits.AllowMassDeletion:
	case !namespaceDeleted.IsZero() && namespaceDeleted.IsAddon():
		cs.Held = fmt.Sprintf("the revision deletes a namespace of addon %s, and everything in it", namespaceDeleted) + allowIt
	case !namespaceDeleted.IsZero():
		cs.Held = fmt.Sprintf("the revision deletes tenant namespace %s", namespaceDeleted) + allowIt
	case !crdDeleted.IsZero():
		cs.Held = fmt.Sprintf("the revision deletes a CustomResourceDefinition of addon %s, and every custom resource of it in the region", crdDeleted) + allowIt
	case total > 0 && deletions*100 > limits.MaxDeletePercent*total:
		cs.Held = fmt.Sprintf("the revision deletes %d of %d objects (%d%%), more than the limit of %d%%",
			deletions, total, deletions*100/total, limits.MaxDeletePercent) + allowIt
	}
	return cs
}

// split sorts objects leaving the unit into those Meridian created, which are
// deleted, and those it adopted, which are released.
func (inv *Inventory) split(refs []ObjectRef) (del, release []ObjectRef) {
	for _, r := range refs {
		if inv.IsAdopted(r) {
			release = append(release, r)
		} else {
			del = append(del, r)
		}
	}
	return del, release
}

// isNamespace reports whether ref names a Namespace.
// isCRD reports whether ref is a CustomResourceDefinition: deleting one deletes
// every custom resource of its kind.
func isCRD(ref ObjectRef) bool {
	return ref.Group == "apiextensions.k8s.io" && ref.Kind == "CustomResourceDefinition"
}

func isNamespace(ref ObjectRef) bool { return ref.Group == "" && ref.Kind == "Namespace" }

// leftBehind returns the applied objects and hooks that are no longer rendered.
func leftBehind(applied *Inventory, d *Desired) []ObjectRef {
	keep := map[string]bool{}
	for _, u := range d.Objects {
		keep[RefOf(u).Key()] = true
	}
	for _, h := range d.Hooks {
		keep[h.Key()] = true
	}
	var out []ObjectRef
	for _, r := range slices.Concat(applied.Objects, applied.Hooks) {
		if !keep[r.Key()] {
			out = append(out, r)
		}
	}
	return out
}
