package apply

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"meridian.dev/meridian/fleet"
	"meridian.dev/meridian/reconciler/plan"
	"meridian.dev/meridian/render"
)

// Existing is an object a unit would write that already exists in the region but
// that the unit's inventory does not record: Meridian did not create it for the
// unit.
type Existing struct {
	// Object is the object.
	Object plan.ObjectRef
	// Managers are the live object's field managers, each once, sorted: the API
	// server keeps no stable order among them.
	Managers []string
	// ManagedBy is the object's app.kubernetes.io/managed-by label, or "".
	ManagedBy string
	// Owner is the Meridian unit the object's labels and annotation name, or zero
	// when they name none: an object of another unit is never adopted.
	Owner fleet.UnitID
}

// String describes the object and who made it:
// "Namespace/payments (field managers: kubectl-create; managed-by: Helm)".
func (e Existing) String() string {
	var about []string
	if !e.Owner.IsZero() {
		about = append(about, "Meridian's, for unit "+e.Owner.String())
	}
	if len(e.Managers) > 0 {
		about = append(about, "field managers: "+strings.Join(e.Managers, ", "))
	}
	if e.ManagedBy != "" && e.Owner.IsZero() {
		about = append(about, render.LabelManagedBy+": "+e.ManagedBy)
	}
	if len(about) == 0 {
		return e.Object.String()
	}
	return e.Object.String() + " (" + strings.Join(about, "; ") + ")"
}

// RefusedError is why a unit was not applied: objects it would write exist in the
// region and Meridian did not create them for the unit. Nothing of the unit was
// written.
type RefusedError struct {
	// Unit is the unit refused.
	Unit fleet.UnitID
	// Objects are the objects that exist.
	Objects []Existing
	// Hooks says the objects are Helm hooks' objects, which are never adopted.
	Hooks bool
}

// Error names every object, who made it, and what to do.
func (e *RefusedError) Error() string {
	parts := make([]string, len(e.Objects))
	other := false
	for i, o := range e.Objects {
		parts[i] = o.String()
		other = other || (!o.Owner.IsZero() && o.Owner != e.Unit)
	}
	what := "it exists and Meridian did not create it"
	if len(parts) > 1 {
		what = "they exist and Meridian did not create them"
	}
	fix := "delete or rename it in the cluster, or set adoptExisting: true " + e.adoptField() + " to take it over"
	switch {
	case other:
		fix = "one object cannot belong to two units: rename it in one of them"
	case e.Hooks:
		fix = "a hook replaces its object each time it runs, so it never takes one over: delete or rename it in the cluster, or rename the hook in the chart"
	}
	return fmt.Sprintf("%s: %s, so nothing of the unit was written; %s", strings.Join(parts, ", "), what, fix)
}

// adoptField says where in the fleet adoption is asked for.
func (e *RefusedError) adoptField() string {
	if e.Unit.IsAddon() {
		return "in the spec of addon " + e.Unit.Addon
	}
	if e.Unit.IsNamespace() {
		return "in the spec of tenant " + e.Unit.Tenant
	}
	return fmt.Sprintf("on app %s in the spec.apps of tenant %s", e.Unit.App, e.Unit.Tenant)
}

// existing returns the objects of unit that exist in the region although prev,
// the unit's inventory (nil for none), does not record them: objects Meridian
// would take over by applying; and the unit's Namespaces that did not exist. It
// reads each object prev lacks, as the user that would write it; an object whose
// kind the region does not know yet (its CRD comes with the unit) does not exist,
// and one the tenant may not read is left to the API server to refuse when it is
// written.
//
// Nothing is read in a namespace that did not exist: found absent here, or
// created by this pass (Applier.created). Everything in it is younger than
// Meridian's own check, as an object made between a check and a write would be;
// and a region's first pass reads one Namespace per tenant, not every object.
func (a *Applier) existing(ctx context.Context, unit *render.Unit, prev *plan.Inventory) (found []Existing, absent []string, err error) {
	id := unit.ID()
	a.mu.Lock()
	fresh := maps.Clone(a.created)
	a.mu.Unlock()
	var recorded map[string]bool
	if prev != nil {
		recorded = keys(prev.Objects)
	}
	objects := slices.Clone(unit.Objects)
	slices.SortStableFunc(objects, func(x, y *unstructured.Unstructured) int { // Namespaces first
		return cmp.Compare(namespaceRank(x), namespaceRank(y))
	})
	for _, u := range objects {
		ref := plan.RefOf(u)
		if recorded[ref.Key()] {
			continue
		}
		if ref.Namespace != "" && fresh[ref.Namespace] {
			continue
		}
		live, notFound, err := a.readExisting(ctx, id, ref, "read before apply failed")
		switch {
		case err != nil:
			return nil, nil, err
		case notFound && namespaceRank(u) == 0:
			fresh[ref.Name] = true
			absent = append(absent, ref.Name)
			continue
		case live == nil:
			continue
		}
		found = append(found, describe(ref, live))
	}
	return found, absent, nil
}

// readExisting reads an object a unit would write, as the writer that would
// write it, before the write: the live object, or nil when there is none to
// claim — not found (notFound), a kind the region does not know yet (its CRD
// comes with the unit), or one the tenant may not read (the tenant may not write
// it either: the API server refuses the write, and says why). Errors are *Error
// with op.
func (a *Applier) readExisting(ctx context.Context, id fleet.UnitID, ref plan.ObjectRef, op string) (live *unstructured.Unstructured, notFound bool, err error) {
	w, err := a.writerFor(id, ref)
	if err != nil {
		return nil, false, &Error{Object: ref.String(), Op: op, Err: err}
	}
	live = stub(ref)
	err = w.client.Get(ctx, client.ObjectKeyFromObject(live), live)
	switch {
	case apierrors.IsNotFound(err):
		return nil, true, nil
	case meta.IsNoMatchError(err), w.tenant && apierrors.IsForbidden(err):
		return nil, false, nil
	case err != nil:
		return nil, false, &Error{Object: ref.String(), Op: op, Err: err, Transient: transient(err)}
	}
	return live, false, nil
}

// namespaceRank sorts Namespaces (0) before everything else (1).
func namespaceRank(u *unstructured.Unstructured) int {
	if u.GroupVersionKind().Group == "" && u.GetKind() == "Namespace" {
		return 0
	}
	return 1
}

// createdNamespaces records namespaces that a unit found absent and then applied:
// this pass created them.
func (a *Applier) createdNamespaces(names []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		a.created[n] = true
	}
}

// describe describes a live object that a unit would take over.
func describe(ref plan.ObjectRef, live *unstructured.Unstructured) Existing {
	e := Existing{Object: ref, ManagedBy: live.GetLabels()[render.LabelManagedBy]}
	for _, m := range live.GetManagedFields() {
		if !slices.Contains(e.Managers, m.Manager) {
			e.Managers = append(e.Managers, m.Manager)
		}
	}
	slices.Sort(e.Managers)
	if e.ManagedBy == render.ManagedByMeridian {
		if owner, err := fleet.ParseUnitID(live.GetAnnotations()[render.AnnotationPlacement]); err == nil {
			e.Owner = owner
		}
	}
	return e
}

// claim decides what a unit may take over before anything of it is written: it
// returns the objects that exist and that it adopts, because the fleet asks for
// it (adoptExisting), or an *Error wrapping a *RefusedError when it would take
// over any object without being asked, or one that another unit owns. It also
// returns the unit's Namespaces that did not exist. Apply refuses such a unit
// before writing anything of it; meridian plan shows the same refusal (Region's
// Claim).
func (a *Applier) claim(ctx context.Context, unit *render.Unit, prev *plan.Inventory) (adopt []plan.ObjectRef, absent []string, err error) {
	found, absent, err := a.existing(ctx, unit, prev)
	if err != nil {
		return nil, nil, err
	}
	adopt, err = decide(unit, found)
	return adopt, absent, err
}

// decide is claim's decision on the objects existing found.
func decide(unit *render.Unit, found []Existing) ([]plan.ObjectRef, error) {
	if len(found) == 0 {
		return nil, nil
	}
	id := unit.ID()
	var refused []Existing
	for _, e := range found {
		if !unit.AdoptExisting || (!e.Owner.IsZero() && e.Owner != id) {
			refused = append(refused, e)
		}
	}
	if len(refused) > 0 {
		return nil, &Error{Object: id.String(), Op: "refused", Err: &RefusedError{Unit: id, Objects: refused}}
	}
	adopted := make([]plan.ObjectRef, len(found))
	for i, e := range found {
		adopted[i] = e.Object
	}
	return adopted, nil
}

// Release gives back objects Meridian adopted for a unit: it removes from each the
// labels and annotations Meridian's field manager set (its ownership labels among
// them) and that manager's entries, and leaves the object and every other field in
// place. An object already gone, or no longer Meridian's for the unit, is left as
// it is. Objects are read and patched as the user that wrote them (see Prune).
//
// A failure does not stop the others; the failures are joined, each an *Error
// naming its object.
func (a *Applier) Release(ctx context.Context, id fleet.UnitID, refs []plan.ObjectRef) error {
	var errs []error
	for _, ref := range refs {
		if err := a.release(ctx, id, ref); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// release releases one object.
func (a *Applier) release(ctx context.Context, id fleet.UnitID, ref plan.ObjectRef) error {
	return a.ifOwned(ctx, id, ref, release, func(c client.Client, live *unstructured.Unstructured) error {
		patch, err := releasePatch(live)
		if err != nil {
			return err
		}
		if err := c.Patch(ctx, live, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(FieldManager)); err != nil {
			return err
		}
		a.opts.Logger.Info("released: adopted, so left in place without Meridian's labels", "unit", id, "object", ref.String())
		return nil
	})
}

// releasePatch is the JSON merge patch that releases live: it removes the labels
// and annotations Meridian's field manager owns, and render's ownership labels
// and annotations, and drops Meridian's managed-fields entries, conditional on
// the resourceVersion that was checked.
func releasePatch(live *unstructured.Unstructured) ([]byte, error) {
	labels, annotations := map[string]any{}, map[string]any{}
	for _, k := range []string{render.LabelTenant, render.LabelRegion, render.LabelApp, render.LabelAddon, render.LabelManagedBy} {
		if _, ok := live.GetLabels()[k]; ok {
			labels[k] = nil
		}
	}
	for _, k := range []string{render.AnnotationPlacement, render.AnnotationRevision} {
		if _, ok := live.GetAnnotations()[k]; ok {
			annotations[k] = nil
		}
	}
	var kept []metav1.ManagedFieldsEntry
	for _, m := range live.GetManagedFields() {
		if m.Manager != FieldManager {
			kept = append(kept, m)
			continue
		}
		owned, err := ownedMetadata(m)
		if err != nil {
			return nil, err
		}
		for _, k := range owned.labels {
			labels[k] = nil
		}
		for _, k := range owned.annotations {
			annotations[k] = nil
		}
	}
	managedFields := any(kept)
	if len(kept) == 0 {
		// An empty list would leave them as they are; one empty entry clears them.
		managedFields = []map[string]any{{}}
	}
	metadata := map[string]any{"resourceVersion": live.GetResourceVersion(), "managedFields": managedFields}
	if len(labels) > 0 {
		metadata["labels"] = labels
	}
	if len(annotations) > 0 {
		metadata["annotations"] = annotations
	}
	return json.Marshal(map[string]any{"metadata": metadata})
}

// metadataKeys are the label and annotation keys of a managed-fields entry.
type metadataKeys struct{ labels, annotations []string }

// ownedMetadata reads the label and annotation keys a managed-fields entry owns,
// from its FieldsV1 form: {"f:metadata":{"f:labels":{"f:key":{}}}}.
func ownedMetadata(m metav1.ManagedFieldsEntry) (metadataKeys, error) {
	var out metadataKeys
	if m.FieldsV1 == nil {
		return out, nil
	}
	var fields struct {
		Metadata struct {
			Labels      map[string]json.RawMessage `json:"f:labels"`
			Annotations map[string]json.RawMessage `json:"f:annotations"`
		} `json:"f:metadata"`
	}
	if err := json.Unmarshal(m.FieldsV1.Raw, &fields); err != nil {
		return out, fmt.Errorf("read the fields of manager %s: %w", m.Manager, err)
	}
	for k := range fields.Metadata.Labels {
		if key, ok := strings.CutPrefix(k, "f:"); ok {
			out.labels = append(out.labels, key)
		}
	}
	for k := range fields.Metadata.Annotations {
		if key, ok := strings.CutPrefix(k, "f:"); ok {
			out.annotations = append(out.annotations, key)
		}
	}
	slices.Sort(out.labels)
	slices.Sort(out.annotations)
	return out, nil
}
